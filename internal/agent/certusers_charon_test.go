package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestDisablingACertificateUserEndsItsSessionInCharon: on a public key
// gateway an agent driving a real charon lets in the certificate of a
// VPNUser and refuses another certificate of the same client CA; when the
// user is disabled, its live session ends within seconds and it cannot
// log in again, while the certificate itself is still valid.
func TestDisablingACertificateUserEndsItsSessionInCharon(t *testing.T) {
	gwNS, clNS := netns.New(t, "agcgw"), netns.New(t, "agccl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	pki := charontest.NewPKI(t, "Unit CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", "192.0.2.1")
	clientCA := charontest.NewPKI(t, "Unit client CA")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw"})

	carl := v1alpha1.VPNUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "carl"},
		Spec: v1alpha1.VPNUserSpec{
			GatewayRef:  v1alpha1.GatewayReference{Name: testGW},
			Identity:    "carl@example.com",
			Certificate: &v1alpha1.UserCertificate{Issue: true},
		},
	}
	gateway := &v1alpha1.VPNGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testGW, Generation: 1},
		Spec: v1alpha1.VPNGatewaySpec{
			Hostnames: []v1alpha1.Hostname{"vpn.example.com"},
			ClientAuth: v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthPublicKey,
				ClientCA: &v1alpha1.SecretKeyReference{Name: "client-ca", Key: "ca.crt"}},
		},
	}
	caSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "client-ca"},
		Data:       map[string][]byte{"ca.crt": clientCA.CertPEM},
	}
	objs := []client.Object{
		gateway, caSecret, &carl,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "vpn-tls"},
			Data:       map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": pki.CertPEM},
		},
		&v1alpha1.MobilePool{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "staff"},
			Spec: v1alpha1.MobilePoolSpec{
				GatewayRef:    v1alpha1.GatewayReference{Name: testGW},
				Addresses:     v1alpha1.PoolAddresses{IPv4: "10.3.200.0/24"},
				LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
			},
		},
	}
	// The agent reads the client CA from the credentials Secrets the
	// manager derives, as it reads every referenced Secret.
	data := credentialsData(gateway, []v1alpha1.VPNUser{carl}, map[string]*corev1.Secret{"client-ca": caSecret})
	for i, shard := range credentials.Split(data) {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: credentials.ShardName(testGW, i)}, Data: shard})
	}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).Build()
	a, err := New(Options{
		Namespace: testNS, Gateway: testGW, Pod: testPod, CertificateSecret: "vpn-tls",
		VICI: vici.NewClient(gw.VICISocket()), Reader: reader, Writer: &statusRecorder{Client: reader},
		Debounce: 5 * time.Millisecond, SAInterval: 50 * time.Millisecond, CounterInterval: time.Hour,
		MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "the agent to load charon", 20*time.Second, a.Ready)

	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Client: true})
	conf, files := pubkeyClients(t, pki, clientCA, "carl@example.com", "eve@example.com")
	if out, err := cl.LoadAll(conf, files); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
	if out, err := cl.Swanctl("--initiate", "--ike", "carl", "--timeout", "20"); err != nil {
		conns, _ := gw.Swanctl("--list-conns")
		t.Fatalf("carl could not connect: %v\n%s\nGateway connections:\n%s", err, out, conns)
	}
	if out, err := cl.Swanctl("--initiate", "--ike", "eve", "--timeout", "20"); err == nil {
		t.Errorf("eve, a certificate of the client CA but no VPNUser, connected:\n%s", out)
	}

	if conns, _ := gw.Swanctl("--list-conns"); !strings.Contains(conns, "carl@example.com") {
		t.Fatalf("charon's connections do not name carl, whose certificate they accept:\n%s", conns)
	}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(&carl), &carl); err != nil {
		t.Fatal(err)
	}
	carl.Spec.Disabled = true
	if err := reader.Update(ctx, &carl); err != nil {
		t.Fatal(err)
	}
	a.Trigger()
	waitUntil(t, "carl's session to end on the gateway", 10*time.Second, func() bool {
		out, err := gw.Swanctl("--list-sas")
		return err == nil && !strings.Contains(out, "carl@example.com")
	})
	// A certificate user is refused by charon's configuration, which the
	// agent applies right after ending the sessions: on a loaded machine a
	// login between the two would still be accepted.
	waitUntil(t, "charon's connections to stop naming carl", 10*time.Second, func() bool {
		out, err := gw.Swanctl("--list-conns")
		return err == nil && !strings.Contains(out, "carl@example.com")
	})
	if out, err := cl.Swanctl("--initiate", "--ike", "carl", "--timeout", "20"); err == nil {
		t.Errorf("carl connected again after being disabled:\n%s", out)
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pubkeyClients is a client swanctl.conf with one public key connection
// per identity (named after its local part) and certificates of clientCA;
// the connections carry no CHILD_SA, which the kernel here could not
// install.
func pubkeyClients(t *testing.T, gatewayCA, clientCA *charontest.PKI, ids ...string) (string, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{"x509ca/ca.pem": gatewayCA.CertPEM}
	var conf strings.Builder
	conf.WriteString("connections {\n")
	for _, id := range ids {
		name := strings.Split(id, "@")[0]
		leaf := clientCA.Client(t, id, id)
		files["x509/"+name+".pem"], files["private/"+name+".pem"] = leaf.CertPEM, leaf.KeyPEM
		fmt.Fprintf(&conf, `  %s {
    version = 2
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0
    keyingtries = 1
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = pubkey
      certs = %s.pem
      id = %s
    }
    remote {
      auth = pubkey
      id = vpn.example.com
    }
  }
`, name, name, id)
	}
	conf.WriteString("}\n")
	return conf.String(), files
}

package controllers

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"howett.net/plist"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestProfileDelivery runs the manager and cert-manager against a real API
// server: every VPNUser gets a profile Secret of every format, kept in step
// with its gateway and unreadable by the agent, and a user who asks for a
// certificate gets one from the gateway's CA, bundled into its profile.
func TestProfileDelivery(t *testing.T) {
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	startManager(t, cfg, s, Options{StatusWorkers: 4})
	ctx := context.Background()

	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	const ns = "vpn"
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}
	userConds := func() []metav1.Condition { return user.Status.Conditions }
	var sec corev1.Secret

	t.Run("every format for an EAP user", func(t *testing.T) {
		eventually(t, "ProfileReady", conditionIs(c, user, userConds, v1alpha1.ConditionProfileReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		if user.Status.ProfileSecretName != "jimp-vpn-profile" {
			t.Fatalf("status.profileSecretName = %q, want jimp-vpn-profile", user.Status.ProfileSecretName)
		}
		mustGet(t, c, ns, user.Status.ProfileSecretName, &sec)
		requireOwnedBy(t, &sec, user)
		if sec.Type != corev1.SecretTypeOpaque {
			t.Errorf("type %s, want Opaque", sec.Type)
		}
		want := []string{"ca.crt", "networkmanager.sh", "profile.mobileconfig", "profile.ps1", "profile.sswan", "swanctl.conf"}
		if got := secretKeys(&sec); !slices.Equal(got, want) {
			t.Errorf("keys %v, want %v", got, want)
		}
		for k, v := range sec.Data {
			if bytes.Contains(v, []byte("abc123")) {
				t.Errorf("%s carries the user's password", k)
			}
		}
		var ca corev1.Secret
		mustGet(t, c, ns, "vpn-server-tls", &ca)
		if !bytes.Equal(sec.Data["ca.crt"], ca.Data["ca.crt"]) {
			t.Error("ca.crt is not the gateway's CA")
		}
		requireDials(t, &sec, "vpn.example.com", "jimp@example.com")
	})

	t.Run("the agent cannot read it", func(t *testing.T) {
		for _, verb := range []string{"get", "list", "watch"} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:vpn:vpn-agent",
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:vpn", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "secrets", Name: "jimp-vpn-profile"},
			}}
			// The Role exists once the gateway reconciled; before, nothing is allowed anyway.
			eventually(t, "agent Role", func() error { return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &rbacv1.Role{}) })
			eventually(t, "access review", func() error { return c.Create(ctx, sar) })
			if sar.Status.Allowed {
				t.Errorf("the agent may %s the profile Secret: %s", verb, sar.Status.Reason)
			}
		}
	})

	t.Run("steady state writes nothing", func(t *testing.T) {
		// A label the pools do not select makes the gateway build again
		// with the same result.
		mustGet(t, c, ns, "jimp-vpn-profile", &sec)
		before := sec.ResourceVersion
		mustGet(t, c, ns, "jimp", user)
		user.Labels = map[string]string{"nudge": "1"}
		if err := c.Update(ctx, user); err != nil {
			t.Fatal(err)
		}
		userVersion := user.ResourceVersion
		time.Sleep(3 * time.Second)
		mustGet(t, c, ns, "jimp-vpn-profile", &sec)
		mustGet(t, c, ns, "jimp", user)
		if sec.ResourceVersion != before || user.ResourceVersion != userVersion {
			t.Errorf("written again with nothing changed: Secret %s -> %s, user %s -> %s", before, sec.ResourceVersion, userVersion, user.ResourceVersion)
		}
	})

	t.Run("deleted Secret comes back", func(t *testing.T) {
		mustGet(t, c, ns, "jimp-vpn-profile", &sec)
		if err := c.Delete(ctx, &sec); err != nil {
			t.Fatal(err)
		}
		eventually(t, "profile Secret again", func() error {
			var again corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "jimp-vpn-profile"}, &again); err != nil {
				return err
			}
			if again.UID == sec.UID || len(again.Data["profile.mobileconfig"]) == 0 {
				return fmt.Errorf("not written again")
			}
			return nil
		})
	})

	t.Run("follows the gateway", func(t *testing.T) {
		// hostnames[0] is immutable; a new hostname reissues the server
		// certificate the profiles are checked against, and MOBIKE off
		// changes what they say.
		mustGet(t, c, ns, "jimp-vpn-profile", &sec)
		hash := sec.Annotations[annotationProfileHash]
		gw := &v1alpha1.VPNGateway{}
		mustGet(t, c, ns, "vpn", gw)
		gw.Spec.Hostnames = append(gw.Spec.Hostnames, "vpn.example.net")
		gw.Spec.IKE.MOBIKE = ptr.To(false)
		if err := c.Update(ctx, gw); err != nil {
			t.Fatal(err)
		}
		eventually(t, "profile without MOBIKE", func() error {
			mustGet(t, c, ns, "jimp-vpn-profile", &sec)
			if !bytes.Contains(sec.Data["swanctl.conf"], []byte("mobike = no")) {
				return fmt.Errorf("swanctl.conf still has MOBIKE")
			}
			return nil
		})
		if sec.Annotations[annotationProfileHash] == hash {
			t.Error("the profile hash did not change")
		}
		eventually(t, "server certificate with the new name", func() error {
			var tls corev1.Secret
			mustGet(t, c, ns, "vpn-server-tls", &tls)
			if leaf := parseCert(t, tls.Data["tls.crt"]); !slices.Contains(leaf.DNSNames, "vpn.example.net") {
				return fmt.Errorf("SANs %v", leaf.DNSNames)
			}
			return nil
		})
		eventually(t, "ProfileReady", conditionIs(c, user, userConds, v1alpha1.ConditionProfileReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		mustGet(t, c, ns, "jimp-vpn-profile", &sec)
		requireDials(t, &sec, "vpn.example.com", "jimp@example.com")
	})

	t.Run("client certificate from the gateway's CA", func(t *testing.T) {
		certGateway(t, c, ns)
		alice := gen.User(ns, "alice", "alice@example.com", gen.OfGateway("certs"), func(u *v1alpha1.VPNUser) {
			u.Spec.PasswordSecretRef = nil
			u.Spec.Certificate = &v1alpha1.UserCertificate{Issue: true, Duration: &metav1.Duration{Duration: 720 * time.Hour}}
		})
		if err := c.Create(ctx, alice); err != nil {
			t.Fatal(err)
		}
		conds := func() []metav1.Condition { return alice.Status.Conditions }
		eventually(t, "CertificateReady", conditionIs(c, alice, conds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		eventually(t, "ProfileReady", conditionIs(c, alice, conds, v1alpha1.ConditionProfileReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		if alice.Status.CertificateSecretName != "alice-vpn-client-tls" || alice.Status.ProfileSecretName != "alice-vpn-profile" {
			t.Fatalf("status names %q and %q", alice.Status.CertificateSecretName, alice.Status.ProfileSecretName)
		}
		var certObj cmv1.Certificate
		mustGet(t, c, ns, "alice-vpn-client", &certObj)
		requireOwnedBy(t, &certObj, alice)
		var certSecret corev1.Secret
		mustGet(t, c, ns, "alice-vpn-client-tls", &certSecret)
		if !slices.ContainsFunc(certSecret.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == alice.UID }) {
			t.Errorf("the certificate's Secret is not owned by the user: %v", certSecret.OwnerReferences)
		}

		mustGet(t, c, ns, "alice-vpn-profile", &sec)
		requireOwnedBy(t, &sec, alice)
		password := string(sec.Data["client.p12.password"])
		if len(password) < 20 {
			t.Fatalf("PKCS#12 password of %d characters", len(password))
		}
		key, leaf, chain, err := pkcs12.DecodeChain(sec.Data["client.p12"], password)
		if err != nil {
			t.Fatalf("client.p12 does not decode with its password: %v", err)
		}
		if key == nil || len(chain) != 0 {
			t.Errorf("key %T, %d CA certificates in the bundle; want a key and the leaf only", key, len(chain))
		}
		if !slices.Equal(leaf.EmailAddresses, []string{"alice@example.com"}) || len(leaf.DNSNames) != 0 {
			t.Errorf("SANs email %v DNS %v, want the identity as e-mail SAN", leaf.EmailAddresses, leaf.DNSNames)
		}
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("EKU %v lacks clientAuth", leaf.ExtKeyUsage)
		}
		if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 719*time.Hour || d > 721*time.Hour {
			t.Errorf("lifetime %v, want 720h", d)
		}
		var ca corev1.Secret
		mustGet(t, c, ns, "certs-ca", &ca)
		roots := x509.NewCertPool()
		roots.AddCert(parseCert(t, ca.Data["tls.crt"]))
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("the client certificate does not chain to the gateway's client CA: %v", err)
		}
		// The Apple profile installs the same bundle.
		pkcs := applePayload(t, &sec, "com.apple.security.pkcs12")
		if !bytes.Equal(pkcs["PayloadContent"].([]byte), sec.Data["client.p12"]) || pkcs["Password"] != password {
			t.Error("the mobileconfig's PKCS#12 payload is not the Secret's bundle with its password")
		}
	})

	t.Run("a client CA ikegate does not hold", func(t *testing.T) {
		gw := &v1alpha1.VPNGateway{}
		var ca corev1.Secret
		mustGet(t, c, ns, "certs-ca", &ca)
		other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-ca"}, Data: map[string][]byte{"ca.crt": ca.Data["tls.crt"]}}
		if err := c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		// The manager writes the gateway too (its finalizer, its status).
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			mustGet(t, c, ns, "certs", gw)
			gw.Spec.ClientAuth.ClientCA = &v1alpha1.SecretKeyReference{Name: "other-ca", Key: "ca.crt"}
			return c.Update(ctx, gw)
		}); err != nil {
			t.Fatal(err)
		}
		alice := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice"}}
		conds := func() []metav1.Condition { return alice.Status.Conditions }
		eventually(t, "CannotIssue", conditionIs(c, alice, conds, v1alpha1.ConditionCertificateReady, metav1.ConditionFalse, v1alpha1.ReasonCannotIssue))
		if msg := condMessage(alice.Status.Conditions, v1alpha1.ConditionCertificateReady); !strings.Contains(msg, "certs-ca") {
			t.Errorf("message %q does not name the gateway's own CA", msg)
		}
		warningEvent(t, c, ns, "alice", v1alpha1.ReasonCannotIssue, "clientAuth.clientCA")
	})

	t.Run("a certificate no longer asked for goes", func(t *testing.T) {
		alice := &v1alpha1.VPNUser{}
		mustGet(t, c, ns, "alice", alice)
		alice.Spec.Certificate.Issue = false
		if err := c.Update(ctx, alice); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Certificate deleted", gone(c, &cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-vpn-client"}}))
		eventually(t, "Secret deleted", gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-vpn-client-tls"}}))
		eventually(t, "status without the certificate", func() error {
			mustGet(t, c, ns, "alice", alice)
			if alice.Status.CertificateSecretName != "" || meta.FindStatusCondition(alice.Status.Conditions, v1alpha1.ConditionCertificateReady) != nil {
				return fmt.Errorf("status still names %q, conditions %v", alice.Status.CertificateSecretName, alice.Status.Conditions)
			}
			mustGet(t, c, ns, "alice-vpn-profile", &sec)
			if _, ok := sec.Data["client.p12"]; ok {
				return fmt.Errorf("the profile still carries the PKCS#12")
			}
			return nil
		})
	})
}

// certGateway makes a gateway whose clients authenticate with EAP-TLS and
// certificates of the gateway's own CA, with one full-tunnel pool.
func certGateway(t *testing.T, c client.Client, ns string) {
	t.Helper()
	gw := gen.Gateway(ns, "certs", func(gw *v1alpha1.VPNGateway) {
		gw.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPTLS, ClientCA: &v1alpha1.SecretKeyReference{Name: "certs-ca", Key: "ca.crt"}}
	})
	pool := gen.Pool(ns, "certs-pool", "10.9.0.0/24", func(p *v1alpha1.MobilePool) { p.Spec.GatewayRef.Name = "certs" })
	for _, o := range []client.Object{gw, pool} {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func requireOwnedBy(t *testing.T, o client.Object, u *v1alpha1.VPNUser) {
	t.Helper()
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.UID != u.UID || ref.Kind != "VPNUser" {
		t.Errorf("%s is controlled by %+v, want VPNUser %s", o.GetName(), ref, u.Name)
	}
}

func secretKeys(s *corev1.Secret) []string {
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// requireDials parses the Apple and Android profiles and checks the address
// they dial and the identity they log in with.
func requireDials(t *testing.T, s *corev1.Secret, dial, identity string) {
	t.Helper()
	vpn := applePayload(t, s, "com.apple.vpn.managed")
	ike, _ := vpn["IKEv2"].(map[string]any)
	if ike["RemoteAddress"] != dial || ike["LocalIdentifier"] != identity {
		t.Errorf("mobileconfig dials %v as %v, want %s as %s", ike["RemoteAddress"], ike["LocalIdentifier"], dial, identity)
	}
	var sswan struct {
		Remote struct{ Addr string } `json:"remote"`
	}
	if err := json.Unmarshal(s.Data[v1alpha1.ProfileKeyAndroid], &sswan); err != nil {
		t.Fatalf(".sswan does not parse: %v", err)
	}
	if sswan.Remote.Addr != dial {
		t.Errorf(".sswan dials %q, want %s", sswan.Remote.Addr, dial)
	}
}

func applePayload(t *testing.T, s *corev1.Secret, typ string) map[string]any {
	t.Helper()
	var top map[string]any
	if _, err := plist.Unmarshal(s.Data[v1alpha1.ProfileKeyApple], &top); err != nil {
		t.Fatalf("mobileconfig does not parse: %v", err)
	}
	for _, p := range top["PayloadContent"].([]any) {
		if d := p.(map[string]any); d["PayloadType"] == typ {
			return d
		}
	}
	t.Fatalf("mobileconfig has no %s payload", typ)
	return nil
}

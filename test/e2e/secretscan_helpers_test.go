package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/kube"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// runAgent runs the gateway pod's agent as its ServiceAccount, with its
// metrics in reg, until the test ends, and waits for its first apply.
func runAgent(t *testing.T, ctx context.Context, cfg *rest.Config, gwNS *netns.NS, gwCharon *charontest.Charon, errorNotify string, reg prometheus.Registerer) {
	t.Helper()
	fw, err := firewall.NewApplier(firewall.TableName(namespace, gatewayName), nftables.WithNetNSFd(gwNS.Fd()))
	must(t, err)
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + gatewayName + "-agent",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	a, err := agent.NewForConfig(agentCfg, agent.Options{
		Namespace: namespace, Gateway: gatewayName, Pod: gatewayName + "-gateway-0",
		VICI: vici.NewClient(gwCharon.VICISocket()), Firewall: fw, Registerer: reg,
		CounterInterval: time.Second, ErrorNotifySocket: errorNotify,
		// The agent answers the users' logins on the pod's loopback.
		RADIUSDir: gwCharon.RADIUSDir(), RADIUSConn: gwCharon.ListenUDP(t, agent.DefaultRADIUSAddr),
	})
	must(t, err)
	actx, stop := context.WithCancel(ctrl.LoggerInto(ctx, ctrl.Log.WithName("agent")))
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	kube.Eventually(t, "the agent applied the configuration to charon", 30*time.Second, func() error {
		if !a.Ready() {
			return errors.New("agent not ready")
		}
		return nil
	})
}

// secretForm is one way a secret could be written out.
type secretForm struct{ name, text string }

type runSecret struct {
	name  string
	forms []secretForm
}

// runSecrets are the secrets of the run in every form a leak would take:
// passwords, PSKs and RADIUS secrets as they are; NT hashes in hex of
// either case and base64; private keys as parts of their PEM body and of
// the hex of their bytes. They are read back from the cluster, so keys
// cert-manager made count too.
func runSecrets(t *testing.T, ctx context.Context, c client.Client) []runSecret {
	t.Helper()
	plain := func(name, v string) runSecret { return runSecret{name, []secretForm{{"as is", v}}} }
	hash := swan.NTHash(password)
	out := []runSecret{
		plain("jimp's password", password),
		plain("the wrong password tried", wrongPassword),
		plain("the tunnel's PSK", tunnelPSK),
		plain("the RADIUS secret", radiusSecret),
		{"jimp's NT hash", []secretForm{
			{"lower hex", hex.EncodeToString(hash)},
			{"upper hex", strings.ToUpper(hex.EncodeToString(hash))},
			{"base64", base64.RawStdEncoding.EncodeToString(hash)},
			{"base64url", base64.RawURLEncoding.EncodeToString(hash)},
		}},
		{"the wrong password's NT hash", []secretForm{{"lower hex", hex.EncodeToString(swan.NTHash(wrongPassword))}}},
	}
	var list corev1.SecretList
	must(t, c.List(ctx, &list))
	for _, s := range list.Items {
		blk, _ := pem.Decode(s.Data[corev1.TLSPrivateKeyKey])
		if blk == nil {
			continue
		}
		priv := privateBytes(t, blk.Bytes)
		// The PEM body at the private part's place: the base64 of 18 of
		// its bytes, from a 3-byte boundary of the DER so that they encode
		// to the same characters inside the whole body.
		at := bytes.Index(blk.Bytes, priv)
		start := (at + 2) / 3 * 3
		if at < 0 || start+18 > at+len(priv) {
			t.Fatalf("Secret %s/%s: the private part is not in the key's DER", s.Namespace, s.Name)
		}
		h := hex.EncodeToString(priv)
		out = append(out, runSecret{"the private key of Secret " + s.Namespace + "/" + s.Name, []secretForm{
			{"part of the PEM body", base64.StdEncoding.EncodeToString(blk.Bytes[start : start+18])},
			{"part of the private bytes' hex", h[:32]},
			{"part of the private bytes' upper hex", strings.ToUpper(h[:32])},
			{"the private bytes' base64", base64.StdEncoding.EncodeToString(priv)[:24]},
		}})
	}
	if len(out) < 8 {
		t.Fatalf("Found %d secrets, want the server's and the CA's private keys too", len(out))
	}
	return out
}

// privateBytes is the secret part of a PKCS#8, SEC 1 or PKCS#1 key: the
// scalar of an EC key, the private exponent of an RSA key, the seed of an
// Ed25519 key. The rest (the public key, the curve) is in the certificate.
func privateBytes(t *testing.T, der []byte) []byte {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if key, err = x509.ParseECPrivateKey(der); err != nil {
			key, err = x509.ParsePKCS1PrivateKey(der)
		}
	}
	must(t, err)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		must(t, err)
		return b
	case *rsa.PrivateKey:
		return k.D.Bytes()
	case ed25519.PrivateKey:
		return k.Seed()
	}
	t.Fatalf("private key of type %T", key)
	return nil
}

// listJSON is every object of the lists, in all namespaces, as JSON.
func listJSON(t *testing.T, ctx context.Context, c client.Client, lists ...client.ObjectList) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lists {
		must(t, c.List(ctx, l))
		data, err := json.Marshal(l)
		must(t, err)
		b.Write(data)
	}
	return b.String()
}

// statusesJSON is the status of every ikegate object.
func statusesJSON(t *testing.T, ctx context.Context, c client.Client) string {
	t.Helper()
	var gws v1alpha1.VPNGatewayList
	var pools v1alpha1.MobilePoolList
	var users v1alpha1.VPNUserList
	var tunnels v1alpha1.TunnelList
	var statuses []any
	for _, l := range []client.ObjectList{&gws, &pools, &users, &tunnels} {
		must(t, c.List(ctx, l))
	}
	for _, o := range gws.Items {
		statuses = append(statuses, o.Status)
	}
	for _, o := range pools.Items {
		statuses = append(statuses, o.Status)
	}
	for _, o := range users.Items {
		statuses = append(statuses, o.Status)
	}
	for _, o := range tunnels.Items {
		statuses = append(statuses, o.Status)
	}
	data, err := json.Marshal(statuses)
	must(t, err)
	return string(data)
}

// metricsText is what a scrape of the gatherer and the collectors returns.
func metricsText(t *testing.T, g prometheus.Gatherer, extra ...prometheus.Collector) string {
	t.Helper()
	gs := prometheus.Gatherers{g}
	if len(extra) > 0 {
		reg := prometheus.NewRegistry()
		for _, c := range extra {
			must(t, reg.Register(c))
		}
		gs = append(gs, reg)
	}
	families, err := gs.Gather()
	must(t, err)
	var b strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

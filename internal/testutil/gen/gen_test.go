package gen_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// The builders' objects are a gateway Build accepts whole, so a test that
// changes one thing about them sees the effect of that thing alone.
func TestBuildersMakeAValidGateway(t *testing.T) {
	gw := gen.Gateway(gen.Namespace, gen.GatewayName, gen.WithAddresses("198.51.100.10"))
	user := gen.User(gen.Namespace, "jimp", "jimp@example.com")
	tun := gen.Tunnel(gen.Namespace, "branch")
	in := swan.Resources{
		Gateway: *gw,
		Pools:   []v1alpha1.MobilePool{*gen.Pool(gen.Namespace, "staff", "10.3.200.0/24")},
		Users:   []v1alpha1.VPNUser{*user},
		Tunnels: []v1alpha1.Tunnel{*tun},
		Secrets: map[string]map[string][]byte{},
		Now:     time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
	}
	for _, s := range []struct{ name, key, value string }{
		{user.Spec.PasswordSecretRef.Name, gen.PasswordKey, "abc123"},
		{tun.Spec.Auth.PSK.SecretRef.Name, gen.PSKKey, "a long random pre-shared key"},
	} {
		in.Secrets[s.name] = gen.Secret(gen.Namespace, s.name, map[string]string{s.key: s.value}).Data
	}
	res := swan.Build(in)
	model, problems := res.Model, res.Problems
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(model.Connections) == 0 {
		t.Error("no connections")
	}
}

func TestModifiers(t *testing.T) {
	gw := gen.Gateway("ns", "edge", gen.Stored, gen.LoadBalancer, gen.Userspace, gen.WithReplicas(2), gen.WithIssuer("corp-ca"),
		gen.WithRADIUS(gen.RADIUSServer("nps", "10.3.0.5", "nps-secret", "secret")))
	if gw.Namespace != "ns" || gw.Spec.Hostnames[0] != "edge.example.com" || gw.Generation != 1 || gw.UID == "" ||
		gw.Spec.HostNetwork() || !gw.Spec.UserspaceDataplane() || gw.Spec.EffectiveReplicas() != 2 ||
		gw.Spec.Certificate.IssuerRef.Name != "corp-ca" || !gw.Spec.UsesRADIUS() || gw.SecretRefs()[0].Name != "nps-secret" {
		t.Errorf("gateway %+v", gw)
	}
	u := gen.User("ns", "bob", "bob@example.com", gen.OfGateway("corp"), gen.WithPassword("shared", "bob"))
	if u.Spec.GatewayRef.Name != "corp" || *u.Spec.PasswordSecretRef != (v1alpha1.SecretKeyReference{Name: "shared", Key: "bob"}) {
		t.Errorf("user %+v", u.Spec)
	}
	p := gen.Pool("ns", "guests", "10.3.201.0/24", gen.Selecting(map[string]string{"group": "guests"}), gen.WithESPPreset(v1alpha1.PresetCompatible))
	if p.Spec.UserSelector.MatchLabels["group"] != "guests" || p.Spec.ESP.Preset != v1alpha1.PresetCompatible || p.Spec.ESP.PFSGroup != v1alpha1.PFSNone {
		t.Errorf("pool %+v", p.Spec)
	}
	split := gen.Pool("ns", "lan", "10.3.202.0/24", gen.SplitTunnel("10.3.0.0/24"), gen.Allowing("10.3.0.0/24", "10.4.0.0/24"))
	if split.Spec.FullTunnel || !slices.Equal(split.Spec.LocalNetworks, []v1alpha1.CIDR{"10.3.0.0/24"}) ||
		!cmp.Equal(split.Spec.Firewall.Allow, []v1alpha1.AllowRule{{To: "10.3.0.0/24"}, {To: "10.4.0.0/24"}}) {
		t.Errorf("split pool %+v", split.Spec)
	}
	if l := gen.User("ns", "ops", "ops@example.com", gen.WithLabels(map[string]string{"team": "ops"})).Labels; l["team"] != "ops" {
		t.Errorf("user labels %v", l)
	}
	tls := gen.TLSSecret("ns", "edge-tls", []byte("cert"), []byte("key"), []byte("ca"))
	if tls.Type != "kubernetes.io/tls" || string(tls.Data["tls.crt"]) != "cert" || string(tls.Data["tls.key"]) != "key" || string(tls.Data["ca.crt"]) != "ca" {
		t.Errorf("TLS Secret %+v", tls)
	}
}

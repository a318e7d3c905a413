package controllers

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func TestUserObjectNamesFitAnObjectName(t *testing.T) {
	long := strings.Repeat("a", 240) + "." + strings.Repeat("b", 12)
	for _, tt := range []struct{ user, want string }{
		{"jimp", "jimp-vpn-profile"},
		{long, ""},
	} {
		got := profileSecretName(tt.user)
		if tt.want != "" && got != tt.want {
			t.Errorf("profileSecretName(%q) = %q, want %q", tt.user, got, tt.want)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("profileSecretName(%d characters) = %q: %v", len(tt.user), got, errs)
		}
	}
	// Two long names that share their first 240 characters stay apart.
	if a, b := profileSecretName(long), profileSecretName(long+"c"); a == b {
		t.Errorf("two users share the profile Secret %q", a)
	}
}

func TestClientCertificateCarriesTheIdentityAsItsSAN(t *testing.T) {
	gw := gen.Gateway("vpn", "vpn", func(gw *v1alpha1.VPNGateway) {
		gw.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPTLS, ClientCA: &v1alpha1.SecretKeyReference{Name: "vpn-ca", Key: "ca.crt"}}
	})
	for _, tt := range []struct {
		identity   v1alpha1.Identity
		email, dns []string
		ips        []string
		cannot     string
	}{
		{identity: "alice@example.com", email: []string{"alice@example.com"}},
		{identity: "rfc822:alice@example.com", email: []string{"alice@example.com"}},
		{identity: "laptop.example.com", dns: []string{"laptop.example.com"}},
		{identity: "@laptop.example.com", dns: []string{"laptop.example.com"}},
		{identity: "fqdn:laptop.example.com", dns: []string{"laptop.example.com"}},
		{identity: "192.0.2.7", ips: []string{"192.0.2.7"}},
		{identity: "2001:db8::7", ips: []string{"2001:db8::7"}},
		{identity: "CN=alice, O=Example", cannot: "not \"CN=alice, O=Example\""},
	} {
		t.Run(string(tt.identity), func(t *testing.T) {
			u := gen.User("vpn", "alice", tt.identity, func(u *v1alpha1.VPNUser) {
				u.UID = "uid-alice"
				u.Spec.PasswordSecretRef = nil
				u.Spec.Certificate = &v1alpha1.UserCertificate{Issue: true, Duration: &metav1.Duration{Duration: 48 * time.Hour}}
			})
			c, cannot := clientCertificate(gw, u)
			if tt.cannot != "" {
				if c != nil || !strings.Contains(cannot, tt.cannot) {
					t.Fatalf("clientCertificate = %v, %q; want refused with %q", c, cannot, tt.cannot)
				}
				return
			}
			if c == nil {
				t.Fatalf("refused: %s", cannot)
			}
			s := c.Spec
			if diff := cmp.Diff([][]string{tt.email, tt.dns, tt.ips}, [][]string{s.EmailAddresses, s.DNSNames, s.IPAddresses}); diff != "" {
				t.Errorf("SANs (-want +got) as [email dns ip]:\n%s", diff)
			}
			if s.Duration.Duration != 48*time.Hour || s.IssuerRef.Name != "vpn-ca" || s.SecretName != "alice-vpn-client-tls" {
				t.Errorf("duration %v issuer %v secret %q", s.Duration, s.IssuerRef, s.SecretName)
			}
			if !slices.Contains(s.Usages, cmv1.UsageClientAuth) {
				t.Errorf("usages %v lack clientAuth", s.Usages)
			}
			if ref := metav1.GetControllerOf(c); ref == nil || ref.UID != "uid-alice" {
				t.Errorf("controller %v, want the user", ref)
			}
		})
	}
}

func TestClientCertificateOnlyFromTheGatewaysOwnCA(t *testing.T) {
	u := gen.User("vpn", "alice", "alice@example.com", func(u *v1alpha1.VPNUser) {
		u.Spec.Certificate = &v1alpha1.UserCertificate{Issue: true}
	})
	for _, ca := range []*v1alpha1.SecretKeyReference{nil, {Name: "corp-ca", Key: "ca.crt"}} {
		gw := gen.Gateway("vpn", "vpn", func(gw *v1alpha1.VPNGateway) { gw.Spec.ClientAuth.ClientCA = ca })
		if c, cannot := clientCertificate(gw, u); c != nil || !strings.Contains(cannot, "Secret vpn-ca") {
			t.Errorf("clientCA %v: %v, %q; want refused naming vpn-ca", ca, c, cannot)
		}
	}
}

func TestProfileCondition(t *testing.T) {
	for _, tt := range []struct {
		name        string
		err         error
		unavailable string
		want        metav1.Condition
	}{
		{"all formats", nil, "", condTrue(v1alpha1.ConditionProfileReady, v1alpha1.ReasonReady, "a profile of every format is in the Secret")},
		{"some refused", nil, "windows: no SHA-512", condFalse(v1alpha1.ConditionProfileReady, v1alpha1.ReasonProfileUnavailable, "some formats cannot work and were left out: windows: no SHA-512")},
		{"none", errors.New("VPNUser x has no connection"), "", condFalse(v1alpha1.ConditionProfileReady, v1alpha1.ReasonProfileUnavailable, "VPNUser x has no connection")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, profileCondition(tt.err, tt.unavailable)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A profile rebuilt from the same input must hash the same (else a
// settled gateway rewrites every profile), and any change to the input
// or the client certificate must change the hash.
func TestProfileHash(t *testing.T) {
	in := profile.Input{Gateway: "vpn", Dial: "vpn.example.com", User: "jimp", Identity: "jimp@example.com", CAPEM: []byte("ca")}
	base := profileHash(in, nil)
	withP12 := in
	withP12.PKCS12, withP12.PKCS12Password = []byte("random"), "random"
	if profileHash(in, nil) != base || profileHash(withP12, nil) != base {
		t.Error("the hash changes with nothing but the PKCS#12 changed")
	}
	dial := in
	dial.Dial = "198.51.100.10"
	for name, h := range map[string]string{"dial": profileHash(dial, nil), "certificate": profileHash(in, []byte("cert"))} {
		if h == base {
			t.Errorf("a new %s leaves the hash as it was", name)
		}
	}
}

// BenchmarkProfileContent is the manager's cost of one user's profiles,
// paid when the user's profile Secret is written.
func BenchmarkProfileContent(b *testing.B) {
	pki := charontest.NewPKI(b, "bench CA")
	leaf := pki.Server(b, "vpn.example.com", "vpn.example.com")
	gw := gen.Gateway("vpn", gen.GatewayName)
	gen.WithAPIDefaults(gw)
	u := gen.User("vpn", "jimp", "jimp@example.com")
	res := swan.Build(swan.Resources{
		Gateway: *gw, Pools: []v1alpha1.MobilePool{*gen.Pool("vpn", "staff", "10.3.200.0/24")}, Users: []v1alpha1.VPNUser{*u},
		Secrets:       map[string]map[string][]byte{"jimp": {gen.PasswordKey: []byte("abc123")}},
		ServerCertPEM: leaf.CertPEM, CAPEM: pki.CertPEM, Now: time.Now(),
	})
	in, err := profile.FromBuild(&res, gw, u, profile.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, unavailable := profileContent(in); unavailable != "" {
		b.Fatal(unavailable)
	}
	b.ReportAllocs()
	for b.Loop() {
		profileContent(in)
	}
}

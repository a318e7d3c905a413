package profile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// server issues a certificate with the given DNS and IP SANs and EKUs.
func (ca testCA) server(t *testing.T, dns []string, ips []string, eku ...x509.ExtKeyUsage) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, ExtKeyUsage: eku, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCheckRefusesProfilesThatCannotWork(t *testing.T) {
	ca := newCA(t)
	good := ca.server(t, []string{"vpn.example.com"}, []string{"198.51.100.10"}, x509.ExtKeyUsageServerAuth)
	withCerts := func(server []byte) func(*profile.Input) {
		return func(in *profile.Input) { in.CAPEM, in.ServerCertPEM = ca.pem, server }
	}
	tests := []struct {
		name    string
		mod     func(*profile.Input)
		formats []profile.Format
		want    string // "" means accepted
	}{
		{"a matching certificate", withCerts(good), profile.Formats, ""},
		{"the dialled name is no SAN", withCerts(ca.server(t, []string{"other.example.com"}, nil, x509.ExtKeyUsageServerAuth)), profile.Formats,
			`no DNS SAN for "vpn.example.com", the address the profile dials (it has DNS:other.example.com); add it to the VPNGateway's spec.hostnames`},
		{"an address needs an IP SAN", func(in *profile.Input) {
			withCerts(ca.server(t, []string{"vpn.example.com", "198.51.100.10"}, nil, x509.ExtKeyUsageServerAuth))(in)
			in.Dial = "198.51.100.10"
		}, profile.Formats, `no IP SAN for "198.51.100.10"`},
		{"Windows needs serverAuth", withCerts(ca.server(t, []string{"vpn.example.com"}, nil, x509.ExtKeyUsageClientAuth)), []profile.Format{profile.FormatWindows}, "serverAuth extended key usage"},
		{"others take a certificate without serverAuth", withCerts(ca.server(t, []string{"vpn.example.com"}, nil)), []profile.Format{profile.FormatApple, profile.FormatAndroid, profile.FormatSwanctl, profile.FormatNetworkManager}, ""},
		{"a certificate of another CA", func(in *profile.Input) { in.CAPEM = newCA(t).pem }, profile.Formats, "does not chain to the CA the profile installs"},
		{"no CA", func(in *profile.Input) { in.CAPEM = nil }, profile.Formats, "CA certificate is missing"},
		{"no server certificate", func(in *profile.Input) { in.ServerCertPEM = nil }, profile.Formats, "server certificate is missing"},
		{"Windows has no SHA-512 and no Curve25519", func(in *profile.Input) { in.IKEProposals = []string{"aes256gcm16-prfsha512-x25519"} }, []profile.Format{profile.FormatWindows},
			"Windows cannot propose any of this gateway's IKE proposals (aes256gcm16-prfsha512-x25519); set spec.ike.preset Modern on the VPNGateway or add a proposal to spec.ike.proposals with encryption from AES256GCM16, AES128GCM16, AES256, AES192, AES128, PRF from PRFSHA256, PRFSHA384 and DH groups from ECP256, ECP384, MODP2048"},
		{"Apple has SHA-512 and Curve25519", func(in *profile.Input) { in.IKEProposals = []string{"aes256gcm16-prfsha512-x25519"} }, []profile.Format{profile.FormatApple}, ""},
		{"Windows has no PFS with Curve25519", func(in *profile.Input) { in.ESPProposals = []string{"aes256gcm16-x25519"} }, []profile.Format{profile.FormatWindows},
			"Windows cannot propose any of the ESP proposals of MobilePool staff (aes256gcm16-x25519); set spec.esp.preset Compatible on MobilePool staff or add a proposal to spec.esp.proposals with encryption from AES256GCM16, AES192GCM16, AES128GCM16, AES256, AES192, AES128 and integrity from SHA256, and a PFS group from ECP256, ECP384, MODP2048 (spec.esp.pfsGroup)"},
		{"profiles never propose insecure algorithms", func(in *profile.Input) { in.IKEProposals = []string{"aes256-sha1-prfsha1-modp1024"} }, []profile.Format{profile.FormatApple, profile.FormatWindows},
			"set spec.ike.preset Modern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := input(t, seed(t), profile.Options{})
			for _, f := range tt.formats {
				in := base
				withCerts(good)(&in)
				tt.mod(&in)
				err := profile.Check(in, f)
				_, buildErr := profile.Build(f, in)
				switch {
				case tt.want == "" && (err != nil || buildErr != nil):
					t.Errorf("%s: refused: %v", f, err)
				case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
					t.Errorf("%s: Check = %v, want an error containing %q", f, err, tt.want)
				case tt.want != "" && buildErr == nil:
					t.Errorf("%s: built a profile Check refuses", f)
				}
			}
		})
	}
}

func TestFromBuild(t *testing.T) {
	t.Run("a user in its own group has its own connection", func(t *testing.T) {
		res := seed(t, func(r *swan.Resources) {
			ops := r.Pools[0].DeepCopy()
			ops.Name = "ops"
			ops.Spec.Addresses.IPv4 = "10.3.201.0/24"
			ops.Spec.LocalNetworks = []v1alpha1.CIDR{"10.9.0.0/16"}
			ops.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ops"}}
			r.Pools = append(r.Pools, *ops)
			alice := r.Users[0].DeepCopy()
			alice.Name, alice.Spec.Identity = "alice", "alice@example.com"
			r.Users = append(r.Users, *alice)
			r.Users[0].Labels = map[string]string{"team": "ops"}
		})
		in := input(t, res, profile.Options{})
		if in.Pool != "ops" || len(in.LocalNetworks) != 1 || in.LocalNetworks[0].String() != "10.9.0.0/16" {
			t.Errorf("Input took pool %s with networks %v, want ops with 10.9.0.0/16", in.Pool, in.LocalNetworks)
		}
	})
	t.Run("the seed", func(t *testing.T) {
		in := input(t, seed(t), profile.Options{})
		if in.Password != "" {
			t.Error("FromBuild put a password into the input")
		}
		if in.RemoteID != "vpn.example.com" || in.Dial != "vpn.example.com" || in.Auth != profile.AuthEAP || in.Identity != "jimp@example.com" ||
			strings.Join(in.DNSServers, ",") != "10.3.0.1" || strings.Join(in.DNSDomains, ",") != "example.com,example.org" || in.DefaultDomain != "example.com" ||
			strings.Join(in.VirtualIPs, ",") != "0.0.0.0" || in.IKELifetime != 8*time.Hour || in.ESPLifetime != time.Hour || !in.MOBIKE || in.DPDDelay != 30*time.Second {
			t.Errorf("Input: %+v", in)
		}
	})
	t.Run("a disabled user has no profile", func(t *testing.T) {
		res := seed(t, func(r *swan.Resources) { r.Users[0].Spec.Disabled = true })
		built := swan.Build(res)
		if _, err := profile.FromBuild(&built, &res.Gateway, &res.Users[0], profile.Options{}); err == nil || !strings.Contains(err.Error(), "has no connection") {
			t.Errorf("FromBuild = %v, want an error", err)
		}
	})
	t.Run("a name the gateway does not answer on", func(t *testing.T) {
		res := seed(t)
		built := swan.Build(res)
		if _, err := profile.FromBuild(&built, &res.Gateway, &res.Users[0], profile.Options{Dial: "vpn.example.org"}); err == nil {
			t.Error("FromBuild accepted a name that is not the gateway's")
		}
	})
}

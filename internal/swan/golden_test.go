package swan_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

// goldenScenario is a set of resources whose configuration is pinned in
// testdata/TestGolden/<name>.golden and loaded into a real charon.
type goldenScenario struct {
	name string
	in   func(t *testing.T) Resources
	// check inspects the model beyond the golden file.
	check func(t *testing.T, m Model)
}

func goldenScenarios() []goldenScenario {
	return []goldenScenario{
		{name: "seed-modern", in: func(t *testing.T) Resources { return loadExample(t, "../../examples/pfsense-mobile") },
			check: func(t *testing.T, m Model) {
				conf := Render(m, RenderOptions{})
				for _, want := range []string{"addrs = 10.3.200.1-10.3.200.254", "dns = 10.3.0.1", "25 = example.com, example.org", "28675 = example.com example.org", "local_ts = 10.3.0.0/24"} {
					if !strings.Contains(conf, want) {
						t.Errorf("Seed configuration lacks %q", want)
					}
				}
			}},
		{name: "seed-legacy", in: func(t *testing.T) Resources { return loadExample(t, "../../examples/pfsense-mobile-legacy") },
			check: func(t *testing.T, m Model) {
				if got := m.Connections[0].Proposals; len(got) != 1 || got[0] != "3des-sha1-prfsha1-modp1024" {
					t.Errorf("Legacy IKE proposals = %v, want the seed's 3DES/SHA1/MODP1024", got)
				}
			}},
		{name: "dual-stack", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24", func(p *v1alpha1.MobilePool) {
				p.Spec.Addresses.IPv6 = "fd00:3:200::/112"
				p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.0/24", "fd00:3::/64"}
				p.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1", "fd00:3::1"}, DefaultDomain: "example.com"}
			})}
			withUsers(&in, newUser("jimp", "jimp@example.com"))
			return in
		}, check: func(t *testing.T, m Model) {
			if len(m.Pools) != 2 || len(m.Connections[0].Pools) != 2 {
				t.Errorf("Dual-stack pool should become two charon pools on one connection: %+v", m.Pools)
			}
		}},
		{name: "full-tunnel", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Pools = []v1alpha1.MobilePool{newPool("roadwarriors", "10.3.200.0/24", func(p *v1alpha1.MobilePool) {
				p.Spec.LocalNetworks = nil
				p.Spec.FullTunnel = true
				p.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1", "10.3.0.2"}}
				p.Spec.WINSServers = []v1alpha1.IPAddress{"10.3.0.3"}
				p.Spec.Banner = "Authorized users only, \"all\" sessions are logged.\nCall #4242 for help."
				p.Spec.ESP.PFSGroup = "Curve25519"
			})}
			withUsers(&in, newUser("jimp", "jimp@example.com"))
			return in
		}, check: func(t *testing.T, m Model) {
			if ts := m.Connections[0].Children[0].LocalTS; strings.Join(ts, ",") != "0.0.0.0/0,::/0" {
				t.Errorf("Full tunnel local_ts = %v", ts)
			}
		}},
		{name: "split-dns", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24", func(p *v1alpha1.MobilePool) {
				p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.0/24", "10.4.0.0/16", "172.16.0.0/12"}
				p.Spec.DNS = &v1alpha1.DNSSettings{
					Servers:       []v1alpha1.IPAddress{"10.3.0.1"},
					DefaultDomain: "corp.example.com",
					SplitDomains:  []v1alpha1.DomainName{"corp.example.com", "example.org", "internal.example.net"},
				}
			})}
			withUsers(&in, newUser("jimp", "jimp@example.com"))
			return in
		}},
		{name: "two-groups", in: twoGroups, check: func(t *testing.T, m Model) {
			var names []string
			for _, c := range m.Connections {
				names = append(names, c.Name)
			}
			if got, want := strings.Join(names, " "), "mobile-engineering mobile-sales"; got != want {
				t.Errorf("Connections = %s, want %s", got, want)
			}
		}},
		{name: "static-addresses", in: staticAddresses, check: func(t *testing.T, m Model) {
			var pools []string
			for _, p := range m.Pools {
				pools = append(pools, p.Name+"="+p.Addrs)
			}
			want := "staff-ipv4-10_3_200_1-10_3_200_9=10.3.200.1-10.3.200.9 staff-ipv4-10_3_200_11-10_3_200_254=10.3.200.11-10.3.200.254 " +
				"staff-ipv6-fd00_3_200__1-fd00_3_200__1f=fd00:3:200::1-fd00:3:200::1f staff-ipv6-fd00_3_200__21-fd00_3_200__fffe=fd00:3:200::21-fd00:3:200::fffe " +
				"statics-staff-v4=10.3.200.10-10.3.200.10 statics-staff-v6=fd00:3:200::20-fd00:3:200::20"
			if got := strings.Join(pools, " "); got != want {
				t.Errorf("Pools = %s\nwant    %s", got, want)
			}
		}},
		{name: "eap-radius", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(func(g *v1alpha1.VPNGateway) {
				g.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPRADIUS, RADIUS: &v1alpha1.RADIUSSettings{
					Servers: []v1alpha1.RADIUSServer{{Name: "nps", Address: "10.3.0.5", SecretRef: v1alpha1.SecretKeyReference{Name: "radius", Key: "secret"}}},
				}}
			}), Now: testNow}
			in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}
			in.Secrets = map[string]map[string][]byte{"radius": {"secret": []byte("radius shared secret")}}
			return in
		}},
		{name: "eap-tls", in: certUsers(v1alpha1.ClientAuthEAPTLS)},
		{name: "pubkey", in: certUsers(v1alpha1.ClientAuthPublicKey)},
		{name: "users-500", in: func(t *testing.T) Resources { return manyUsers(500) },
			check: func(t *testing.T, m Model) {
				if len(m.Secrets) != 0 || len(m.Connections) != 1 {
					t.Errorf("500 users: %d secrets, %d connections; want none (the agent serves them) and 1", len(m.Secrets), len(m.Connections))
				}
			}},
		{name: "tunnel-psk", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch")}
			in.Secrets = map[string]map[string][]byte{"branch-psk": {"psk": []byte("correct horse battery staple")}}
			return in
		}},
		{name: "tunnel-certs", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Tunnels = []v1alpha1.Tunnel{newTunnel("datacenter", func(tn *v1alpha1.Tunnel) {
				tn.Spec.Remote = v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.30", "2001:db8:30::1"}, Identity: "CN=dc.example.net, O=Example"}
				tn.Spec.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: "branch-ca", Key: "ca.crt"}}}
				tn.Spec.IKE.MOBIKE = new(true)
				tn.Spec.Children[0].StartAction = "None"
				tn.Spec.Children[0].ESP.PFSGroup = "ECP256"
			})}
			return in
		}},
		{name: "tunnel-ikev1", in: func(t *testing.T) Resources {
			in := Resources{Gateway: newGateway(), Now: testNow}
			in.Tunnels = []v1alpha1.Tunnel{newTunnel("legacy-branch", func(tn *v1alpha1.Tunnel) {
				tn.Spec.IKEVersion = 1
				tn.Spec.AllowInsecureAlgorithms = true
				tn.Spec.IKE = v1alpha1.TunnelIKE{
					Proposals: []v1alpha1.IKEProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES256", "3DES"}, Integrity: []v1alpha1.IntegrityAlgorithm{"SHA256", "SHA1"}, DHGroups: []v1alpha1.DHGroup{"MODP2048", "MODP1024"}}},
					Lifetime:  dur(24 * time.Hour),
					DPD:       v1alpha1.DPDSettings{Delay: dur(10 * time.Second), Action: "Restart"},
				}
				tn.Spec.Children = []v1alpha1.TunnelChild{
					{Name: "servers", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.20.1.0/24"}, StartAction: "Start", CloseAction: "Start"},
					{Name: "printers", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.20.2.0/24"}, StartAction: "Trap", CloseAction: "Trap",
						ESP: v1alpha1.ESPSettings{Preset: v1alpha1.PresetLegacy, PFSGroup: "MODP2048", Lifetime: dur(8 * time.Hour)}},
					{Name: "voice", LocalNetworks: []v1alpha1.CIDR{"10.3.1.0/24", "10.3.2.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.20.3.0/24"}, StartAction: "None",
						ESP: v1alpha1.ESPSettings{Proposals: []v1alpha1.ESPProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES128GCM16"}}}}},
				}
			})}
			in.Secrets = map[string]map[string][]byte{"legacy-branch-psk": {"psk": []byte("an old, shared secret")}}
			return in
		}, check: func(t *testing.T, m Model) {
			if c := m.Connections[0]; c.Version != 1 || len(c.Children) != 3 {
				t.Errorf("IKEv1 tunnel: version %d with %d children, want 1 with 3", c.Version, len(c.Children))
			}
		}},
	}
}

// twoGroups has two pools for two user groups: three engineers and two
// salespeople, each group with its own addresses and networks.
func twoGroups(t *testing.T) Resources {
	in := Resources{Gateway: newGateway(), Now: testNow}
	in.Pools = []v1alpha1.MobilePool{
		newPool("engineering", "10.3.202.0/24", selecting("eng"), func(p *v1alpha1.MobilePool) {
			p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.0/24", "10.5.0.0/16"}
		}),
		newPool("sales", "10.3.201.0/24", selecting("sales"), func(p *v1alpha1.MobilePool) {
			p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.0/24"}
		}),
	}
	withUsers(&in,
		newUser("alice", "alice@example.com", inTeam("sales")),
		newUser("anna", "anna@example.com", inTeam("sales")),
		newUser("bob", "bob@example.com", inTeam("eng")),
		newUser("bea", "bea@example.com", inTeam("eng")),
		newUser("ben", "ben@example.com", inTeam("eng")),
	)
	return in
}

// staticAddresses has a dual-stack pool and two users with a static address
// each, one of either family, beside one without.
func staticAddresses(t *testing.T) Resources {
	in := Resources{Gateway: newGateway(), Now: testNow}
	in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24", func(p *v1alpha1.MobilePool) {
		p.Spec.Addresses.IPv6 = "fd00:3:200::/112"
		p.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1"}, SplitDomains: []v1alpha1.DomainName{"example.com"}}
	})}
	withUsers(&in,
		newUser("jimp", "jimp@example.com"),
		newUser("vera", "vera@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.200.10" }),
		newUser("walt", "walt@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "fd00:3:200::20" }),
	)
	return in
}

// certUsers authenticates clients by certificate; one contractor is pinned
// to a pool of its own, everybody else from the client CA gets the default.
func certUsers(method v1alpha1.ClientAuthMethod) func(t *testing.T) Resources {
	return func(t *testing.T) Resources {
		in := Resources{Gateway: newGateway(func(g *v1alpha1.VPNGateway) {
			g.Spec.ClientAuth = v1alpha1.ClientAuth{Method: method, ClientCA: &v1alpha1.SecretKeyReference{Name: "client-ca", Key: "ca.crt"}}
		}), Now: testNow}
		in.Pools = []v1alpha1.MobilePool{
			newPool("staff", "10.3.200.0/24"),
			newPool("contractors", "10.3.210.0/24", selecting("contractor"), func(p *v1alpha1.MobilePool) {
				p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.80/28"}
			}),
		}
		for _, u := range []v1alpha1.VPNUser{
			newUser("carl", "carl@contractor.example", inTeam("contractor")),
			newUser("dora", "dora@example.com"),
		} {
			u.Spec.PasswordSecretRef = nil
			u.Spec.Certificate = &v1alpha1.UserCertificate{Issue: true}
			in.Users = append(in.Users, u)
		}
		return in
	}
}

func manyUsers(n int) Resources {
	in := Resources{Gateway: newGateway(), Now: testNow}
	in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.0.0/16", func(p *v1alpha1.MobilePool) {
		p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.4.0.0/24"}
	})}
	users := make([]v1alpha1.VPNUser, n)
	for i := range users {
		name := fmt.Sprintf("user%05d", i)
		users[i] = newUser(name, name+"@example.com")
	}
	withUsers(&in, users...)
	return in
}

// TestGolden pins the configuration of each scenario and proves that charon
// accepts it: every connection, child, pool, secret, certificate and key.
func TestGolden(t *testing.T) {
	pki := newTestPKI(t)
	host := startCharonHost(t)
	for _, sc := range goldenScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			in := sc.in(t)
			pki.apply(&in)
			res := Build(in)
			m, problems := res.Model, res.Problems
			if len(problems) > 0 {
				t.Fatalf("Build reported problems: %v", problems)
			}
			again := Build(in).Model
			if Render(again, RenderOptions{ShowSecrets: true}) != Render(m, RenderOptions{ShowSecrets: true}) {
				t.Fatal("Two builds of the same resources render differently")
			}
			checkGolden(t, Render(m, RenderOptions{ShowSecrets: true}))
			if sc.check != nil {
				sc.check(t, m)
			}
			host.accepts(t, m)
		})
	}
}

// TestRenderRedactsSecrets: without ShowSecrets no secret, hash or key
// reaches the text.
func TestRenderRedactsSecrets(t *testing.T) {
	in := twoGroups(t)
	in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch")}
	in.Secrets["branch-psk"] = map[string][]byte{"psk": []byte("correct horse battery staple")}
	res := Build(in)
	m, problems := res.Model, res.Problems
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	conf := Render(m, RenderOptions{})
	if n := strings.Count(conf, "secret = "+Redacted); n != len(m.Secrets) {
		t.Errorf("%d redacted secrets, want %d", n, len(m.Secrets))
	}
	for _, s := range m.Secrets {
		if strings.Contains(conf, fmt.Sprintf("%x", s.Data)) || strings.Contains(conf, string(s.Data)) {
			t.Errorf("Secret %s leaked into the redacted text", s.Name)
		}
	}
	if strings.Contains(conf, "correct horse") || strings.Contains(conf, "pw-") {
		t.Error("A password reached the redacted text")
	}
}

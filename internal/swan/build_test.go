package swan_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

func TestNTHash(t *testing.T) {
	// Known answers: MS-NLMP's "Password", the seed's "abc123", and
	// non-ASCII passwords whose UTF-16LE encoding differs from their UTF-8
	// bytes (computed with iconv and openssl's MD4).
	for pw, want := range map[string]string{
		"Password": "a4f49c406510bdcab6824ee7c30fd852",
		"abc123":   "f9e37e83b83c47a93c2f09f66408631b",
		"pässword": "f1b094f25bbdcb6fdbaa6cc8b43f0c44",
		"p😀ss":     "b1847a4f90ec6e6793d813f9992e54a5", // a surrogate pair in UTF-16
	} {
		if got := hex.EncodeToString(NTHash(pw)); got != want {
			t.Errorf("NTHash(%q) = %s, want %s", pw, got, want)
		}
	}
}

// With PasswordHashes, Build takes the users' NT hashes from there and
// never looks at Secrets for them: the agent gets hashes only.
func TestBuildPasswordHashes(t *testing.T) {
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}}
	withUsers(&in, newUser("alice", "alice@example.com"), newUser("bob", "bob@example.com"))
	res := Build(in)
	plain, problems := res.Model, res.Problems
	fromPasswords := res.Users
	if len(problems) > 0 {
		t.Fatalf("Build: %v", problems)
	}
	aliceHash, _ := PasswordHash("password", in.Secrets["alice"]["password"])
	hashed := in
	hashed.Secrets = map[string]map[string][]byte{}
	hashed.PasswordHashes = map[SecretKeyRef][]byte{
		{"alice", "password"}: aliceHash,
		{"bob", "password"}:   []byte("not 16 bytes"),
	}
	res = Build(hashed)
	m, problems := res.Model, res.Problems
	if len(problems) != 1 || problems[0].Name != "bob" || problems[0].Reason != v1alpha1.ReasonSecretInvalid {
		t.Errorf("problems %v, want bob's invalid hash only", problems)
	}
	if len(plain.Secrets) != 0 || len(m.Secrets) != 0 {
		t.Errorf("The model holds user secrets: %d from passwords, %d from hashes", len(plain.Secrets), len(m.Secrets))
	}
	i := slices.IndexFunc(fromPasswords, func(u AcceptedUser) bool { return u.Name == "alice" })
	if len(res.Users) != 1 || i < 0 || res.Users[0] != fromPasswords[i] || !bytes.Equal(res.Users[0].NTHash[:], aliceHash) {
		t.Errorf("Users from hashes %+v, want alice's as built from her password", res.Users)
	}
	if h, ok := PasswordHash(NTHashKey, []byte(hex.EncodeToString(aliceHash))); !ok || !bytes.Equal(h, aliceHash) {
		t.Errorf("PasswordHash of a ready hash = %x %v", h, ok)
	}
	if _, ok := PasswordHash(NTHashKey, []byte("xyz")); ok {
		t.Error("PasswordHash accepted a malformed NT hash")
	}
}

// consistent checks what every model must satisfy: references resolve and
// names are unique and sorted.
func consistent(t *testing.T, m Model) {
	t.Helper()
	names := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	pools := names(len(m.Pools), func(i int) string { return m.Pools[i].Name })
	certs := names(len(m.Certs), func(i int) string { return m.Certs[i].Name })
	for what, list := range map[string][]string{
		"connections": names(len(m.Connections), func(i int) string { return m.Connections[i].Name }),
		"pools":       pools,
		"secrets":     names(len(m.Secrets), func(i int) string { return m.Secrets[i].Name }),
		"certs":       certs,
	} {
		if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
			t.Errorf("%s are not sorted and unique: %v", what, list)
		}
	}
	for _, c := range m.Connections {
		for _, p := range c.Pools {
			if p != RADIUSPool && !slices.Contains(pools, p) {
				t.Errorf("Connection %s uses missing pool %s", c.Name, p)
			}
		}
		if len(c.Local) == 0 || len(c.Remote) == 0 {
			t.Errorf("Connection %s lacks an authentication round", c.Name)
		}
		for _, a := range append(slices.Clone(c.Local), c.Remote...) {
			for _, ref := range append(slices.Clone(a.Certs), a.CACerts...) {
				if !slices.Contains(certs, ref) {
					t.Errorf("Connection %s uses missing certificate %s", c.Name, ref)
				}
			}
		}
	}
}

func TestBuildProblems(t *testing.T) {
	base := func() Resources {
		in := Resources{Gateway: newGateway(), Now: testNow}
		in.Pools = []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}
		withUsers(&in, newUser("jimp", "jimp@example.com"))
		return in
	}
	type want struct{ reason, kind, name, msg string }
	tests := []struct {
		name   string
		modify func(in *Resources)
		want   []want
		// check looks at the model built despite the problems.
		check func(t *testing.T, m Model, users []AcceptedUser)
	}{{
		name: "pool of another gateway",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("other", "10.9.0.0/24", func(p *v1alpha1.MobilePool) { p.Spec.GatewayRef.Name = "elsewhere" }))
		},
		want:  []want{{v1alpha1.ReasonWrongGateway, KindMobilePool, "other", `"elsewhere"`}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noPool(t, m, "other-ipv4") },
	}, {
		name: "pool that selects nobody",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("empty", "10.9.0.0/24", selecting("nobody")))
		},
		want:  []want{{v1alpha1.ReasonPoolUnused, KindMobilePool, "empty", "matches no VPNUser"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noPool(t, m, "empty-ipv4") },
	}, {
		name:   "user without Secret",
		modify: func(in *Resources) { delete(in.Secrets, "jimp") },
		want:   []want{{v1alpha1.ReasonSecretNotFound, KindVPNUser, "jimp", "Secret jimp not found"}},
		check:  func(t *testing.T, m Model, users []AcceptedUser) { noUser(t, users, "jimp") },
	}, {
		name:   "user Secret without key",
		modify: func(in *Resources) { in.Secrets["jimp"] = map[string][]byte{"pass": []byte("x")} },
		want:   []want{{v1alpha1.ReasonSecretKeyNotFound, KindVPNUser, "jimp", `no key "password"`}},
		check:  func(t *testing.T, m Model, users []AcceptedUser) { noUser(t, users, "jimp") },
	}, {
		name: "malformed NT hash",
		modify: func(in *Resources) {
			in.Users[0].Spec.PasswordSecretRef.Key = NTHashKey
			in.Secrets["jimp"] = map[string][]byte{NTHashKey: []byte("not-a-hash")}
		},
		want:  []want{{v1alpha1.ReasonSecretInvalid, KindVPNUser, "jimp", "32 hex digits"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noUser(t, users, "jimp") },
	}, {
		name: "ready NT hash is used as is",
		modify: func(in *Resources) {
			in.Users[0].Spec.PasswordSecretRef.Key = NTHashKey
			in.Secrets["jimp"] = map[string][]byte{NTHashKey: []byte("A4F49C406510BDCAB6824EE7C30FD852\n")}
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			if len(users) != 1 || hex.EncodeToString(users[0].NTHash[:]) != "a4f49c406510bdcab6824ee7c30fd852" {
				t.Errorf("Users = %+v, want the given hash", users)
			}
		},
	}, {
		name: "overlapping pools",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("wide", "10.3.0.0/16", func(p *v1alpha1.MobilePool) {
				p.Spec.LocalNetworks = []v1alpha1.CIDR{"10.8.0.0/24"}
			}))
		},
		want: []want{
			// "staff" is as old and sorts first, so it keeps its addresses; "wide" is left out.
			{v1alpha1.ReasonPoolOverlap, KindMobilePool, "wide", "10.3.0.0/16 overlap 10.3.200.0/24 of MobilePool staff"},
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noPool(t, m, "wide-ipv4") },
	}, {
		name: "overlapping pools without local networks in the way",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("wider", "10.3.200.128/25", selecting("x")))
		},
		want:  []want{{v1alpha1.ReasonPoolOverlap, KindMobilePool, "wider", "10.3.200.128/25 overlap 10.3.200.0/24 of MobilePool staff"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noPool(t, m, "wider-ipv4") },
	}, {
		name: "pool inside its own local network",
		modify: func(in *Resources) {
			in.Pools[0].Spec.LocalNetworks = []v1alpha1.CIDR{"10.3.0.0/16"}
		},
		want: []want{
			{v1alpha1.ReasonPoolOverlapsLocalNetwork, KindMobilePool, "staff", "10.3.200.0/24 overlap its own local network 10.3.0.0/16"},
			{v1alpha1.ReasonNoPool, KindVPNUser, "jimp", "no MobilePool"},
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			if len(m.Connections) != 0 || len(users) != 0 {
				t.Errorf("Model keeps a connection or secret without its pool: %+v", m)
			}
		},
	}, {
		name: "insecure gateway proposals without opt-in",
		modify: func(in *Resources) {
			in.Gateway.Spec.IKE.Preset = v1alpha1.PresetLegacy
		},
		want: []want{{v1alpha1.ReasonInsecureAlgorithm, KindVPNGateway, "vpn", "3des"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			if len(m.Connections) != 0 || len(users) != 0 || len(m.Pools) != 0 {
				t.Errorf("Mobile access built despite insecure proposals: %+v", m)
			}
		},
	}, {
		name: "insecure pool proposals without opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.Proposals = []v1alpha1.ESPProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"3DES"}, Integrity: []v1alpha1.IntegrityAlgorithm{"SHA1"}}}
		},
		want: []want{
			{v1alpha1.ReasonInsecureAlgorithm, KindMobilePool, "staff", "esp proposals use 3des, which RFC 8247 and RFC 8221 advise against (SHOULD NOT), without allowInsecureAlgorithms"},
			{v1alpha1.ReasonNoPool, KindVPNUser, "jimp", "no MobilePool"},
		},
	}, {
		// SHA-1 is MUST- in RFC 8221: allowed without the opt-in.
		name: "SHA-1 pool proposals without opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.Proposals = []v1alpha1.ESPProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES256"}, Integrity: []v1alpha1.IntegrityAlgorithm{"SHA1"}}}
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			if got := m.Connections[0].Children[0].ESPProposals; !slices.Equal(got, []string{"aes256-sha1"}) {
				t.Errorf("ESP proposals %v, want aes256-sha1", got)
			}
		},
	}, {
		name: "MUST NOT integrity even with opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.Proposals = []v1alpha1.ESPProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES256"}, Integrity: []v1alpha1.IntegrityAlgorithm{"SHA256", "MD5"}}}
			in.Pools[0].Spec.AllowInsecureAlgorithms = true
		},
		want: []want{
			{v1alpha1.ReasonInsecureAlgorithm, KindMobilePool, "staff", "md5, which RFC 8247 and RFC 8221 forbid (MUST NOT); not even allowInsecureAlgorithms allows them"},
			{v1alpha1.ReasonNoPool, KindVPNUser, "jimp", "no MobilePool"},
		},
	}, {
		name: "MUST NOT PFS group even with opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.PFSGroup = "MODP768"
			in.Pools[0].Spec.AllowInsecureAlgorithms = true
		},
		want: []want{
			{v1alpha1.ReasonInsecureAlgorithm, KindMobilePool, "staff", "modp768, which RFC 8247 and RFC 8221 forbid"},
			{v1alpha1.ReasonNoPool, KindVPNUser, "jimp", "no MobilePool"},
		},
	}, {
		name: "MUST NOT gateway PRF even with opt-in",
		modify: func(in *Resources) {
			in.Gateway.Spec.AllowInsecureAlgorithms = true
			in.Gateway.Spec.IKE.Proposals = []v1alpha1.IKEProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES256GCM16"}, PRF: []v1alpha1.PRFAlgorithm{"PRFMD5"}, DHGroups: []v1alpha1.DHGroup{"ECP256"}}}
		},
		want: []want{{v1alpha1.ReasonInsecureAlgorithm, KindVPNGateway, "vpn", "prfmd5, which RFC 8247 and RFC 8221 forbid (MUST NOT); not even allowInsecureAlgorithms"}},
	}, {
		name: "insecure PFS group without opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.PFSGroup = "MODP1024"
		},
		want: []want{
			{v1alpha1.ReasonInsecureAlgorithm, KindMobilePool, "staff", "modp1024"},
			{v1alpha1.ReasonNoPool, KindVPNUser, "jimp", "no MobilePool"},
		},
	}, {
		name: "insecure PFS group with opt-in",
		modify: func(in *Resources) {
			in.Pools[0].Spec.ESP.PFSGroup = "MODP1024"
			in.Pools[0].Spec.AllowInsecureAlgorithms = true
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			for _, p := range m.Connections[0].Children[0].ESPProposals {
				if !strings.HasSuffix(p, "-modp1024") {
					t.Errorf("ESP proposal %s lacks the PFS group", p)
				}
			}
		},
	}, {
		name: "pools of one user group that disagree",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("staff6", "", func(p *v1alpha1.MobilePool) {
				p.Spec.Addresses.IPv6 = "fd00:3:200::/112"
				p.Spec.Banner = "another banner"
			}))
		},
		want:  []want{{v1alpha1.ReasonPoolConflict, KindMobilePool, "staff6", "selects the same users as MobilePool staff"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noPool(t, m, "staff6-ipv6") },
	}, {
		name: "one user group in two MobilePools",
		modify: func(in *Resources) {
			dns := &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1", "fd00:3::1"}, SplitDomains: []v1alpha1.DomainName{"example.com"}}
			in.Pools[0].Spec.DNS = dns
			in.Pools = append([]v1alpha1.MobilePool{newPool("a-staff6", "", func(p *v1alpha1.MobilePool) {
				p.Spec.Addresses.IPv6 = "fd00:3:200::/112"
				p.Spec.LocalNetworks = []v1alpha1.CIDR{"fd00:3::/64", "10.4.0.0/24"}
				p.Spec.DNS = dns
			})}, in.Pools...)
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			if len(m.Connections) != 1 || strings.Join(m.Connections[0].Pools, ",") != "a-staff6-ipv6,staff-ipv4" {
				t.Fatalf("Want one connection with both pools: %+v", m.Connections)
			}
			attrs := map[string]string{}
			for _, p := range m.Pools {
				for _, a := range p.Attributes {
					attrs[p.Name+" "+a.Key] = strings.Join(a.Values, ",")
				}
			}
			for k, v := range map[string]string{
				"staff-ipv4 dns":              "10.3.0.1",
				"a-staff6-ipv6 dns":           "fd00:3::1",
				"staff-ipv4 split_include":    "10.4.0.0/24,10.3.0.0/24",
				"a-staff6-ipv6 split_include": "fd00:3::/64",
				"staff-ipv4 25":               "example.com",
				"a-staff6-ipv6 25":            "",
			} {
				if attrs[k] != v {
					t.Errorf("Attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
				}
			}
		},
	}, {
		name: "static addresses outside the pool, on its network address, or taken",
		modify: func(in *Resources) {
			withUsers(in,
				newUser("out", "out@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.201.5" }),
				newUser("net", "net@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.200.0" }),
				newUser("one", "one@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.200.7" }),
				newUser("two", "two@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.200.7" }))
		},
		want: []want{
			{v1alpha1.ReasonAddressOutsidePool, KindVPNUser, "net", "10.3.200.0 is not a usable address of the user's pools (10.3.200.0/24 of MobilePool staff)"},
			{v1alpha1.ReasonAddressOutsidePool, KindVPNUser, "out", "10.3.201.5"},
			{v1alpha1.ReasonAddressInUse, KindVPNUser, "two", "10.3.200.7 is already VPNUser one's"},
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			noUser(t, users, "out")
			noUser(t, users, "two")
			noConn(t, m, "user-one")
			// one's address comes from the agent's RADIUS server; the
			// connection of the group's static IPv4 users has the dynamic
			// ranges around it and the pool of their attributes.
			if !slices.ContainsFunc(m.Connections, func(c Connection) bool {
				return c.Name == StaticConnectionName("staff", "4") && slices.Equal(c.Pools, []string{RADIUSPool, "staff-ipv4-10_3_200_1-10_3_200_6", "staff-ipv4-10_3_200_8-10_3_200_254", "statics-staff-v4"}) &&
					slices.Equal(c.Remote[0].Groups, []string{GroupClass("staff", "4")})
			}) {
				t.Errorf("No connection of the static users with the radius pool: %+v", m.Connections)
			}
			if i := slices.IndexFunc(users, func(u AcceptedUser) bool { return u.Name == "one" }); i < 0 || users[i].Address != netip.MustParseAddr("10.3.200.7") || users[i].Group != GroupClass("staff", "4") || users[i].MaxSessions != 1 {
				t.Errorf("User one is not served with 10.3.200.7, the static group and one session: %+v", users)
			}
		},
	}, {
		name: "identity used twice",
		modify: func(in *Resources) {
			withUsers(in, newUser("jimp2", "jimp@example.com"))
		},
		want: []want{
			{v1alpha1.ReasonPoolUnused, KindMobilePool, "staff", "no VPNUser that may log in"},
			{v1alpha1.ReasonDuplicateIdentity, KindVPNUser, "jimp", "also claimed by VPNUser jimp2"},
			{v1alpha1.ReasonDuplicateIdentity, KindVPNUser, "jimp2", "also claimed by VPNUser jimp"},
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noUser(t, users, "jimp"); noUser(t, users, "jimp2") },
	}, {
		name: "user selected by two groups",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools,
				newPool("a", "10.7.1.0/24", func(p *v1alpha1.MobilePool) {
					p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"x": "1"}}
				}),
				newPool("b", "10.7.2.0/24", func(p *v1alpha1.MobilePool) {
					p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"y": "1"}}
				}))
			withUsers(in,
				newUser("both", "both@example.com", func(u *v1alpha1.VPNUser) { u.Labels = map[string]string{"x": "1", "y": "1"} }),
				newUser("ua", "ua@example.com", func(u *v1alpha1.VPNUser) { u.Labels = map[string]string{"x": "1"} }),
				newUser("ub", "ub@example.com", func(u *v1alpha1.VPNUser) { u.Labels = map[string]string{"y": "1"} }))
		},
		want:  []want{{v1alpha1.ReasonPoolConflict, KindVPNUser, "both", "MobilePools a, b"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noUser(t, users, "both"); noConn(t, m, "user-both") },
	}, {
		name: "disabled and expired users",
		modify: func(in *Resources) {
			withUsers(in,
				newUser("gone", "gone@example.com", func(u *v1alpha1.VPNUser) { u.Spec.Disabled = true }),
				newUser("late", "late@example.com", func(u *v1alpha1.VPNUser) { u.Spec.ExpiresAt = &metav1.Time{Time: testNow} }),
				newUser("soon", "soon@example.com", func(u *v1alpha1.VPNUser) { u.Spec.ExpiresAt = &metav1.Time{Time: testNow.Add(time.Second)} }))
		},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			noUser(t, users, "gone")
			noUser(t, users, "late")
			if !slices.ContainsFunc(users, func(u AcceptedUser) bool { return u.Name == "soon" }) {
				t.Error("A user expiring later may not log in")
			}
		},
	}, {
		name: "pinned user with a missing secret gets no connection",
		modify: func(in *Resources) {
			in.Pools = append(in.Pools, newPool("sales", "10.3.201.0/24", selecting("sales")))
			withUsers(in, newUser("alice", "alice@example.com", inTeam("sales")), newUser("anna", "anna@example.com", inTeam("sales")))
			delete(in.Secrets, "alice")
		},
		want: []want{{v1alpha1.ReasonSecretNotFound, KindVPNUser, "alice", "Secret alice not found"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			noConn(t, m, "user-alice")
			noUser(t, users, "alice")
		},
	}, {
		name: "tunnel without its PSK",
		modify: func(in *Resources) {
			in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch")}
		},
		want:  []want{{v1alpha1.ReasonSecretNotFound, KindTunnel, "branch", "Secret branch-psk not found"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) { noConn(t, m, "tunnel-branch") },
	}, {
		name: "tunnel with insecure proposals and a CA left out whole",
		modify: func(in *Resources) {
			in.Secrets["branch-ca"] = map[string][]byte{"ca.crt": []byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")}
			in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch", func(tn *v1alpha1.Tunnel) {
				tn.Spec.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: "branch-ca", Key: "ca.crt"}}}
				tn.Spec.Children[0].ESP.PFSGroup = "MODP1024"
			})}
		},
		want: []want{{v1alpha1.ReasonInsecureAlgorithm, KindTunnel, "branch", "modp1024"}},
		check: func(t *testing.T, m Model, users []AcceptedUser) {
			noConn(t, m, "tunnel-branch")
			if slices.ContainsFunc(m.Certs, func(c Cert) bool { return strings.HasPrefix(c.Name, "tunnel-") }) {
				t.Error("The refused tunnel's CA is in the model")
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.modify(&in)
			res := Build(in)
			m, problems := res.Model, res.Problems
			var got []want
			for _, p := range problems {
				got = append(got, want{p.Reason, p.Kind, p.Name, p.Message})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Problems = %v, want %d: %v", problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.reason != w.reason || g.kind != w.kind || g.name != w.name || !strings.Contains(g.msg, w.msg) {
					t.Errorf("Problem %d = %+v, want %+v (message containing %q)", i, g, w, w.msg)
				}
				for _, s := range []string{"pw-", "abc123"} {
					if strings.Contains(g.msg, s) {
						t.Errorf("Problem message leaks a password: %s", g.msg)
					}
				}
			}
			consistent(t, m)
			if tc.check != nil {
				tc.check(t, m, res.Users)
			}
			// Whatever is left renders.
			if conf := Render(m, RenderOptions{}); !strings.HasPrefix(conf, "# swanctl.conf") {
				t.Errorf("Render gave %q", conf)
			}
		})
	}
}

func noPool(t *testing.T, m Model, name string) {
	t.Helper()
	if slices.ContainsFunc(m.Pools, func(p Pool) bool { return p.Name == name }) {
		t.Errorf("Pool %s is in the model", name)
	}
}

func noUser(t *testing.T, users []AcceptedUser, name string) {
	t.Helper()
	if slices.ContainsFunc(users, func(u AcceptedUser) bool { return u.Name == name }) {
		t.Errorf("User %s may log in", name)
	}
}

func noConn(t *testing.T, m Model, name string) {
	t.Helper()
	if slices.ContainsFunc(m.Connections, func(c Connection) bool { return c.Name == name }) {
		t.Errorf("Connection %s is in the model", name)
	}
}

// TestGoldenModelsConsistent checks the golden scenarios' models the same way.
func TestGoldenModelsConsistent(t *testing.T) {
	for _, sc := range goldenScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			m := Build(sc.in(t)).Model
			consistent(t, m)
		})
	}
}

// BenchmarkBuildRender measures Build and Render for one pool and N users;
// each user costs an NT hash (MD4 over the UTF-16LE password).
func BenchmarkBuildRender(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		in := manyUsers(n)
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := Build(in)
				m, problems := res.Model, res.Problems
				if len(problems) > 0 || len(res.Users) != n {
					b.Fatalf("%d problems, %d users", len(problems), len(res.Users))
				}
				_ = Render(m, RenderOptions{ShowSecrets: true})
			}
		})
	}
}

// TestAddingUserKeepsOtherConnections: adding users to a group changes no
// connection and adds none: the agent's RADIUS server tells charon each
// user's group (Class).
func TestAddingUserKeepsOtherConnections(t *testing.T) {
	in := twoGroups(t)
	res := Build(in)
	before, problems := res.Model, res.Problems
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	withUsers(&in,
		newUser("sam", "sam@example.com", inTeam("sales")),
		newUser("sue", "sue@example.com", inTeam("sales")))
	res = Build(in)
	after, problems := res.Model, res.Problems
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	old := map[string]Connection{}
	for _, c := range before.Connections {
		old[c.Name] = c
	}
	var added []string
	for _, c := range after.Connections {
		prev, ok := old[c.Name]
		if !ok {
			added = append(added, c.Name)
			continue
		}
		if Render(Model{Connections: []Connection{prev}}, RenderOptions{}) != Render(Model{Connections: []Connection{c}}, RenderOptions{}) {
			t.Errorf("Connection %s changed", c.Name)
		}
		delete(old, c.Name)
	}
	if len(old) != 0 || len(added) != 0 {
		t.Errorf("Removed %v, added %v; want nothing removed or added", old, added)
	}
}

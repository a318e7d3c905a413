package swan_test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

// fuzzBytes hands out choices from fuzzer input; past its end every choice is 0.
type fuzzBytes struct {
	b []byte
}

func (f *fuzzBytes) next() int {
	if len(f.b) == 0 {
		return 0
	}
	v := int(f.b[0])
	f.b = f.b[1:]
	return v
}

func (f *fuzzBytes) n(n int) int          { return f.next() % n }
func (f *fuzzBytes) bool() bool           { return f.next()%2 == 1 }
func pick[T any](f *fuzzBytes, vs ...T) T { return vs[f.n(len(vs))] }

// Small vocabularies make collisions (overlaps, duplicate identities,
// shared selectors) likely.
var (
	fuzzV4      = []v1alpha1.CIDR{"", "10.3.200.0/24", "10.3.200.128/25", "10.3.201.0/24", "10.3.0.0/16", "192.168.7.0/30", "10.3.200.0/32", "bogus"}
	fuzzV6      = []v1alpha1.CIDR{"", "", "fd00:3:200::/112", "fd00:3::/64", "fd00:3:200::/120"}
	fuzzNets    = []v1alpha1.CIDR{"10.3.0.0/24", "10.4.0.0/16", "fd00:4::/64", "10.3.200.0/26", "172.16.0.0/12", "10.20.0.0/16"}
	fuzzIDs     = []string{"a@example.com", "b@example.com", "c@example.com", "CN=d, O=Example", "e@example.com", "f@example.com", ""}
	fuzzTeams   = []string{"", "red", "blue"}
	fuzzBanners = []string{"", "Welcome", "Hello, \"world\" # 1\nline two", "{braces} = and \\ backslash"}
	fuzzDomains = []v1alpha1.DomainName{"example.com", "example.org", "corp.example.net"}
	fuzzEnc     = []v1alpha1.EncryptionAlgorithm{"AES256GCM16", "AES128", "AES256", "3DES", "ChaCha20Poly1305"}
	fuzzInteg   = []v1alpha1.IntegrityAlgorithm{"SHA256", "SHA1", "SHA384", "MD5"}
	fuzzDH      = []v1alpha1.DHGroup{"Curve25519", "ECP256", "MODP2048", "MODP1024"}
	fuzzPresets = []v1alpha1.ProposalPreset{"", v1alpha1.PresetModern, v1alpha1.PresetCompatible, v1alpha1.PresetLegacy}
)

// fuzzResources turns fuzzer bytes into a gateway's resources.
func fuzzResources(data []byte) Resources {
	f := &fuzzBytes{b: data}
	in := Resources{Gateway: newGateway(), Now: testNow, Secrets: map[string]map[string][]byte{}}
	gw := &in.Gateway
	gw.Spec.ClientAuth.Method = pick(f, v1alpha1.ClientAuthEAPMSCHAPv2, v1alpha1.ClientAuthEAPMSCHAPv2, v1alpha1.ClientAuthEAPRADIUS, v1alpha1.ClientAuthEAPTLS, v1alpha1.ClientAuthPublicKey)
	if m := gw.Spec.ClientAuth.Method; m == v1alpha1.ClientAuthEAPTLS || m == v1alpha1.ClientAuthPublicKey {
		gw.Spec.ClientAuth.ClientCA = &v1alpha1.SecretKeyReference{Name: pick(f, "client-ca", "missing"), Key: "ca.crt"}
	}
	gw.Spec.IKE.Preset = pick(f, fuzzPresets...)
	gw.Spec.AllowInsecureAlgorithms = f.bool()
	if f.n(4) == 0 {
		gw.Spec.IKE.Proposals = []v1alpha1.IKEProposal{fuzzIKEProposal(f)}
	}
	if f.bool() {
		gw.Spec.IKE.Lifetime = dur(time.Duration(1+f.n(48)) * 30 * time.Minute)
		gw.Spec.IKE.RekeyTime = dur(time.Duration(f.n(48)) * 30 * time.Minute)
	}
	for i := range f.n(5) {
		p := newPool(fmt.Sprintf("pool%d", i), string(pick(f, fuzzV4...)), func(p *v1alpha1.MobilePool) {
			p.Spec.Addresses.IPv6 = pick(f, fuzzV6...)
			p.Spec.LocalNetworks = nil
			for range f.n(3) {
				p.Spec.LocalNetworks = append(p.Spec.LocalNetworks, pick(f, fuzzNets...))
			}
			p.Spec.FullTunnel = f.n(3) == 0
			if team := pick(f, fuzzTeams...); team != "" {
				p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}
			}
			if f.bool() {
				p.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1", "fd00:3::1"}[:1+f.n(2)], DefaultDomain: pick(f, fuzzDomains...)}
				for range f.n(3) {
					p.Spec.DNS.SplitDomains = append(p.Spec.DNS.SplitDomains, pick(f, fuzzDomains...))
				}
			}
			p.Spec.Banner = pick(f, fuzzBanners...)
			p.Spec.ESP.Preset = pick(f, fuzzPresets...)
			p.Spec.ESP.PFSGroup = pick(f, v1alpha1.PFSGroup(""), v1alpha1.PFSNone, "Curve25519", "MODP1024")
			if f.n(4) == 0 {
				p.Spec.ESP.Proposals = []v1alpha1.ESPProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{pick(f, fuzzEnc...)}, Integrity: []v1alpha1.IntegrityAlgorithm{pick(f, fuzzInteg...)}}}
			}
			p.Spec.AllowInsecureAlgorithms = f.bool()
			if f.n(8) == 0 {
				p.Spec.GatewayRef.Name = "other"
			}
		})
		in.Pools = append(in.Pools, p)
	}
	for i := range f.n(8) {
		name := fmt.Sprintf("user%d", i)
		u := newUser(name, pick(f, fuzzIDs...), func(u *v1alpha1.VPNUser) {
			if team := pick(f, fuzzTeams...); team != "" {
				u.Labels = map[string]string{"team": team}
			}
			u.Spec.Disabled = f.n(6) == 0
			u.Spec.StaticAddress = pick[v1alpha1.IPAddress](f, "", "", "", "10.3.200.10", "10.3.200.0", "fd00:3:200::5", "10.3.201.7", "bogus")
			if f.n(6) == 0 {
				u.Spec.ExpiresAt = &metav1.Time{Time: testNow.Add(time.Duration(f.n(3)-1) * time.Hour)}
			}
		})
		switch f.n(6) {
		case 0: // no Secret
		case 1:
			in.Secrets[name] = map[string][]byte{"other": []byte("x")}
		case 2:
			u.Spec.PasswordSecretRef.Key = NTHashKey
			in.Secrets[name] = map[string][]byte{NTHashKey: []byte(pick(f, "a4f49c406510bdcab6824ee7c30fd852", "zz", ""))}
		case 3:
			u.Spec.PasswordSecretRef = nil
		default:
			in.Secrets[name] = map[string][]byte{"password": []byte(pick(f, "abc123", "", "pässwörd, with = signs"))}
		}
		in.Users = append(in.Users, u)
	}
	for i := range f.n(3) {
		name := fmt.Sprintf("tun%d", i)
		t := newTunnel(name, func(t *v1alpha1.Tunnel) {
			t.Spec.IKEVersion = int32(f.n(3))
			t.Spec.Remote.Addresses = []string{pick(f, "203.0.113.20", "2001:db8::20", "peer.example.net")}
			t.Spec.Remote.Identity = v1alpha1.Identity(pick(f, "", "peer.example.net", "CN=peer, O=Example"))
			if f.bool() {
				t.Spec.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: pick(f, "branch-ca", "missing"), Key: "ca.crt"}}}
			} else if f.n(4) != 0 {
				in.Secrets[name+"-psk"] = map[string][]byte{"psk": []byte(pick(f, "secret", "with, comma", ""))}
			}
			t.Spec.IKE.Preset = pick(f, fuzzPresets...)
			if f.n(4) == 0 {
				t.Spec.IKE.Proposals = []v1alpha1.IKEProposal{fuzzIKEProposal(f)}
			}
			t.Spec.AllowInsecureAlgorithms = f.bool()
			t.Spec.Children = nil
			for j := range 1 + f.n(3) {
				t.Spec.Children = append(t.Spec.Children, v1alpha1.TunnelChild{
					Name:           pick(f, fmt.Sprintf("c%d", j), "dup"),
					LocalNetworks:  []v1alpha1.CIDR{pick(f, fuzzNets...)},
					RemoteNetworks: []v1alpha1.CIDR{pick(f, fuzzNets...)},
					StartAction:    pick(f, v1alpha1.StartAction(""), "Start", "Trap", "None"),
					CloseAction:    pick(f, v1alpha1.CloseAction(""), "Start", "Trap", "None"),
					ESP:            v1alpha1.ESPSettings{Preset: pick(f, fuzzPresets...), PFSGroup: pick(f, v1alpha1.PFSGroup(""), "ECP256", "MODP1024")},
				})
			}
		})
		in.Tunnels = append(in.Tunnels, t)
	}
	return in
}

func fuzzIKEProposal(f *fuzzBytes) v1alpha1.IKEProposal {
	return v1alpha1.IKEProposal{
		Encryption: []v1alpha1.EncryptionAlgorithm{pick(f, fuzzEnc...)},
		Integrity:  []v1alpha1.IntegrityAlgorithm{pick(f, fuzzInteg...)},
		DHGroups:   []v1alpha1.DHGroup{pick(f, fuzzDH...)},
	}
}

// swanctlLine is every line Render may produce.
var swanctlLine = regexp.MustCompile(`^( *)(# .*|[^\s{}=#"]+ \{|\}|[^\s{}=#"]+ = .+)$`)

// wellFormed checks Render's output structurally: one setting per line,
// balanced sections, no stray quotes.
func wellFormed(t *testing.T, conf string) {
	t.Helper()
	depth := 0
	for i, l := range strings.Split(strings.TrimSuffix(conf, "\n"), "\n") {
		m := swanctlLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("Line %d is not a swanctl line: %q", i+1, l)
		}
		if strings.HasSuffix(l, "}") && !strings.HasSuffix(l, "{") && strings.TrimSpace(l) == "}" {
			depth--
		}
		if len(m[1]) != 2*depth {
			t.Fatalf("Line %d is indented %d, want %d: %q", i+1, len(m[1]), 2*depth, l)
		}
		if strings.HasSuffix(l, " {") {
			depth++
		}
		if depth < 0 {
			t.Fatalf("Line %d closes a section that is not open", i+1)
		}
	}
	if depth != 0 {
		t.Fatalf("%d sections left open", depth)
	}
}

func fuzzSeeds() [][]byte {
	seeds := [][]byte{
		{},
		{0, 1, 1, 1, 2, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 3, 2, 1, 4, 4, 4, 4, 4},
		{1, 2, 0, 1, 3, 1, 2, 0, 1, 1, 1, 1, 1, 0, 1, 0, 2, 2, 4, 1, 5, 4, 0, 2, 1, 3, 6, 5, 4, 3, 2},
		[]byte("ikegate: two pools, several users and a tunnel"),
		// Inputs that build without problems, found by a random search.
		[]byte("J\x18\\\xed\\\xed:\xdb\xd4\xcd\x10\xbftw\x84\xa6\x9f\x16\n=\x9b\xe1T\x7fy\x80\xe1S&\xafVn\xfc1\xdc\nJ_+\x8b\xceaT\xe1"),
		[]byte("\x10\x8eb}\\\x82\x80\"\x9c2\xfc\x82\xefT\x8e\xa3ne\xf9\xe7h\xa2\xee,\xbd2\xb5\xe1g\x99\x9aX\xca\xe5\x97\xc6\xc1\xe0't'n\u0086\x96\xb6\xd8!\xe1\xd1m@H\xb4\xe2!\xc0\xb54\x00\x9c\x97\x1d\x8c\xc0`Al\xbb\x10\n\x13\x1c\x9a|\xe7[\xe9\xc9\n\x1d\x83\r6ȵx\xa1"),
		[]byte("\x95\"\x15\xddv\xb5Oy\x05\xc2\xcf\xd8\xe3fd\xbb3\x0e\xf6x\x9e\xde\xe2\xb5\xe4\x11\xb5\"\x12\xd71\xffY/ߜ\xfbU\xac0^\x16\xeby\xda\xe8Oo\xfc\xa30\x01\xb2?s\xb8~A<\x1a\xbb\xf6\x0f\x81\x93\xa0XF z\xfa\x9b5\x96P\xdf\xe5\x9d3i\xfe\x81\x81\x0f\x94\xa2"),
		[]byte("\xcf?\xfbדĪ\xa1\v\xb8G\xde\x03\x19\x8a\x15\xcb(\ai\x9a\xfe\xaa\x15\x89c\x10$\\\x1daa݄\xf0\xc8ΐ\xb7\x10\xf6\x92~e\xc4\x12\x1c\xc4\xe89X\xadi\x9c\xe1[ZF\xd1p\x04\xb7\x11\x9b\r\xa9\x7f\xdb\x7f>ٰ:\x05\xaa/+#\x17Z\a\x96W\x81"),
		[]byte("\xf7p}\xd45L\xf1f\xdc\xc8F\xcaipV\xb3Uq\xb7\x85n\xb4\xa2\xe2{\xc3hU~\x92\xe6\x1b\x89\xd9f\xa6\x869\xce\xeb\x1a@k\xfb\xb0$Vu#\xf36/\xdfy`!\xe8\x18\xfb;&S\x80\x11\u0096"),
		[]byte("c\xc2X\xfb\xa8\xd9[\xedč\xcb80Z\xb3\x9d\xa9\xc6?Ē>\x0f\xaf\xa9\xe1\xa5\xd1ś\xc5*]C$M\x10\xc5\xcaq\xc28_IV\x83\xbfKq\x8c\xb5(!:w\xffHp\ao\x87\xe7A\xf3W)7\xb8\xfa\xa6\xe0\xf4\x85x\x8dG\xf2\xf0\xb9&\x9az\xc0.UZ\xd9"),
		[]byte("\xa4\x06B)L4\xfa\xff\xe4\xba:\x88\xbe\xb1z\xba\xca%\x16\xe4+B\xda \x1b\xe3z\x9eD\x8eu\xe0b\xa2\xbco\xab\x1f\xec\x8c\x1a8v\xd5\xcaa\xb0&N\x8f\xb5\xb5\xf1\xa9#Xhd\x0f\xf39"),
		[]byte("V\x04Ȏ7\xf0\xbd\xd78\xa6 \x84<\x98\x87Tk@\v\x8f\xbb\x05x\xb3\t\xb1\x18\xf4p\x1e\x80\xf6* \xf6\xaaF\x0f'C\xd8\x03\xae\xba\x023\xd0l0ܧ\x85\xf6\x9f\x88\xed]"),
		[]byte("\xbb\u0558}P=\xe9\f>\xa1\x8fF\xf00_+\x85y\xfb\xbc\xd3s\xd3\xf7\xe8\xa7\xfdO)m\xad\xef\xa6w\xbb\x95N\v&H\x84\x18\xc9\x15\xe9\x17\xf7v\x13A\xf3\xe8.DQW\x14\xf7A\x9c_\x15ʔ\xae: >\xe8\xd5\\\x91\xea\xbfD\x90\xdedi\xc1\xad\x0f\xb9_!N\xd5q\xcd"),
		[]byte("\x89ţ\x8fM\x97\a~k\xa1#\xa7yLiOk\x1b\xbb\xa4Zb\xec\x15hW0\xe1a\xa3`\xd3\x03\r,\x97+ʬ\xa3\xda\x01*\xe1\u0600;C\r\xb0\x8e~\r\u05ecލ\xc0\xfb\xbb\\\"\x99ʗ\x1aHb\x81\x15l݂K\x93O\xf2Q\xa4L_\xed"),
		[]byte("ߜ*1b\x96\x10J8\xdb\xcc\xcc\xe0\x99\xa5~1\xa7ƃO\xc0&\x16\xe8\x14\xe0\xe3B8#\"u%K\bj'\x06\x86\x81K\xdb\xc1\x80\x8d\xa1j\x94:\xc3\xf2\x04\x1ak#\t\xfb\xa3{\x03!\r1\x1e\x03Ԕf\x17*\x14>(\xe9\x01\xa3F6n>\xee\x9d\xfe8w\a"),
		[]byte("\xfcJ\rW\xc0\x82\xf0\xaf\x17\x03\xa9\xc7vY\xa4\x94\xa6@k\x1bV*H\xbb\x9cH@\x9f@\xc2\xd1\xc2ls\xe7\xb4\xfa"),
		[]byte("\xa1\xedx\t\x80\x96(\xb5B)Y\x1b\xb4\xa2[!\xf6ڰ\xd00\b\xff\xba*\x84X٦'\x1eT%\xfb\x8dP\x18\xed\x7f/\xc1\xa3\x13QQ\x15\x1f~ާ\xbb\x85\x92\xfe\x0e\xc4u\t\xc8\x13\x97Xw\x99'\xbc\xc2v-D\x81A\x89\x1b\xa0\xb8\x84\x8d\xe7\x85~\xa0~\xbe4\xf0\x9d\xac"),
		[]byte("\x8d\xde\xc0\xc1\xe5*2\x96x\xc4c\xf2\x8b\xc5L\x12Cb\x84)u\xfe\xdb\x1b\x96Noj\x7f\xdd\x7f\x9a\xbc\x02wn\xb0\xbe"),
		[]byte("\xa8r\xfa\x1bl\xcay\xf0\x8c.\\\xfc\x88\xbe5\xb1$4\x85\xc0ݶ\xf5\xe8xW֫\xf1\xaapj\x89\x9fY\xd8\v\xff,Y\f\x0f\x18\xe6\xe4\xc7\x18_|yѫP'\xb8\xb6\xech\v\xe3q\xbe<\xbe\xa0\x8fֱ\xecV\xd5T\x02\x17\x8av\xc5\xe5\xea"),
		[]byte("\x8e\xbaX\xb7\x7f\xc6D\xc3\xc8:\xc5\x1c^\xaf\xc6rKӽ\x96#G\xcd\xec\xc5z\xf1q\xf3~+4\xeb\v(\xa5\xad_\xcb\v\xbf\xd5\x15\x90j\xbd\xa4\x86ʙ;91]Hi\xe0}\xa5\xd5\xfe\x9cǶ\xed\xa3tFP\x98nO\xec\xde\xf6L^\xc3g>\xcaw6\x96 "),
		[]byte("\xaa\x14\vi\xed\xde\xd2K\x10\xa0\n\x11\xc7O:\xb5\x02\xd7۪7Τ`*.i&\x16\xfeV\xd8ȡ\x88\xd0\xe9\x12\x86}.\x9e\xe7\xe5=\fq\x01\xad2\xe9"),
		[]byte("A\x82\xbd\xf9\x1doq\xff\xa0q\xf8\xcb\xf7\x99v\xb8K \x83Y\x1b\xa9\xe6Jb3\xe4Mv\xd5D^K\xae|\xfa\xc8)^'\xcc \xcc\x16as$ީ[}\x1e\x8cq\x8e\xc3u\xbcG\x0f\xa0~\xfc\xaa\x96\x0f\x10\xddP\t\x9bK\v\x88\x8e\xa4,0\x92$\x7f\x19\xeb\xf3);v"),
		[]byte(")h\xbds\xc3~\xc3P0y\xbf%inB\"Q\xd2Eݘ\b\xc8\xdd\xcd$\"Q\xd7\x04L"),
		[]byte("zRg\xfd\x95\xeb%؛\x9f\xbd\x84\xc0-ۥ\xbe\xd0\xd4I\f\xb2!t\xe34\x05\x1e,\xd4G/\xab\xc5\xd8\xd3\f\xc1٘*\xb2W{ܜ\"\x04\x16Bb\xe2\x96\xdbr\x864\xba^\x19\xb7\xfb\x1a\x9d<\x05\xa5\xcac\xbc\xeb\x05E\x91x\x1d"),
		[]byte("\xb1}2^\xdb\xe0&\x97\xed\xb5\x1e\x1by冔G\x0e\x00H\xf2\xdd\x1b\x8e\x8b\xab\\\x98W\x06F\x8d4\xb2\\\"h\xdeu\xd9\xea\xe0\x92\a\x0f6i\x91\xd0ON\xf5"),
		[]byte("\x130\x10\x8d\x8c\xe8[\x98\xea`PJ\xaa\xda\xd0\r\xad\x12\x19B\x1c>\x93KCU&X\x9af\xaa\x87\xc0"),
		[]byte("\xde\x16ò\xb5\xffh\xb0\t\x12\xf1\xe0\xa6\x12!I\xb6(\x95\xe03\x11#oy\xbaja^\x93\xb6F\x00\xd9\xf3\x1d\x82-K\xaa\x84<\xe9\x02\xe7V\f\x1f\x17\xa6\xe6ʉQ\xa9\x7f\x0e\x8b\xc0猌\x85ޜ\xc1mＶ4\x19\x84B\xb6\xfc\xf8n\xa5\xff\xdb"),
		[]byte("\x03\x16t\xbd-\xf7d\xc43\xdd\"\x80?\x9b\xf2zj&\xa8\xd8K\x92\x87\x91\x87\x95\xf3\xec\xff\x18\xaeG\x82\xb2\xbf\xd9\xe8\x99\xfcu\xc3\\\xe6\v\x1c\xe0\x96dX6fN\x9b^\xf5\xf8\xdb\x1d\xe6\x83\xcc\xc4\xe7G\xc5F\xd3"),
		[]byte("\xf7\xdb{\xbet~\x88c\xfdt+z\x82d\xd4\xe6G)\x16\x91\x88\xda1\xb9\xceN`kʃܝ\xf7!\xfe\x81@\x8c\xf1\xba}\x1d\x9a\x87\x87U\n\xfa\x91\x9e\xfe\x97Mӭ\x97ɴ\xbc"),
		[]byte("\xdcH\xefh\x1fL4\x0eZ\xf8\x94\x95\x11G\xcf\xeeu\xc3u+\xe2\x81X\\\x8a\x91drutl<\xe3\x00\x16\xa7\x89\x8d\xcelH\xae\x8a.\xb6\x00\xcdV\x18\xaa\x06sx\xaa\xe5\xed\x16ӆ\xfaQO¥\xe2\xa1"),
		[]byte("\xda\u008c\xa8O\xc0\x92\x88Ռ\xd0R@\xa2u\x03gE\xbb\x82\xf1\x9d\xc2Qq!^\x10\x9e\xe3 "),
		[]byte("~\xfe\x9c.aZ}\xf18Hz\r\xb0\xc1Qs\xfe\xb0Z4\xc0C\x99\x93\xf4\xb2\x0f\xe6\xe0%\xb88Dj\x96\xd9\xf1"),
		[]byte("\xa8\xe0\xd1+\x15\xc6i\xa0\xe8QY˹\xfa\x9cc\x9d\x92T\xbbe\xa7E\x82\xb1\xa2;\xa8g\xec\x1d\x84U\xa4\xe4\x82ڕ\x8a\x7f=Y\x89g\x9f%0\x86y\xef\xec\xa9ݟ\xac\x9f\xca\xea;'\x97\xd3\xdc\x1f\xb7\x12\xb8"),
		[]byte("]@X2\x95\xe1L\xc53\xf4\xda_q\xbb\x11i\uef49\x1e\x0f<\x16y\xa4O\xee3\x83\xf3\xc3\xf8)\x8a\xfcוQܗ\x9d3k\x05\x87\x99\x9a\xd9\rI\x0f\xdc\xc1"),
		[]byte("\xf3\x82N\xc3Z\\\xd2\b@\x18\xe6lm\x90\xae\x12\xed7\xa5\xe0覭K\x12\xa2я\xd4</\xcabE"),
		[]byte(":\x80V\xa5e\x9f}\x068\x82\x9e\xb2ļ9\x0fxXV\xd0χ\ncN\xd1\x16 \xb6\x896\xf6)\xa0JZL\x81\xc1L\xc0\x01\xe0ݥ$KKi\xc4\xe2W\xb7\xee\xd6?\tӤ\x0eK\xf3\xea"),
		[]byte("\xfd\xfa@\xc2\a\xec#(S\xc4\xfd=\v\xf2\xb4\x9aۘ\x0e\x1c\x88Vߪ\xb1m5\xfe\x94\x04\xd9\xf4愁F5\xc0\xc7\xee\x1f\xd9\xf5X\x7f\x10BG\xebk\xb8\xd8O\u0080\xd9\xdcEg\xd0\nR\xbc\x83\x9c\xc3cmA6\x7f\xa1jB\xd0 \x80\"l\xe1o.\xe0"),
		[]byte("K\xc4|\xf5\x98\x05\b\xa6\xc7RM\xc1\x98g\xd7\xe7w5\xa4\x88\x1f\xedx\x95R\x9f\x11M\xfdճ\n \x8d\xa9m\xf6\xeb\xe7\t;\xfa\xf9\xe9̊\xd7\xff\x13\xa8etZ\x87YI\x0f?\xadr*6\xab\xb0"),
		[]byte("M\x15\xf3\xbedӌ\xd7o\xff\x12\x84\x19\xe2\x1fq\xff\xeep\xa2\xd8kQj\b\x12\xedq\xb1\xa7\x83\x19\\\xfc\xab\xac\f\xa5C\x90۶-\x9e\x8d\x15\x00\x02#%\x19\x1e\xbeɦM\x14I2EY\x0e\xbeq\x11J\xc5c\x9a\xb03\xe2p\xfd\x13"),
		[]byte("o\xeb\x95\x19_f<Z\xb1B\x10\xed\xb4!\x1cR\xe8\xab\x1f\xff0\x01\xff[U\x93\x8b(\xa5\xac\xd1~\x97h^\xf7\f\xaf\x05U\x91\xedD\x8fu\x103LZ\xe2\xd9\xef\x9d:ӛ&y\x0f\xfdE\x84\x1a\x9cuN6\xf8\\N\xde\x1f\xa2~Ak"),
		[]byte("\xa4\xfc\xc4\xf6ӵ*N$\xdb!\x14\x93\x96Y\xff\xbf^\x89\x1b܊׀\\\x87\xd3Js\xb3\xc7\x020I\xc3d\xf6K?\xc9$E7\xa0\x89mc\x01V\xaa"),
		[]byte("\x98\\\xa5\x95\x04\xc4$F\xa4\xf5\xa1\x8f\x9fm\x9c۪)k\x05\x88\x9aW\x88\xc2\x11\x7fKR\x02Mc\xd5Om\x9d*"),
		[]byte("\xc5*\xa7\x02\x12Ҹ7d\r\xb3\xac#Ķ\x11\xa3\x97U\x94\xa9OO\x96ٌl\x90\x9d+\x81av㕚nw\xa3P.\xbd\x8e\xca\xf6}\xacC\tw%\x86\xd7j\xa3\xcf\xe6"),
		[]byte("\x9f`\u0600\x89\"\xb5\xb8\xdbtE\xe3\xe6K\x8b\xe8\xdd&L\xee\xddq\xa9\xce\a\xf2\xfa\x0e0\n\xbbڟ(\xf8Z\xd2\u05fe ƥ0\x92t\x88\x13\xd7\x1a\xad\x9a8C\x15+A\x89\xc7U6\x8e\x05\xec\xcf\xc1Cc$\x00[\xebp@\x06L"),
		[]byte("\xd4\xd5l]tV)ig\x89\x04fȳ\\\xf1\x8eG$\xd0*\xab_\xdf7\x10\x96m\xa1\b\xa2x`\x82\xca0\x03\xdeBh\a\x856ʸ\x8c\xb6=\x8d\xdb\xcd_4q\xc9J@\x98dڎR\x1e\xc5\xfbG*\xb6B\x9a\xf2"),
		[]byte("BV/\x8e\xb6\xaaP\x01Oɻ\x1e\xb7\xe4\x196^\xea\x0f\xd6\xdeV\xc2\t\x85\x90u\x8c\x8e\xea-Dg\xcd(Ј\x13\xbblc\xea\x10\x1d\x03\xf0\xd5eC\x87_c\xc0s2lr\x19"),
		[]byte("\xd9\"\x9d\xfd\xc0\xbf\x1dv\xb2\xfc\xdc*k(\xf8v\xf9\x8a\u124e\x0e\x9d\xb3\xd7yJ\x83\xf1\b\xe7\x94qU\xb1"),
		[]byte("k\xcaӓ\xa0\xbep\xb2\xb0=\x97\xdf\x14R\v\x8b\x9c\xdc\\q;\xb0\xff\xe6[\xa9\xc7\xf4XE鿟Vgӂ\xb2mf\xf4\xaf9\xb1\xac\xe5̱"),
		[]byte("\xa9@怦KB\xbd\xa5\x81F\x9bH*d<\x95\x7f\xf6\xbaEvU\x81m\xf9\xccEh\xae\xb2,w\xcb>\x1a\xcc\x1d\xb7\xf65*Z\x84\x1cκ֤\x82*\x91(\xdfM "),
		[]byte("x~\x89>\x11ȪxxyU\x83dorkx\xe9Wn\xcb[d\xd3f\xfb\x94?\xf07\xe2\xffA\xa7\x885-Ɓ>\xc4\xca\x10\x99"),
	}
	r := rand.New(rand.NewPCG(8247, 7296))
	for range 200 {
		b := make([]byte, 40+r.IntN(120))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzBuild: any resources build without panicking, deterministically, into
// a consistent model that renders to well-formed swanctl.conf.
func FuzzBuild(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzResources(data)
		res := Build(in)
		m, problems := res.Model, res.Problems
		res2 := Build(fuzzResources(data))
		again, problems2 := res2.Model, res2.Problems
		conf := Render(m, RenderOptions{ShowSecrets: true})
		if conf != Render(again, RenderOptions{ShowSecrets: true}) || fmt.Sprint(problems) != fmt.Sprint(problems2) {
			t.Fatal("Build is not deterministic")
		}
		consistent(t, m)
		wellFormed(t, conf)
		for _, p := range problems {
			if p.Reason == "" || p.Kind == "" || p.Name == "" || p.Message == "" {
				t.Errorf("Incomplete problem %+v", p)
			}
		}
	})
}

// TestFuzzCorpusInCharon loads the models of the seed corpus into a real
// charon. Build leaves objects with problems out whole, so even a model that
// came with problems must load: what Build returns, charon accepts.
func TestFuzzCorpusInCharon(t *testing.T) {
	pki := newTestPKI(t)
	host := startCharonHost(t)
	loaded, clean := 0, 0
	for i, s := range fuzzSeeds() {
		in := fuzzResources(s)
		pki.apply(&in)
		res := Build(in)
		m, problems := res.Model, res.Problems
		if len(m.Connections) == 0 {
			continue
		}
		loaded++
		if len(problems) == 0 {
			clean++
		}
		t.Run(fmt.Sprintf("seed%d", i), func(t *testing.T) { host.accepts(t, m) })
	}
	if loaded < 20 {
		t.Fatalf("Only %d seeds build a connection; the sample says little", loaded)
	}
	t.Logf("%d seed models loaded into charon, %d of them without problems", loaded, clean)
}

package firewall

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// TestFirewallHoldsWhatBuildAccepted: over random gateways with pools and
// tunnels that overlap each other, lack Secrets or collide in many ways, the
// table's client sources, tunnel pairs and drops are exactly what
// swan.Build accepted and refused, and the rule count stays in its bound.
func TestFirewallHoldsWhatBuildAccepted(t *testing.T) {
	for seed := range uint64(400) {
		in := randomResources(rand.New(rand.NewPCG(seed, 7)))
		checkFirewallMatchesBuild(t, fmt.Sprint("seed ", seed), in)
	}
}

func FuzzFirewallHoldsWhatBuildAccepted(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, uint64(1))
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		checkFirewallMatchesBuild(t, "fuzz", randomResources(rand.New(rand.NewPCG(a, b))))
	})
}

func checkFirewallMatchesBuild(t *testing.T, name string, in swan.Resources) {
	t.Helper()
	res := swan.Build(in)
	rs, err := Build(FromBuild("t", &in.Gateway, &res))
	if err != nil {
		t.Fatalf("%s: firewall build failed: %v (problems %v)", name, err, res.Problems)
	}
	var wantSrc, gotSrc, wantPairs, gotPairs, wantDrops, gotDrops, wantTunnelDrops, gotTunnelDrops []string
	bound := 0
	for _, p := range res.Pools {
		for _, c := range p.Prefixes {
			wantSrc = append(wantSrc, p.Name+" "+c.String())
		}
	}
	for _, tn := range res.Tunnels {
		for _, ch := range tn.Children {
			bound += 2 * len(ch.LocalNetworks) * len(ch.RemoteNetworks)
			for _, r := range ch.RemoteNetworks {
				wantTunnelDrops = append(wantTunnelDrops, tn.Name+" "+r.String())
			}
			for _, l := range ch.LocalNetworks {
				for _, r := range ch.RemoteNetworks {
					if l.Addr().Is4() == r.Addr().Is4() {
						wantPairs = append(wantPairs, tn.Name+" "+r.String()+" "+l.String())
					}
				}
			}
		}
	}
	for _, r := range res.Refused {
		wantDrops = append(wantDrops, r.Name+" "+r.Prefix.String())
	}
	tunnelRules := 0
	for _, c := range rs.Chains {
		if c.Name != ChainForward {
			if strings.HasPrefix(c.Name, "pool-") && !slices.ContainsFunc(res.Pools, func(p swan.AcceptedPool) bool { return PoolChain(p.Name) == c.Name }) {
				t.Errorf("%s: chain %s of a pool Build did not accept", name, c.Name)
			}
			continue
		}
		for _, r := range c.Rules {
			switch {
			case r.Verdict == VerdictJump:
				gotSrc = append(gotSrc, strings.TrimPrefix(r.Jump, "pool-")+" "+r.SAddr.String())
			case strings.HasPrefix(r.ID, "tunnel/") && strings.Contains(r.ID, "/drop/"):
				name, ok := TunnelOfDropRule(r.ID)
				if !ok || r.Verdict != VerdictDrop || r.NamedCounter != TunnelDropCounter(name) {
					t.Errorf("%s: tunnel drop rule %+v", name, r)
				}
				gotTunnelDrops = append(gotTunnelDrops, name+" "+r.SAddr.String())
			case strings.HasPrefix(r.ID, "tunnel/"):
				tunnelRules++
				if parts := strings.Split(r.ID, "/"); parts[2] == "in" {
					gotPairs = append(gotPairs, parts[1]+" "+r.SAddr.String()+" "+r.DAddr.String())
				}
			case strings.HasPrefix(r.ID, "refused/"):
				gotDrops = append(gotDrops, strings.Split(r.ID, "/")[2]+" "+r.SAddr.String())
			}
		}
	}
	for _, set := range []struct {
		what      string
		want, got []string
	}{{"client sources", wantSrc, gotSrc}, {"tunnel pairs", wantPairs, gotPairs}, {"refused drops", wantDrops, gotDrops}, {"tunnel drops", wantTunnelDrops, gotTunnelDrops}} {
		slices.Sort(set.want)
		set.want = slices.Compact(set.want)
		slices.Sort(set.got)
		if !slices.Equal(set.want, set.got) {
			t.Errorf("%s: %s differ:\nBuild:    %v\nfirewall: %v", name, set.what, set.want, set.got)
		}
	}
	if tunnelRules > bound {
		t.Errorf("%s: %d tunnel rules, above the bound %d", name, tunnelRules, bound)
	}
}

// randomResources draws a gateway whose pools and tunnels take their
// networks from a small set, so that they overlap often.
func randomResources(r *rand.Rand) swan.Resources {
	nets := []string{"10.3.0.0/24", "10.3.0.0/16", "10.3.200.0/24", "10.3.200.0/25", "10.4.0.0/24", "10.5.0.0/24",
		"172.16.0.0/12", "fd00:3::/64", "fd00::/16", "192.168.7.0/24"}
	pick := func() v1alpha1.CIDR { return v1alpha1.CIDR(nets[r.IntN(len(nets))]) }
	picks := func() []v1alpha1.CIDR {
		out := []v1alpha1.CIDR{}
		for range 1 + r.IntN(3) {
			if c := pick(); !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out
	}
	at := func() metav1.Time { return metav1.NewTime(time.Unix(int64(r.IntN(4))*3600, 0)) }
	ref := v1alpha1.GatewayReference{Name: "gw"}
	in := swan.Resources{
		Gateway: v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"}, Spec: v1alpha1.VPNGatewaySpec{
			Hostnames: []v1alpha1.Hostname{"vpn.example.com"}, Addresses: []v1alpha1.IPAddress{"198.51.100.10"},
		}},
		Secrets: map[string]map[string][]byte{"pw": {"password": []byte("pw")}, "psk": {"psk": []byte("a long pre-shared key")}},
	}
	teams := []string{"", "a", "b"}
	for i := range 1 + r.IntN(4) {
		p := v1alpha1.MobilePool{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pool%d", i), CreationTimestamp: at()}, Spec: v1alpha1.MobilePoolSpec{GatewayRef: ref}}
		if v := pick(); strings.Contains(string(v), ".") {
			p.Spec.Addresses.IPv4 = v
		} else {
			p.Spec.Addresses.IPv6 = v
		}
		if r.IntN(4) == 0 {
			p.Spec.FullTunnel = true
		} else {
			p.Spec.LocalNetworks = picks()
		}
		if team := teams[r.IntN(len(teams))]; team != "" {
			p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}
		}
		for range r.IntN(3) {
			p.Spec.Firewall.Allow = append(p.Spec.Firewall.Allow, v1alpha1.AllowRule{To: pick(), Protocol: v1alpha1.ProtocolAny})
		}
		if r.IntN(5) == 0 {
			p.Spec.GatewayRef.Name = "other"
		}
		in.Pools = append(in.Pools, p)
	}
	for i, team := range teams {
		u := v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("u%d", i)}, Spec: v1alpha1.VPNUserSpec{
			GatewayRef: ref, Identity: v1alpha1.Identity(fmt.Sprintf("u%d@example.com", i)),
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "pw", Key: "password"},
		}}
		if team != "" {
			u.Labels = map[string]string{"team": team}
		}
		in.Users = append(in.Users, u)
	}
	for i := range r.IntN(4) {
		tn := v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tun%d", i), CreationTimestamp: at()}, Spec: v1alpha1.TunnelSpec{
			GatewayRef: ref, Remote: v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.5"}},
			Auth: v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "psk", Key: "psk"}}},
		}}
		if r.IntN(4) == 0 {
			tn.Spec.Auth.PSK.SecretRef.Name = "missing"
		}
		for c := range 1 + r.IntN(3) {
			tn.Spec.Children = append(tn.Spec.Children, v1alpha1.TunnelChild{Name: fmt.Sprintf("c%d", c), LocalNetworks: picks(), RemoteNetworks: picks()})
		}
		in.Tunnels = append(in.Tunnels, tn)
	}
	return in
}

// BenchmarkFirewallAtCRDLimits builds the table of a gateway with a Tunnel
// at the API's limits (32 children, each 4 local x 8 remote networks: the
// 1024 pairs a Tunnel may hold) and a pool with 128 allow rules of 32 port
// ranges each.
func BenchmarkFirewallAtCRDLimits(b *testing.B) {
	cfg := Config{Table: "t", GatewayAddresses: []netip.Addr{netip.MustParseAddr("198.51.100.10")}}
	tn := Tunnel{Name: "site"}
	for c := range 32 {
		var ch TunnelChild
		for i := range 4 {
			ch.LocalNetworks = append(ch.LocalNetworks, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(c), byte(i), 0}), 24))
		}
		for i := range 8 {
			ch.RemoteNetworks = append(ch.RemoteNetworks, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(c%16), byte(c/16*32 + i), 0}), 24))
		}
		tn.Children = append(tn.Children, ch)
	}
	cfg.Tunnels = []Tunnel{tn}
	p := Pool{Name: "staff", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16"), netip.MustParsePrefix("fd00:200::/64")}, Masquerade: true}
	for i := range 128 {
		a := AllowRule{Destination: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24), Protocol: ProtocolTCP}
		for j := range 32 {
			a.Ports = append(a.Ports, PortRange{From: uint16(1000 + j*10), To: uint16(1000 + j*10 + 5)})
		}
		p.Allow = append(p.Allow, a)
	}
	cfg.Pools = []Pool{p}
	b.ReportAllocs()
	var rules int
	for b.Loop() {
		rs, err := Build(cfg)
		if err != nil {
			b.Fatal(err)
		}
		rules = 0
		for _, c := range rs.Chains {
			rules += len(c.Rules)
		}
	}
	b.ReportMetric(float64(rules), "rules")
}

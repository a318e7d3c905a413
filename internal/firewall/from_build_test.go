package firewall

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

func TestFromBuild(t *testing.T) {
	zero, yes, no := int32(0), true, false
	gw := v1alpha1.VPNGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "vpn", Name: "edge"},
		Spec: v1alpha1.VPNGatewaySpec{
			Hostnames: []v1alpha1.Hostname{"vpn.example.com"},
			Addresses: []v1alpha1.IPAddress{"198.51.100.10", "2001:db8::10"},
			Dataplane: v1alpha1.DataplaneUserspace,
			Firewall:  v1alpha1.GatewayFirewall{MSSClamp: &zero, Masquerade: true},
		},
	}
	ref := v1alpha1.GatewayReference{Name: "edge"}
	pools := []v1alpha1.MobilePool{
		{ObjectMeta: metav1.ObjectMeta{Name: "staff"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: "10.3.200.0/24", IPv6: "fd00:3::/64"},
			LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
			Firewall: v1alpha1.PoolFirewall{Allow: []v1alpha1.AllowRule{
				{To: "10.3.0.0/24", Protocol: v1alpha1.ProtocolTCP, Ports: []v1alpha1.PortRange{{Port: 443}, {Port: 8000, EndPort: 8080}}},
				{To: "10.3.0.53/32", Protocol: v1alpha1.ProtocolAny},
			}, Masquerade: &no},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "all"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: "10.4.0.0/24"}, FullTunnel: true,
			UserSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "all"}},
			Firewall:     v1alpha1.PoolFirewall{Masquerade: &yes},
		}},
		// Refused: its addresses overlap staff's local network.
		{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: "10.3.0.0/25"}, LocalNetworks: []v1alpha1.CIDR{"10.7.0.0/24"},
			UserSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "lan"}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "other"}, Addresses: v1alpha1.PoolAddresses{IPv4: "10.5.0.0/24"},
		}},
	}
	user := func(name, team string) v1alpha1.VPNUser {
		u := v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.VPNUserSpec{
			GatewayRef: ref, Identity: v1alpha1.Identity(name + "@example.com"),
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "pw", Key: "password"},
		}}
		if team != "" {
			u.Labels = map[string]string{"team": team}
		}
		return u
	}
	psk := v1alpha1.SecretKeyReference{Name: "psk", Key: "psk"}
	tunnel := func(name string, children ...v1alpha1.TunnelChild) v1alpha1.Tunnel {
		return v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.TunnelSpec{
			GatewayRef: ref, Remote: v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.5"}},
			Auth: v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: psk}}, Children: children,
		}}
	}
	tunnels := []v1alpha1.Tunnel{
		tunnel("hq",
			v1alpha1.TunnelChild{Name: "a", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.9.0.0/24"}},
			v1alpha1.TunnelChild{Name: "b", LocalNetworks: []v1alpha1.CIDR{"10.3.1.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.8.0.0/24"}}),
		// Refused: its PSK Secret is missing.
		tunnel("nokey", v1alpha1.TunnelChild{Name: "a", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.6.0.0/24"}}),
	}
	tunnels[1].Spec.Auth.PSK = &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "missing", Key: "psk"}}
	// Age decides overlaps: staff and hq are older than lan.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range pools {
		pools[i].CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(i) * time.Hour))
	}
	pools[2].CreationTimestamp = metav1.NewTime(t0.Add(24 * time.Hour))
	res := swan.Build(swan.Resources{
		Gateway: gw, Pools: pools, Tunnels: tunnels,
		Users:   []v1alpha1.VPNUser{user("alice", ""), user("bob", "all"), user("lan", "lan")},
		Secrets: map[string]map[string][]byte{"pw": {"password": []byte("pw")}, "psk": {"psk": []byte("a long pre-shared key")}},
	})
	p := netip.MustParsePrefix
	want := Config{
		Table:            "ikegate-vpn-edge",
		GatewayAddresses: []netip.Addr{netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("2001:db8::10")},
		DataPlane:        DataPlaneUserspace,
		DisableMSSClamp:  true,
		Pools: []Pool{
			{Name: "all", CIDRs: []netip.Prefix{p("10.4.0.0/24")}, Masquerade: true},
			{Name: "staff", CIDRs: []netip.Prefix{p("10.3.200.0/24"), p("fd00:3::/64")},
				LocalNetworks: []netip.Prefix{p("10.3.0.0/24")},
				Allow: []AllowRule{
					{Destination: p("10.3.0.0/24"), Protocol: ProtocolTCP, Ports: []PortRange{{443, 443}, {8000, 8080}}},
					{Destination: p("10.3.0.53/32"), Protocol: ProtocolAny},
				}},
		},
		Tunnels: []Tunnel{{Name: "hq", Children: []TunnelChild{
			{LocalNetworks: []netip.Prefix{p("10.3.0.0/24")}, RemoteNetworks: []netip.Prefix{p("10.9.0.0/24")}},
			{LocalNetworks: []netip.Prefix{p("10.3.1.0/24")}, RemoteNetworks: []netip.Prefix{p("10.8.0.0/24")}},
		}}},
		Refused: []Refused{{Owner: "pool/lan", Prefix: p("10.3.0.0/25")}, {Owner: "tunnel/nokey", Prefix: p("10.6.0.0/24")}},
	}
	got := FromBuild(TableName("vpn", "edge"), &gw, &res)
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("FromBuild (-want +got):\n%s\nproblems: %v", d, res.Problems)
	}
	rs, err := Build(got)
	if err != nil {
		t.Fatalf("Build refused the mapped configuration: %v", err)
	}
	// Each child's own pairs, never across children.
	var pairs []string
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if strings.HasPrefix(r.ID, "tunnel/hq/in/") {
				pairs = append(pairs, strings.TrimPrefix(r.ID, "tunnel/hq/in/"))
			}
		}
	}
	if d := cmp.Diff([]string{"10.9.0.0/24/10.3.0.0/24", "10.8.0.0/24/10.3.1.0/24"}, pairs); d != "" {
		t.Errorf("tunnel pairs (-want +got):\n%s", d)
	}

	// Defaults: kernel data plane, the firewall package's own MSS.
	def := FromBuild("t", &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}, &swan.Result{})
	if def.DataPlane != DataPlaneKernel || def.MSS != DefaultMSS || def.DisableMSSClamp {
		t.Errorf("Defaults = %+v", def)
	}
}

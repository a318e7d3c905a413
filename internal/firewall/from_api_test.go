package firewall

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestFromResources(t *testing.T) {
	zero, yes, no := int32(0), true, false
	gw := &v1alpha1.VPNGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "vpn", Name: "edge"},
		Spec: v1alpha1.VPNGatewaySpec{
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
				{To: "10.3.0.53/32"},
			}, Masquerade: &no},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "all"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: "10.4.0.0/24"}, FullTunnel: true,
			LocalNetworks: []v1alpha1.CIDR{"10.9.9.0/24"},
			Firewall:      v1alpha1.PoolFirewall{Masquerade: &yes},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "other"}, Addresses: v1alpha1.PoolAddresses{IPv4: "10.5.0.0/24"},
		}},
	}
	tunnels := []v1alpha1.Tunnel{{ObjectMeta: metav1.ObjectMeta{Name: "hq"}, Spec: v1alpha1.TunnelSpec{
		GatewayRef: ref,
		Children: []v1alpha1.TunnelChild{
			{Name: "a", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.9.0.0/24"}},
			{Name: "b", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.8.0.0/24"}},
		},
	}}}
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
		Tunnels: []Tunnel{{Name: "hq", LocalNetworks: []netip.Prefix{p("10.3.0.0/24")},
			RemoteNetworks: []netip.Prefix{p("10.8.0.0/24"), p("10.9.0.0/24")}}},
	}
	got := FromResources(TableName("vpn", "edge"), gw, pools, tunnels)
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("FromResources (-want +got):\n%s", d)
	}
	if _, err := Build(got); err != nil {
		t.Errorf("Build refused the mapped configuration: %v", err)
	}

	// Defaults: kernel data plane, the firewall package's own MSS.
	def := FromResources("t", &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}, nil, nil)
	if def.DataPlane != DataPlaneKernel || def.MSS != 0 || def.DisableMSSClamp {
		t.Errorf("Defaults = %+v", def)
	}
}

package controllers

import (
	"math"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestPoolCountsFor(t *testing.T) {
	pool := func(v4, v6 v1alpha1.CIDR) *v1alpha1.MobilePool {
		p := &v1alpha1.MobilePool{}
		p.Name = "staff"
		p.Spec.Addresses = v1alpha1.PoolAddresses{IPv4: v4, IPv6: v6}
		return p
	}
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure.Replicas = 2
		g.Status.Agents = []v1alpha1.AgentStatus{
			{Pod: "vpn-gateway-0", Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: 2}, {Name: "guests", Leased: 5}}},
			{Pod: "vpn-gateway-1", Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: 1}}},
			// Scaled away: its leases went with it.
			{Pod: "vpn-gateway-2", Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: 7}}},
		}
	})
	tests := []struct {
		name string
		pool *v1alpha1.MobilePool
		gw   *v1alpha1.VPNGateway
		want poolCounts
	}{
		{"seed pool over three replicas", pool("10.3.200.0/24", ""), gw, poolCounts{Leased: 3, Size: 254}},
		{"dual stack", pool("10.3.200.0/30", "fd00:3::/112"), gw, poolCounts{Leased: 3, Size: 2 + 65534}},
		{"huge IPv6 pool", pool("", "fd00:3::/64"), nil, poolCounts{Size: math.MaxInt64}},
		{"gateway gone", pool("10.3.200.0/24", ""), nil, poolCounts{Size: 254}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := poolCountsFor(tc.pool, tc.gw); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

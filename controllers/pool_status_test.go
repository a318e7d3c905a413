package controllers

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
		{"seed pool over two replicas and a stale report", pool("10.3.200.0/24", ""), gw, poolCounts{Leased: 3, Size: 254,
			Replicas: []v1alpha1.PoolReplica{{Pod: "vpn-gateway-0", Slices: sixteenths("10.3.200", 0, 8), Leased: 2}, {Pod: "vpn-gateway-1", Slices: sixteenths("10.3.200", 8, 16), Leased: 1}}}},
		{"dual stack", pool("10.3.200.0/26", "fd00:3::/112"), gw, poolCounts{Leased: 3, Size: 62 + 65534,
			Replicas: []v1alpha1.PoolReplica{
				{Pod: "vpn-gateway-0", Slices: []string{"10.3.200.0/30", "10.3.200.4/30", "10.3.200.8/30", "10.3.200.12/30", "10.3.200.16/30", "10.3.200.20/30", "10.3.200.24/30", "10.3.200.28/30",
					"fd00:3::/116", "fd00:3::1000/116", "fd00:3::2000/116", "fd00:3::3000/116", "fd00:3::4000/116", "fd00:3::5000/116", "fd00:3::6000/116", "fd00:3::7000/116"}, Leased: 2},
				{Pod: "vpn-gateway-1", Slices: []string{"10.3.200.32/30", "10.3.200.36/30", "10.3.200.40/30", "10.3.200.44/30", "10.3.200.48/30", "10.3.200.52/30", "10.3.200.56/30", "10.3.200.60/30",
					"fd00:3::8000/116", "fd00:3::9000/116", "fd00:3::a000/116", "fd00:3::b000/116", "fd00:3::c000/116", "fd00:3::d000/116", "fd00:3::e000/116", "fd00:3::f000/116"}, Leased: 1}}}},
		// charon serves at most 2^31 - 2 addresses of one pool.
		{"huge IPv6 pool", pool("", "fd00:3::/64"), nil, poolCounts{Size: 1<<31 - 2}},
		{"gateway gone", pool("10.3.200.0/24", ""), nil, poolCounts{Size: 254}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, poolCountsFor(tc.pool, tc.gw)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// sixteenths are the /28s from..to-1 of the /24 net.0.
func sixteenths(net string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s.%d/28", net, 16*i))
	}
	return out
}

func TestAddressesCondition(t *testing.T) {
	tests := []struct {
		name   string
		counts poolCounts
		status metav1.ConditionStatus
		reason string
	}{
		{"empty", poolCounts{Leased: 0, Size: 254}, metav1.ConditionTrue, v1alpha1.ReasonAddressesAvailable},
		{"just under the threshold", poolCounts{Leased: 228, Size: 254}, metav1.ConditionTrue, v1alpha1.ReasonAddressesAvailable},
		{"at the threshold", poolCounts{Leased: 229, Size: 254}, metav1.ConditionFalse, v1alpha1.ReasonPoolNearlyFull},
		{"last address left", poolCounts{Leased: 253, Size: 254}, metav1.ConditionFalse, v1alpha1.ReasonPoolNearlyFull},
		{"every address leased", poolCounts{Leased: 254, Size: 254}, metav1.ConditionFalse, v1alpha1.ReasonPoolExhausted},
		{"one of a /30", poolCounts{Leased: 1, Size: 2}, metav1.ConditionTrue, v1alpha1.ReasonAddressesAvailable},
		{"both of a /30", poolCounts{Leased: 2, Size: 2}, metav1.ConditionFalse, v1alpha1.ReasonPoolExhausted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := addressesCondition(tc.counts)
			if c.Type != v1alpha1.ConditionAddressesAvailable || c.Status != tc.status || c.Reason != tc.reason {
				t.Errorf("got %s=%s (%s), want %s (%s)", c.Type, c.Status, c.Reason, tc.status, tc.reason)
			}
		})
	}
	// The message does not follow the counts (Events are made from it).
	if a, b := addressesCondition(poolCounts{Leased: 230, Size: 254}), addressesCondition(poolCounts{Leased: 231, Size: 254}); a.Message != b.Message {
		t.Errorf("messages differ with the count: %q, %q", a.Message, b.Message)
	}
}

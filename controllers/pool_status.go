package controllers

import (
	"math"
	"net/netip"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// poolCounts are the figures of a MobilePool's status besides its conditions.
type poolCounts struct {
	Leased int32
	Size   int64
}

// poolCountsFor sums the leases every gateway pod's agent reports for pool,
// and computes how many addresses the pool can hand out: charon keeps the
// network and the broadcast address of a subnet pool back.
func poolCountsFor(pool *v1alpha1.MobilePool, gw *v1alpha1.VPNGateway) poolCounts {
	var c poolCounts
	for _, s := range []v1alpha1.CIDR{pool.Spec.Addresses.IPv4, pool.Spec.Addresses.IPv6} {
		p, err := netip.ParsePrefix(string(s))
		if err != nil {
			continue
		}
		hostBits := p.Addr().BitLen() - p.Bits()
		if hostBits >= 62 {
			c.Size = math.MaxInt64
			continue
		}
		if c.Size < math.MaxInt64 {
			c.Size += int64(1)<<hostBits - 2
		}
	}
	if gw == nil {
		return c
	}
	// Reports of pods the StatefulSet no longer runs (after a scale-down
	// nobody removes them) hold leases that are gone.
	current := map[string]bool{}
	for _, pod := range podNames(gw) {
		current[pod] = true
	}
	for _, a := range gw.Status.Agents {
		if !current[a.Pod] {
			continue
		}
		for _, p := range a.Pools {
			if p.Name == pool.Name {
				c.Leased += p.Leased
			}
		}
	}
	return c
}

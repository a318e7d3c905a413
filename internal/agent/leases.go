package agent

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// poolLeases counts the virtual IPs of the live sessions per pool; every pool
// is listed, so a pool whose last client left reports zero. charon counts the
// same addresses as "online" leases. With split pools it also names the
// slices that hold them, which a replica taking a slice over waits for to
// empty (see swan.Slices).
func poolLeases(pools map[string][]netip.Prefix, sessions map[string][]v1alpha1.Session, split bool) []v1alpha1.PoolLeases {
	out := make([]v1alpha1.PoolLeases, 0, len(pools))
	for name := range pools {
		out = append(out, v1alpha1.PoolLeases{Name: name, Leased: 0})
	}
	slices.SortFunc(out, func(a, b v1alpha1.PoolLeases) int { return strings.Compare(a.Name, b.Name) })
	for _, ss := range sessions {
		for _, s := range ss {
			for _, v := range s.VirtualAddresses {
				if addr, err := netip.ParseAddr(v); err == nil {
					countLease(out, pools, addr, split)
				}
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].LeasedSlices)
		out[i].LeasedSlices = slices.Compact(out[i].LeasedSlices)
	}
	return out
}

// countLease adds addr to the pool of out (sorted by name) whose prefixes hold it.
func countLease(out []v1alpha1.PoolLeases, pools map[string][]netip.Prefix, addr netip.Addr, split bool) {
	for i := range out {
		for _, p := range pools[out[i].Name] {
			if !p.Contains(addr) {
				continue
			}
			out[i].Leased++
			if s, ok := swan.SliceOf(p, addr); ok && split {
				out[i].LeasedSlices = append(out[i].LeasedSlices, int32(s))
			}
			return
		}
	}
}

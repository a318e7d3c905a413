package agent

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// poolLeases counts the virtual IPs of the live sessions per pool; every pool
// is listed, so a pool whose last client left reports zero. charon counts the
// same addresses as "online" leases.
func poolLeases(pools map[string][]netip.Prefix, sessions map[string][]v1alpha1.Session) []v1alpha1.PoolLeases {
	counts := make(map[string]int32, len(pools))
	for name := range pools {
		counts[name] = 0
	}
	for _, ss := range sessions {
		for _, s := range ss {
			for _, v := range s.VirtualAddresses {
				addr, err := netip.ParseAddr(v)
				if err != nil {
					continue
				}
				for name, nets := range pools {
					if slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(addr) }) {
						counts[name]++
						break
					}
				}
			}
		}
	}
	out := make([]v1alpha1.PoolLeases, 0, len(counts))
	for name, n := range counts {
		out = append(out, v1alpha1.PoolLeases{Name: name, Leased: n})
	}
	slices.SortFunc(out, func(a, b v1alpha1.PoolLeases) int { return strings.Compare(a.Name, b.Name) })
	return out
}

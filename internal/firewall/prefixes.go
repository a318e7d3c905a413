package firewall

import (
	"cmp"
	"net/netip"
	"slices"
)

// comparePrefix orders networks by address, then by length.
func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), a.Bits()-b.Bits())
}

// compactPrefixes sorts and removes duplicates, so that rules built from
// networks several children share stay the same across rebuilds.
func compactPrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = append([]netip.Prefix(nil), ps...)
	slices.SortFunc(ps, comparePrefix)
	return slices.Compact(ps)
}

package agent

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestPoolLeases(t *testing.T) {
	pools := map[string][]netip.Prefix{
		"staff":  {netip.MustParsePrefix("10.3.200.0/24"), netip.MustParsePrefix("fd00:3::/112")},
		"guests": {netip.MustParsePrefix("10.3.201.0/24")},
		"idle":   {netip.MustParsePrefix("10.3.202.0/24")},
	}
	sessions := map[string][]v1alpha1.Session{
		"jimp@example.com": {
			{VirtualAddresses: []string{"10.3.200.1", "fd00:3::1"}},
			{VirtualAddresses: []string{"10.3.200.2"}},
		},
		"guest@example.com": {{VirtualAddresses: []string{"10.3.201.7"}}},
		// A site-to-site peer or a client without a virtual IP leases nothing.
		"site-b": {{}},
		// An address outside every pool (a pool removed meanwhile) counts nowhere.
		"old@example.com": {{VirtualAddresses: []string{"10.9.9.9", "not-an-ip"}}},
	}
	want := []v1alpha1.PoolLeases{{Name: "guests", Leased: 1}, {Name: "idle", Leased: 0}, {Name: "staff", Leased: 3}}
	if diff := cmp.Diff(want, poolLeases(pools, sessions, false)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Split between replicas, the report names the slices holding leases:
	// 10.3.200.1 and .2 are in slice 0, fd00:3::1 in slice 0 of its /112,
	// 10.3.201.7 in slice 0 too; 10.3.201.200 is in slice 12 (/28s).
	sessions["guest@example.com"] = append(sessions["guest@example.com"], v1alpha1.Session{VirtualAddresses: []string{"10.3.201.200"}})
	want = []v1alpha1.PoolLeases{{Name: "guests", Leased: 2, LeasedSlices: []int32{0, 12}}, {Name: "idle", Leased: 0}, {Name: "staff", Leased: 3, LeasedSlices: []int32{0}}}
	if diff := cmp.Diff(want, poolLeases(pools, sessions, true)); diff != "" {
		t.Errorf("split (-want +got):\n%s", diff)
	}
}

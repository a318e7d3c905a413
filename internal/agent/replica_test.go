package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

func TestReplicaOfAPod(t *testing.T) {
	gw := func(replicas int32, agents ...v1alpha1.AgentStatus) *v1alpha1.VPNGateway {
		g := &v1alpha1.VPNGateway{}
		g.Name = "vpn"
		g.Spec.Exposure.Replicas = replicas
		g.Status.Agents = agents
		return g
	}
	leased := func(pod string, slices ...int32) v1alpha1.AgentStatus {
		return v1alpha1.AgentStatus{Pod: pod, Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: int32(len(slices)), LeasedSlices: slices}}}
	}
	// The slices replica 2 of 3 owns.
	owners := swan.SliceOwners(3)
	var ofTwo []int
	for i, o := range owners {
		if o == 2 {
			ofTwo = append(ofTwo, i)
		}
	}
	for _, c := range []struct {
		name string
		gw   *v1alpha1.VPNGateway
		pod  string
		want swan.Replica
	}{
		{"a lone replica serves everything", gw(1), "vpn-gateway-0", swan.Replica{}},
		{"a pod of a foreign name serves everything", gw(2), "other-0", swan.Replica{}},
		{"the second of two", gw(2), "vpn-gateway-1", swan.Replica{Ordinal: 1, Count: 2}},
		{"a pod being scaled away owns nothing", gw(1), "vpn-gateway-1", swan.Replica{Ordinal: 1, Count: 1}},
		{"a new replica withholds its slices another current one still leases in",
			gw(3, leased("vpn-gateway-0", 0, int32(ofTwo[0])), leased("vpn-gateway-2", int32(ofTwo[1]))), "vpn-gateway-2",
			swan.Replica{Ordinal: 2, Count: 3, Withheld: []int{ofTwo[0]}}},
		{"leases of a pod no longer run withhold nothing",
			gw(2, leased("vpn-gateway-2", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)), "vpn-gateway-1",
			swan.Replica{Ordinal: 1, Count: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, replicaOf(c.gw, c.pod)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if r := (swan.Replica{Ordinal: 1, Count: 1}); len(r.Owned()) != 0 {
		t.Errorf("a pod beyond the count owns %v", r.Owned())
	}
}

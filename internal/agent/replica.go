package agent

import (
	"slices"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// replicaOf is the share of the gateway's pools that the pod serves: its
// ordinal from its StatefulSet name, the replica count from the spec, and
// the slices it must withhold because another current replica still holds
// leases in them (a slice that moved to this pod on a scale-up; see
// swan.Slices). Reports of pods the StatefulSet no longer runs are left
// out: their clients are gone or being moved. Such a pod itself (ordinal
// beyond the count, while it stops) owns no slice and hands out no new
// address. A pod whose name carries no ordinal serves everything, as a
// lone replica does.
func replicaOf(gw *v1alpha1.VPNGateway, pod string) swan.Replica {
	ord, ok := v1alpha1.GatewayPodOrdinal(gw.Name, pod)
	count := int(gw.Spec.Exposure.Replicas)
	if !ok || (count <= 1 && ord == 0) {
		return swan.Replica{}
	}
	r := swan.Replica{Ordinal: ord, Count: count}
	owners := swan.SliceOwners(count)
	for _, a := range gw.Status.Agents {
		o, ok := v1alpha1.GatewayPodOrdinal(gw.Name, a.Pod)
		if !ok || o == ord || o >= count {
			continue
		}
		for _, p := range a.Pools {
			for _, s := range p.LeasedSlices {
				if int(s) < swan.Slices && owners[s] == ord && !slices.Contains(r.Withheld, int(s)) {
					r.Withheld = append(r.Withheld, int(s))
				}
			}
		}
	}
	slices.Sort(r.Withheld)
	return r
}

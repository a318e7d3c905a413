package controllers

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// poolCounts are the figures of a MobilePool's status besides its conditions.
type poolCounts struct {
	Leased int32
	Size   int64
	// Replicas are each current pod's slices and leases, with more than one replica.
	Replicas []v1alpha1.PoolReplica
}

// poolCountsFor sums the leases every gateway pod's agent reports for pool,
// and counts the addresses the pool hands out (swan.PoolSize: charon keeps
// the network and the last address back, and serves at most 2^31 - 2).
func poolCountsFor(pool *v1alpha1.MobilePool, gw *v1alpha1.VPNGateway) poolCounts {
	var c poolCounts
	var prefixes []netip.Prefix
	for _, s := range []v1alpha1.CIDR{pool.Spec.Addresses.IPv4, pool.Spec.Addresses.IPv6} {
		if p, err := netip.ParsePrefix(string(s)); err == nil {
			c.Size += swan.PoolSize(p.Masked())
			prefixes = append(prefixes, p.Masked())
		}
	}
	if gw == nil {
		return c
	}
	c.Replicas = poolReplicas(pool.Name, prefixes, gw)
	// Reports of pods the StatefulSet no longer runs (until
	// GatewayAgentsReconciler removes them) hold leases that are gone.
	current := currentPods(gw)
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

// poolReplicas are the slices of the pool's prefixes that each pod the
// StatefulSet runs owns (swan.ReplicaPrefixes, as its agent renders them)
// with the leases its agent reports; none with a single replica.
func poolReplicas(pool string, prefixes []netip.Prefix, gw *v1alpha1.VPNGateway) []v1alpha1.PoolReplica {
	pods := podNames(gw)
	if len(pods) < 2 {
		return nil
	}
	leased := map[string]int32{}
	for _, a := range gw.Status.Agents {
		for _, p := range a.Pools {
			if p.Name == pool {
				leased[a.Pod] = p.Leased
			}
		}
	}
	out := make([]v1alpha1.PoolReplica, 0, len(pods))
	for i, pod := range pods {
		r := v1alpha1.PoolReplica{Pod: pod, Slices: []string{}, Leased: leased[pod]}
		for _, p := range prefixes {
			for _, s := range swan.ReplicaPrefixes(p, swan.Replica{Ordinal: i, Count: len(pods)}) {
				r.Slices = append(r.Slices, s.String())
			}
		}
		out = append(out, r)
	}
	return out
}

// addressesCondition says whether the pool's leases stay below
// v1alpha1.PoolNearlyFullPercent of its size. Its messages name no counts
// (status.leased and status.size have them): a message that changed with
// every client would make a new Warning Event each time.
// The agents report leases summed over the pool's families and status.size
// is the sum too, so in a dual-stack pool whose IPv4 range is much smaller
// than its IPv6 one the IPv4 range can run out first; the condition is
// exact for single-family pools.
func addressesCondition(c poolCounts) metav1.Condition {
	switch {
	case c.Size > 0 && int64(c.Leased) >= c.Size:
		return condFalse(v1alpha1.ConditionAddressesAvailable, v1alpha1.ReasonPoolExhausted,
			"every address of the pool is leased: new clients get none until one leaves")
	case c.Size > 0 && int64(c.Leased)*100 >= c.Size*v1alpha1.PoolNearlyFullPercent:
		return condFalse(v1alpha1.ConditionAddressesAvailable, v1alpha1.ReasonPoolNearlyFull,
			fmt.Sprintf("at least %d%% of the pool's addresses are leased", v1alpha1.PoolNearlyFullPercent))
	default:
		return condTrue(v1alpha1.ConditionAddressesAvailable, v1alpha1.ReasonAddressesAvailable,
			fmt.Sprintf("less than %d%% of the pool's addresses are leased", v1alpha1.PoolNearlyFullPercent))
	}
}

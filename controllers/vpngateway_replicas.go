package controllers

import (
	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// currentAgents are the reports of the pods the StatefulSet runs now, by
// pod name: after a scale-down nobody removes the reports of the pods that
// are gone, and their sessions and readiness are gone with them.
func currentAgents(gw *v1alpha1.VPNGateway) map[string]*v1alpha1.AgentStatus {
	current := currentPods(gw)
	out := map[string]*v1alpha1.AgentStatus{}
	for i := range gw.Status.Agents {
		if a := &gw.Status.Agents[i]; current[a.Pod] {
			out[a.Pod] = a
		}
	}
	return out
}

// currentAgentSums are the gateway's sessions and ready replicas summed
// over its current pods.
func currentAgentSums(gw *v1alpha1.VPNGateway) (sessions, ready int32) {
	for _, a := range currentAgents(gw) {
		sessions += a.Sessions
		if a.LastError == "" && a.AppliedGeneration >= gw.Generation {
			ready++
		}
	}
	return sessions, ready
}

// returnRoutes are the routes a Routed gateway's LAN needs: every accepted
// pool's slices toward the node of the replica that owns them (as the
// agents render them: swan.ReplicaPrefixes), ordered by pod, then pool.
// The next hop is what the pod's agent reports as its node; a pod that has
// not reported yet has its routes listed without one.
func returnRoutes(gw *v1alpha1.VPNGateway, res *swan.Result) []v1alpha1.ReturnRoute {
	if gw.Spec.Exposure.ReturnPath != v1alpha1.ReturnPathRouted || res == nil {
		return nil
	}
	agents := currentAgents(gw)
	pods := podNames(gw)
	var out []v1alpha1.ReturnRoute
	for i, pod := range pods {
		hop := ""
		if a := agents[pod]; a != nil {
			hop = a.NodeAddress
		}
		r := swan.Replica{Ordinal: i, Count: len(pods)}
		for _, p := range res.Pools {
			for _, pr := range p.Prefixes {
				for _, s := range swan.ReplicaPrefixes(pr, r) {
					out = append(out, v1alpha1.ReturnRoute{Destination: s.String(), Pool: p.Name, Pod: pod, NextHop: hop})
				}
			}
		}
	}
	return out
}

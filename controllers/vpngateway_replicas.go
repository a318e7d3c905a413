package controllers

import (
	"net/netip"
	"slices"

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

// maxReturnRoutes is the API's limit of status.returnRoutes.
const maxReturnRoutes = 4096

// returnRoutes are the routes the gateway's LAN needs toward its replicas:
// on a Routed return path every accepted pool's slices toward the node of
// the replica that owns them (as the agents render them:
// swan.ReplicaPrefixes), ordered by pod, then pool, and the users' static
// addresses toward the replica serving them; on both return paths the
// Tunnels' remote networks toward the replica holding the tunnel Lease.
// The next hops are what the pods' agents report as their nodes; a pod
// that has not reported yet has its routes listed without one.
func returnRoutes(gw *v1alpha1.VPNGateway, res *swan.Result) []v1alpha1.ReturnRoute {
	path := gw.Spec.Exposure.ReturnPath
	if path == "" || res == nil {
		return nil
	}
	agents := currentAgents(gw)
	pods := podNames(gw)
	hop := func(pod string) string {
		if a := agents[pod]; a != nil {
			return a.NodeAddress
		}
		return ""
	}
	var out []v1alpha1.ReturnRoute
	tunnels := tunnelRoutes(res, tunnelHolder(pods, agents), hop)
	if path == v1alpha1.ReturnPathRouted {
		out = sliceRoutes(res, pods, hop)
		statics := staticRoutes(res, pods, agents, hop)
		if room := maxReturnRoutes - len(out) - len(tunnels); len(statics) > room {
			// A static address routed to the owner of its slice is
			// covered by the slice's route; the others are not.
			statics = slices.DeleteFunc(statics, func(r staticRoute) bool { return !r.away })
			statics = statics[:min(len(statics), max(room, 0))]
		}
		for _, r := range statics {
			out = append(out, r.ReturnRoute)
		}
	}
	out = append(out, tunnels...)
	return out[:min(len(out), maxReturnRoutes)]
}

// sliceRoutes send every pool slice to the node of its replica.
func sliceRoutes(res *swan.Result, pods []string, hop func(string) string) []v1alpha1.ReturnRoute {
	var out []v1alpha1.ReturnRoute
	for i, pod := range pods {
		r := swan.Replica{Ordinal: i, Count: len(pods)}
		for _, p := range res.Pools {
			for _, pr := range p.Prefixes {
				for _, s := range swan.ReplicaPrefixes(pr, r) {
					out = append(out, v1alpha1.ReturnRoute{Destination: s.String(), Pool: p.Name, Pod: pod, NextHop: hop(pod)})
				}
			}
		}
	}
	return out
}

// staticRoute is a static address's route; away says it goes elsewhere
// than the route of the address's slice.
type staticRoute struct {
	v1alpha1.ReturnRoute
	away bool
}

// staticRoutes send each user's static address, ordered by user, to the
// replica that serves it: the owner of its slice, where the agents steer
// such a user (see the agent's spreading), unless a current pod reports
// holding it although another owns it (a client that cannot be
// redirected, or whose owner is away).
func staticRoutes(res *swan.Result, pods []string, agents map[string]*v1alpha1.AgentStatus, hop func(string) string) []staticRoute {
	held := map[netip.Addr]string{}
	for _, pod := range pods {
		a := agents[pod]
		if a == nil {
			continue
		}
		for _, s := range a.ForeignStaticAddresses {
			if addr, err := netip.ParseAddr(s); err == nil {
				if _, taken := held[addr]; !taken {
					held[addr] = pod
				}
			}
		}
	}
	var out []staticRoute
	for _, u := range res.Users {
		if !u.Address.IsValid() {
			continue
		}
		pool, prefix, ok := poolOf(res, u.Address)
		if !ok {
			continue
		}
		owner := pods[min(swan.OwnerOf(prefix, u.Address, len(pods)), len(pods)-1)]
		pod := owner
		if h, ok := held[u.Address]; ok {
			pod = h
		}
		out = append(out, staticRoute{v1alpha1.ReturnRoute{
			Destination: netip.PrefixFrom(u.Address, u.Address.BitLen()).String(),
			Pool:        pool, User: u.Name, Pod: pod, NextHop: hop(pod),
		}, pod != owner})
	}
	return out
}

// poolOf is the accepted pool, and its prefix, that holds a.
func poolOf(res *swan.Result, a netip.Addr) (string, netip.Prefix, bool) {
	for _, p := range res.Pools {
		for _, pr := range p.Prefixes {
			if pr.Contains(a) {
				return p.Name, pr, true
			}
		}
	}
	return "", netip.Prefix{}, false
}

// tunnelHolder is the current pod that reports holding the tunnel Lease
// (of those that claim it, the one with the highest term: a holder that
// died still claims it; the first by name among equal terms), the only
// pod of a gateway of one replica, or "" when neither is known.
func tunnelHolder(pods []string, agents map[string]*v1alpha1.AgentStatus) string {
	holder, term := "", int32(-1)
	for _, pod := range pods {
		if a := agents[pod]; a != nil && a.HoldsTunnels && a.TunnelTerm > term {
			holder, term = pod, a.TunnelTerm
		}
	}
	if holder == "" && len(pods) == 1 {
		return pods[0]
	}
	return holder
}

// tunnelRoutes send each accepted Tunnel's remote networks, ordered by
// tunnel, to its holder.
func tunnelRoutes(res *swan.Result, holder string, hop func(string) string) []v1alpha1.ReturnRoute {
	var out []v1alpha1.ReturnRoute
	for _, tn := range res.Tunnels {
		var seen []netip.Prefix
		for _, c := range tn.Children {
			for _, n := range c.RemoteNetworks {
				if slices.Contains(seen, n) {
					continue
				}
				seen = append(seen, n)
				out = append(out, v1alpha1.ReturnRoute{Destination: n.String(), Tunnel: tn.Name, Pod: holder, NextHop: hop(holder)})
			}
		}
	}
	return out
}

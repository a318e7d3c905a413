package controllers

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

func TestGatewaySumsCountOnlyCurrentPods(t *testing.T) {
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Generation = 3
		g.Spec.Exposure.Replicas = 2
		g.Status.Agents = []v1alpha1.AgentStatus{
			{Pod: "vpn-gateway-0", Sessions: 4, AppliedGeneration: 3},
			{Pod: "vpn-gateway-1", Sessions: 1, AppliedGeneration: 2},
			// Scaled away: its sessions and readiness went with it.
			{Pod: "vpn-gateway-2", Sessions: 9, AppliedGeneration: 3},
		}
	})
	if s, r := currentAgentSums(gw); s != 5 || r != 1 {
		t.Errorf("sessions, ready = %d, %d; want 5, 1", s, r)
	}
}

func TestReturnRoutesSendEachSliceToItsReplicasNode(t *testing.T) {
	res := &swan.Result{Pools: []swan.AcceptedPool{{Name: "staff", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.3.200.0/24")}}}}
	routed := func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure.Replicas = 2
		g.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathRouted
		g.Status.Agents = []v1alpha1.AgentStatus{{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11"}}
	}
	var want []v1alpha1.ReturnRoute
	for i, s := range sixteenths("10.3.200", 0, 16) {
		r := v1alpha1.ReturnRoute{Destination: s, Pool: "staff", Pod: "vpn-gateway-0"}
		if i >= 8 {
			r.Pod, r.NextHop = "vpn-gateway-1", "192.0.2.11"
		}
		want = append(want, r)
	}
	if diff := cmp.Diff(want, returnRoutes(gateway(routed), res)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	masq := func(g *v1alpha1.VPNGateway) { routed(g); g.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathMasquerade }
	if got := returnRoutes(gateway(masq), res); got != nil {
		t.Errorf("Masquerade gateway lists routes %v", got)
	}
}

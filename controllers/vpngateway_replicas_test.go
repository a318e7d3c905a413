package controllers

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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

func TestReturnRoutesSendStaticAddressesToTheReplicaServingThem(t *testing.T) {
	res := &swan.Result{
		Pools: []swan.AcceptedPool{{Name: "staff", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.3.200.0/24")}}},
		Users: []swan.AcceptedUser{
			{Name: "alice", Address: netip.MustParseAddr("10.3.200.5")},  // slice 0: replica 0
			{Name: "bob", Address: netip.MustParseAddr("10.3.200.200")},  // slice 12: replica 1
			{Name: "carol", Address: netip.MustParseAddr("10.3.200.20")}, // slice 1, but held by replica 1
			{Name: "dave"}, // no static address
		},
	}
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure.Replicas = 2
		g.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathRouted
		g.Status.Agents = []v1alpha1.AgentStatus{
			{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.10"},
			{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11", ForeignStaticAddresses: []string{"10.3.200.20"}},
			// Scaled away: what it holds routes nowhere.
			{Pod: "vpn-gateway-2", NodeAddress: "192.0.2.12", ForeignStaticAddresses: []string{"10.3.200.5"}},
		}
	})
	got := returnRoutes(gw, res)
	want := []v1alpha1.ReturnRoute{
		{Destination: "10.3.200.5/32", Pool: "staff", User: "alice", Pod: "vpn-gateway-0", NextHop: "192.0.2.10"},
		{Destination: "10.3.200.200/32", Pool: "staff", User: "bob", Pod: "vpn-gateway-1", NextHop: "192.0.2.11"},
		{Destination: "10.3.200.20/32", Pool: "staff", User: "carol", Pod: "vpn-gateway-1", NextHop: "192.0.2.11"},
	}
	if len(got) != 16+len(want) {
		t.Fatalf("%d routes, want 16 slices and %d static addresses: %+v", len(got), len(want), got)
	}
	if diff := cmp.Diff(want, got[16:]); diff != "" {
		t.Errorf("static address routes (-want +got):\n%s", diff)
	}
}

func TestReturnRoutesKeepStaticAddressesAwayFromTheirSliceWhenTooMany(t *testing.T) {
	pool := netip.MustParsePrefix("10.8.0.0/16")
	res := &swan.Result{Pools: []swan.AcceptedPool{{Name: "staff", Prefixes: []netip.Prefix{pool}}}}
	a := pool.Addr().Next()
	for i := range maxReturnRoutes {
		res.Users = append(res.Users, swan.AcceptedUser{Name: fmt.Sprintf("u%05d", i), Address: a})
		a = a.Next()
	}
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure.Replicas = 2
		g.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathRouted
		// 10.8.0.1 is in slice 0 (replica 0's) but held by replica 1.
		g.Status.Agents = []v1alpha1.AgentStatus{{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11", ForeignStaticAddresses: []string{"10.8.0.1"}}}
	})
	got := returnRoutes(gw, res)
	want := v1alpha1.ReturnRoute{Destination: "10.8.0.1/32", Pool: "staff", User: "u00000", Pod: "vpn-gateway-1", NextHop: "192.0.2.11"}
	if len(got) != 17 || got[16] != want {
		t.Errorf("got %d routes ending %+v; want the 16 slices and only %+v", len(got), got[len(got)-1], want)
	}
}

func TestReturnRoutesSendTunnelNetworksToTheLeaseHolder(t *testing.T) {
	res := &swan.Result{
		Pools: []swan.AcceptedPool{{Name: "staff", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.3.200.0/24")}}},
		Tunnels: []swan.AcceptedTunnel{{Name: "branch", Children: []swan.AcceptedChild{
			{Name: "lan", RemoteNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}},
			{Name: "voice", RemoteNetworks: []netip.Prefix{netip.MustParsePrefix("10.21.0.0/24"), netip.MustParsePrefix("10.20.0.0/16")}},
		}}},
	}
	routes := func(pod, hop string) []v1alpha1.ReturnRoute {
		return []v1alpha1.ReturnRoute{
			{Destination: "10.20.0.0/16", Tunnel: "branch", Pod: pod, NextHop: hop},
			{Destination: "10.21.0.0/24", Tunnel: "branch", Pod: pod, NextHop: hop},
		}
	}
	agents := []v1alpha1.AgentStatus{{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.10"}, {Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11"}}
	holding := func(i int) []v1alpha1.AgentStatus {
		out := slices.Clone(agents)
		out[i].HoldsTunnels = true
		return out
	}
	tests := []struct {
		name     string
		path     v1alpha1.ReturnPath
		replicas int32
		agents   []v1alpha1.AgentStatus
		want     []v1alpha1.ReturnRoute
	}{
		{"replica 1 holds the Lease", v1alpha1.ReturnPathRouted, 2, holding(1), routes("vpn-gateway-1", "192.0.2.11")},
		{"nobody reports the Lease yet", v1alpha1.ReturnPathRouted, 2, agents, routes("", "")},
		{"a dead holder's claim has the lower term", v1alpha1.ReturnPathRouted, 2, []v1alpha1.AgentStatus{
			{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.10", HoldsTunnels: true, TunnelTerm: 1},
			{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11", HoldsTunnels: true, TunnelTerm: 2},
		}, routes("vpn-gateway-1", "192.0.2.11")},
		{"Masquerade keeps tunnel addresses", v1alpha1.ReturnPathMasquerade, 2, holding(0), routes("vpn-gateway-0", "192.0.2.10")},
		{"a lone replica holds them", v1alpha1.ReturnPathMasquerade, 1, agents[:1], routes("vpn-gateway-0", "192.0.2.10")},
		{"no return path chosen", "", 2, holding(1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gateway(func(g *v1alpha1.VPNGateway) {
				g.Spec.Exposure.Replicas = tt.replicas
				g.Spec.Exposure.ReturnPath = tt.path
				g.Status.Agents = tt.agents
			})
			got := returnRoutes(gw, res)
			got = slices.DeleteFunc(got, func(r v1alpha1.ReturnRoute) bool { return r.Tunnel == "" })
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tunnel routes (-want +got):\n%s", diff)
			}
		})
	}
}

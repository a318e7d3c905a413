package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

func TestDrainTargetsAreTheOtherCurrentAppliedReplicas(t *testing.T) {
	gw := &v1alpha1.VPNGateway{}
	gw.Name, gw.Generation = "vpn", 4
	gw.Spec.Exposure.Replicas = 3
	gw.Status.Agents = []v1alpha1.AgentStatus{
		{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.2", AppliedGeneration: 4},
		{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.6", AppliedGeneration: 4},
		{Pod: "vpn-gateway-2", NodeAddress: "192.0.2.10", AppliedGeneration: 3},                 // behind
		{Pod: "vpn-gateway-3", NodeAddress: "192.0.2.14", AppliedGeneration: 4},                 // scaled away
		{Pod: "vpn-gateway-4", NodeAddress: "192.0.2.18", AppliedGeneration: 4, LastError: "x"}, // scaled away, and failing
	}
	if diff := cmp.Diff([]string{"192.0.2.6"}, drainTargets(gw, "vpn-gateway-0")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := drainTargets(gw, "vpn-gateway-1"); !cmp.Equal(got, []string{"192.0.2.2"}) {
		t.Errorf("from replica 1: %v", got)
	}
}

func TestOnlyClientSAsAreDrained(t *testing.T) {
	sas := []vici.IKESA{
		{UniqueID: 1, Name: swan.MobileConnectionName("staff"), State: "ESTABLISHED"},
		{UniqueID: 2, Name: swan.TunnelConnectionName("hq"), State: "ESTABLISHED"},
		{UniqueID: 3, Name: swan.MobileConnectionName("staff"), State: "CONNECTING"},
		{UniqueID: 4, Name: swan.UserConnectionName("jimp"), State: "ESTABLISHED", Initiator: true},
	}
	got := clientSAs(sas)
	if len(got) != 1 || got[0].UniqueID != 1 {
		t.Errorf("client SAs = %+v, want only #1", got)
	}
}

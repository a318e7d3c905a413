package controllers

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func TestAgentSumsCountCurrentPodsOnly(t *testing.T) {
	gw := gateway(gen.WithReplicas(2))
	gw.Generation = 5
	gw.Status.Agents = []v1alpha1.AgentStatus{
		{Pod: "vpn-gateway-0", AppliedGeneration: 5, Sessions: 3},
		{Pod: "vpn-gateway-1", AppliedGeneration: 4, Sessions: 2},
		{Pod: "vpn-gateway-2", AppliedGeneration: 5, Sessions: 7},
		{Pod: "vpn-gateway-3", AppliedGeneration: 5, Sessions: 1, LastError: "x"},
	}
	if sessions, ready := currentAgentSums(gw); sessions != 5 || ready != 1 {
		t.Errorf("sessions %d ready %d, want 5 and 1", sessions, ready)
	}
	if got := staleAgents(gw); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("stale %v, want [3 2] (last first)", got)
	}
}

func TestGatewayReadyCondition(t *testing.T) {
	phases := func(gen int64, status metav1.ConditionStatus) []metav1.Condition {
		var out []metav1.Condition
		for _, typ := range phaseConditions {
			out = append(out, metav1.Condition{Type: typ, Status: status, Reason: v1alpha1.ReasonReady, Message: "m", ObservedGeneration: gen})
		}
		return out
	}
	applied := condTrue(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonReady, "all")
	for _, tc := range []struct {
		name    string
		conds   []metav1.Condition
		applied metav1.Condition
		want    metav1.ConditionStatus
		reason  string
	}{
		{"all true", phases(2, metav1.ConditionTrue), applied, metav1.ConditionTrue, v1alpha1.ReasonReady},
		{"no phase conditions yet", nil, applied, metav1.ConditionFalse, v1alpha1.ReasonReconciling},
		{"phase conditions of the last generation", phases(1, metav1.ConditionTrue), applied, metav1.ConditionFalse, v1alpha1.ReasonReconciling},
		{"a phase false", phases(2, metav1.ConditionFalse), applied, metav1.ConditionFalse, v1alpha1.ReasonReady},
		{"apply pending", phases(2, metav1.ConditionTrue), condFalse(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonApplyPending, "p"), metav1.ConditionFalse, v1alpha1.ReasonApplyPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := gateway()
			gw.Generation = 2
			gw.Status.Conditions = tc.conds
			got := agentsReadyCondition(gw, tc.applied)
			if diff := cmp.Diff(metav1.Condition{Type: v1alpha1.ConditionReady, Status: tc.want, Reason: tc.reason}, got, cmpopts.IgnoreFields(metav1.Condition{}, "Message")); diff != "" {
				t.Errorf("Ready (-want +got):\n%s", diff)
			}
		})
	}
}

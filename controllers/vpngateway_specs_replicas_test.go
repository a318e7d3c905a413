package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func TestReplicasStayApartAndDrainBeforeTheyStop(t *testing.T) {
	gw := gateway(gen.WithReplicas(3))
	spec := podSpec(gw, Images{Charon: "c", Agent: "a"}, nil)
	if got := *spec.TerminationGracePeriodSeconds; got <= int64(v1alpha1.AgentDrainTimeout.Seconds()) {
		t.Errorf("grace period %ds does not outlast the %v drain", got, v1alpha1.AgentDrainTimeout)
	}
	for _, c := range spec.Containers {
		h := c.Lifecycle
		if h == nil || h.PreStop == nil || h.PreStop.HTTPGet == nil || h.PreStop.HTTPGet.Path != v1alpha1.AgentDrainPath ||
			h.PreStop.HTTPGet.Port.IntValue() != v1alpha1.AgentReadinessPort {
			t.Errorf("container %s: preStop %+v, want GET %s on %d", c.Name, h, v1alpha1.AgentDrainPath, v1alpha1.AgentReadinessPort)
		}
	}
	terms := spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(terms) != 1 || terms[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname ||
		terms[0].PodAffinityTerm.LabelSelector.MatchLabels[v1alpha1.LabelGateway] != gw.Name {
		t.Errorf("anti-affinity %+v, want the gateway's pods kept off one node", terms)
	}
	pdb := podDisruptionBudget(gw)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels[v1alpha1.LabelGateway] != gw.Name {
		t.Errorf("PodDisruptionBudget %+v, want one pod of the gateway at a time", pdb.Spec)
	}
}

package controllers

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// How the gateway's replicas stay apart and stop without dropping users.

// drainGraceSeconds is the pods' terminationGracePeriodSeconds: the
// preStop drain (v1alpha1.AgentDrainTimeout) and then the 30 s the agent and
// charon take to remove the nftables table and delete their SAs.
var drainGraceSeconds = int64(v1alpha1.AgentDrainTimeout.Seconds()) + 30

// drainHook is the preStop hook of both containers: the kubelet sends a
// container its SIGTERM only after the hook returned, so charon keeps
// serving until the agent has redirected its clients to the other
// replicas (v1alpha1.AgentDrainPath answers when they left).
func drainHook() *corev1.Lifecycle {
	return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: v1alpha1.AgentDrainPath, Port: intstr.FromInt32(v1alpha1.AgentReadinessPort),
	}}}
}

// spreadReplicas keeps the gateway's pods on different nodes where it can:
// a node that fails then takes only one replica's clients with it. With
// HostNetwork the host ports already forbid two on one node.
func spreadReplicas(gw *v1alpha1.VPNGateway) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: podLabels(gw.Name)},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

// podDisruptionBudget lets a node drain evict one gateway pod at a time,
// so the other replicas are there to take its redirected clients.
func podDisruptionBudget(gw *v1alpha1.VPNGateway) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(gw, namesFor(gw.Name).Workload),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: podLabels(gw.Name)},
		},
	}
}

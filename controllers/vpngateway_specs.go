package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// The objects made for a gateway are built by pure functions, one file per
// concern: the certificates (vpngateway_specs_cert.go), charon's settings
// (vpngateway_specs_charon.go), the workload (vpngateway_specs_pod.go) and
// the agent's access (vpngateway_specs_agent.go). This file holds what they
// share: the names and the metadata.

// gatewayNames are the names of everything made for one gateway, derived
// from its name only, so cleanup finds them without reading any status.
type gatewayNames struct {
	SelfSignedIssuer string
	CA               string // CA Certificate, its Secret and the CA Issuer
	Server           string // server Certificate
	ServerSecret     string
	CAConfigMap      string
	CharonConfigMap  string
	Workload         string // StatefulSet, Service, pod name prefix
	Agent            string // ServiceAccount, Role, RoleBinding
}

func namesFor(gw string) gatewayNames {
	return gatewayNames{
		SelfSignedIssuer: gw + "-selfsigned",
		CA:               gw + "-ca",
		Server:           gw + "-server",
		ServerSecret:     v1alpha1.ServerTLSSecretName(gw),
		CAConfigMap:      gw + "-ca-bundle",
		CharonConfigMap:  gw + "-charon",
		Workload:         v1alpha1.GatewayWorkloadName(gw),
		Agent:            v1alpha1.AgentServiceAccountName(gw),
	}
}

// podNames are the pods the StatefulSet runs: ordinal 0..replicas-1.
func podNames(gw *v1alpha1.VPNGateway) []string {
	out := make([]string, gw.Spec.EffectiveReplicas())
	for i := range out {
		out[i] = v1alpha1.GatewayPodName(gw.Name, i)
	}
	return out
}

// commonLabels mark every object made for a gateway; the manager's cache
// only holds labelled objects of those kinds.
func commonLabels(gw string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by": "ikegate",
		v1alpha1.LabelGateway:          gw,
	}
}

func podLabels(gw string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "ikegate-gateway",
		"app.kubernetes.io/instance": gw,
		v1alpha1.LabelGateway:        gw,
	}
}

func objectMeta(gw *v1alpha1.VPNGateway, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: gw.Namespace,
		Labels:    commonLabels(gw.Name),
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion:         v1alpha1.GroupVersion.String(),
			Kind:               "VPNGateway",
			Name:               gw.Name,
			UID:                gw.UID,
			Controller:         ptr.To(true),
			BlockOwnerDeletion: ptr.To(true),
		}},
	}
}

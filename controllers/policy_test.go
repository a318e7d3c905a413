package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func TestPolicyDenials(t *testing.T) {
	lb := func(annotations map[string]string) func(*v1alpha1.VPNGateway) {
		return func(g *v1alpha1.VPNGateway) {
			gen.LoadBalancer(g)
			g.Spec.Exposure.LoadBalancer = &v1alpha1.LoadBalancerSettings{Annotations: annotations}
		}
	}
	issuer := func(kind, group, name string) func(*v1alpha1.VPNGateway) {
		return func(g *v1alpha1.VPNGateway) {
			g.Spec.Certificate.IssuerRef = &v1alpha1.IssuerReference{Kind: kind, Group: group, Name: name}
		}
	}
	tolerate := func(keys ...string) func(*v1alpha1.VPNGateway) {
		return func(g *v1alpha1.VPNGateway) {
			for _, k := range keys {
				g.Spec.Exposure.Tolerations = append(g.Spec.Exposure.Tolerations, corev1.Toleration{Key: k, Operator: corev1.TolerationOpExists})
			}
		}
	}
	open := Policy{
		HostNetwork:             true,
		NodeSelector:            map[string]string{"ikegate.io/gateway": "true"},
		TolerationKeys:          []string{"ikegate.io/edge"},
		ClusterIssuers:          []string{"corp", "awspca.cert-manager.io/pca"},
		NamespaceIssuers:        true,
		LoadBalancerAnnotations: []string{"metallb.io/address-pool", "service.beta.kubernetes.io/aws-load-balancer-*"},
	}
	tests := []struct {
		name   string
		policy Policy
		gw     *v1alpha1.VPNGateway
		want   []string
	}{
		{name: "the zero policy allows a LoadBalancer gateway with its own CA", gw: gateway(gen.LoadBalancer)},
		{name: "the zero policy denies host network", gw: gateway(),
			want: []string{"exposure.type HostNetwork is not allowed by the manager's hostNetwork (Helm value policy.hostNetwork, flag --gateway-host-network); use LoadBalancer"}},
		{name: "namespace not listed: only that is said", policy: Policy{Namespaces: []string{"team-b"}}, gw: gateway(tolerate("x")),
			want: []string{"namespace vpn is not in the manager's gatewayNamespaces (Helm value policy.gatewayNamespaces, flag --gateway-namespaces)"}},
		{name: "namespace listed", policy: Policy{Namespaces: []string{"team-b", "vpn"}}, gw: gateway(gen.LoadBalancer)},
		{name: "everything the policy lists", policy: open, gw: gateway(tolerate("ikegate.io/edge"), issuer("ClusterIssuer", "", "corp"), func(g *v1alpha1.VPNGateway) {
			g.Spec.Exposure.NodeSelector = map[string]string{"ikegate.io/gateway": "true", "zone": "a"}
		})},
		{name: "control-plane and match-all tolerations", policy: open, gw: gateway(tolerate("ikegate.io/edge", "node-role.kubernetes.io/control-plane", "")),
			want: []string{
				"exposure.tolerations tolerates taint key node-role.kubernetes.io/control-plane, which is not in the manager's tolerationKeys (Helm value policy.tolerationKeys, flag --gateway-toleration-keys)",
				"exposure.tolerations tolerates every taint (no key), which the manager's tolerationKeys (Helm value policy.tolerationKeys, flag --gateway-toleration-keys) cannot allow",
			}},
		{name: "node selector changes the policy's label", policy: open, gw: gateway(func(g *v1alpha1.VPNGateway) {
			g.Spec.Exposure.NodeSelector = map[string]string{"ikegate.io/gateway": "false"}
		}), want: []string{"exposure.nodeSelector sets ikegate.io/gateway=false, but the manager's nodeSelector (Helm value policy.nodeSelector, flag --gateway-node-selector) requires ikegate.io/gateway=true"}},
		{name: "ClusterIssuer not listed", policy: open, gw: gateway(issuer("ClusterIssuer", "", "letsencrypt")),
			want: []string{"certificate.issuerRef names ClusterIssuer letsencrypt, which is not in the manager's clusterIssuers (Helm value policy.clusterIssuers, flag --gateway-cluster-issuers)"}},
		{name: "external ClusterIssuer listed with its group", policy: open, gw: gateway(issuer("ClusterIssuer", "awspca.cert-manager.io", "pca"))},
		{name: "external ClusterIssuer of the same name in another group", policy: open, gw: gateway(issuer("ClusterIssuer", "example.com", "corp")),
			want: []string{"certificate.issuerRef names ClusterIssuer example.com/corp, which is not in the manager's clusterIssuers (Helm value policy.clusterIssuers, flag --gateway-cluster-issuers)"}},
		{name: "namespace Issuer allowed", policy: open, gw: gateway(issuer("Issuer", "", "team-ca"))},
		{name: "namespace Issuer not allowed", policy: Policy{HostNetwork: true}, gw: gateway(issuer("", "", "team-ca")),
			want: []string{"certificate.issuerRef names Issuer team-ca, and the manager's namespaceIssuers (Helm value policy.namespaceIssuers, flag --gateway-namespace-issuers) is false"}},
		{name: "annotations by key and prefix", policy: open, gw: gateway(lb(map[string]string{
			"metallb.io/address-pool": "edge", "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
		}))},
		{name: "annotations not allowed, sorted", policy: open, gw: gateway(lb(map[string]string{
			"metallb.io/loadBalancerIPs": "198.51.100.10", "metallb.io/address-pool": "edge", "external-dns.alpha.kubernetes.io/hostname": "vpn.example.com",
		})), want: []string{
			"exposure.loadBalancer.annotations key external-dns.alpha.kubernetes.io/hostname is not in the manager's loadBalancerAnnotations (Helm value policy.loadBalancerAnnotations, flag --gateway-load-balancer-annotations)",
			"exposure.loadBalancer.annotations key metallb.io/loadBalancerIPs is not in the manager's loadBalancerAnnotations (Helm value policy.loadBalancerAnnotations, flag --gateway-load-balancer-annotations)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.policy.Denials(tc.gw)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyNodeSelector(t *testing.T) {
	withSelector := func(sel map[string]string) *v1alpha1.VPNGateway {
		return gateway(func(g *v1alpha1.VPNGateway) { g.Spec.Exposure.NodeSelector = sel })
	}
	p := Policy{NodeSelector: map[string]string{"ikegate.io/gateway": "true"}}
	if got := (Policy{}).nodeSelector(withSelector(nil)); got != nil {
		t.Errorf("no selector anywhere: %v, want nil", got)
	}
	if diff := cmp.Diff(map[string]string{"ikegate.io/gateway": "true"}, p.nodeSelector(withSelector(nil))); diff != "" {
		t.Errorf("the policy's alone (-want +got):\n%s", diff)
	}
	gw := withSelector(map[string]string{"zone": "a"})
	if diff := cmp.Diff(map[string]string{"ikegate.io/gateway": "true", "zone": "a"}, p.nodeSelector(gw)); diff != "" {
		t.Errorf("both (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"zone": "a"}, gw.Spec.Exposure.NodeSelector); diff != "" {
		t.Errorf("the gateway's selector was changed (-want +got):\n%s", diff)
	}
}

package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Policy is what whoever installed ikegate lets a VPNGateway ask for. A
// gateway runs as root with NET_ADMIN on the network edge, and the people
// who may create one in a namespace are rarely those who run the cluster,
// so where it runs, on which nodes, with which issuer and which load
// balancer settings are the manager's settings, not the gateway's. The zero
// Policy allows the least: no host network, no tolerations, no issuer but
// the gateway's own CA, no annotations.
type Policy struct {
	// Namespaces that may run gateways; empty allows every namespace the
	// manager watches.
	Namespaces []string
	// HostNetwork allows exposure.type HostNetwork: pods on the nodes'
	// network, answering on the nodes' addresses.
	HostNetwork bool
	// NodeSelector is part of every gateway pod's node selector; a gateway
	// may add labels of its own but not change these.
	NodeSelector map[string]string
	// TolerationKeys are the taint keys a gateway's pods may tolerate.
	TolerationKeys []string
	// ClusterIssuers a gateway's certificate.issuerRef may name: a name for
	// cert-manager.io, "<group>/<name>" for an external issuer's kind.
	ClusterIssuers []string
	// NamespaceIssuers allows an issuerRef of kind Issuer (one in the
	// gateway's own namespace).
	NamespaceIssuers bool
	// LoadBalancerAnnotations are the annotation keys a gateway may set on
	// its Service; a key ending in * allows every key with that prefix.
	LoadBalancerAnnotations []string
}

// policySetting names a Policy field the way the installer sets it: the
// Helm value and the manager flag behind it.
type policySetting struct{ value, flag string }

func (s policySetting) String() string {
	return fmt.Sprintf("the manager's %s (Helm value policy.%s, flag --%s)", s.value, s.value, s.flag)
}

var (
	settingNamespaces     = policySetting{"gatewayNamespaces", "gateway-namespaces"}
	settingHostNetwork    = policySetting{"hostNetwork", "gateway-host-network"}
	settingNodeSelector   = policySetting{"nodeSelector", "gateway-node-selector"}
	settingTolerationKeys = policySetting{"tolerationKeys", "gateway-toleration-keys"}
	settingClusterIssuers = policySetting{"clusterIssuers", "gateway-cluster-issuers"}
	settingIssuers        = policySetting{"namespaceIssuers", "gateway-namespace-issuers"}
	settingAnnotations    = policySetting{"loadBalancerAnnotations", "gateway-load-balancer-annotations"}
)

// Denials lists, in a stable order, what of the gateway the policy does not
// allow, each naming the setting that would allow it; nil when it allows
// everything.
func (p Policy) Denials(gw *v1alpha1.VPNGateway) []string {
	if len(p.Namespaces) > 0 && !slices.Contains(p.Namespaces, gw.Namespace) {
		// Nothing else matters in a namespace that may run no gateway.
		return []string{fmt.Sprintf("namespace %s is not in %s", gw.Namespace, settingNamespaces)}
	}
	var out []string
	if gw.Spec.HostNetwork() && !p.HostNetwork {
		out = append(out, fmt.Sprintf("exposure.type HostNetwork is not allowed by %s; use LoadBalancer", settingHostNetwork))
	}
	out = append(out, p.nodeSelectorDenials(gw)...)
	for _, t := range gw.Spec.Exposure.Tolerations {
		if t.Key == "" {
			out = append(out, fmt.Sprintf("exposure.tolerations tolerates every taint (no key), which %s cannot allow", settingTolerationKeys))
		} else if !slices.Contains(p.TolerationKeys, t.Key) {
			out = append(out, fmt.Sprintf("exposure.tolerations tolerates taint key %s, which is not in %s", t.Key, settingTolerationKeys))
		}
	}
	out = append(out, p.issuerDenials(gw)...)
	if lb := gw.Spec.Exposure.LoadBalancer; lb != nil {
		for _, k := range slices.Sorted(maps.Keys(lb.Annotations)) {
			if !p.allowsAnnotation(k) {
				out = append(out, fmt.Sprintf("exposure.loadBalancer.annotations key %s is not in %s", k, settingAnnotations))
			}
		}
	}
	return out
}

func (p Policy) nodeSelectorDenials(gw *v1alpha1.VPNGateway) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(gw.Spec.Exposure.NodeSelector)) {
		if want, ok := p.NodeSelector[k]; ok && want != gw.Spec.Exposure.NodeSelector[k] {
			out = append(out, fmt.Sprintf("exposure.nodeSelector sets %s=%s, but %s requires %s=%s", k, gw.Spec.Exposure.NodeSelector[k], settingNodeSelector, k, want))
		}
	}
	return out
}

func (p Policy) issuerDenials(gw *v1alpha1.VPNGateway) []string {
	ref := gw.Spec.Certificate.IssuerRef
	if ref == nil {
		return nil // the gateway's own CA
	}
	switch ref.EffectiveKind() {
	case cmv1.ClusterIssuerKind:
		name := ref.Name
		if g := ref.EffectiveGroup(); g != v1alpha1.CertManagerGroup {
			name = g + "/" + ref.Name
		}
		if !slices.Contains(p.ClusterIssuers, name) {
			return []string{fmt.Sprintf("certificate.issuerRef names ClusterIssuer %s, which is not in %s", name, settingClusterIssuers)}
		}
	default:
		if !p.NamespaceIssuers {
			return []string{fmt.Sprintf("certificate.issuerRef names Issuer %s, and %s is false", ref.Name, settingIssuers)}
		}
	}
	return nil
}

func (p Policy) allowsAnnotation(key string) bool {
	for _, a := range p.LoadBalancerAnnotations {
		if prefix, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(key, prefix) || a == key {
			return true
		}
	}
	return false
}

// nodeSelector is the gateway pods' node selector: the policy's labels and
// the gateway's own; nil when neither names any.
func (p Policy) nodeSelector(gw *v1alpha1.VPNGateway) map[string]string {
	if len(p.NodeSelector) == 0 && len(gw.Spec.Exposure.NodeSelector) == 0 {
		return nil
	}
	out := maps.Clone(gw.Spec.Exposure.NodeSelector)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, p.NodeSelector)
	return out
}

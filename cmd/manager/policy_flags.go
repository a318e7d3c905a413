package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// bindPolicyFlags binds what whoever installs ikegate decides for every
// gateway (controllers.Policy, the gateway pods' pull policy) and which
// namespaces the manager watches. The defaults allow the least; the chart's
// policy.* values and watchNamespaces set them.
func bindPolicyFlags(fs *flag.FlagSet, c *config) {
	c.policy.NamespaceIssuers = true
	fs.Var((*listFlag)(&c.policy.Namespaces), "gateway-namespaces", "comma-separated namespaces whose VPNGateways may run; empty: every watched namespace")
	fs.BoolVar(&c.policy.HostNetwork, "gateway-host-network", false, "allow VPNGateways with exposure.type HostNetwork (pods on the nodes' network)")
	fs.Var((*mapFlag)(&c.policy.NodeSelector), "gateway-node-selector", "comma-separated key=value node labels every gateway pod's node selector carries")
	fs.Var((*listFlag)(&c.policy.TolerationKeys), "gateway-toleration-keys", "comma-separated taint keys gateway pods may tolerate")
	fs.Var((*listFlag)(&c.policy.ClusterIssuers), "gateway-cluster-issuers", "comma-separated ClusterIssuers gateways may name (<group>/<name> for other groups than cert-manager.io)")
	fs.BoolVar(&c.policy.NamespaceIssuers, "gateway-namespace-issuers", true, "allow gateways to name an Issuer of their own namespace")
	fs.Var((*listFlag)(&c.policy.LoadBalancerAnnotations), "gateway-load-balancer-annotations", "comma-separated annotation keys gateways may set on their LoadBalancer Service; a trailing * matches a prefix")
	fs.StringVar((*string)(&c.images.PullPolicy), "gateway-image-pull-policy", "", "image pull policy of the gateway pods (Always, IfNotPresent, Never); empty: the API server's default")
	fs.Var((*listFlag)(&c.watchNamespaces), "watch-namespaces", "comma-separated namespaces the manager watches (and needs RBAC in); empty: every namespace")
}

func validatePolicyFlags(c config) error {
	if p := c.images.PullPolicy; p != "" && !slices.Contains([]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}, p) {
		return fmt.Errorf("--gateway-image-pull-policy %q: want Always, IfNotPresent or Never", p)
	}
	if len(c.watchNamespaces) > 0 {
		for _, ns := range c.policy.Namespaces {
			if !slices.Contains(c.watchNamespaces, ns) {
				return fmt.Errorf("--gateway-namespaces names %s, which is not in --watch-namespaces", ns)
			}
		}
	}
	return nil
}

// listFlag is a comma-separated list; empty items are dropped.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// mapFlag is comma-separated key=value pairs.
type mapFlag map[string]string

func (m *mapFlag) String() string {
	var parts []string
	for k, v := range *m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (m *mapFlag) Set(v string) error {
	*m = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		k, val, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", s)
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = val
	}
	return nil
}

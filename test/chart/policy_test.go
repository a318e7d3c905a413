package chart

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With watchNamespaces the chart grants the generated rules per namespace:
// a Role and RoleBinding in each watched namespace, and a ClusterRole with
// only the cluster-scoped kinds. Together they grant exactly what the
// generated ClusterRole does (which TestManagerRBAC holds to the calls the
// manager makes), and the manager is told to watch those namespaces.
func TestChartRBACPerNamespace(t *testing.T) {
	generated := grants(t, generatedRole(t))
	watched := []string{"team-a", "team-b"}
	objs := helmTemplate(t, releaseName, namespace, "watchNamespaces={team-a,team-b}")

	// The metrics ClusterRoles (metrics_rbac_test.go) are not the manager's rules.
	cluster := grants(t, named(t, objs, "ClusterRole", "ikegate-manager"))
	for g := range cluster {
		if g.resource != "nodes" && g.resource != "clusterissuers" {
			t.Errorf("the ClusterRole grants %s on namespaced %s", g.verb, g.resource)
		}
	}
	union := maps.Clone(cluster)
	sa := one(t, objs, "ServiceAccount").GetName()
	for _, ns := range watched {
		role := namedIn(t, objs, "Role", ns, "ikegate-manager")
		inNS := grants(t, role)
		for g := range cluster {
			if inNS[g] {
				t.Errorf("Role in %s repeats the ClusterRole's %v", ns, g)
			}
		}
		for g := range inNS {
			union[g] = true
		}
		binding := namedIn(t, objs, "RoleBinding", ns, "ikegate-manager")
		var rb rbacv1.RoleBinding
		convertStrict(t, binding, &rb)
		wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}
		if d := cmp.Diff(wantSubjects, rb.Subjects); d != "" || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.GetName() {
			t.Errorf("RoleBinding in %s binds %+v to %+v:\n%s", ns, rb.RoleRef, rb.Subjects, d)
		}
		if d := cmp.Diff(grants(t, namedIn(t, objs, "Role", watched[0], "ikegate-manager")), inNS); d != "" {
			t.Errorf("Roles of %s and %s differ:\n%s", watched[0], ns, d)
		}
	}
	if d := cmp.Diff(generated, union); d != "" {
		t.Errorf("ClusterRole and Roles together (+) against config/rbac/role.yaml (-):\n%s", d)
	}
	args := managerDeployment(t, objs).Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--watch-namespaces=team-a,team-b") {
		t.Errorf("manager args %v lack --watch-namespaces=team-a,team-b", args)
	}
	if got := ofKind(helmTemplate(t, releaseName, namespace), "RoleBinding"); len(got) != 1 {
		t.Errorf("without watchNamespaces: RoleBindings %v, want the leader election's only", keys(got))
	}
}

// The policy values reach the manager as its flags.
func TestPolicyValuesBecomeFlags(t *testing.T) {
	args := managerDeployment(t, helmTemplate(t, releaseName, namespace,
		"policy.gatewayNamespaces={team-a}",
		"watchNamespaces={team-a}",
		"policy.hostNetwork=true",
		`policy.nodeSelector.ikegate\.io/gateway=edge`,
		"policy.tolerationKeys={ikegate.io/edge}",
		"policy.clusterIssuers={corp,awspca.cert-manager.io/pca}",
		"policy.namespaceIssuers=false",
		"policy.loadBalancerAnnotations={metallb.io/*}",
		"image.pullPolicy=Always",
	)).Spec.Template.Spec.Containers[0].Args
	want := []string{
		"--gateway-image-pull-policy=Always",
		"--watch-namespaces=team-a",
		"--gateway-namespaces=team-a",
		"--gateway-host-network=true",
		"--gateway-node-selector=ikegate.io/gateway=edge",
		"--gateway-toleration-keys=ikegate.io/edge",
		"--gateway-cluster-issuers=corp,awspca.cert-manager.io/pca",
		"--gateway-namespace-issuers=false",
		"--gateway-load-balancer-annotations=metallb.io/*",
	}
	if d := cmp.Diff(want, args[len(args)-len(want):]); d != "" {
		t.Errorf("manager args (-want +got):\n%s", d)
	}
}

type grant struct{ verb, group, resource string }

// grants expands a role's rules into one grant per verb, group and resource.
func grants(t testing.TB, role *unstructured.Unstructured) map[grant]bool {
	t.Helper()
	var r rbacv1.ClusterRole
	convertStrict(t, role, &r)
	out := map[grant]bool{}
	for _, rule := range r.Rules {
		if len(rule.ResourceNames) > 0 {
			t.Errorf("%s: rule with resourceNames %v", key(role), rule.ResourceNames)
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					out[grant{v, g, res}] = true
				}
			}
		}
	}
	return out
}

func namedIn(t testing.TB, objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s/%s rendered; have %v", kind, ns, name, keys(objs))
	return nil
}

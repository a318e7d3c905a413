package controllers

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

// grantedNotCalled are rules the manager needs without a call of its own
// that a test could see.
var grantedNotCalled = map[kube.Call]string{
	// OwnerReferencesPermissionEnforcement admits an owner reference with
	// blockOwnerDeletion only from who may update the owner's finalizers.
	{Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "vpngateways/finalizers"}: "blockOwnerDeletion on every object made for a gateway",
	// The events broadcaster counts a repeated event in its series and
	// patches it every 30 minutes.
	{Verb: "patch", Group: "events.k8s.io", Resource: "events"}: "the series of repeated Events",
}

// TestManagerRBAC runs the manager as its ServiceAccount, bound to the
// ClusterRole generated from the RBAC markers (config/rbac), through every
// kind of object it makes, reads and removes, and records each API call it
// makes. A call the markers do not grant fails the scenario (the API server
// refuses it, and refuses the agent's Role as escalation unless the manager
// holds what it grants); a granted rule no call used fails the comparison.
func TestManagerRBAC(t *testing.T) {
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	ctx := context.Background()

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rolePath := filepath.Join(root, "config", "rbac", "role.yaml")
	applyFiles(t, c, rolePath)
	if err := c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ikegate-manager"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ikegate-manager"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ikegate-manager", Namespace: "ikegate-system"}},
	}); err != nil {
		t.Fatal(err)
	}
	recorded, calls := kube.RecordCalls(asManager(cfg))
	startManager(t, recorded, s, Options{StatusWorkers: 4, Policy: Policy{HostNetwork: true}})

	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}}
	gwConds := func() []metav1.Condition { return gw.Status.Conditions }
	eventually(t, "CertificateReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	eventually(t, "the agent's RoleBinding", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &rbacv1.RoleBinding{})
	})
	eventually(t, "CA bundle", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-ca-bundle"}, &corev1.ConfigMap{})
	})
	eventually(t, "NoNodesSelected (nodes readable)", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodesSelected))
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}
	userConds := func() []metav1.Condition { return user.Status.Conditions }
	eventually(t, "user Valid", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))

	// A LoadBalancer gateway has a Service.
	edge := gen.Gateway(ns, "edge", gen.LoadBalancer)
	if err := c.Create(ctx, edge); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the LoadBalancer Service", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.GatewayWorkloadName("edge")}, &corev1.Service{})
	})

	// A gateway the policy denies gets a condition naming the setting and
	// nothing else.
	denied := gen.Gateway(ns, "denied", gen.LoadBalancer, func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}}
	})
	if err := c.Create(ctx, denied); err != nil {
		t.Fatal(err)
	}
	deniedConds := func() []metav1.Condition { return denied.Status.Conditions }
	eventually(t, "PolicyDenied", conditionIs(c, denied, deniedConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonPolicyDenied))
	if msg := meta.FindStatusCondition(denied.Status.Conditions, v1alpha1.ConditionWorkloadReady).Message; !strings.Contains(msg, "node-role.kubernetes.io/control-plane") || !strings.Contains(msg, "Helm value policy.tolerationKeys") {
		t.Errorf("PolicyDenied message %q does not name the toleration and the setting", msg)
	}
	for _, o := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.GatewayWorkloadName("denied")}, o); !apierrors.IsNotFound(err) {
			t.Errorf("denied gateway: %T: %v, want NotFound", o, err)
		}
	}

	// A site-to-site tunnel gets a status (its PSK Secret is missing).
	tunnel := gen.Tunnel(ns, "site")
	if err := c.Create(ctx, tunnel); err != nil {
		t.Fatal(err)
	}
	tunnelConds := func() []metav1.Condition { return tunnel.Status.Conditions }
	eventually(t, "tunnel Valid", conditionIs(c, tunnel, tunnelConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))

	// A user's client certificate is issued, bundled (read with its key
	// from the API server) and, once the user stops asking, deleted.
	certGateway(t, c, ns)
	alice := gen.User(ns, "alice", "alice@example.com", gen.OfGateway("certs"), func(u *v1alpha1.VPNUser) {
		u.Spec.PasswordSecretRef = nil
		u.Spec.Certificate = &v1alpha1.UserCertificate{Issue: true}
	})
	if err := c.Create(ctx, alice); err != nil {
		t.Fatal(err)
	}
	aliceConds := func() []metav1.Condition { return alice.Status.Conditions }
	eventually(t, "ProfileReady with a client certificate", conditionIs(c, alice, aliceConds, v1alpha1.ConditionProfileReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	alice.Spec.Certificate.Issue = false
	if err := c.Update(ctx, alice); err != nil {
		t.Fatal(err)
	}
	eventually(t, "client certificate Secret deleted", gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-vpn-client-tls"}}))

	if err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SecretNotFound", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
	warningEvent(t, c, ns, "jimp", v1alpha1.ReasonSecretNotFound, "jimp")

	if err := c.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gateway finalized", gone(c, gw))
	eventually(t, "issued Secret deleted", gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-server-tls"}}))

	granted := grantedCalls(t, rolePath)
	used := map[kube.Call]bool{}
	for _, call := range calls.Calls() {
		call.Namespace = ""
		used[call] = true
	}
	for call := range grantedNotCalled {
		used[call] = true
	}
	// The API server lets the manager grant the agent only what it holds
	// itself, so the agent's Role counts as used.
	_, agentRole, _ := agentRBAC(gw)
	for call := range expandRules(agentRole.Rules) {
		used[call] = true
	}
	if missing := callsNotIn(used, granted); len(missing) > 0 {
		t.Errorf("the manager made calls config/rbac/role.yaml does not grant (the API server refused them):\n%s", strings.Join(missing, "\n"))
	}
	if unused := callsNotIn(granted, used); len(unused) > 0 {
		t.Errorf("config/rbac/role.yaml grants what the manager never did; remove it from the RBAC markers:\n%s", strings.Join(unused, "\n"))
	}
}

// TestManagerRBACPerNamespace installs the chart's RBAC for watchNamespaces
// (a Role per namespace, a ClusterRole for the cluster-scoped kinds only)
// and runs the manager as its ServiceAccount with its cache on that
// namespace: the Roles are enough, no call leaves the namespace but those on
// Nodes and ClusterIssuers, and a gateway elsewhere is not touched.
func TestManagerRBACPerNamespace(t *testing.T) {
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	ctx := context.Background()
	const ns, elsewhere = "vpn", "elsewhere"

	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: elsewhere}}); err != nil {
		t.Fatal(err)
	}
	unwatched := gen.Gateway(elsewhere, "vpn", gen.LoadBalancer)
	if err := c.Create(ctx, unwatched); err != nil {
		t.Fatal(err)
	}
	applyFiles(t, c, chartRBAC(t, "watchNamespaces={"+ns+"}"))
	recorded, calls := kube.RecordCalls(asManager(cfg))
	startManager(t, recorded, s, Options{StatusWorkers: 4, Policy: Policy{HostNetwork: true}}, ns)

	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}}
	gwConds := func() []metav1.Condition { return gw.Status.Conditions }
	eventually(t, "CertificateReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	eventually(t, "NoNodesSelected (nodes readable)", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodesSelected))
	eventually(t, "the agent's RoleBinding", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &rbacv1.RoleBinding{})
	})
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}
	userConds := func() []metav1.Condition { return user.Status.Conditions }
	eventually(t, "user Valid", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	eventually(t, "profile written", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "jimp-vpn-profile"}, &corev1.Secret{})
	})

	if err := c.Get(ctx, client.ObjectKeyFromObject(unwatched), unwatched); err != nil {
		t.Fatal(err)
	}
	if len(unwatched.Finalizers) > 0 || len(unwatched.Status.Conditions) > 0 {
		t.Errorf("the gateway of an unwatched namespace was touched: finalizers %v, conditions %v", unwatched.Finalizers, unwatched.Status.Conditions)
	}
	for _, call := range calls.Calls() {
		switch call.Namespace {
		case ns:
		case "":
			if call.Resource != "nodes" && call.Resource != "clusterissuers" {
				t.Errorf("cluster-wide call %+v", call)
			}
		default:
			t.Errorf("call outside the watched namespace: %+v", call)
		}
	}
}

// asManager is cfg impersonating the manager's ServiceAccount, to which
// config/rbac and the chart bind its rules.
func asManager(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:ikegate-system:ikegate-manager",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:ikegate-system", "system:authenticated"},
	}
	return out
}

// chartRBAC renders the chart's manager RBAC (release ikegate in
// ikegate-system) with the given values into a file.
func chartRBAC(t testing.TB, set ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "ikegate", filepath.Join(root, "charts", "ikegate"), "--namespace", "ikegate-system", "--show-only", "templates/clusterrole.yaml"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(filepath.Join(root, "bin", "helm"), args...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %v (run `make tools`): %v", args, err)
	}
	path := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// callsNotIn lists, sorted, the calls of a that b lacks.
func callsNotIn(a, b map[kube.Call]bool) []string {
	var out []string
	for c := range a {
		if !b[c] {
			out = append(out, fmt.Sprintf("%s %s %s", c.Verb, cmp.Or(c.Group, `""`), c.Resource))
		}
	}
	slices.Sort(out)
	return out
}

// grantedCalls expands the rules of the generated ClusterRole into one call
// per verb, group and resource.
func grantedCalls(t testing.TB, path string) map[kube.Call]bool {
	t.Helper()
	out := map[kube.Call]bool{}
	for _, u := range kube.DecodeFiles(t, path) {
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			t.Fatal(err)
		}
		maps.Copy(out, expandRules(role.Rules))
	}
	return out
}

// expandRules are the calls rules grant, one per verb, group and resource
// (resource names aside).
func expandRules(rules []rbacv1.PolicyRule) map[kube.Call]bool {
	out := map[kube.Call]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[kube.Call{Verb: v, Group: g, Resource: res}] = true
				}
			}
		}
	}
	return out
}

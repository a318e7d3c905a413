package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

func TestHelmLint(t *testing.T) {
	for name, set := range map[string][]string{
		"defaults":       nil,
		"serviceMonitor": {"metrics.serviceMonitor.enabled=true"},
		"monitoring":     {"metrics.podMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "grafana.dashboard.enabled=true"},
		"no CRDs":        {"crds.install=false"},
		"external RBAC":  {"rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=ikegate"},
		"per namespace":  {"watchNamespaces={team-a,team-b}", "policy.gatewayNamespaces={team-a}", "policy.hostNetwork=true"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(t)}
			for _, s := range set {
				args = append(args, "--set", s)
			}
			if out, err := helm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// The schema refuses values that would otherwise render silently wrong.
func TestValuesSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"misspelt key", []string{"manager.replica=2"}, "additional properties 'replica' not allowed"},
		{"unknown top-level key", []string{"crd.install=false"}, "additional properties 'crd' not allowed"},
		{"pull policy", []string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
		{"digest", []string{"image.manager.digest=latest"}, "digest"},
		{"port", []string{"manager.metricsPort=70000"}, "metricsPort"},
		{"existing account unnamed", []string{"serviceAccount.create=false"}, "serviceAccount/name"},
		{"privileged manager", []string{"manager.securityContext.privileged=true"}, "privileged"},
		{"flag syntax", []string{"manager.extraArgs[0]=-v=4"}, "extraArgs"},
		{"monitor without service", []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, "metrics.service.enabled"},
		{"host network not a boolean", []string{"policy.hostNetwork=yes"}, "hostNetwork"},
		{"watched namespace not a name", []string{"watchNamespaces={Team_A}"}, "watchNamespaces"},
		{"gateway namespace not watched", []string{"watchNamespaces={team-a}", "policy.gatewayNamespaces={team-b}"}, "team-b, which is not in watchNamespaces"},
		{"comma in a policy list", []string{`policy.tolerationKeys[0]=a\,b`}, "tolerationKeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", releaseName, chartDir(t)}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error about %q", tc.set, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template %v: error %q does not mention %q", tc.set, err, tc.want)
			}
		})
	}
}

// The chart's CRDs are those controller-gen generated, byte for byte in the
// chart's files and unchanged but for labels and Helm's keep annotation when
// rendered.
func TestChartCRDsAreGenerated(t *testing.T) {
	root := repoRoot(t)
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	copies, _ := filepath.Glob(filepath.Join(chartDir(t), "files", "crds", "*.yaml"))
	if len(bases) == 0 {
		t.Fatal("config/crd/bases holds no CRDs; run `make manifests`")
	}
	var baseNames, copyNames []string
	for _, p := range bases {
		baseNames = append(baseNames, filepath.Base(p))
	}
	for _, p := range copies {
		copyNames = append(copyNames, filepath.Base(p))
	}
	if d := cmp.Diff(baseNames, copyNames); d != "" {
		t.Fatalf("charts/ikegate/files/crds differs from config/crd/bases (run `make manifests`) (-bases +chart):\n%s", d)
	}
	for i := range bases {
		a, _ := os.ReadFile(bases[i])
		b, _ := os.ReadFile(copies[i])
		if string(a) != string(b) {
			t.Errorf("charts/ikegate/files/crds/%s is stale; run `make manifests`", baseNames[i])
		}
	}

	want := byKey(t, generatedCRDs(t))
	// --include-crds would also print a crds/ directory; each CRD must come
	// from exactly one place.
	out, err := helm(t, "template", releaseName, chartDir(t), "--namespace", namespace, "--include-crds")
	if err != nil {
		t.Fatal(err)
	}
	got := byKey(t, ofKind(decodeObjects(t, out), "CustomResourceDefinition"))
	if d := cmp.Diff(sortedKeys(want), sortedKeys(got)); d != "" {
		t.Fatalf("rendered CRDs (-generated +chart):\n%s", d)
	}
	for k, g := range got {
		if v := g.GetAnnotations()["helm.sh/resource-policy"]; v != "keep" {
			t.Errorf("%s: helm.sh/resource-policy = %q, want keep (uninstalling must not delete every resource)", k, v)
		}
		if v := g.GetLabels()["app.kubernetes.io/part-of"]; v != "ikegate" {
			t.Errorf("%s: label app.kubernetes.io/part-of = %q, want ikegate", k, v)
		}
		g = g.DeepCopy()
		unstructured.RemoveNestedField(g.Object, "metadata", "annotations", "helm.sh/resource-policy")
		unstructured.RemoveNestedField(g.Object, "metadata", "labels")
		if d := cmp.Diff(want[k].Object, g.Object); d != "" {
			t.Errorf("%s differs from config/crd/bases (-generated +chart):\n%s", k, d)
		}
	}

	if crds := ofKind(helmTemplate(t, releaseName, namespace, "crds.install=false"), "CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("crds.install=false still renders %v", keys(crds))
	}
	for _, crd := range ofKind(helmTemplate(t, releaseName, namespace, "crds.keep=false"), "CustomResourceDefinition") {
		if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("crds.keep=false: %s still has helm.sh/resource-policy", key(crd))
		}
	}
}

// The chart's ClusterRole grants exactly the rules generated from the
// controllers' RBAC markers, and binds them to the manager's account.
func TestChartClusterRoleIsGenerated(t *testing.T) {
	want := generatedRole(t)
	objs := helmTemplate(t, releaseName, namespace)
	role := named(t, objs, "ClusterRole", want.GetName())
	if d := cmp.Diff(field(t, want, "rules"), field(t, role, "rules")); d != "" {
		t.Errorf("ClusterRole rules differ from config/rbac/role.yaml (-generated +chart):\n%s", d)
	}
	if role.GetName() != want.GetName() {
		t.Errorf("ClusterRole %q, want the generated name %q for release %q", role.GetName(), want.GetName(), releaseName)
	}
	binding := named(t, objs, "ClusterRoleBinding", want.GetName())
	sa := one(t, objs, "ServiceAccount")
	wantSubjects := []any{map[string]any{"kind": "ServiceAccount", "name": sa.GetName(), "namespace": namespace}}
	if d := cmp.Diff(wantSubjects, field(t, binding, "subjects")); d != "" {
		t.Errorf("ClusterRoleBinding subjects:\n%s", d)
	}
	if got := field(t, binding, "roleRef", "name"); got != role.GetName() {
		t.Errorf("ClusterRoleBinding binds %v, want %s", got, role.GetName())
	}
}

func managerDeployment(t testing.TB, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	convertStrict(t, one(t, objs, "Deployment"), &d)
	return &d
}

// convertStrict decodes u into a typed object, failing on fields the type
// does not have (a typo in a template would otherwise vanish).
func convertStrict(t testing.TB, u *unstructured.Unstructured, into any) {
	t.Helper()
	data, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", key(u), err)
	}
}

func TestManagerDeployment(t *testing.T) {
	d := managerDeployment(t, helmTemplate(t, releaseName, namespace))
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]

	wantPodSC := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](65532),
		RunAsGroup:     ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if diff := cmp.Diff(wantPodSC, pod.SecurityContext); diff != "" {
		t.Errorf("pod securityContext:\n%s", diff)
	}
	wantSC := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if diff := cmp.Diff(wantSC, c.SecurityContext); diff != "" {
		t.Errorf("container securityContext:\n%s", diff)
	}

	wantArgs := []string{
		"--metrics-bind-address=:8443",
		"--health-probe-bind-address=:8081",
		"--leader-elect=true",
		"--agent-image=ghcr.io/ikegate/agent:v0.1.0",
		"--charon-image=ghcr.io/ikegate/charon:v0.1.0",
		// The policy's safe defaults, explicit in the manifest.
		"--gateway-image-pull-policy=IfNotPresent",
		"--gateway-host-network=false",
		"--gateway-namespace-issuers=true",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args:\n%s", diff)
	}
	if c.Image != "ghcr.io/ikegate/manager:v0.1.0" {
		t.Errorf("image %q", c.Image)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if diff := cmp.Diff(map[string]int32{"metrics": 8443, "health": 8081}, ports); diff != "" {
		t.Errorf("ports:\n%s", diff)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "health" {
			t.Errorf("probe %s: %+v", name, probe)
		}
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod template lacks selector label %s=%s", k, v)
		}
	}

	svc := one(t, helmTemplate(t, releaseName, namespace), "Service")
	for k, v := range field(t, svc, "spec", "selector").(map[string]any) {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%v, which the manager pods lack", k, v)
		}
	}
}

func TestManagerValues(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	d := managerDeployment(t, helmTemplate(t, releaseName, namespace,
		"image.manager.tag=v9.9.9",
		"image.agent.digest="+digest,
		"image.charon.repository=registry.example.com/ikegate/charon",
		"manager.leaderElection.enabled=false",
		"manager.replicas=2",
		"manager.metricsPort=9443",
		"manager.extraArgs[0]=--zap-log-level=debug",
	))
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/ikegate/manager:v9.9.9" {
		t.Errorf("image %q", c.Image)
	}
	wantArgs := []string{
		"--metrics-bind-address=:9443",
		"--health-probe-bind-address=:8081",
		"--leader-elect=false",
		"--agent-image=ghcr.io/ikegate/agent@" + digest,
		"--charon-image=registry.example.com/ikegate/charon:v0.1.0",
		"--gateway-image-pull-policy=IfNotPresent",
		"--gateway-host-network=false",
		"--gateway-namespace-issuers=true",
		"--zap-log-level=debug",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args:\n%s", diff)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *d.Spec.Replicas)
	}
	objs := helmTemplate(t, releaseName, namespace, "manager.leaderElection.enabled=false")
	if roles := ofKind(objs, "Role"); len(roles) != 0 {
		t.Errorf("leader election off still renders %v", keys(roles))
	}
}

// Another release name and namespace: every name follows the release, and
// every namespaced object and subject lands in the release's namespace.
func TestOtherRelease(t *testing.T) {
	objs := helmTemplate(t, "vpn", "network")
	for _, o := range objs {
		if !strings.HasPrefix(o.GetName(), "vpn-ikegate") && o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s is not named after the release", key(o))
		}
		switch o.GetKind() {
		case "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
			if o.GetNamespace() != "" {
				t.Errorf("%s: cluster-scoped object with a namespace", key(o))
			}
		default:
			if o.GetNamespace() != "network" {
				t.Errorf("%s: not in the release namespace", key(o))
			}
		}
		if subjects, ok := o.Object["subjects"].([]any); ok {
			for _, s := range subjects {
				if ns := s.(map[string]any)["namespace"]; ns != "network" {
					t.Errorf("%s: subject in namespace %v", key(o), ns)
				}
			}
		}
	}
	d := managerDeployment(t, objs)
	if d.Spec.Template.Spec.ServiceAccountName != "vpn-ikegate-manager" {
		t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
	}

	objs = helmTemplate(t, "vpn", "network", "rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=vpn-operator")
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if got := ofKind(objs, kind); len(got) != 0 {
			t.Errorf("rbac.create=false, serviceAccount.create=false: still renders %v", keys(got))
		}
	}
	if sa := managerDeployment(t, objs).Spec.Template.Spec.ServiceAccountName; sa != "vpn-operator" {
		t.Errorf("serviceAccountName %q, want the existing vpn-operator", sa)
	}
}

// The envtest API server has no prometheus-operator CRDs, so the optional
// ServiceMonitor is checked against prometheus-operator's own Go types.
func TestServiceMonitor(t *testing.T) {
	if got := ofKind(helmTemplate(t, releaseName, namespace), "ServiceMonitor"); len(got) != 0 {
		t.Fatalf("ServiceMonitor rendered by default: %v", keys(got))
	}
	objs := helmTemplate(t, releaseName, namespace,
		"metrics.serviceMonitor.enabled=true",
		"metrics.serviceMonitor.labels.release=prometheus",
		"metrics.serviceMonitor.interval=15s")
	u := one(t, objs, "ServiceMonitor")
	if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %s", u.GetAPIVersion())
	}
	var sm monitoringv1.ServiceMonitor
	convertStrict(t, u, &sm)
	if sm.Labels["release"] != "prometheus" {
		t.Errorf("labels %v lack release=prometheus", sm.Labels)
	}
	svc := one(t, objs, "Service")
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the metrics Service lacks", k, v)
		}
	}
	if diff := cmp.Diff([]string{namespace}, sm.Spec.NamespaceSelector.MatchNames); diff != "" {
		t.Errorf("namespaceSelector:\n%s", diff)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Interval != "15s" {
		t.Errorf("endpoints %+v", sm.Spec.Endpoints)
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != "metrics" {
		t.Errorf("metrics Service ports %v have no port named metrics", ports)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortStrings(ks)
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}

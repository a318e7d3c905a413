package chart

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
)

const fieldOwner = "ikegate-chart-test"

// dryRunApply sends u to the API server as a server-side apply that runs
// every admission and validation stage but persists nothing.
func dryRunApply(t testing.TB, c client.Client, u *unstructured.Unstructured) error {
	t.Helper()
	return c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

// One API server for the tests below: starting one takes seconds.
func TestAPIServer(t *testing.T) {
	_, c, _ := testenv.Start(t)
	// What `helm install --create-namespace` or the kustomize Namespace does
	// first: namespaced objects cannot be dry-run into a missing namespace.
	for _, ns := range []string{namespace, "network"} {
		if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ManifestsApply", func(t *testing.T) { testManifestsApply(t, c) })
	t.Run("ChartCRDsCreate", func(t *testing.T) { testChartCRDsCreate(t, c) })
	t.Run("DryRunApplyRefuses", func(t *testing.T) { testDryRunApplyRefuses(t, c) })
}

// Every object the chart and config/default render is accepted by a real API
// server: schema, defaulting, validation (CEL of the CRDs included) and
// server-side apply's typed conversion, which refuses fields the schema lacks.
func testManifestsApply(t *testing.T, c client.Client) {

	for _, tc := range []struct {
		name string
		objs []*unstructured.Unstructured
	}{
		{"helm defaults", helmTemplate(t, releaseName, namespace)},
		{"helm other release", helmTemplate(t, "vpn", "network",
			"manager.replicas=2",
			"manager.extraArgs[0]=--zap-log-level=debug",
			"manager.nodeSelector.kubernetes\\.io/os=linux",
			"manager.tolerations[0].key=node-role.kubernetes.io/control-plane",
			"manager.tolerations[0].effect=NoSchedule",
			"manager.podAnnotations.example\\.com/team=network",
			"imagePullSecrets[0].name=registry",
			"crds.keep=false")},
		{"kustomize", kustomizeDefault(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.objs) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, o := range tc.objs {
				if err := dryRunApply(t, c, o); err != nil {
					t.Errorf("%s: %v", key(o), err)
				}
			}
		})
	}
}

// The chart's CRDs are also created from scratch under a group of their own,
// which runs the checks an update of the installed ones may skip (structural
// schema, CEL compilation and cost limits on every rule).
func testChartCRDsCreate(t *testing.T, c client.Client) {
	crds := ofKind(helmTemplate(t, releaseName, namespace), "CustomResourceDefinition")
	if len(crds) == 0 {
		t.Fatal("no CRDs rendered")
	}
	for _, crd := range crds {
		crd = crd.DeepCopy()
		const group = "chart-test.ikegate.io"
		plural := field(t, crd, "spec", "names", "plural").(string)
		crd.SetName(plural + "." + group)
		if err := unstructured.SetNestedField(crd.Object, group, "spec", "group"); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(t.Context(), crd, client.DryRunAll, client.FieldOwner(fieldOwner)); err != nil {
			t.Errorf("creating %s: %v", crd.GetName(), err)
		}
	}
}

// The checks above can fail: the API server refuses an unknown field, an
// invalid value, and a CRD change it forbids.
func testDryRunApplyRefuses(t *testing.T, c client.Client) {
	objs := helmTemplate(t, releaseName, namespace)
	deploy := one(t, objs, "Deployment")

	for _, tc := range []struct {
		name   string
		obj    *unstructured.Unstructured
		change func(u *unstructured.Unstructured)
		want   string
	}{
		{"unknown field", deploy, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, true, "spec", "template", "spec", "runAsNonRoot")
		}, "field not declared in schema"},
		{"invalid value", deploy, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "Sometimes", "spec", "template", "spec", "restartPolicy")
		}, "restartPolicy"},
		{"CRD scope change", ofKind(objs, "CustomResourceDefinition")[0], func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "Cluster", "spec", "scope")
		}, "scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.obj.DeepCopy()
			tc.change(u)
			err := dryRunApply(t, c, u)
			if err == nil {
				t.Fatalf("dry-run apply of %s accepted", key(u))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

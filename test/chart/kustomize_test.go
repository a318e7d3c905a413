package chart

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// helmOnlyLabels are the labels Helm adds that kustomize has no value for.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}

// config/default and the chart (release ikegate in ikegate-system, default
// values) install the same objects under the same names, with the same
// specs; only kustomize creates the Namespace (helm install
// --create-namespace does it for the chart).
func TestKustomizeMatchesHelm(t *testing.T) {
	kust := byKey(t, kustomizeDefault(t))
	chart := byKey(t, helmTemplate(t, releaseName, namespace))

	wantKeys := append(sortedKeys(chart), "Namespace//"+namespace)
	if d := cmp.Diff(sortStrings(wantKeys), sortedKeys(kust)); d != "" {
		t.Fatalf("objects (-helm +kustomize):\n%s", d)
	}

	for k, h := range chart {
		ko := kust[k]
		if ko.GetNamespace() != h.GetNamespace() {
			t.Errorf("%s: namespace %q vs %q", k, h.GetNamespace(), ko.GetNamespace())
		}
		var paths [][]string
		switch h.GetKind() {
		case "CustomResourceDefinition", "Deployment", "Service":
			paths = [][]string{{"spec"}}
		case "ClusterRole", "Role":
			paths = [][]string{{"rules"}}
		case "ClusterRoleBinding", "RoleBinding":
			paths = [][]string{{"roleRef"}, {"subjects"}}
		case "ServiceAccount":
		default:
			t.Errorf("%s: kind not compared; add it here", k)
		}
		for _, p := range paths {
			hv := normalize(t, h, p)
			kv := normalize(t, ko, p)
			if d := cmp.Diff(hv, kv); d != "" {
				t.Errorf("%s %v (-helm +kustomize):\n%s", k, p, d)
			}
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of"} {
			if h.GetLabels()[l] != ko.GetLabels()[l] {
				t.Errorf("%s: label %s %q vs %q", k, l, h.GetLabels()[l], ko.GetLabels()[l])
			}
		}
	}

	// The CRDs and the ClusterRole both come from the generators.
	for _, crd := range generatedCRDs(t) {
		if d := cmp.Diff(crd.Object["spec"], kust[key(crd)].Object["spec"]); d != "" {
			t.Errorf("%s differs from config/crd/bases:\n%s", key(crd), d)
		}
	}
}

// normalize returns the field at path of a copy of u, with the pod
// template's Helm-only labels and the CRD's Helm annotation removed.
func normalize(t testing.TB, u *unstructured.Unstructured, path []string) any {
	t.Helper()
	c := u.DeepCopy()
	for _, l := range helmOnlyLabels {
		unstructured.RemoveNestedField(c.Object, "spec", "template", "metadata", "labels", l)
	}
	return field(t, c, path...)
}

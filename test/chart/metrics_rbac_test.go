package chart

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// named is the one object of kind and name.
func named(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range ofKind(objs, kind) {
		if o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %v", kind, name, keys(ofKind(objs, kind)))
	return nil
}

// The manager's authenticated metrics: it may review tokens and access, a
// scraper bound to metrics-reader may GET /metrics (the rule
// cmd/manager's TestMetricsNeedAnAuthorizedToken grants), and the
// ServiceMonitor scrapes over HTTPS with Prometheus' token.
func TestMetricsRBACAndServiceMonitor(t *testing.T) {
	objs := helmTemplate(t, releaseName, namespace, "metrics.serviceMonitor.enabled=true")
	auth := named(t, objs, "ClusterRole", "ikegate-manager-metrics-auth")
	wantAuth := []any{
		map[string]any{"apiGroups": []any{"authentication.k8s.io"}, "resources": []any{"tokenreviews"}, "verbs": []any{"create"}},
		map[string]any{"apiGroups": []any{"authorization.k8s.io"}, "resources": []any{"subjectaccessreviews"}, "verbs": []any{"create"}},
	}
	if d := cmp.Diff(wantAuth, field(t, auth, "rules")); d != "" {
		t.Errorf("metrics-auth rules:\n%s", d)
	}
	binding := named(t, objs, "ClusterRoleBinding", "ikegate-manager-metrics-auth")
	sa := one(t, objs, "ServiceAccount")
	if d := cmp.Diff([]any{map[string]any{"kind": "ServiceAccount", "name": sa.GetName(), "namespace": namespace}}, field(t, binding, "subjects")); d != "" {
		t.Errorf("metrics-auth binding subjects:\n%s", d)
	}
	reader := named(t, objs, "ClusterRole", "ikegate-metrics-reader")
	if d := cmp.Diff([]any{map[string]any{"nonResourceURLs": []any{"/metrics"}, "verbs": []any{"get"}}}, field(t, reader, "rules")); d != "" {
		t.Errorf("metrics-reader rules:\n%s", d)
	}

	var sm monitoringv1.ServiceMonitor
	convertStrict(t, one(t, objs, "ServiceMonitor"), &sm)
	ep := sm.Spec.Endpoints[0]
	if ep.Scheme == nil || *ep.Scheme != "https" || ep.BearerTokenFile == "" || ep.TLSConfig == nil {
		t.Errorf("ServiceMonitor endpoint %+v, want https with the service account token", ep)
	}
	if args := managerDeployment(t, objs).Spec.Template.Spec.Containers[0].Args; args[0] != "--metrics-bind-address=:8443" {
		t.Errorf("manager args %v", args)
	}
}

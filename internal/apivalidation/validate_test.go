package apivalidation

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Every kind of the API group is served from the embedded CRDs; other
// kinds are not claimed. (cmd/kubectl-ikegate compares the messages with a
// real API server.)
func TestNewServesTheAPIKinds(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"VPNGateway", "MobilePool", "VPNUser", "Tunnel"} {
		if !v.Handles(v1alpha1.GroupVersion.WithKind(k)) {
			t.Errorf("%s not served", k)
		}
	}
	if v.Handles(schema.GroupVersionKind{Version: "v1", Kind: "Secret"}) {
		t.Error("Secret claimed")
	}
}

// Validate leaves its argument alone: defaulting and pruning work on a copy.
func TestValidateKeepsObject(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "MobilePool",
		"metadata": map[string]any{"name": "staff", "namespace": "vpn"},
		"spec": map[string]any{
			"gatewayRef":    map[string]any{"name": "vpn"},
			"addresses":     map[string]any{"ipv4": "10.3.200.0/24"},
			"localNetworks": []any{"10.3.0.0/24"},
		},
		"status": map[string]any{"leased": int64(3)},
	}}
	before := u.DeepCopy()
	if err := v.Validate(context.Background(), u); err != nil {
		t.Fatalf("valid pool refused: %v", err)
	}
	if !equality(before, u) {
		t.Errorf("Validate changed its argument:\n%v\nto\n%v", before.Object, u.Object)
	}
	u.Object["spec"].(map[string]any)["addresses"] = map[string]any{"ipv4": "10.3.200.1/24"}
	if err := v.Validate(context.Background(), u); err == nil || !strings.Contains(err.Error(), "spec.addresses.ipv4") {
		t.Errorf("host address pool: %v", err)
	}
}

func equality(a, b *unstructured.Unstructured) bool {
	ja, _ := a.MarshalJSON()
	jb, _ := b.MarshalJSON()
	return string(ja) == string(jb)
}

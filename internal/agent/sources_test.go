package agent

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// The caches' mapper names each kind's resource as the API server serves
// it: the CRDs' plurals, and Secrets.
func TestCachedKindsMapperNamesServedResources(t *testing.T) {
	m := cachedKindsMapper()
	for _, kind := range []string{"VPNGateway", "MobilePool", "VPNUser", "Tunnel"} {
		gvk := v1alpha1.GroupVersion.WithKind(kind)
		mapping, err := m.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		crd := filepath.Join("..", "..", "config", "crd", "bases", gvk.Group+"_"+mapping.Resource.Resource+".yaml")
		if _, err := os.Stat(crd); err != nil {
			t.Errorf("%s maps to resource %q, which no CRD serves: %v", kind, mapping.Resource.Resource, err)
		}
	}
	mapping, err := m.RESTMapping(schema.GroupKind{Kind: "Secret"}, "v1")
	if err != nil || mapping.Resource.Resource != "secrets" {
		t.Errorf("Secret maps to %+v, %v; want secrets", mapping, err)
	}
}

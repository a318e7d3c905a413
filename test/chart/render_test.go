// Package chart tests the two ways of installing ikegate, the Helm chart in
// charts/ikegate and the kustomize tree config/default: that they render,
// that they carry the generated CRDs and RBAC unchanged, that they describe
// the same installation, and that a real API server accepts every object.
package chart

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/ikegate/ikegate/internal/testenv"
)

const (
	// The release name and namespace for which the chart renders the same
	// object names as config/default.
	releaseName = "ikegate"
	namespace   = "ikegate-system"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "ikegate") }

// helmBin is the helm that hack/tools.sh installs; `make test` runs it first.
func helmBin(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found (run `make tools` or `make test`): %v", bin, err)
	}
	return bin
}

// helm runs bin/helm and returns its standard output, or its error with
// standard error in it.
func helm(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A developer's helm configuration and plugins must not change the result.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(err.Error() + ": " + stderr.String()))
	}
	return stdout.Bytes(), nil
}

// helmTemplate renders the chart for a release in ns with --set values.
func helmTemplate(t testing.TB, release, ns string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", release, chartDir(t), "--namespace", ns}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v", set, err)
	}
	return decodeObjects(t, out)
}

// kustomizeDefault builds config/default the way `kubectl apply -k` does.
func kustomizeDefault(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	return decodeObjects(t, out)
}

// decodeObjects splits a multi-document YAML stream into objects, skipping
// empty documents.
func decodeObjects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetName() == "" {
			t.Fatalf("manifest without kind or name: %v", m)
		}
		objs = append(objs, u)
	}
}

func readObjects(t testing.TB, paths ...string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeObjects(t, data)...)
	}
	return objs
}

// key names an object the way kubectl does: Kind/namespace/name.
func key(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

func keys(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, key(o))
	}
	sort.Strings(ks)
	return ks
}

// byKey indexes objects by key and fails on duplicates, which an apply
// would silently merge.
func byKey(t testing.TB, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if _, dup := m[key(o)]; dup {
			t.Errorf("%s rendered twice", key(o))
		}
		m[key(o)] = o
	}
	return m
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func one(t testing.TB, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := ofKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want one %s, got %v", kind, keys(found))
	}
	return found[0]
}

func field(t testing.TB, u *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s: no field %s (%v)", key(u), strings.Join(path, "."), err)
	}
	return v
}

// generatedCRDs are the CRDs controller-gen writes from api/.
func generatedCRDs(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (run `make manifests`): %v", err)
	}
	return readObjects(t, paths...)
}

// generatedRole is the ClusterRole controller-gen writes from the
// controllers' RBAC markers.
func generatedRole(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	return one(t, readObjects(t, filepath.Join(repoRoot(t), "config", "rbac", "role.yaml")), "ClusterRole")
}

// Package testenv starts the real Kubernetes control plane (kube-apiserver and
// etcd through controller-runtime's envtest) for tests, with the project's CRDs
// and cert-manager's CRDs installed. Tests that need root gate themselves
// with package internal/testutil/require.
//
// The control-plane binaries are built by hack/envtest-assets.sh into
// <repo>/bin/k8s (run `make envtest`); KUBEBUILDER_ASSETS overrides that.
package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// CertManagerModule is the Go module whose deploy/crds directory holds the
// cert-manager CRDs installed into every test API server.
const CertManagerModule = "github.com/cert-manager/cert-manager"

type options struct {
	scheme   *kruntime.Scheme
	crdPaths []string
}

// Option changes how Start sets up the environment.
type Option func(*options)

// WithScheme makes the returned client use s (for example one that has the
// project's API types added). The default holds client-go's built-in types
// and apiextensions/v1.
func WithScheme(s *kruntime.Scheme) Option { return func(o *options) { o.scheme = s } }

// WithCRDPaths installs CRDs from extra files or directories as well.
func WithCRDPaths(paths ...string) Option {
	return func(o *options) { o.crdPaths = append(o.crdPaths, paths...) }
}

// DefaultScheme returns a new scheme with client-go's types and apiextensions/v1.
func DefaultScheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start runs a kube-apiserver and etcd for the test, installs the project's
// CRDs (config/crd/bases) and cert-manager's, and stops them on t.Cleanup.
// It returns the admin rest.Config, a client, and the path of a kubeconfig
// file (in t.TempDir()) for code that wants one.
func Start(t testing.TB, opts ...Option) (*rest.Config, client.Client, string) {
	t.Helper()
	o := options{}
	for _, fn := range opts {
		fn(&o)
	}
	if o.scheme == nil {
		o.scheme = DefaultScheme()
	}

	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Fatalf("testenv: %s not found in %s; run `make envtest` (hack/envtest-assets.sh) first", b, assets)
		}
	}

	cmCRDs, err := CertManagerCRDDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	crdPaths := []string{cmCRDs}
	if ours := filepath.Join(root, "config", "crd", "bases"); hasYAML(ours) {
		crdPaths = append(crdPaths, ours)
	}
	crdPaths = append(crdPaths, o.crdPaths...)

	etcd, apiServer := dieWithParent(t, assets)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{Path: etcd},
			APIServer: &envtest.APIServer{Path: apiServer},
		},
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true, // every path above is known to exist
		Scheme:                o.scheme,
		// envtest's 20 s default is short on a loaded 2-core machine,
		// where several suites start their control planes at once.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		// envtest leaves etcd and kube-apiserver running when a later step
		// (such as installing an invalid CRD) fails; stop them here.
		_ = env.Stop()
		t.Fatalf("testenv: starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("testenv: stopping envtest: %v", err)
		}
	})

	user, err := env.AddUser(envtest.User{Name: "ikegate-test-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		t.Fatalf("testenv: adding kubeconfig user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("testenv: rendering kubeconfig: %v", err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatalf("testenv: writing kubeconfig: %v", err)
	}

	c, err := client.New(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		t.Fatalf("testenv: creating client: %v", err)
	}
	return cfg, c, kubeconfig
}

// dieWithParent returns etcd and kube-apiserver wrapped so that they get
// SIGKILL when the test process dies: envtest starts them with a SysProcAttr
// of its own (a process group, no parent-death signal), so a test binary
// that is killed, or panics on -timeout, would leave them running. setpriv
// (util-linux, essential on Debian) sets the signal and execs the binary,
// which keeps its pid and arguments.
func dieWithParent(t testing.TB, assets string) (etcd, apiServer string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("testenv: setpriv (util-linux) is needed to tie etcd and kube-apiserver to the test process: %v", err)
	}
	dir := t.TempDir()
	wrap := func(name string) string {
		path := filepath.Join(dir, name)
		script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", shellQuote(setpriv), shellQuote(filepath.Join(assets, name)))
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatalf("testenv: writing %s: %v", path, err)
		}
		return path
	}
	return wrap("etcd"), wrap("kube-apiserver")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func hasYAML(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			return true
		}
	}
	return false
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the directory of the project's go.mod, found by walking up
// from the working directory (a package directory under `go test`).
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				bytes.Contains(data, []byte("module github.com/ikegate/ikegate\n")) {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("no go.mod of github.com/ikegate/ikegate above the working directory")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

var (
	cmOnce sync.Once
	cmDir  string
	cmErr  error
)

// CertManagerCRDDir returns the deploy/crds directory of the cert-manager
// module version in go.mod, downloading the module into the module cache if
// needed.
func CertManagerCRDDir() (string, error) {
	cmOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			cmErr = err
			return
		}
		dir, err := moduleDir(root, CertManagerModule)
		if err != nil {
			cmErr = err
			return
		}
		crds := filepath.Join(dir, "deploy", "crds")
		if _, err := os.Stat(filepath.Join(crds, "cert-manager.io_certificates.yaml")); err != nil {
			cmErr = fmt.Errorf("cert-manager CRDs not found in %s: %v", crds, err)
			return
		}
		cmDir = crds
	})
	return cmDir, cmErr
}

// moduleDir returns the module cache directory of module at the version the
// main module's build list selects.
func moduleDir(root, module string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// `go mod download -json M` resolves M's version from go.mod and fetches it
	// if it isn't in the module cache yet; its output names the directory.
	cmd := exec.Command(gobin, "mod", "download", "-json", module)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v: %s", module, err, stderr.String())
	}
	var info struct {
		Version string
		Dir     string
		Error   string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: parsing output: %v", module, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, nil
}

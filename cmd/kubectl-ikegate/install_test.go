package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"

	"github.com/ikegate/ikegate/internal/testenv"
)

// TestMakeInstall: `make install` puts a kubectl-ikegate that kubectl runs
// as `kubectl ikegate` into PLUGIN_DIR.
func TestMakeInstall(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(root, "bin", "k8s", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("%s not found (run `make envtest`): %v", kubectl, err)
	}
	dir := t.TempDir()
	out, err := exec.Command("make", "-C", root, "--no-print-directory", "install", "PLUGIN_DIR="+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "is not on your PATH") {
		t.Errorf("make install did not say that %s is not on the PATH:\n%s", dir, out)
	}
	cmd := exec.Command(kubectl, "ikegate", "render", "--help")
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	help, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl ikegate render --help: %v\n%s", err, help)
	}
	for _, want := range []string{"--kubeconfig", "-n, --namespace", "-f, --filename"} {
		if !bytes.Contains(help, []byte(want)) {
			t.Errorf("kubectl ikegate render --help lacks %s:\n%s", want, help)
		}
	}
}

// krewPlugin is the part of krew's Plugin (v1alpha2) that krew validates.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifest fills in plugins/ikegate.yaml as krew-release-bot does
// and checks what krew requires: the plugin's name is the command's, every
// platform runs this binary from its own release archive.
func TestKrewManifest(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "plugins", "ikegate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "v0.1.0"
	tmpl, err := template.New("krew").Funcs(template.FuncMap{
		// As krew-release-bot's: the URL with the tag, and the archive's digest.
		"addURIAndSha": func(url, tag string) string {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tag)
			sum := sha256.Sum256([]byte(url))
			return fmt.Sprintf("uri: %s\n    sha256: %s", url, hex.EncodeToString(sum[:]))
		},
	}).Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	var filled bytes.Buffer
	if err := tmpl.Execute(&filled, map[string]string{"TagName": tag}); err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(filled.Bytes(), &p); err != nil {
		t.Fatalf("filled-in manifest: %v\n%s", err, filled.String())
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" {
		t.Errorf("apiVersion %s kind %s", p.APIVersion, p.Kind)
	}
	if use := newRootCommand().Use; "kubectl-"+p.Metadata.Name != use {
		t.Errorf("plugin name %q, but the command is %s", p.Metadata.Name, use)
	}
	if p.Spec.Version != tag || p.Spec.Homepage == "" || p.Spec.Description == "" || p.Spec.ShortDescription == "" {
		t.Errorf("spec %+v lacks version, homepage or descriptions", p.Spec)
	}
	seen := map[string]bool{}
	for _, pl := range p.Spec.Platforms {
		osArch := pl.Selector.MatchLabels["os"] + "_" + pl.Selector.MatchLabels["arch"]
		if seen[osArch] {
			t.Errorf("platform %s listed twice", osArch)
		}
		seen[osArch] = true
		if pl.Bin != "kubectl-ikegate" {
			t.Errorf("%s: bin %q", osArch, pl.Bin)
		}
		if want := "/releases/download/" + tag + "/kubectl-ikegate_" + tag + "_" + osArch + ".tar.gz"; !strings.HasSuffix(pl.URI, want) {
			t.Errorf("%s: uri %s does not end in %s", osArch, pl.URI, want)
		}
		if len(pl.SHA256) != 64 {
			t.Errorf("%s: sha256 %q", osArch, pl.SHA256)
		}
	}
	if !seen["linux_amd64"] || len(seen) < 2 {
		t.Errorf("platforms %v", seen)
	}
}

package profile_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var testNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// seed reads the seed scenario (examples/pfsense-mobile) with the fixed
// certificates of testdata, as a gateway's agent would see it.
func seed(t testing.TB, mods ...func(*swan.Resources)) swan.Resources {
	t.Helper()
	var all swan.Manifests
	dir := "../../examples/pfsense-mobile"
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Reading %s: %v", dir, err)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := swan.DecodeManifests(r, f)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		all.Append(m)
	}
	in, err := all.Resources("vpn", testNow)
	if err != nil {
		t.Fatal(err)
	}
	in.CAPEM = readFile(t, "testdata/ca.pem")
	in.ServerCertPEM = readFile(t, "testdata/server.pem")
	for _, m := range mods {
		m(&in)
	}
	return in
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// input builds the gateway's model and the profile input of its user jimp.
func input(t testing.TB, res swan.Resources, opts profile.Options) profile.Input {
	t.Helper()
	built := swan.Build(res)
	if len(built.Problems) > 0 {
		t.Fatalf("Build problems: %v", built.Problems)
	}
	user := findUser(t, res, "jimp")
	in, err := profile.FromBuild(&built, &res.Gateway, user, opts)
	if err != nil {
		t.Fatalf("FromBuild: %v", err)
	}
	return in
}

func findUser(t testing.TB, res swan.Resources, name string) *v1alpha1.VPNUser {
	t.Helper()
	for i := range res.Users {
		if res.Users[i].Name == name {
			return &res.Users[i]
		}
	}
	t.Fatalf("No VPNUser %s", name)
	return nil
}

// Modifiers of the seed.
func ikePreset(p v1alpha1.ProposalPreset) func(*swan.Resources) {
	return func(r *swan.Resources) { r.Gateway.Spec.IKE.Preset = p }
}

func esp(p v1alpha1.ProposalPreset, pfs v1alpha1.PFSGroup) func(*swan.Resources) {
	return func(r *swan.Resources) {
		r.Pools[0].Spec.ESP.Preset = p
		r.Pools[0].Spec.ESP.PFSGroup = pfs
	}
}

func fullTunnel(r *swan.Resources) {
	r.Pools[0].Spec.LocalNetworks = nil
	r.Pools[0].Spec.FullTunnel = true
}

// checkGolden compares got with testdata/<test name><ext>, or writes it with -update.
func checkGolden(t *testing.T, ext string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+ext)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Reading golden file (run with -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n%s", path, lineDiff(string(want), string(got)))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

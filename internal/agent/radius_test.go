package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	govici "github.com/strongswan/govici/vici"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// reloadCounter is a fake charon that also answers reload-settings, which
// re-reads files the in-memory fake does not have.
type reloadCounter struct {
	*vicitest.Fake
	mu      sync.Mutex
	reloads int
	fail    bool
}

func (r *reloadCounter) Call(ctx context.Context, cmd string, in *govici.Message) (*govici.Message, error) {
	if cmd != "reload-settings" {
		return r.Fake.Call(ctx, cmd, in)
	}
	if _, err := r.Fake.Connect(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return nil, errors.New("reloading '/etc/strongswan.conf' failed")
	}
	r.reloads++
	return govici.NewMessage(), nil
}

func (r *reloadCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloads
}

// TestRADIUSServersFile follows a RADIUS gateway through the changes that
// must (and must not) make charon re-read its settings, and checks that the
// shared secret reaches the file and nothing else.
func TestRADIUSServersFile(t *testing.T) {
	const secret = `Sh4red"}#secret`
	ctx, logs := captureLog(context.Background())

	dir := filepath.Join(t.TempDir(), "radius")
	path := filepath.Join(dir, radiusFile)
	charon := &reloadCounter{Fake: vicitest.NewFake()}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).Build()
	a, err := New(Options{
		Namespace: testNS, Gateway: testGW, Pod: testPod,
		VICI: charon, Reader: reader, Writer: reader, RADIUSDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	primary := gen.RADIUSServer("primary", "192.0.2.10", "radius", "secret")
	primary.AuthPort, primary.AccountingPort = 1812, 1813
	in := swan.Resources{
		Gateway: *gen.Gateway(testNS, testGW, gen.WithRADIUS(primary), func(gw *v1alpha1.VPNGateway) {
			gw.Spec.ClientAuth.RADIUS.NASIdentifier = "vpn.example.com"
		}),
		Secrets: map[string]map[string][]byte{"radius": {"secret": []byte(secret)}},
	}
	step := func(wantReloads int, what string) {
		t.Helper()
		if err := a.syncRADIUS(ctx, ptr(swan.Build(in))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := charon.count(); got != wantReloads {
			t.Fatalf("%s: charon re-read its settings %d times, want %d", what, got, wantReloads)
		}
	}
	file := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("Reading the servers file: %v", err)
		}
		return string(b)
	}

	step(1, "first sync")
	if want := swan.RenderRADIUSServers([]swan.RADIUSServer{{Name: "primary", Address: "192.0.2.10", AuthPort: 1812, AcctPort: 1813,
		Secret: []byte(secret), NASIdentifier: "vpn.example.com"}}); file() != want {
		t.Fatalf("Servers file:\n%s\nwant:\n%s", file(), want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// charon reads them through the group alone (no CAP_DAC_OVERRIDE).
	if st.Mode().Perm() != 0o640 {
		t.Errorf("Servers file mode %v, want 0640", st.Mode().Perm())
	}
	if st, err := os.Stat(dir); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o750 {
		t.Errorf("RADIUS directory mode %v, want 0750", st.Mode().Perm())
	}

	step(1, "nothing changed")

	in.Secrets["radius"] = map[string][]byte{"secret": []byte(secret + "2")}
	step(2, "secret changed")
	if !strings.Contains(file(), `"Sh4red\"}#secret2"`) {
		t.Fatalf("Servers file lacks the new secret:\n%s", file())
	}

	charon.Restart()
	step(3, "charon restarted")

	charon.mu.Lock()
	charon.fail = true
	charon.mu.Unlock()
	in.Secrets["radius"] = map[string][]byte{"secret": []byte(secret)}
	if err := a.syncRADIUS(ctx, ptr(swan.Build(in))); err == nil {
		t.Fatal("A failed reload-settings was no error")
	}
	charon.mu.Lock()
	charon.fail = false
	charon.mu.Unlock()
	step(4, "retry after a failed reload, file unchanged since")

	delete(in.Secrets, "radius")
	step(5, "Secret deleted")
	if ps := fmt.Sprint(swan.Build(in).Problems); !strings.Contains(ps, "Secret radius not found") {
		t.Errorf("The missing Secret is not a problem of the build: %s", ps)
	}
	if strings.Contains(file(), "primary") {
		t.Fatalf("A server whose Secret is gone stayed in the file:\n%s", file())
	}

	in.Gateway.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPTLS
	step(6, "gateway no longer RADIUS")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Servers file of a gateway without RADIUS: %v", err)
	}
	charon.Restart()
	step(6, "charon restarted under a gateway without RADIUS")

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("Files left in the RADIUS directory: %v", entries)
	}
	if strings.Contains(logs(), "Sh4red") {
		t.Errorf("The shared secret appears in the log:\n%s", logs())
	}
}

// TestAgentServerInServersFile: an EAPMSCHAPv2 gateway's servers file
// points charon at the agent's own server on the loopback, with the
// per-pod secret, mode 0600; switching to EAPRADIUS replaces it with the
// external servers. The secret is never logged.
func TestAgentServerInServersFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, logs := captureLog(ctx)
	dir := filepath.Join(t.TempDir(), "radius")
	charon := &reloadCounter{Fake: vicitest.NewFake()}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).Build()
	a, err := New(Options{Namespace: testNS, Gateway: testGW, Pod: testPod, VICI: charon, Reader: reader, Writer: reader, RADIUSDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.startRADIUS(ctx); err != nil {
		t.Fatal(err)
	}
	in := swan.Resources{Gateway: *gen.Gateway(testNS, testGW)}
	if err := a.syncRADIUS(ctx, ptr(swan.Build(in))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, radiusFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ap := a.local.server.Addr()
	if !ap.Addr().IsLoopback() || ap.Port() == 0 || len(a.local.secret) < 32 {
		t.Fatalf("Server on %v with a %d-byte secret, want a loopback port and a long secret", ap, len(a.local.secret))
	}
	want := swan.RenderRADIUSServers([]swan.RADIUSServer{{Name: "agent", Address: "127.0.0.1", AuthPort: int(ap.Port()), AcctPort: int(ap.Port()), Secret: a.local.secret, Sockets: 8}})
	if string(b) != want {
		t.Fatalf("Servers file:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("Servers file mode %v, want 0640", st.Mode().Perm())
	}
	if charon.count() != 1 {
		t.Errorf("charon re-read its settings %d times, want 1", charon.count())
	}

	primary := gen.RADIUSServer("primary", "192.0.2.10", "radius", "secret")
	in.Gateway = *gen.Gateway(testNS, testGW, gen.WithRADIUS(primary))
	in.Secrets = map[string]map[string][]byte{"radius": {"secret": []byte("external")}}
	if err := a.syncRADIUS(ctx, ptr(swan.Build(in))); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, a.local.secret) || !bytes.Contains(b, []byte("192.0.2.10")) {
		t.Errorf("An EAPRADIUS gateway's servers file:\n%s\nwant the external server only", b)
	}
	if strings.Contains(logs(), string(a.local.secret)) {
		t.Errorf("The agent's shared secret appears in the log:\n%s", logs())
	}
}

func TestWriteIfChangedReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.conf")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A reader holding the old file keeps reading the old content: the new
	// one arrives under the name by rename, never by rewriting in place.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if changed, err := writeIfChanged(path, []byte("new")); err != nil || !changed {
		t.Fatalf("writeIfChanged = %v, %v; want true, nil", changed, err)
	}
	var buf [8]byte
	n, _ := f.Read(buf[:])
	if got := string(buf[:n]); got != "old" {
		t.Errorf("Open file reads %q after the replace, want the old content", got)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("File holds %q, want new", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("Mode %v after replace, want 0640", st.Mode().Perm())
	}
	if changed, err := writeIfChanged(path, []byte("new")); err != nil || changed {
		t.Fatalf("Same content again = %v, %v; want false, nil", changed, err)
	}
	if changed, err := writeIfChanged(filepath.Join(dir, "absent"), nil); err != nil || changed {
		t.Fatalf("Removing an absent file = %v, %v; want false, nil", changed, err)
	}
}

func ptr[T any](v T) *T { return &v }

// captureLog returns ctx with a logger that keeps everything logged, at
// every verbosity, and a function returning it so far.
func captureLog(ctx context.Context) (context.Context, func() string) {
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 2})
	return logr.NewContext(ctx, log), func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
}

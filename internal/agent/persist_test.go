package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
)

func TestSavedConfigRoundTripsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-state.json")
	m := swan.Model{
		Connections: []swan.Connection{{Name: "mobile-staff", DPDDelay: 30 * time.Second, Pools: []string{"staff"}}},
		Pools:       []swan.Pool{{Name: "staff", Addrs: "10.3.200.0/24"}},
		Secrets:     []swan.Secret{{Name: "tunnel-hq", Type: "IKE", Owners: []string{"hq.example.com"}, Data: []byte{0, 1, 0xff}}},
	}
	users := map[string]radiusd.User{"alice@example.com": {NTHash: [16]byte{1, 0xff}, Policy: radiusd.Policy{Address: netip.MustParseAddr("10.3.200.7")}}}
	res := &swan.Result{AgentRADIUS: true}
	f := stateFile{path: path}
	if err := f.save(m, 3, savedRADIUSOf(res, users)); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSaved(path)
	want := SavedConfig{Model: m, Generation: 3, Users: users}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadSaved = %+v, %v; want %+v", got, err, want)
	}
	if c, _ := loadSaved(path); !c.RADIUS.result(m).AgentRADIUS {
		t.Error("The saved configuration lost that the agent's RADIUS server authenticates")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("State file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	// An unchanged model is not written again.
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := f.save(m, 3, savedRADIUSOf(res, users)); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o400 {
		t.Error("An unchanged model was written again")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("The state directory holds %d files, want only the state file", len(entries))
	}
}

func TestSavedConfigOfAnotherLayoutIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-state.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"generation":1,"model":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSavedConfig(path); err == nil {
		t.Error("A state file of layout 1 was read")
	}
	if _, _, err := LoadSavedConfig(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("A missing file gave %v, want not-exist", err)
	}
}

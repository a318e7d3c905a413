package agent

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
)

// TestJournalContinuesTheStateFile saves a state file, journals changes of
// single users after it, and reads the users back as an agent restarting
// offline would: the journal's changes applied, a torn last record left
// out, and a journal of an older state file ignored once the file was
// written whole again.
func TestJournalContinuesTheStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-state.json")
	m := swan.Model{Pools: []swan.Pool{{Name: "staff", Addrs: "10.3.200.0/24"}}}
	res := &swan.Result{AgentRADIUS: true}
	user := func(b byte) radiusd.User {
		return radiusd.User{NTHash: [16]byte{b}, Policy: radiusd.Policy{Class: "staff"}}
	}
	users := map[string]radiusd.User{"ann@example.com": user(1), "bob@example.com": user(2)}
	f := stateFile{path: path}
	if err := f.record([]journalRecord{{Del: "ann@example.com"}}, 2); !errors.Is(err, errWholeDue) {
		t.Fatalf("A change before any whole write: %v, want errWholeDue", err)
	}
	if err := f.save(m, 4, savedRADIUSOf(res, users)); err != nil {
		t.Fatal(err)
	}
	cy := user(3)
	recs := []journalRecord{{Del: "ann@example.com"}, {Set: "cy@example.com", User: &cy}}
	if err := f.record(recs, 2); err != nil {
		t.Fatal(err)
	}
	bob := user(9)
	if err := f.record([]journalRecord{{Set: "bob@example.com", User: &bob}}, 2); err != nil {
		t.Fatal(err)
	}
	want := map[string]radiusd.User{"bob@example.com": bob, "cy@example.com": cy}
	loaded := func(what string, want map[string]radiusd.User) {
		t.Helper()
		got, err := LoadSaved(path)
		if err != nil || !reflect.DeepEqual(got.Users, want) {
			t.Fatalf("%s: users %v (%v), want %v", what, got.Users, err, want)
		}
	}
	loaded("after the journal's records", want)
	if st, err := os.Stat(journalPath(path)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	// A crash in the middle of an append.
	j, err := os.OpenFile(journalPath(path), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.WriteString(`{"del":"bob@exa`); err != nil {
		t.Fatal(err)
	}
	j.Close()
	loaded("with a torn last record", want)

	// A whole write removes the journal; one left beside it by a crash
	// names the former file and is ignored.
	stale, err := os.ReadFile(journalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.save(m, 5, savedRADIUSOf(res, users)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(journalPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("The journal outlived a whole write: %v", err)
	}
	loaded("after a whole write", users)
	if err := os.WriteFile(journalPath(path), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded("beside a journal of the former file", users)
}

// TestJournalBoundedByUsers has the journal grow until a whole write is
// due: past minWholeAfter records or a quarter of the users.
func TestJournalBoundedByUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-state.json")
	users := map[string]radiusd.User{}
	f := stateFile{path: path}
	if err := f.save(swan.Model{}, 1, savedRADIUSOf(&swan.Result{}, users)); err != nil {
		t.Fatal(err)
	}
	for _, served := range []int{10, 40000} {
		limit := max(minWholeAfter, served/4)
		n := 0
		for ; n <= limit; n++ {
			u := radiusd.User{NTHash: [16]byte{byte(n)}}
			err := f.record([]journalRecord{{Set: fmt.Sprintf("u%d@example.com", n), User: &u}}, served)
			if errors.Is(err, errWholeDue) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			users[fmt.Sprintf("u%d@example.com", n)] = u
		}
		if n != limit {
			t.Errorf("%d users served: a whole write due after %d records, want %d", served, n, limit)
		}
		got, err := LoadSaved(path)
		if err != nil || !maps.Equal(got.Users, users) {
			t.Fatalf("%d users served: %d users read back (%v), want %d", served, len(got.Users), err, len(users))
		}
		if err := f.save(swan.Model{}, 1, savedRADIUSOf(&swan.Result{}, users)); err != nil {
			t.Fatal(err)
		}
	}
}

package agent

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func indexedUser(name, identity, gateway string, podsHolding ...string) *v1alpha1.VPNUser {
	u, _ := user(name)
	u.Spec.Identity = v1alpha1.Identity(identity)
	u.Spec.GatewayRef.Name = gateway
	for _, p := range podsHolding {
		u.Status.Sessions = append(u.Status.Sessions, v1alpha1.Session{Pod: p, RemoteAddress: "192.0.2.9"})
	}
	return u
}

func candidatesOf(x *userIndex, identities ...string) []string {
	byID := map[string][]v1alpha1.Session{}
	for _, id := range identities {
		byID[id] = nil
	}
	names := map[string]bool{}
	x.candidates(byID, names)
	var out []string
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func TestUserIndexFollowsIdentitiesAndHeldSessions(t *testing.T) {
	x := newUserIndex(testGW, testPod)
	x.set(indexedUser("alice", "alice@example.com", testGW))
	x.set(indexedUser("bob", "bob@example.com", testGW, "other-pod"))
	x.set(indexedUser("carol", "carol@example.com", testGW, testPod))
	x.set(indexedUser("dave", "dave@example.com", "another-gateway", testPod))
	if got, want := candidatesOf(x, "alice@example.com", "dave@example.com", "nobody@example.com"), []string{"alice", "carol"}; !slices.Equal(got, want) {
		t.Errorf("Candidates %v, want %v (dave is another gateway's; carol's status lists this pod)", got, want)
	}
	// alice changes identity; carol's sessions of this pod are written away.
	x.set(indexedUser("alice", "alice2@example.com", testGW))
	x.set(indexedUser("carol", "carol@example.com", testGW))
	if got := candidatesOf(x, "alice@example.com"); len(got) != 0 {
		t.Errorf("Candidates %v after the changes, want none", got)
	}
	if got, want := candidatesOf(x, "alice2@example.com"), []string{"alice"}; !slices.Equal(got, want) {
		t.Errorf("Candidates %v, want %v", got, want)
	}
	// Two users with one identity (one being refused), then one deleted.
	x.set(indexedUser("alice-copy", "alice2@example.com", testGW))
	x.remove(indexedUser("alice", "alice2@example.com", testGW))
	if got, want := candidatesOf(x, "alice2@example.com"), []string{"alice-copy"}; !slices.Equal(got, want) {
		t.Errorf("Candidates %v, want %v", got, want)
	}
	x.remove(indexedUser("alice-copy", "alice2@example.com", testGW))
	if len(x.byIdentity) != 2 || len(x.identityOf) != 2 || len(x.holding) != 0 {
		t.Errorf("Index holds %d identities, %d names, %d holding; want 2, 2, 0", len(x.byIdentity), len(x.identityOf), len(x.holding))
	}
}

// TestSessionWritesLookOnlyAtTheUsersConcerned: with many users in the
// stores, a listing writes the status of the users whose sessions changed
// and of those whose status is stale, and no other; what the agent
// remembers shrinks back once they are gone.
func TestSessionWritesLookOnlyAtTheUsersConcerned(t *testing.T) {
	w := &statusRecorder{}
	a := &Agent{opts: Options{Namespace: testNS, Gateway: testGW, Pod: testPod, Writer: w, CounterInterval: time.Hour, SessionWriteGap: time.Second},
		owner: "agent", written: newWrittenState(), stores: newStores()}
	a.stores.indexUsers(testGW, testPod)
	for i := range 1000 {
		a.stores.users.set(indexedUser(fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), testGW))
	}
	// A previous run of this pod's agent left a session in u7's status.
	a.stores.users.set(indexedUser("u7", "u7@example.com", testGW, testPod))
	ctx := context.Background()
	now := time.Now()
	on := func(ids ...string) map[string][]v1alpha1.Session {
		m := map[string][]v1alpha1.Session{}
		for _, id := range ids {
			m[id] = []v1alpha1.Session{{Pod: testPod, RemoteAddress: "198.51.100.4", EstablishedAt: metav1.NewTime(now)}}
		}
		return m
	}
	names := func() []string {
		var out []string
		for _, ap := range w.take("VPNUser") {
			out = append(out, ap.name)
		}
		slices.Sort(out)
		return out
	}
	ms := time.Millisecond
	steps := []struct {
		byID map[string][]v1alpha1.Session
		at   time.Duration
		want []string
		held time.Duration
	}{
		{on("u1@example.com", "u2@example.com"), 0, []string{"u1", "u2", "u7"}, 0},
		{on("u1@example.com", "u2@example.com"), 500 * ms, nil, 0},
		// u1 leaves within a second of its first write: held.
		{on("u2@example.com"), 700 * ms, nil, 300 * ms},
		{on("u2@example.com"), time.Second, []string{"u1"}, 0},
		{on(), 3 * time.Second, []string{"u2"}, 0},
		// u1 comes back and leaves again: the first change at once, the
		// second a second after it.
		{on("u1@example.com"), 3100 * ms, []string{"u1"}, 0},
		{on(), 3200 * ms, nil, 900 * ms},
		{on(), 4100 * ms, []string{"u1"}, 0},
		{on(), 5 * time.Second, nil, 0},
	}
	for i, s := range steps {
		held, err := a.writeUserSessions(ctx, s.byID, now.Add(s.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := names(); !slices.Equal(got, s.want) || held != s.held {
			t.Errorf("Step %d wrote %v and held a change for %v, want %v and %v", i, got, held, s.want, s.held)
		}
	}
	if n := len(a.written.users); n != 3 {
		t.Errorf("Remembers %d users after they left, want the 3 written", n)
	}
	// The informer brings the agent's own writes back.
	a.stores.users.set(indexedUser("u7", "u7@example.com", testGW))
	if _, err := a.writeUserSessions(ctx, on(), now.Add(forgetWrittenAfter+5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 0 {
		t.Errorf("Wrote %v once everyone had left", got)
	}
	if n := len(a.written.users); n != 0 {
		t.Errorf("Remembers %d users %v after forgetWrittenAfter, want none", n, a.written.users)
	}
}

// BenchmarkSessionListing100kUsers is the status side of one SA listing
// with 100,000 users and 10 of them connected, nothing changed since the
// last: through the index, and by a pass over every user as before it.
func BenchmarkSessionListing100kUsers(b *testing.B) {
	for _, indexed := range []bool{true, false} {
		b.Run(fmt.Sprintf("indexed=%v", indexed), func(b *testing.B) {
			w := &statusRecorder{}
			a := &Agent{opts: Options{Namespace: testNS, Gateway: testGW, Pod: testPod, Writer: w, CounterInterval: time.Hour},
				owner: "agent", written: newWrittenState(), stores: newStores()}
			a.stores.indexUsers(testGW, testPod)
			for i := range 100000 {
				a.stores.users.set(indexedUser(fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), testGW))
			}
			if !indexed {
				a.stores.index = nil
			}
			byID := map[string][]v1alpha1.Session{}
			now := time.Now()
			for i := range 10 {
				byID[fmt.Sprintf("u%d@example.com", i)] = []v1alpha1.Session{{Pod: testPod, RemoteAddress: "198.51.100.4", EstablishedAt: metav1.NewTime(now)}}
			}
			ctx := context.Background()
			if _, err := a.writeUserSessions(ctx, byID, now); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := a.writeUserSessions(ctx, byID, now); err != nil {
					b.Fatal(err)
				}
			}
			if n := len(w.take("VPNUser")); n != 10 {
				b.Fatalf("%d writes, want the first listing's 10", n)
			}
		})
	}
}

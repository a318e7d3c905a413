package integration

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/vici"
)

// revokeBound is the bound on a revoked user's session: it ends
// within 1 s of the change. With the agent's RADIUS server holding the
// users (a map swap, no VICI write) and the revoked sessions ended before
// the apply of other changes: median 0.1 s, worst 0.61 s with the machine
// at a load of 13 on 2 cores. Asserted: about eight times that worst, a
// margin for CI's machine running other suites beside this one.
const (
	revokeBound  = time.Second
	revokeAssert = 5 * time.Second
)

// churnRate is the rate of user changes.
const churnRate = 20

// churnSpec says how to churn.
type churnSpec struct {
	users, connected int
	duration         time.Duration
}

// churnResult is what one churn run measured.
type churnResult struct {
	// revoked are, per revoked connected user, the time from the API
	// server's answer to the write that revoked it (the change is made
	// then) to its IKE_SA gone from the gateway.
	revoked []time.Duration // sorted
	// unserved are the part of revoked up to the agent's RADIUS server
	// no longer holding the user (sorted): the API server's watch, the
	// agent's debounce and Build; the rest is ending the session.
	unserved []time.Duration
	// kept are the connected users never touched; changed those of them
	// whose IKE_SA went or was replaced.
	kept    int
	changed []string
	// changes were made in elapsed; converged is how long after the last
	// one charon held the model of what the API says.
	changes   int
	elapsed   time.Duration
	converged time.Duration
}

// churner makes the churn's changes and keeps count of the users the
// gateway must end up serving.
type churner struct {
	c client.Client
	// next index per kind of change, so no user is changed twice.
	added, changedPW, disabled, deleted, unservable int
	// serving counts the users the agent must end up serving.
	mu      sync.Mutex
	serving int
	errs    []error
}

// connectedPasswordChanges is how many connected users get a new password
// during the churn.
const connectedPasswordChanges = 5

// change picks the k-th change of the churn and returns it to be made. Five kinds take turns: a new
// user, a new password, a disabled user, a deleted user (one added earlier
// by the churn, else an original one) and a user the API accepts but the
// gateway cannot serve (its password Secret does not exist). Each touches
// only users no client connects as (u-<connected> and up), but for the
// first connectedPasswordChanges new passwords.
func (ch *churner) change(k, connected int) func(context.Context) {
	var (
		write func(context.Context) error
		delta int
	)
	switch k % 5 {
	case 0:
		name := fmt.Sprintf("n-%d", ch.added)
		ch.added++
		write, delta = func(ctx context.Context) error { return createUser(ctx, ch.c, name, name+"@example.com", "pw-"+name) }, 1
	case 1:
		// The first few new passwords are connected users' (the last of
		// them, never revoked): a new password does not end a session.
		name := fmt.Sprintf("u-%d", connected+ch.changedPW)
		if ch.changedPW < connectedPasswordChanges {
			name = fmt.Sprintf("u-%d", connected-1-ch.changedPW)
		}
		ch.changedPW++
		write = func(ctx context.Context) error { return patchPassword(ctx, ch.c, name, "new-pw-"+name) }
	case 2:
		name := fmt.Sprintf("u-%d", 300+ch.disabled)
		ch.disabled++
		write, delta = func(ctx context.Context) error { return disableUser(ctx, ch.c, name) }, -1
	case 3:
		// Every other deletion takes a user the churn added a while ago.
		name := fmt.Sprintf("u-%d", 550+ch.deleted)
		if ch.deleted%2 == 0 && ch.added > ch.deleted/2+10 {
			name = fmt.Sprintf("n-%d", ch.deleted/2)
		}
		ch.deleted++
		write, delta = func(ctx context.Context) error { return deleteUser(ctx, ch.c, name) }, -1
	case 4:
		name := fmt.Sprintf("x-%d", ch.unservable)
		ch.unservable++
		// The Secret it names never comes.
		_, u := userObjects(name, name+"@example.com", "")
		write = func(ctx context.Context) error { return ch.c.Create(ctx, u) }
	}
	return func(ctx context.Context) {
		err := write(ctx)
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if err != nil {
			ch.errs = append(ch.errs, err)
			return
		}
		ch.serving += delta
	}
}

func patchPassword(ctx context.Context, c client.Client, user, password string) error {
	s := &corev1.Secret{}
	s.Namespace, s.Name = namespace, user+"-password"
	patch := fmt.Sprintf(`{"data":{%q:%q}}`, gen.PasswordKey, base64.StdEncoding.EncodeToString([]byte(password)))
	return c.Patch(ctx, s, client.RawPatch(types.MergePatchType, []byte(patch)))
}

func disableUser(ctx context.Context, c client.Client, user string) error {
	u := &v1alpha1.VPNUser{}
	u.Namespace, u.Name = namespace, user
	return c.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"disabled":true}}`)))
}

func deleteUser(ctx context.Context, c client.Client, user string) error {
	s, u := userObjects(user, "", "")
	return errors.Join(c.Delete(ctx, u), c.Delete(ctx, s))
}

// revokeUser disables or deletes user and returns when the API server had
// taken the change that revokes it (for a deletion, the VPNUser's; its
// Secret goes after).
func revokeUser(ctx context.Context, c client.Client, user string, del bool) (time.Time, error) {
	if !del {
		err := disableUser(ctx, c, user)
		return time.Now(), err
	}
	s, u := userObjects(user, "", "")
	if err := c.Delete(ctx, u); err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	return at, c.Delete(ctx, s)
}

// saWatch lists the gateway's client IKE_SAs every 20 ms and notes when
// each watched identity's IKE_SA was first seen gone.
type saWatch struct {
	mu   sync.Mutex
	gone map[string]time.Time
}

func watchSAs(ctx context.Context, s vici.Session, identities []string) *saWatch {
	w := &saWatch{gone: map[string]time.Time{}}
	go func() {
		for ctx.Err() == nil {
			sas, err := established(ctx, s, swan.MobileConnectionName(poolName))
			now := time.Now()
			if err == nil {
				w.mu.Lock()
				for _, id := range identities {
					if _, seen := w.gone[id]; !seen && !slices.ContainsFunc(sas, func(sa vici.IKESA) bool { return sa.Identity() == id }) {
						w.gone[id] = now
					}
				}
				w.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

// servedWatch notes when the agent's RADIUS server first stopped holding
// each watched identity (Options.OnUsers).
type servedWatch struct {
	mu      sync.Mutex
	pending map[string]chan time.Time
}

func newServedWatch() *servedWatch { return &servedWatch{pending: map[string]chan time.Time{}} }

// expect returns a channel that gets the time identity is first seen no
// longer served, after this call.
func (w *servedWatch) expect(identity string) <-chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan time.Time, 1)
	w.pending[identity] = ch
	return ch
}

func (w *servedWatch) onUsers(users radiusd.Users) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ch := range w.pending {
		if _, ok := users.NTHash(id); !ok {
			ch <- now
			delete(w.pending, id)
		}
	}
}

func (w *saWatch) goneAt(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.gone[id]
	return at, ok
}

// measureChurn loads spec.users users, connects the first spec.connected
// of them through one client charon, and churns for spec.duration at
// churnRate changes per second, revoking half of the connected users
// (disabled or deleted in turn) evenly over it.
func measureChurn(t testing.TB, spec churnSpec) churnResult {
	r := newRecoveryRig(t, spec.users)
	served := newServedWatch()
	ag := r.startAgent(t, "vpn-gateway-0", served.onUsers)
	ag.waitReady(t, 2*time.Minute)
	r.waitLoaded(t, spec.users, ag)
	ctx := t.Context()
	ids := make([]int, spec.connected)
	for i := range ids {
		ids[i] = i
	}
	before := r.connectClients(t, ids)
	if len(before) != spec.connected {
		t.Fatalf("%d clients connected, want %d", len(before), spec.connected)
	}
	revokes := spec.connected / 2
	var revokedIDs []string
	unserved := map[string]<-chan time.Time{}
	for i := range revokes {
		id := fmt.Sprintf("u-%d@example.com", i)
		revokedIDs = append(revokedIDs, id)
		unserved[id] = served.expect(id)
	}
	watchVICI := vici.NewClient(r.gw.VICISocket())
	defer watchVICI.Close()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch := watchSAs(wctx, watchVICI, revokedIDs)

	ch := &churner{c: r.c, serving: spec.users}
	total := int(spec.duration.Seconds() * churnRate)
	revokeEvery := total / max(revokes, 1)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		// revokedAt is when the API server had taken each revocation.
		revokedAt = map[string]time.Time{}
		// inFlight bounds the writes under way: the API server takes
		// tens of milliseconds a write on a loaded machine, so the
		// changes overlap to keep the rate.
		inFlight = make(chan struct{}, 64)
	)
	run := func(f func(context.Context)) {
		inFlight <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-inFlight; wg.Done() }()
			f(ctx)
		}()
	}
	start := time.Now()
	for k := range total {
		// Paced by the clock, not a ticker: a late change is made at
		// once instead of dropped, so the rate holds on average.
		time.Sleep(time.Until(start.Add(time.Duration(k) * time.Second / churnRate)))
		if n := k / revokeEvery; k%revokeEvery == 0 && n < revokes {
			name := fmt.Sprintf("u-%d", n)
			run(func(ctx context.Context) {
				at, err := revokeUser(ctx, r.c, name, n%2 == 1)
				if err != nil {
					t.Errorf("Revoking %s: %v", name, err)
					return
				}
				mu.Lock()
				revokedAt[name+"@example.com"] = at
				mu.Unlock()
				ch.mu.Lock()
				ch.serving--
				ch.mu.Unlock()
			})
			continue
		}
		run(ch.change(k, spec.connected))
	}
	wg.Wait()
	res := churnResult{changes: total, elapsed: time.Since(start)}
	if err := errors.Join(ch.errs...); err != nil {
		t.Fatalf("Churn writes failed: %v", err)
	}

	// Converged: the agent serves the users the API says are served,
	// and charon holds exactly the model it saved.
	last := time.Now()
	r.waitLoaded(t, ch.serving, ag)
	res.converged = time.Since(last)
	for id, at := range revokedAt {
		waitFor(t, time.Minute, "the session of revoked "+id+" to end", func() (bool, string) {
			_, ok := watch.goneAt(id)
			return ok, "still established"
		})
		gone, _ := watch.goneAt(id)
		res.revoked = append(res.revoked, gone.Sub(at))
		select {
		case gone := <-unserved[id]:
			res.unserved = append(res.unserved, gone.Sub(at))
		case <-time.After(time.Minute):
			t.Fatalf("The agent still serves revoked %s", id)
		}
	}
	slices.Sort(res.revoked)
	slices.Sort(res.unserved)
	after := r.sessions(t)
	kept := map[string]uint32{}
	for id, uid := range before {
		if _, revoked := revokedAt[id]; !revoked {
			kept[id] = uid
		}
	}
	res.kept, res.changed = len(kept), sessionsChanged(kept, after)
	return res
}

func (r churnResult) String() string {
	return fmt.Sprintf("%d changes in %v (%.1f/s); revoked sessions ended after median %v, worst %v (%d; no longer served after median %v, worst %v); %d of %d other sessions changed; converged %v after the last change",
		r.changes, r.elapsed.Round(time.Millisecond), float64(r.changes)/r.elapsed.Seconds(),
		percentile(r.revoked, 0.5), percentile(r.revoked, 1), len(r.revoked), percentile(r.unserved, 0.5), percentile(r.unserved, 1),
		len(r.changed), r.kept, r.converged.Round(time.Millisecond))
}

// TestChurnCutsRevokedUsersOnly churns 1,000 users, 50 of them connected,
// at 20 changes per second for 15 s (the 60 s is the benchmark's;
// `make test` keeps to a quarter of it): every revoked user's session ends
// within the 1 s (asserted: revokeAssert), no other client's
// IKE_SA changes, and the gateway converges.
func TestChurnCutsRevokedUsersOnly(t *testing.T) {
	res := measureChurn(t, churnSpec{users: recoveryUsers, connected: 50, duration: 15 * time.Second})
	t.Log(res)
	if len(res.changed) > 0 {
		t.Errorf("Sessions of users the churn never touched changed: %v", res.changed)
	}
	for i, d := range res.revoked {
		if d > revokeAssert {
			t.Errorf("Revoked session %d ended %v after the change, over the asserted %v", i, d, revokeAssert)
		}
	}
}

// BenchmarkChurn runs the churn (60 s at 20 changes per second,
// 1,000 users, 50 connected) three times and prints each run and the
// median and worst over all; it measures once, whatever b.N.
func BenchmarkChurn(b *testing.B) {
	var revoked, converged []time.Duration
	changed := 0
	for run := range 3 {
		var res churnResult
		b.Run(fmt.Sprintf("run%d", run), func(b *testing.B) {
			res = measureChurn(b, churnSpec{users: recoveryUsers, connected: 50, duration: time.Minute})
		})
		fmt.Printf("Churn run %d: %v\n", run, res)
		revoked = append(revoked, res.revoked...)
		converged = append(converged, res.converged)
		changed += len(res.changed)
	}
	slices.Sort(revoked)
	slices.Sort(converged)
	fmt.Printf("Churn, 3 runs: revoked sessions ended after median %v, worst %v (issue's bound %v); untouched sessions changed: %d; converged after median %v, worst %v\n",
		percentile(revoked, 0.5), percentile(revoked, 1), revokeBound, changed, percentile(converged, 0.5), percentile(converged, 1))
	b.ReportMetric(float64(percentile(revoked, 0.5).Milliseconds()), "revoke-median-ms")
	b.ReportMetric(float64(percentile(revoked, 1).Milliseconds()), "revoke-worst-ms")
}

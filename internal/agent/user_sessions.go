package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// forgetWrittenAfter is how long the agent remembers having written that
// a user holds no session of this pod: long enough that its own write has
// come back through the informer, so the stale status it may still read
// meanwhile is not taken for a change.
const forgetWrittenAfter = time.Minute

// writeUserSessions writes this pod's sessions into each user's status that
// changed. A user seen for the first time since the agent started is
// compared with what its status already says this pod holds. Only the
// users the listing concerns are looked at (sessionUsers). It returns how
// long until the first change it held (Options.SessionWriteGap) is due,
// 0 for none.
func (a *Agent) writeUserSessions(ctx context.Context, byID map[string][]v1alpha1.Session, now time.Time) (time.Duration, error) {
	users, err := a.sessionUsers(ctx, byID)
	if err != nil {
		return 0, err
	}
	var (
		errs  []error
		first time.Duration
	)
	for _, u := range users {
		held, err := a.writeUserSession(ctx, u, byID[string(u.Spec.Identity)], now)
		if err != nil {
			errs = append(errs, fmt.Errorf("VPNUser %s: %w", u.Name, err))
		}
		if held > 0 && (first == 0 || held < first) {
			first = held
		}
	}
	a.forgetWritten(users, now)
	return first, errors.Join(errs...)
}

// sessionUsers are the gateway's users that hold a session of this pod
// (byID), that the agent wrote sessions of, or whose status lists
// sessions of this pod: from the stores' index, or from a pass over every
// user when the agent reads through Options.Reader.
func (a *Agent) sessionUsers(ctx context.Context, byID map[string][]v1alpha1.Session) ([]*v1alpha1.VPNUser, error) {
	st := a.stores
	if st == nil || st.index == nil {
		v, err := a.read(ctx, false)
		if err != nil {
			return nil, err
		}
		var out []*v1alpha1.VPNUser
		for _, u := range v.users {
			if u.Spec.GatewayRef.Name == a.opts.Gateway {
				out = append(out, u)
			}
		}
		return out, nil
	}
	names := map[string]bool{}
	a.mu.Lock()
	for n := range a.written.users {
		names[n] = true
	}
	a.mu.Unlock()
	st.index.candidates(byID, names)
	out := make([]*v1alpha1.VPNUser, 0, len(names))
	for n := range names {
		if u, ok := st.users.get(n); ok && u.Spec.GatewayRef.Name == a.opts.Gateway {
			out = append(out, u)
		}
	}
	return out, nil
}

// writeUserSession writes u's sessions of this pod, mine, when they
// changed since the last write, or returns how long the change is held.
func (a *Agent) writeUserSession(ctx context.Context, u *v1alpha1.VPNUser, mine []v1alpha1.Session, now time.Time) (time.Duration, error) {
	var others []v1alpha1.Session
	for _, s := range u.Status.Sessions {
		if s.Pod != a.opts.Pod {
			others = append(others, s)
		}
	}
	if len(mine) > maxSessions-len(others) {
		mine = mine[:max(0, maxSessions-len(others))]
	}
	shape, counters := sessionShape(mine), sessionCounters(mine)
	a.mu.Lock()
	last, known := a.written.users[u.Name]
	a.mu.Unlock()
	if !known {
		// What a previous run of this pod's agent wrote.
		var before []v1alpha1.Session
		for _, s := range u.Status.Sessions {
			if s.Pod == a.opts.Pod {
				before = append(before, s)
			}
		}
		// Nothing written by this run: a change is written at once, and
		// counters from an earlier run are stale by definition.
		last = written{shape: sessionShape(before), counters: sessionCounters(before)}
	}
	write, held := last.spaced(shape, counters, now, a.opts.SessionWriteGap, a.opts.CounterInterval)
	if !write {
		return held, nil
	}
	status := map[string]any{}
	if len(mine) > 0 {
		list, err := toList(mine)
		if err != nil {
			return 0, err
		}
		status["sessions"] = list
	}
	if n := len(mine) + len(others); n > 0 {
		status["sessionCount"] = int64(n)
	}
	if err := a.applyStatus(ctx, "VPNUser", u.Name, status); err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.written.users[u.Name] = written{shape: shape, counters: counters, at: now}
	a.mu.Unlock()
	return 0, nil
}

// forgetWritten drops what the agent remembers of users gone (not among
// users, the gateway's users this listing looked at) and, after
// forgetWrittenAfter, of users it wrote no session of: what it remembers
// stays as small as the users connected.
func (a *Agent) forgetWritten(users []*v1alpha1.VPNUser, now time.Time) {
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		seen[u.Name] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, w := range a.written.users {
		if !seen[name] || (w.shape == "" && now.Sub(w.at) >= forgetWrittenAfter) {
			delete(a.written.users, name)
		}
	}
}

package agent

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/diagnose"
)

// maxRecentFailures is the API's bound of status.agents[].recentFailures.
const maxRecentFailures = 16

// DefaultFailureInterval is how often, at most, the recent failures in the
// gateway's status are rewritten while failures keep coming: a new kind
// of failure after a quiet spell is written at once, repeats and further
// kinds within the interval wait for the next write.
const DefaultFailureInterval = 10 * time.Second

// failureLog is this pod's status.agents[].recentFailures as it stands,
// deduplicated by phase, reason and peer, newest last.
type failureLog struct {
	mu      sync.Mutex
	entries []v1alpha1.RecentFailure
	dirty   bool
	written time.Time
}

func (l *failureLog) add(f diagnose.Failure, obj member, message string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	peer := peerName(f)
	t := metav1.NewTime(now.Truncate(time.Second))
	i := slices.IndexFunc(l.entries, func(e v1alpha1.RecentFailure) bool {
		return e.Phase == string(f.Phase) && e.Reason == f.Reason && e.Peer == peer
	})
	e := v1alpha1.RecentFailure{Phase: string(f.Phase), Reason: f.Reason, Peer: peer, FirstSeen: t}
	if i >= 0 {
		e = l.entries[i]
		l.entries = slices.Delete(l.entries, i, i+1)
	}
	e.Kind, e.Name, e.RemoteAddress, e.Message = obj.kind, obj.name, f.Remote, message
	e.Count++
	e.LastSeen = t
	if len(l.entries) >= maxRecentFailures {
		l.entries = l.entries[len(l.entries)-maxRecentFailures+1:]
	}
	l.entries = append(l.entries, e)
	l.dirty = true
}

// take returns the entries to write if they changed and the last write is
// at least every old.
func (l *failureLog) take(now time.Time, every time.Duration) ([]v1alpha1.RecentFailure, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dirty || (!l.written.IsZero() && now.Sub(l.written) < every) {
		return nil, false
	}
	l.dirty = false
	l.written = now
	return slices.Clone(l.entries), true
}

// memberCondition is the Connected condition the agent last wrote on a
// VPNUser or Tunnel, and the identity whose next session clears it.
type memberCondition struct {
	obj      member
	identity string
	status   metav1.ConditionStatus
	reason   string
	message  string
	since    string // lastTransitionTime as written
}

// reportFailure reports one diagnosed failure: a metric, a log line, an
// Event on the object whose owner can fix it, an entry of the gateway's
// recent failures and the member's Connected condition.
func (a *Agent) reportFailure(ctx context.Context, f diagnose.Failure) {
	a.mu.Lock()
	ix := a.diag
	a.mu.Unlock()
	if ix == nil {
		ix = &diagIndex{gateway: member{kind: "VPNGateway", name: a.opts.Gateway}}
	}
	f = ix.complete(f)
	obj := ix.target(f)
	msg := failureMessage(f)
	a.metrics.failures.WithLabelValues(string(f.Phase), f.Reason).Inc()
	// Logged as often as the Event is written: a retrying client must not
	// flood the log either.
	log := logr.FromContextOrDiscard(ctx)
	if w, written := a.event(ctx, obj, f.Reason, msg); written {
		log.Info("Connection attempts failed", "phase", f.Phase, "reason", f.Reason, "kind", obj.kind, "name", obj.name,
			"peer", peerName(f), "remote", f.Remote, "ikeSA", f.IKESA, "count", w.count)
	} else {
		log.V(1).Info("Connection attempt failed", "phase", f.Phase, "reason", f.Reason, "kind", obj.kind, "name", obj.name,
			"peer", peerName(f), "remote", f.Remote, "ikeSA", f.IKESA)
	}
	a.failures.add(f, obj, msg, a.opts.Now())
	if obj.kind == "Tunnel" {
		a.rememberTunnelFailure(obj.name, f.Reason, msg, a.opts.Now())
	}
	// A replaced session leaves the user connected: no condition.
	if !obj.isGateway() && f.Reason != diagnose.ReasonDuplicateLogin {
		// Without the peer's address, which a roaming client (or a
		// script from many addresses) changes at every attempt: the
		// condition is written when the failure changes, not the peer.
		anywhere := f
		anywhere.Remote = ""
		a.setCondition(ctx, memberCondition{obj: obj, identity: f.RemoteID, status: metav1.ConditionFalse, reason: f.Reason, message: failureMessage(anywhere)})
	}
	a.flushFailures(ctx)
}

// flushFailures writes what the cadence allows: Event updates and the
// gateway's recent failures.
func (a *Agent) flushFailures(ctx context.Context) {
	a.flushEvents(ctx)
	entries, ok := a.failures.take(a.opts.Now(), a.opts.FailureInterval)
	if !ok {
		return
	}
	a.mu.Lock()
	a.report.RecentFailures = entries
	a.mu.Unlock()
	a.writeAgentStatus(ctx)
}

// setCondition writes a member's Connected condition when it changed. It
// has a field owner of its own, so that the pod's session writes, which
// send only the sessions, leave it alone.
func (a *Agent) setCondition(ctx context.Context, c memberCondition) {
	key := c.obj.kind + "/" + c.obj.name
	a.mu.Lock()
	last, known := a.conditions[key]
	a.mu.Unlock()
	if known && last.status == c.status && last.reason == c.reason && last.message == c.message {
		return
	}
	cond := map[string]any{
		"type": v1alpha1.ConditionConnected, "status": string(c.status), "reason": c.reason,
		"message": c.message, "lastTransitionTime": metav1.NewTime(a.opts.Now()).UTC().Format(time.RFC3339),
	}
	if known && last.status == c.status {
		// Kept from the last write: the transition is the status's, not the message's.
		cond["lastTransitionTime"] = last.since
	}
	if err := a.applyStatusAs(ctx, a.owner+"/diagnosis", c.obj.kind, c.obj.name, map[string]any{"conditions": []any{cond}}); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Writing the Connected condition failed", "kind", c.obj.kind, "name", c.obj.name)
		return
	}
	c.since = cond["lastTransitionTime"].(string)
	a.mu.Lock()
	a.conditions[key] = c
	a.mu.Unlock()
}

// clearConditions sets Connected back to True on the members that failed
// and now hold a session (users by identity) or an established IKE_SA
// (tunnels).
func (a *Agent) clearConditions(ctx context.Context, snap snapshot) {
	a.mu.Lock()
	var clear []memberCondition
	for _, c := range a.conditions {
		if c.status != metav1.ConditionFalse {
			continue
		}
		switch c.obj.kind {
		case "VPNUser":
			if len(snap.users[c.identity]) > 0 {
				clear = append(clear, c)
			}
		case "Tunnel":
			if st, ok := snap.tunnels[c.obj.name]; ok && st.Phase1 != nil && st.Phase1.State == stateEstablished {
				clear = append(clear, c)
			}
		}
	}
	a.mu.Unlock()
	for _, c := range clear {
		a.setCondition(ctx, memberCondition{obj: c.obj, identity: c.identity, status: metav1.ConditionTrue,
			reason: v1alpha1.ReasonConnected, message: "connected after a failed attempt"})
	}
}

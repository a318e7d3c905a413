package agent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// maxSessions is the API's limit of status.sessions of one VPNUser.
const maxSessions = 64

// written is what the agent last wrote, so that it writes only changes.
type written struct {
	shape    string
	counters string
	at       time.Time
}

type writtenState struct {
	users   map[string]written
	tunnels map[string]written
	agent   *v1alpha1.AgentStatus
	// agentAt is when agent was written.
	agentAt time.Time
}

func newWrittenState() writtenState {
	return writtenState{users: map[string]written{}, tunnels: map[string]written{}}
}

// due decides whether a status with this shape and these counters must be
// written, given what was written last.
func (w written) due(shape, counters string, now time.Time, every time.Duration) bool {
	write, _ := w.spaced(shape, counters, now, 0, every)
	return write
}

// spaced is due with at least gap between two writes: a change of shape
// within gap of the last write is held, and held is how long until it is
// due.
func (w written) spaced(shape, counters string, now time.Time, gap, every time.Duration) (write bool, held time.Duration) {
	since := now.Sub(w.at)
	if shape != w.shape {
		if since < gap {
			return false, gap - since
		}
		return true, 0
	}
	return counters != w.counters && since >= every, 0
}

// sessionLoop follows charon's events and lists its SAs periodically, and
// writes what it finds to the users', tunnels' and gateway's status. An
// event that changes SAs asks for a listing soon after (sessionRefreshDelay),
// so a burst of events costs one listing.
func (a *Agent) sessionLoop(ctx context.Context) {
	events := vici.Watch(ctx, a.opts.VICI, vici.WatchOptions{Log: true, Retry: 100 * time.Millisecond})
	tick := time.NewTicker(a.opts.SAInterval)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	pending := false
	authFailed := newAuthFailures()
	diag := newDiagnosis(a)
	alerts := a.watchAlerts(ctx)
	held := newHeldAlerts()
	defer held.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if a.handleEvent(ctx, ev, authFailed) && !pending {
				pending = true
				soon.Reset(sessionRefreshDelay)
			}
			if ev.Kind == vici.EventLog && ev.Log != nil {
				diag.log(ctx, ev.Log)
				a.spreadSt.noteLog(ev.Log, a.opts.Now())
			}
		case al := <-alerts:
			held.hold(al)
		case <-held.timer.C:
			for _, al := range held.due(time.Now()) {
				diag.alert(ctx, al)
			}
		case <-tick.C:
			held := a.refreshSessions(ctx)
			a.flushFailures(ctx)
			pending = listAgainAfter(soon, pending, held)
		case <-soon.C:
			pending = false
			pending = listAgainAfter(soon, pending, a.refreshSessions(ctx))
		case <-a.spreadSt.kick:
			pending = listAgainAfter(soon, pending, a.refreshSessions(ctx))
		}
	}
}

// handleEvent takes one of charon's events into account and reports
// whether the SAs may have changed.
func (a *Agent) handleEvent(ctx context.Context, ev vici.Event, authFailed *authFailures) bool {
	log := logr.FromContextOrDiscard(ctx)
	switch ev.Kind {
	case vici.EventConnected:
		// charon may have restarted with nothing loaded: apply (the
		// applier notices the new connection and reloads everything),
		// from the last apply when nothing else changed (restore.go).
		log.Info("Connected to charon")
		a.dirty.markCharon()
		a.wake()
		return true
	case vici.EventDisconnected:
		log.Info("Lost charon's VICI socket; waiting for it to come back")
		// Nothing is served until charon is back and loaded again.
		a.ready.Store(false)
	case vici.EventIKEUpDown:
		a.metrics.ikeUpDown(ev.Up)
		return true
	case vici.EventChildUpDown:
		a.metrics.childUpDown(ev.Up)
		return true
	case vici.EventIKERekey, vici.EventChildRekey, vici.EventIKEUpdate:
		return true
	case vici.EventLog:
		if ev.Log != nil && authFailed.seen(ev.Log) {
			a.metrics.authFailures.Inc()
		}
	}
	return false
}

// snapshot is what one listing of charon's SAs says about this pod.
type snapshot struct {
	users   map[string][]v1alpha1.Session
	tunnels map[string]v1alpha1.TunnelStatus
	total   int
	pools   []v1alpha1.PoolLeases
}

// takeSnapshot turns a listing into sessions, tunnel states and leases.
func (a *Agent) takeSnapshot(sas []vici.IKESA, now time.Time) snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions.prune(sas)
	snap := snapshot{
		users:   userSessions(sas, a.opts.Pod, a.tunnelConns, a.sessions, now),
		tunnels: make(map[string]v1alpha1.TunnelStatus, len(a.tunnelConns)),
	}
	for conn, info := range a.tunnelConns {
		st := tunnelStatus(sas, conn, info.children, a.sessions, now)
		if m := a.tunnels[info.name]; m != nil {
			st.LastFailure = m.failure
		}
		snap.tunnels[info.name] = st
	}
	for _, ss := range snap.users {
		snap.total += len(ss)
	}
	snap.pools = poolLeases(a.poolNets, snap.users, a.splitPools)
	a.report.Sessions = int32(snap.total)
	a.report.Pools = snap.pools
	a.report.ForeignStaticAddresses = a.foreignStatics(snap.users)
	return snap
}

// listAgainAfter arms soon for a listing after held, when a write is held
// and no listing is due already, and returns whether one is.
func listAgainAfter(soon *time.Timer, pending bool, held time.Duration) bool {
	if pending || held <= 0 {
		return pending
	}
	soon.Reset(held)
	return true
}

// refreshSessions lists the live SAs and reports them, and returns how
// long until a user's change it held is due (0 for none).
func (a *Agent) refreshSessions(ctx context.Context) time.Duration {
	log := logr.FromContextOrDiscard(ctx)
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		if !errors.Is(err, vici.ErrUnavailable) {
			log.Error(err, "Listing SAs failed")
		}
		return 0
	}
	if a.enforceSessionLimits(ctx, sas) {
		// The replaced devices' IKE_SAs are being deleted: report the rest.
		if sas, err = vici.ListSAs(ctx, a.opts.VICI); err != nil {
			log.Error(err, "Listing SAs failed")
			return 0
		}
	}
	now := a.opts.Now()
	snap := a.takeSnapshot(sas, now)
	a.metrics.sessions.Set(float64(snap.total))
	held, userErr := a.writeUserSessions(ctx, snap.users, now)
	if err := errors.Join(userErr, a.writeTunnels(ctx, snap.tunnels, now)); err != nil {
		log.Error(err, "Writing session status failed")
	}
	a.clearConditions(ctx, snap)
	if h := a.writeAgentCounts(ctx, now); h > 0 && (held == 0 || h < held) {
		held = h
	}
	a.scheduleSpread(a.spread(ctx, sas))
	return held
}

func (a *Agent) writeTunnels(ctx context.Context, stats map[string]v1alpha1.TunnelStatus, now time.Time) error {
	var errs []error
	for name, st := range stats {
		shape, counters := tunnelShape(st), tunnelCounters(st)
		a.mu.Lock()
		last := a.written.tunnels[name]
		a.mu.Unlock()
		if !last.due(shape, counters, now, a.opts.CounterInterval) {
			continue
		}
		status, err := toMap(&struct {
			Conditions  []metav1.Condition           `json:"conditions"`
			Phase1      *v1alpha1.Phase1Status       `json:"phase1,omitempty"`
			Children    []v1alpha1.TunnelChildStatus `json:"children,omitempty"`
			ChildrenUp  string                       `json:"childrenUp,omitempty"`
			LastFailure *v1alpha1.TunnelFailure      `json:"lastFailure,omitempty"`
		}{[]metav1.Condition{a.establishedCondition(name, st, now)}, st.Phase1, st.Children, st.ChildrenUp, st.LastFailure})
		if err != nil {
			return err
		}
		if err := a.applyStatus(ctx, "Tunnel", name, status); err != nil {
			errs = append(errs, fmt.Errorf("Tunnel %s: %w", name, err))
			continue
		}
		a.mu.Lock()
		a.written.tunnels[name] = written{shape: shape, counters: counters, at: now}
		a.mu.Unlock()
	}
	a.mu.Lock()
	for name := range a.written.tunnels {
		if _, ok := stats[name]; !ok {
			delete(a.written.tunnels, name)
			delete(a.tunnels, name)
		}
	}
	a.mu.Unlock()
	return errors.Join(errs...)
}

// applyStatus writes status fields of one object with server-side apply as
// this pod's field owner. Only the fields given are sent, so the owner
// holds exactly those, and drops what it held before and sends no more.
func (a *Agent) applyStatus(ctx context.Context, kind, name string, status map[string]any) error {
	return a.applyStatusAs(ctx, a.owner, kind, name, status)
}

// applyStatusAs is applyStatus with another field owner of this pod's.
func (a *Agent) applyStatusAs(ctx context.Context, owner, kind, name string, status map[string]any) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": a.opts.Namespace},
		"status":     status,
	}}
	return a.opts.Writer.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(owner), client.ForceOwnership)
}

// toMap encodes a pointer to a struct as JSON-like maps.
func toMap(v any) (map[string]any, error) {
	return kruntime.DefaultUnstructuredConverter.ToUnstructured(v)
}

func toList(ss []v1alpha1.Session) ([]any, error) {
	out := make([]any, 0, len(ss))
	for i := range ss {
		m, err := toMap(&ss[i])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// authFailures recognises charon's log lines (levels 0 and 1, all it sends
// over VICI) that end a client's authentication, counting each IKE_SA once.
type authFailures struct {
	recent []uint32
}

// authFailureLine matches what charon 5.9.8 logs at level 1 when a client
// fails to authenticate: the EAP server's verdicts (MSCHAPv2 retries before
// failing for good, so its first refusal counts), failed signatures and
// certificate constraints, and a client giving up with AUTHENTICATION_FAILED.
var authFailureLine = regexp.MustCompile(`EAP method \S+ failed for peer|EAP-MS-CHAPv2 verification failed|no EAP key found for|` +
	`authentication of '[^']*' with \S+ failed|constraint check failed|received AUTHENTICATION_FAILED notify`)

func newAuthFailures() *authFailures { return &authFailures{} }

// mayBeAuthFailure passes over, without the pattern, the lines that hold
// none of authFailureLine's words: nearly all of them.
func mayBeAuthFailure(msg string) bool {
	return strings.Contains(msg, "failed") || strings.Contains(msg, "FAILED") || strings.Contains(msg, "no EAP key found")
}

func (f *authFailures) seen(l *vici.LogEntry) bool {
	if !mayBeAuthFailure(l.Message) || !authFailureLine.MatchString(l.Message) {
		return false
	}
	if l.IKEUniqueID != 0 {
		if slices.Contains(f.recent, l.IKEUniqueID) {
			return false
		}
		f.recent = append(f.recent, l.IKEUniqueID)
		if len(f.recent) > 64 {
			f.recent = f.recent[1:]
		}
	}
	return true
}

// tunnelMemory is what a tunnel's status keeps between listings.
type tunnelMemory struct {
	failure *v1alpha1.TunnelFailure
	// established and since are the Established condition's last status
	// and transition time.
	established metav1.ConditionStatus
	since       metav1.Time
}

// tunnel returns the memory of a tunnel; a.mu must be held.
func (a *Agent) tunnel(name string) *tunnelMemory {
	m := a.tunnels[name]
	if m == nil {
		m = &tunnelMemory{}
		a.tunnels[name] = m
	}
	return m
}

// establishedCondition is the Tunnel's Established condition, with the
// transition time of its last change of status.
func (a *Agent) establishedCondition(name string, st v1alpha1.TunnelStatus, now time.Time) metav1.Condition {
	status, reason, message := tunnelEstablished(st)
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.tunnel(name)
	if m.established != status {
		m.established, m.since = status, metav1.NewTime(now.Truncate(time.Second))
	}
	return metav1.Condition{Type: v1alpha1.ConditionEstablished, Status: status, Reason: reason, Message: message, LastTransitionTime: m.since}
}

// rememberTunnelFailure keeps a tunnel's last diagnosed failure for its status.
func (a *Agent) rememberTunnelFailure(name, reason, message string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tunnel(name).failure = &v1alpha1.TunnelFailure{Reason: reason, Message: message, At: metav1.NewTime(at.Truncate(time.Second))}
}

// noteConnections records in the report how many of the model's
// connections charon holds after an apply: those it did not refuse. The
// manager calls a gateway whose charon holds none not Ready.
func (a *Agent) noteConnections(m swan.Model, applied vici.Result) {
	refused := map[string]bool{}
	for _, f := range applied.Failed {
		if f.Ref.Kind == vici.KindConn {
			refused[f.Ref.Name] = true
		}
	}
	n := int32(0)
	for _, c := range m.Connections {
		if !refused[c.Name] {
			n++
		}
	}
	a.mu.Lock()
	a.report.Connections = &n
	a.mu.Unlock()
}

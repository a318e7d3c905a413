// Package agent is the sidecar of a gateway pod. It watches the gateway's
// resources through the API server, builds the charon model with
// internal/swan, makes charon hold it over VICI (only the difference, through
// vici.Applier), programs the gateway's nftables table, and reports what
// charon does: user sessions, tunnel states, its own apply result per pod,
// Prometheus metrics and a readiness endpoint.
//
// Three loops run side by side: the apply loop (debounced, retried with
// backoff), the session loop (charon's events plus a periodic list-sas) and
// the informers feeding the first.
package agent

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// Agent is one gateway pod's agent.
type Agent struct {
	opts    Options
	owner   string
	applier *vici.Applier
	metrics *metrics
	cache   cache.Cache
	// secretCaches watch one Secret each (the credentials shards and the
	// certificate Secret), set with cache.
	secretCaches []cache.Cache
	// stores are the views of the agent's own informers; nil when the
	// caller supplied Options.Reader.
	stores *stores
	// decoder holds the decoded credentials shards and usersBuf the
	// users' copies of the last apply; only the apply loop uses them.
	decoder  *credentials.Decoder
	usersBuf []v1alpha1.VPNUser

	kick  chan struct{}
	ready atomic.Bool
	// dirty is what changed since the apply loop last looked; index is
	// the last whole apply's user index while nothing but users changed
	// since (users_delta.go). The apply loop alone uses index and the
	// last* fields.
	dirty          dirty
	index          *swan.UserIndex
	lastModel      swan.Model
	lastGeneration int64
	lastRADIUS     savedRADIUS

	// mu guards what both loops read and write.
	mu sync.Mutex
	// allowed are the identities of the last applied model's user secrets;
	// nil until the first apply.
	allowed map[string]bool
	// localUsers is set when the gateway authenticates VPNUsers itself,
	// so that a session whose identity lost its secret must end.
	localUsers bool
	// limits are the session limits of the last applied model.
	limits sessionLimits
	// tunnelConns maps charon connection names to Tunnel objects and their children.
	tunnelConns map[string]tunnelInfo
	// tunnelSet are the tunnel connections of the last apply; nil before
	// the first.
	tunnelSet map[string]bool
	// poolNets maps MobilePool names to their address ranges; splitPools
	// says whether they are divided between replicas.
	poolNets   map[string][]netip.Prefix
	splitPools bool
	// tunnelsHeld is set while this pod holds the tunnel Lease.
	tunnelsHeld atomic.Bool
	// spreadIn is what spreading needs of the last Build (under mu);
	// spreadSt its memory, the session loop's own.
	spreadIn spreadInputs
	spreadSt *spreadState
	// draining is set once a drain began; the drain's result is kept for
	// every caller (see Drain).
	draining  atomic.Bool
	drainOnce sync.Once
	drained   chan struct{}
	drainRes  DrainResult
	drainErr  error
	// log is Run's logger, for requests of the health server.
	log    atomic.Pointer[logr.Logger]
	report v1alpha1.AgentStatus
	// expiry triggers an apply when the next user expires, at nextExpiry.
	expiry     *time.Timer
	nextExpiry time.Time
	// firewallOff is set once the table of a gateway whose firewall is
	// disabled has been deleted.
	firewallOff bool
	// radius tracks the eap-radius servers file; only the apply loop uses it.
	radius radiusState
	// saved is the state file of the last applied model; only the apply
	// loop uses it.
	saved stateFile
	// users are the identities, NT hashes and policies the agent's RADIUS
	// server answers with (see serveUsers); local is that server, started
	// by Run with RADIUSDir.
	users *radiusd.Map
	local *localRADIUS
	// status bookkeeping of the session loop
	written  writtenState
	sessions sessionClock
	// diag indexes the last Build for diagnosis (under mu); failures,
	// events and conditions are what the agent reported.
	diag       *diagIndex
	failures   failureLog
	events     *eventLimiter
	conditions map[string]memberCondition
	// tunnels holds what the tunnels' status carries beyond one listing:
	// the last failure and when Established last changed.
	tunnels map[string]*tunnelMemory
}

type tunnelInfo struct {
	name     string
	children []string
}

// New returns an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Namespace == "" || opts.Gateway == "" || opts.Pod == "" {
		return nil, errors.New("agent: namespace, gateway and pod are required")
	}
	if opts.VICI == nil || opts.Reader == nil || opts.Writer == nil {
		return nil, errors.New("agent: VICI session, reader and writer are required")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.CredentialsWait == 0 {
		opts.CredentialsWait = DefaultCredentialsWait
	}
	if opts.SAInterval <= 0 {
		opts.SAInterval = DefaultSAInterval
	}
	if opts.CounterInterval <= 0 {
		opts.CounterInterval = DefaultCounterInterval
	}
	if opts.SessionWriteGap <= 0 {
		opts.SessionWriteGap = DefaultSessionWriteGap
	}
	if opts.CountsWriteGap <= 0 {
		opts.CountsWriteGap = DefaultCountsWriteGap
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.FailureInterval <= 0 {
		opts.FailureInterval = DefaultFailureInterval
	}
	if opts.OfflineAfter <= 0 {
		opts.OfflineAfter = DefaultOfflineAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	m := newMetrics()
	if opts.Registerer != nil {
		if err := m.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	return &Agent{
		opts:     opts,
		saved:    stateFile{path: opts.StateFile},
		owner:    v1alpha1.AgentFieldOwner(opts.Pod),
		applier:  vici.NewApplier(opts.VICI),
		metrics:  m,
		kick:     make(chan struct{}, 1),
		drained:  make(chan struct{}),
		spreadSt: newSpreadState(),
		report:   v1alpha1.AgentStatus{Pod: opts.Pod, NodeAddress: opts.NodeAddress, CredentialsRecent: true},
		decoder:  credentials.NewDecoder(opts.Gateway),
		users:    &radiusd.Map{},
		written:  newWrittenState(),
		sessions: sessionClock{},
		events:   newEventLimiter(),

		conditions: map[string]memberCondition{},
		tunnels:    map[string]*tunnelMemory{},
	}, nil
}

// FieldOwner is the server-side apply field owner of this agent's writes.
func (a *Agent) FieldOwner() string { return a.owner }

// Ready reports whether the pod serves the gateway's connections: the last
// apply reached charon, which holds every mobile connection and the
// gateway's key, and the firewall and RADIUS servers are in place. Items
// that fail alone (a refused user's secret, a tunnel charon refuses) do
// not make the pod unready: everything else is served.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Trigger asks for an apply of everything; a burst of triggers causes one.
func (a *Agent) Trigger() {
	a.dirty.mark("", "", true)
	a.wake()
}

// wake asks the apply loop to look at what is dirty.
func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run applies and reports until ctx is done. An agent made by NewForConfig
// starts its informers first; with a Reader of the caller's, the caller
// calls Trigger on changes.
func (a *Agent) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithValues("gateway", a.opts.Namespace+"/"+a.opts.Gateway, "pod", a.opts.Pod)
	ctx = logr.NewContext(ctx, log)
	a.log.Store(&log)
	if err := a.startRADIUS(ctx); err != nil {
		return err
	}
	if err := a.startCache(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.applyLoop(ctx) }()
	go func() { defer wg.Done(); a.sessionLoop(ctx) }()
	go func() { defer wg.Done(); a.holdTunnels(ctx) }()
	a.Trigger()
	wg.Wait()
	a.mu.Lock()
	if a.expiry != nil {
		a.expiry.Stop()
	}
	a.mu.Unlock()
	return nil
}

// sync makes charon and the firewall hold what the gateway's objects say.
func (a *Agent) sync(ctx context.Context) error {
	d := a.dirty.take()
	if d.charon && !d.other && !a.restoreCharon(ctx) {
		d.other = true
	}
	if done, err := a.syncUsers(ctx, d); done {
		return err
	}
	a.index = nil
	log := logr.FromContextOrDiscard(ctx)
	start := time.Now()
	in, gw, err := a.resources(ctx)
	read := time.Since(start)
	if err != nil {
		a.metrics.lastError.Set(1)
		a.setReport(ctx, nil, err)
		return err
	}
	in.Replica = replicaOf(gw, a.opts.Pod)
	res := swan.Build(in)
	if !a.servesTunnels() {
		res = withoutTunnels(res)
	}
	model := res.Model
	users := a.serveUsers(&res)
	a.mu.Lock()
	a.diag = newDiagIndex(&in, &res)
	a.mu.Unlock()
	built := time.Since(start) - read
	a.scheduleExpiry(in)
	// The manager turns problems into conditions; the agent only notes them.
	for _, p := range res.Problems {
		log.V(1).Info("Object left out of the configuration", "problem", p.String())
	}

	var errs []error
	if err := a.endRevokedSessions(ctx, &res, false); err != nil && !errors.Is(err, vici.ErrUnavailable) {
		errs = append(errs, err)
	}
	applied, applyErr := a.applyModel(ctx, model)
	if len(applied.Ops) > 0 {
		log.Info("Applied the gateway configuration", "writes", len(applied.Ops), "synced", applied.Synced,
			"read", read.String(), "build", built.String(), "apply", applied.Duration.String())
	}
	for _, f := range applied.Failed {
		log.Info("Item not applied to charon", "item", f.Ref.String(), "error", f.Err.Error())
	}
	errs = append(errs, applyErr)
	a.rememberTunnels(&res)
	a.rememberSpread(&res)

	if !errors.Is(applyErr, vici.ErrUnavailable) {
		if applied.Synced {
			// charon's SAs read afresh: users removed while the agent was
			// away, or charon restarted, are cut off now.
			if err := a.endRevokedSessions(ctx, &res, true); err != nil {
				errs = append(errs, err)
			}
		}
		if err := a.endRemovedTunnels(ctx, &res, applied.Synced); err != nil {
			errs = append(errs, err)
		}
	}
	// Without its RADIUS servers or its firewall the pod serves nobody.
	var servingErrs []error
	if err := a.syncRADIUS(ctx, &res); err != nil {
		servingErrs = append(servingErrs, err)
	}
	if a.opts.Firewall != nil {
		if err := a.syncFirewall(ctx, &in.Gateway, &res); err != nil {
			servingErrs = append(servingErrs, err)
		}
	}
	errs = append(errs, servingErrs...)

	// save skips an unchanged file itself: a user change writes nothing
	// to charon but changes the saved users.
	if !errors.Is(applyErr, vici.ErrUnavailable) {
		// Not an apply error: charon holds the configuration either way,
		// and retrying the apply would not make the volume writable.
		if err := a.saved.save(model, gw.Generation, savedRADIUSOf(&res, users)); err != nil {
			log.Error(err, "Keeping the applied configuration for a restart failed")
		}
		a.lastModel, a.lastGeneration, a.lastRADIUS = model, gw.Generation, savedRADIUSOf(&res, nil)
	}

	if !errors.Is(applyErr, vici.ErrUnavailable) {
		a.noteConnections(model, applied)
	}
	err = errors.Join(errs...)
	a.setReport(ctx, gw, err)
	a.updateReadiness(ctx, model, applied, applyErr, errors.Join(servingErrs...))
	if err == nil && a.stores != nil {
		// Until something but users changes, users are decided alone.
		a.index = res.Index
	}
	return err
}

// applyModel makes charon hold m and records the apply.
func (a *Agent) applyModel(ctx context.Context, m swan.Model) (vici.Result, error) {
	applied, err := a.applier.Apply(ctx, m)
	a.metrics.observeApply(applied, err)
	if a.opts.OnApply != nil {
		a.opts.OnApply(applied, err)
	}
	return applied, err
}

// setReport records the outcome of an apply in this pod's status.agents
// entry; the applied generation only moves on success.
func (a *Agent) setReport(ctx context.Context, gw *v1alpha1.VPNGateway, err error) {
	a.mu.Lock()
	if err == nil && gw != nil {
		a.report.AppliedGeneration = gw.Generation
		a.report.LastError = ""
	} else if err != nil {
		a.report.LastError = truncate(err.Error(), maxErrorLen)
	}
	a.mu.Unlock()
	a.writeAgentStatus(ctx)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

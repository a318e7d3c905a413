package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
)

// DefaultRADIUSAddr is where the agent's RADIUS server listens: the pod's
// loopback, a port the kernel picks (the servers file tells charon which).
const DefaultRADIUSAddr = "127.0.0.1:0"

// localServerName is the agent's server in charon's eap-radius servers.
const localServerName = "agent"

// localSockets is how many requests charon sends the agent's server at once.
const localSockets = 8

// localRADIUS is the agent's own RADIUS server, which answers charon's
// EAP-MSCHAPv2 logins of an EAPMSCHAPv2 gateway against the NT hashes of
// the last Build (Agent.users). charon holds no user secret, so a user
// change costs a map swap and no VICI call, and a restarted charon has
// nothing per user to reload: it reads the servers file at start.
type localRADIUS struct {
	server *radiusd.Server
	// sessions are the live sessions charon's accounting reported, by
	// Acct-Session-Id: the sessions as they begin and end, next to the
	// session loop's listings.
	mu       sync.Mutex
	sessions map[string]string
	gauge    prometheus.Gauge
	// secret is the per-pod shared secret, made at start: it lives only
	// in this process and in the servers file (mode 0600) that charon
	// reads. Never logged.
	secret []byte
}

// newLocalRADIUS binds the server of users (Options.RADIUSConn, or
// RADIUSAddr) with a fresh shared secret.
func newLocalRADIUS(opts Options, users radiusd.Users, log logr.Logger, gauge prometheus.Gauge) (*localRADIUS, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("making the RADIUS shared secret: %w", err)
	}
	// Hex, so the secret needs no quoting in the servers file and holds
	// no NUL for charon's C strings.
	l := &localRADIUS{secret: []byte(hex.EncodeToString(raw)), sessions: map[string]string{}, gauge: gauge}
	addr := opts.RADIUSAddr
	if addr == "" {
		addr = DefaultRADIUSAddr
	}
	srv, err := radiusd.New(radiusd.Options{Addr: addr, Conn: opts.RADIUSConn, Secret: l.secret, Users: users,
		Accounting: func(r radiusd.AccountingRecord) { l.account(log, users, r) }})
	if err != nil {
		return nil, err
	}
	l.server = srv
	return l, nil
}

// account records a session charon reports starting or stopping.
func (l *localRADIUS) account(log logr.Logger, users radiusd.Users, r radiusd.AccountingRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Status {
	case radiusd.AccountingStart, radiusd.AccountingInterim:
		if _, ok := users.NTHash(r.Identity); !ok {
			// charon accounts for every IKE_SA, tunnels' too; only the
			// sessions of the users this server checks are its own.
			return
		}
		if _, known := l.sessions[r.SessionID]; !known && r.Status == radiusd.AccountingStart {
			log.V(1).Info("RADIUS session started", "identity", diagnose.Clean(r.Identity), "virtualIP", r.Address.String())
		}
		l.sessions[r.SessionID] = r.Identity
	case radiusd.AccountingStop:
		if _, known := l.sessions[r.SessionID]; known {
			log.V(1).Info("RADIUS session stopped", "identity", diagnose.Clean(r.Identity))
		}
		delete(l.sessions, r.SessionID)
	}
	l.gauge.Set(float64(len(l.sessions)))
}

// serve answers charon until ctx ends.
func (l *localRADIUS) serve(ctx context.Context) {
	if err := l.server.Serve(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "The RADIUS server for charon stopped")
	}
}

// config is the servers file entry that points charon at the server.
// Accounting goes to the same port: the server tells the packets apart by
// their code.
func (l *localRADIUS) config() swan.RADIUSServer {
	ap := l.server.Addr()
	return swan.RADIUSServer{
		Name:     localServerName,
		Address:  ap.Addr().String(),
		AuthPort: int(ap.Port()),
		AcctPort: int(ap.Port()),
		Secret:   l.secret,
		// Logins of many clients at once each wait for a free socket;
		// the server answers them in parallel (a worker per CPU).
		Sockets: localSockets,
	}
}

// serveUsers makes the agent's RADIUS server hold the users Build
// accepted, in one swap: called before charon's configuration is applied,
// so a user deleted, disabled or expired is refused from its next login
// on, however long charon takes. Other gateways' users have no hash and
// are not served.
func (a *Agent) serveUsers(res *swan.Result) map[string]radiusd.User {
	users := make(map[string]radiusd.User, len(res.Users))
	if res.AgentRADIUS {
		for _, u := range res.Users {
			users[u.Identity] = radiusUser(&u)
		}
	}
	a.serveMap(users)
	return users
}

// radiusUser is what the RADIUS server holds of a served user.
func radiusUser(u *swan.AcceptedUser) radiusd.User {
	return radiusd.User{NTHash: u.NTHash, Policy: radiusd.Policy{Address: u.Address, Class: u.Group}}
}

// serveMap swaps the RADIUS server's users for users, which it keeps.
func (a *Agent) serveMap(users map[string]radiusd.User) {
	a.users.Replace(users)
	a.metrics.radiusUsers.Set(float64(len(users)))
	if a.opts.OnUsers != nil {
		a.opts.OnUsers(a.users)
	}
}

// startRADIUS starts the agent's RADIUS server when the agent manages
// charon's RADIUS servers at all (Options.RADIUSDir).
func (a *Agent) startRADIUS(ctx context.Context) error {
	if a.opts.RADIUSDir == "" {
		return nil
	}
	l, err := newLocalRADIUS(a.opts, a.users, logr.FromContextOrDiscard(ctx), a.metrics.radiusSessions)
	if err != nil {
		return fmt.Errorf("starting the RADIUS server for charon: %w", err)
	}
	a.local = l
	if err := a.registerLoginMetrics(l.server); err != nil {
		return err
	}
	go l.serve(ctx)
	logr.FromContextOrDiscard(ctx).Info("Serving charon's EAP-MSCHAPv2 logins", "address", l.server.Addr().String())
	return nil
}

// registerLoginMetrics counts the server's answers, read from its own
// counters when scraped.
func (a *Agent) registerLoginMetrics(srv *radiusd.Server) error {
	if a.opts.Registerer == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ikegate_agent_radius_accepts_total",
			Help: "EAP-MSCHAPv2 logins the agent's RADIUS server accepted.",
		}, func() float64 { return float64(srv.Stats().Accepts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ikegate_agent_radius_rejects_total",
			Help: "EAP-MSCHAPv2 logins the agent's RADIUS server refused: unknown, removed, disabled or expired users, wrong passwords.",
		}, func() float64 { return float64(srv.Stats().Rejects) }),
	} {
		if err := a.opts.Registerer.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Serves reports whether the agent's RADIUS server holds identity's
// password hash: whether that user can log in through this pod now.
func (a *Agent) Serves(identity string) bool {
	_, ok := a.users.NTHash(identity)
	return ok
}

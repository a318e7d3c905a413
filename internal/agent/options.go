package agent

import (
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/vici"
)

// Defaults of Options.
const (
	DefaultDebounce        = 50 * time.Millisecond
	DefaultCredentialsWait = 300 * time.Millisecond
	DefaultSAInterval      = 3 * time.Second
	DefaultCounterInterval = 30 * time.Second
	// DefaultSessionWriteGap is Options.SessionWriteGap's default.
	DefaultSessionWriteGap = time.Second
	// DefaultCountsWriteGap is Options.CountsWriteGap's default.
	DefaultCountsWriteGap = 5 * time.Second
	DefaultMaxBackoff     = 10 * time.Second
	minBackoff            = 100 * time.Millisecond
	// sessionRefreshDelay gathers the burst of events one connect or
	// disconnect raises (ike-updown, child-updown, log) into one list-sas.
	sessionRefreshDelay = 100 * time.Millisecond
	// maxErrorLen keeps status.agents[].lastError within its API limit.
	maxErrorLen = 1024
)

// FieldOwnerPrefix starts the server-side apply field owner of every status
// an agent writes; the pod name completes it, so replicas never take each
// other's fields.
const FieldOwnerPrefix = v1alpha1.AgentFieldOwnerPrefix

// Firewall is the part of firewall.Applier the agent uses.
type Firewall interface {
	Table() string
	Apply(rs *firewall.Ruleset) (changed bool, err error)
	// Delete removes the table; removing a missing table is no error.
	Delete() error
}

// Options configure an Agent.
type Options struct {
	// Namespace and Gateway name the VPNGateway this agent serves; Pod is the
	// gateway pod it runs in.
	Namespace string
	Gateway   string
	Pod       string
	// NodeAddress is the address of the pod's node, reported as the next
	// hop of the pod's pool slices on a Routed return path.
	NodeAddress string
	// CertificateSecret overrides the gateway's status.certificateSecretName:
	// the Secret with tls.crt, tls.key and ca.crt. NewForConfig watches it
	// by name and defaults it to the manager's name for it.
	CertificateSecret string

	// VICI is the session to the pod's charon.
	VICI vici.Session
	// Reader reads the gateway's objects, normally the informer cache of
	// Sources. Writer writes status with server-side apply.
	Reader client.Reader
	Writer client.Client
	// Leases, when set, elect the one replica that serves the gateway's
	// Tunnels (see holdTunnels), with TunnelLease's timing; nil serves them
	// always, as a lone agent.
	Leases      coordinationv1client.LeasesGetter
	TunnelLease LeaseTiming
	// DrainTimeout bounds how long a drain waits for redirected clients to
	// leave; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Firewall programs the gateway's table; nil leaves the firewall alone.
	Firewall Firewall
	// RADIUSDir is the directory, shared with charon, where charon's
	// eap-radius servers are written (v1alpha1.RADIUSDir): an EAPRADIUS
	// gateway's, or the agent's own server that checks the passwords of an
	// EAPMSCHAPv2 gateway's users. Empty leaves charon's RADIUS servers
	// alone and runs no server.
	RADIUSDir string
	// RADIUSAddr is the loopback address the agent's RADIUS server listens
	// on; empty is DefaultRADIUSAddr. RADIUSConn, when set, is a socket
	// bound to it already (tests bind it in charon's network namespace).
	RADIUSAddr string
	RADIUSConn net.PacketConn
	// Registerer receives the agent's metrics; nil registers nowhere.
	Registerer prometheus.Registerer

	// Debounce gathers a burst of changes into one apply.
	Debounce time.Duration
	// CredentialsWait is how long past Debounce an apply waits for the
	// password hash of a new user that the manager has not written yet
	// (see pendingHashes); 0 means DefaultCredentialsWait, negative not
	// to wait.
	CredentialsWait time.Duration
	// SAInterval is how often live SAs are listed for counters.
	SAInterval time.Duration
	// CounterInterval is how often a session whose only change is its
	// traffic counters is written to status.
	CounterInterval time.Duration
	// SessionWriteGap is the least time between two writes of one user's
	// sessions: a user's first connect is written at once, a change within
	// the gap when it ends. A client reconnecting in a loop costs the API
	// server a write a second, not one per connect (each is a server-side
	// apply, several milliseconds of the API server's CPU).
	SessionWriteGap time.Duration
	// CountsWriteGap is the least time between two writes of this pod's
	// report (status.agents) whose only change is its session and lease
	// counts. Each such write has the manager write the gateway's and the
	// pools' sums as well.
	CountsWriteGap time.Duration
	// MaxBackoff caps the delay between retries of a failed apply.
	MaxBackoff time.Duration
	// ErrorNotifySocket is charon's error-notify socket
	// (v1alpha1.ErrorNotifySocketPath); its alerts complete the diagnosis of
	// failed connection attempts that the VICI log stream gives. Empty
	// diagnoses from the log alone.
	ErrorNotifySocket string
	// FailureInterval is the least time between two writes of the gateway's
	// recent failures while failures keep coming; 0 means
	// DefaultFailureInterval.
	FailureInterval time.Duration
	// StateFile, in the pod's shared volume (v1alpha1.AgentStateFile), is
	// where the last applied configuration is kept for a restart while the
	// API server is unreachable (see persist.go); empty keeps none.
	StateFile string
	// OfflineAfter is how long Run waits for the API server before it
	// serves the saved configuration; 0 means DefaultOfflineAfter.
	OfflineAfter time.Duration
	// Now is the clock (user expiry, session start times).
	Now func() time.Time
	// OnApply, when set, is called after every apply with what it did, for
	// tests and benchmarks that time changes up to charon.
	OnApply func(vici.Result, error)
	// OnUsers, when set, is called with the RADIUS server's users after
	// every swap of them, for tests that time a user's revocation up to
	// the moment it is no longer served.
	OnUsers func(radiusd.Users)
}

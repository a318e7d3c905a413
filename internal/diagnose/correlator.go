package diagnose

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options adjust a Correlator with what the caller knows beyond the log.
type Options struct {
	// UserState, if set, tells Disabled or Expired users apart from unknown
	// ones: charon has no credentials for either, so its log says the same.
	// It returns ReasonDisabled, ReasonExpired, or "" for an identity (as
	// the client sent it, cleaned).
	UserState func(identity string) string
	// LocalIDs are this gateway's identities, the values a client should
	// ask for; identities charon logs as its own are added as they appear.
	LocalIDs []string
	// MaxAttempts bounds the IKE_SAs tracked at once (oldest dropped);
	// 4096 when zero.
	MaxAttempts int
}

// Correlator groups charon's signals by IKE_SA and turns each failed
// attempt into one Failure. It is not safe for concurrent use: feed it from
// one goroutine, in the order charon produced the signals.
type Correlator struct {
	opts     Options
	attempts map[string]*attempt
	order    []keySeq // insertion order, for bounding attempts
	seq      uint64
	byRemote map[string]string // remote address -> key of its latest attempt
	localIDs []string
}

type keySeq struct {
	key string
	seq uint64
}

// attempt is what is known about one IKE_SA so far.
type attempt struct {
	seq  uint64
	key  string
	id   uint32
	time time.Time

	conn, remote, remoteID, eapID, localID string
	localAuth                              string // "psk", "pubkey", "eap"
	// exchange is the last exchange parsed or generated, rekey whether it
	// rekeyed an SA, lastRequest the last request this side sent.
	exchange     string
	rekey        bool
	lastRequest  string
	received     string
	configured   string
	behindNAT    bool
	established  bool
	certProblem  string
	unacceptable string
	reported     map[Phase]bool
}

// NewCorrelator returns an empty Correlator.
func NewCorrelator(opts Options) *Correlator {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4096
	}
	c := &Correlator{opts: opts, attempts: map[string]*attempt{}, byRemote: map[string]string{}}
	for _, id := range opts.LocalIDs {
		c.noteLocalID(id)
	}
	return c
}

// A (re)started daemon numbers IKE_SAs from 1 again, so what is known
// about earlier ones must not be joined to new ones: charon.c logs
// "Starting IKE charon daemon (strongSwan %s, ...)", and every daemon,
// charon-systemd too, "loaded plugins: %s" (plugin_loader.c).
func daemonStart(msg string) bool {
	return strings.HasPrefix(msg, "Starting IKE charon daemon (strongSwan ") || strings.HasPrefix(msg, "loaded plugins: ")
}

// Observe takes one log event and returns the Failure it completes, if any.
func (c *Correlator) Observe(ev LogEvent) (Failure, bool) {
	if daemonStart(ev.Msg) {
		c.attempts, c.byRemote, c.order = map[string]*attempt{}, map[string]string{}, nil
		return Failure{}, false
	}
	for i, s := range signals {
		if !signalLiterals[i].admits(ev.Msg) {
			continue
		}
		m := s.re.FindStringSubmatch(ev.Msg)
		if m == nil {
			continue
		}
		a := c.attempt(ev, m)
		a.time = ev.Time
		// An IKE_SA without a peer config is "(unnamed)" (ike_sa.c get_name).
		if ev.IKEName != "" && ev.IKEName != "(unnamed)" {
			a.conn = ev.IKEName
		}
		f := s.handle(c, a, m)
		if a.remote != "" {
			c.byRemote[hostOnly(a.remote)] = a.key
		}
		if f == nil {
			return Failure{}, false
		}
		return c.finish(a, f)
	}
	return Failure{}, false
}

// attempt finds the IKE_SA an event is about by its unique id. Loggers
// without ike_name (charon's default for files and syslog) print no id,
// and an IKE_SA's messages are handled by any thread; their lines are taken
// as one attempt after another, each begun by the line that starts an
// IKE_SA. Interleaved attempts then mix: ike_name = yes keeps them apart.
func (c *Correlator) attempt(ev LogEvent, m []string) *attempt {
	key := "sa:" + strconv.FormatUint(uint64(ev.IKESA), 10)
	if ev.IKESA == 0 {
		key = "unnamed"
		if startsAttempt(m[0]) {
			c.drop(key)
		}
	}
	if a, ok := c.attempts[key]; ok {
		return a
	}
	c.seq++
	a := &attempt{seq: c.seq, key: key, id: ev.IKESA, reported: map[Phase]bool{}}
	c.attempts[key] = a
	c.order = append(c.order, keySeq{key, a.seq})
	for len(c.attempts) > c.opts.MaxAttempts && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if c.live(old) {
			c.drop(old.key)
		}
	}
	// Attempts dropped otherwise (restarts of the unnamed one) leave stale
	// entries; compacting keeps order within twice the bound.
	if len(c.order) > 2*c.opts.MaxAttempts {
		c.order = slices.DeleteFunc(c.order, func(k keySeq) bool { return !c.live(k) })
	}
	return a
}

func (c *Correlator) live(k keySeq) bool {
	a, ok := c.attempts[k.key]
	return ok && a.seq == k.seq
}

func startsAttempt(msg string) bool {
	return strings.HasSuffix(msg, " is initiating an IKE_SA") || strings.HasPrefix(msg, "parsed IKE_SA_INIT request 0 ") ||
		strings.HasPrefix(msg, "initiating IKE_SA ")
}

func (c *Correlator) drop(key string) {
	if a, ok := c.attempts[key]; ok {
		if c.byRemote[hostOnly(a.remote)] == key {
			delete(c.byRemote, hostOnly(a.remote))
		}
		delete(c.attempts, key)
	}
}

// finish completes a Failure from its attempt: one per attempt and phase,
// the user's state where the caller knows it, every string cleaned.
func (c *Correlator) finish(a *attempt, f *Failure) (Failure, bool) {
	if a.reported[f.Phase] {
		return Failure{}, false
	}
	a.reported[f.Phase] = true
	if c.opts.UserState != nil && (f.Reason == ReasonUnknownUser || f.Reason == ReasonAuthenticationFailed) && f.RemoteID != "" {
		if r := c.opts.UserState(Clean(f.RemoteID)); r != "" {
			// charon's words ("no password", "did not verify") are about the
			// credentials it was not given; the user's state is the cause.
			f.Reason, f.Detail = r, userStateDetail[r]
		}
	}
	return f.cleaned(), true
}

// userStateDetail says why a known user's login was refused.
var userStateDetail = map[string]string{
	ReasonDisabled: "the VPNUser is disabled, so the gateway refuses its logins",
	ReasonExpired:  "the VPNUser has expired (expiresAt is past), so the gateway refuses its logins",
}

func (f Failure) cleaned() Failure {
	f.Connection = Clean(f.Connection)
	f.Remote = Clean(f.Remote)
	f.RemoteID = Clean(f.RemoteID)
	f.LocalID = Clean(f.LocalID)
	f.Detail = cleanN(f.Detail, 2*MaxString)
	f.Offered = cleanList(f.Offered)
	f.Configured = cleanList(f.Configured)
	return f
}

func (c *Correlator) noteLocalID(id string) {
	id = Clean(id)
	if id == "" || id == "%any" || slices.Contains(c.localIDs, id) || len(c.localIDs) >= MaxValues {
		return
	}
	c.localIDs = append(c.localIDs, id)
}

// identityMismatch explains "no matching peer config found": the identity
// the client asked for is not the gateway's, or (behind NAT) the client
// identified itself by its private address, or no connection accepts the
// client's identity.
func (c *Correlator) identityMismatch(a *attempt) *Failure {
	switch {
	case a.behindNAT && isAddress(a.remoteID) && a.remoteID != hostOnly(a.remote):
		f := a.fail(PhaseIKEAuth, ReasonNATMismatch, "the peer is behind NAT and identifies itself by its private address "+a.remoteID)
		f.Offered = []string{a.remoteID}
		f.Configured = []string{hostOnly(a.remote)}
		return f
	case a.localID != "" && a.localID != "%any" && len(c.localIDs) > 0 && !slices.Contains(c.localIDs, Clean(a.localID)):
		f := a.fail(PhaseIKEAuth, ReasonIdentityMismatch, "the client expects the gateway to be "+a.localID)
		f.Offered = []string{a.localID}
		f.Configured = slices.Clone(c.localIDs)
		return f
	}
	f := a.fail(PhaseIKEAuth, ReasonIdentityMismatch, "no connection accepts the identities "+a.remoteID+" (peer) and "+a.localID+" (asked for)")
	f.Offered = []string{a.remoteID, a.localID}
	f.Configured = slices.Clone(c.localIDs)
	return f
}

// fail starts a Failure with what the attempt knows.
func (a *attempt) fail(phase Phase, reason, detail string) *Failure {
	remoteID := a.eapID
	if remoteID == "" {
		remoteID = a.remoteID
	}
	return &Failure{
		Time: a.time, IKESA: a.id, Connection: a.conn, Phase: phase, Reason: reason,
		Remote: hostOnly(a.remote), RemoteID: remoteID, LocalID: a.localID, Detail: detail,
	}
}

func (a *attempt) proposalMismatch(phase Phase, skipKE bool, detail string) *Failure {
	f := a.fail(phase, ReasonProposalMismatch, detail)
	f.Offered = splitList(a.received)
	f.Configured = splitList(a.configured)
	f.Transforms = mismatchedTransforms(parseProposals(a.configured), parseProposals(a.received), skipKE)
	if phase == PhaseRekey && slices.Contains(f.Transforms, TransformDH) {
		f.Detail = "PFS mismatch: the sides disagree on the DH group of a CHILD_SA rekey"
	}
	return f
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, ", ", MaxValues+1)
	if len(parts) > MaxValues {
		parts = parts[:MaxValues]
	}
	return parts
}

// childPhase is the phase of a CHILD_SA negotiation in the current exchange.
func (a *attempt) childPhase() Phase {
	if a.exchange == "CREATE_CHILD_SA" && a.rekey {
		return PhaseRekey
	}
	return PhaseChildSA
}

// requestPhase is the phase of the request this side last sent.
func (a *attempt) requestPhase() Phase {
	switch a.lastRequest {
	case "IKE_SA_INIT", "":
		return PhaseIKESAInit
	case "IKE_AUTH":
		return PhaseIKEAuth
	case "CREATE_CHILD_SA":
		return PhaseRekey
	}
	return PhaseLiveness
}

// message notes an exchange; an error notify the peer sent decides the
// attempt (this side initiated, or the peer refused this side's IKE_AUTH).
func (a *attempt) message(c *Correlator, parsed bool, exchange string, request bool, id, payloads string) *Failure {
	a.exchange = exchange
	if exchange == "CREATE_CHILD_SA" && request {
		a.rekey = strings.Contains(payloads, "N(REKEY_SA)") || !strings.Contains(payloads, "TSi")
	}
	if !parsed && request {
		a.lastRequest = exchange
	}
	if !parsed {
		return nil
	}
	for _, m := range notifyPattern.FindAllStringSubmatch(payloads, -1) {
		if _, ok := notifyReasons[m[1]]; ok && (!request || exchange == "INFORMATIONAL") {
			return a.notified(m[1])
		}
	}
	return nil
}

// notified explains an error notify the peer sent.
func (a *attempt) notified(notify string) *Failure {
	reason, ok := notifyReasons[notify]
	if !ok {
		return nil
	}
	switch reason {
	case ReasonProposalMismatch:
		phase := PhaseIKESAInit
		if a.exchange != "IKE_SA_INIT" {
			phase = a.childPhase()
		}
		return a.proposalMismatch(phase, a.exchange == "IKE_AUTH", "the peer accepted none of this side's proposals")
	case ReasonTrafficSelectorMismatch:
		return a.fail(a.childPhase(), reason, "the peer refused the networks this side asked for")
	case ReasonPoolExhausted:
		return a.fail(PhaseIKEAuth, reason, "the peer had no virtual IP for this side")
	}
	if a.localAuth == "pubkey" {
		detail := "the peer refused this side's certificate or identity"
		if a.localID != "" {
			detail += " " + a.localID
		}
		return a.fail(PhaseIKEAuth, ReasonCertificateInvalid, detail)
	}
	return a.fail(PhaseIKEAuth, ReasonAuthenticationFailed, "the peer refused this side's authentication")
}

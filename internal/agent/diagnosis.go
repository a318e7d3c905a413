package agent

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// member is an object a failure can be reported on.
type member struct {
	kind, name string
	uid        types.UID
}

func (m member) isGateway() bool { return m.kind == "VPNGateway" }

// userRef is a VPNUser of the gateway as diagnosis needs it: charon cannot
// tell a disabled or expired user from an unknown one, the agent can.
type userRef struct {
	member
	state string // diagnose.ReasonDisabled, diagnose.ReasonExpired or ""
}

// diagIndex is what the latest Build says about whom a failure concerns.
// It is rebuilt by every apply and read by the session loop, so it is
// replaced whole, never changed in place.
type diagIndex struct {
	gateway member
	// users are the gateway's users by identity, and which of them the
	// agent's RADIUS server serves; a user change updates them in place.
	users   *userBook
	tunnels map[string]member // by charon connection
	peers   map[string]member // by the tunnel peer's address
	// routes are the networks the gateway offers on each connection, the
	// gateway's side of a traffic selector mismatch.
	routes map[string][]string
	// pools are the address ranges of each connection's pools, the
	// gateway's side of an exhausted pool.
	pools map[string][]string
	// cas are the subjects of the CAs each connection trusts for the
	// peer's certificate, the gateway's side of one that does not verify.
	cas      map[string][]string
	localIDs []string
}

// userBook is what diagnosis knows of the gateway's users by identity.
// The diag index of a Build is replaced whole, but its book is changed in
// place by a change of single users (users_delta.go), hence the lock.
type userBook struct {
	mu   sync.RWMutex
	refs map[string]userRef
	// byName is each user's identity in refs.
	byName map[string]string
	// served are the identities the agent's RADIUS server checks (with
	// Result.AgentRADIUS; nil otherwise): charon's log says only that the
	// server refused a login, the agent knows whether it knew the user.
	served map[string]bool
}

// ref is the user of an identity.
func (b *userBook) ref(identity string) (userRef, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, ok := b.refs[identity]
	return r, ok
}

// serves reports whether the agent's RADIUS server checks the identity,
// and whether the agent's server checks this gateway's logins at all.
func (b *userBook) serves(identity string) (served, agent bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.served[identity], b.served != nil
}

// add records the user of an identity, unless another user has it.
func (b *userBook) add(identity string, u *v1alpha1.VPNUser, now time.Time) {
	if _, dup := b.refs[identity]; dup || identity == "" {
		return
	}
	ref := userRef{member: member{kind: "VPNUser", name: u.Name, uid: u.UID}}
	switch {
	case u.Spec.Disabled:
		ref.state = diagnose.ReasonDisabled
	case u.Spec.ExpiresAt != nil && !u.Spec.ExpiresAt.After(now):
		ref.state = diagnose.ReasonExpired
	}
	b.refs[identity] = ref
	b.byName[u.Name] = identity
}

// newDiagIndex indexes the objects Build accepted and the users it did not
// (disabled or expired ones log in nowhere, yet are the gateway's).
func newDiagIndex(in *swan.Resources, res *swan.Result) *diagIndex {
	gw := &in.Gateway
	ix := &diagIndex{
		gateway: member{kind: "VPNGateway", name: gw.Name, uid: gw.UID},
		users:   &userBook{refs: make(map[string]userRef, len(in.Users)), byName: make(map[string]string, len(in.Users))},
		tunnels: make(map[string]member, len(res.Tunnels)),
		peers:   map[string]member{},
		routes:  map[string][]string{},
		pools:   map[string][]string{},
		cas:     map[string][]string{},
	}
	if res.AgentRADIUS {
		ix.users.served = make(map[string]bool, len(res.Users))
		for _, u := range res.Users {
			ix.users.served[u.Identity] = true
		}
	}
	for i := range in.Users {
		ix.users.add(string(in.Users[i].Spec.Identity), &in.Users[i], in.Now)
	}
	uids := make(map[string]types.UID, len(in.Tunnels))
	for i := range in.Tunnels {
		uids[in.Tunnels[i].Name] = in.Tunnels[i].UID
	}
	for _, t := range res.Tunnels {
		ix.tunnels[t.Connection] = member{kind: "Tunnel", name: t.Name, uid: uids[t.Name]}
	}
	subjects := caSubjects(res.Model.Certs)
	ranges := make(map[string]string, len(res.Model.Pools))
	for _, p := range res.Model.Pools {
		ranges[p.Name] = p.Addrs
	}
	for _, c := range res.Model.Connections {
		for _, p := range c.Pools {
			ix.pools[c.Name] = append(ix.pools[c.Name], "pool "+p+" "+ranges[p])
		}
		for _, r := range c.Remote {
			for _, ca := range r.CACerts {
				if sub, ok := subjects[ca]; ok && !slices.Contains(ix.cas[c.Name], sub) {
					ix.cas[c.Name] = append(ix.cas[c.Name], sub)
				}
			}
		}
		// The children's traffic selectors as charon holds them: the
		// gateway's side of a traffic selector mismatch.
		for _, ch := range c.Children {
			ts := strings.Join(ch.LocalTS, ",")
			if _, isTunnel := ix.tunnels[c.Name]; isTunnel {
				ts += " === " + strings.Join(ch.RemoteTS, ",")
			}
			if !slices.Contains(ix.routes[c.Name], ts) {
				ix.routes[c.Name] = append(ix.routes[c.Name], ts)
			}
		}
		if t, ok := ix.tunnels[c.Name]; ok {
			for _, addr := range c.RemoteAddrs {
				ix.peers[addr] = t
			}
			continue
		}
		for _, l := range c.Local {
			if l.ID != "" && !slices.Contains(ix.localIDs, l.ID) {
				ix.localIDs = append(ix.localIDs, l.ID)
			}
		}
	}
	return ix
}

// userState is the correlator's UserState.
func (ix *diagIndex) userState(identity string) string {
	if ix == nil {
		return ""
	}
	if r, _ := ix.users.ref(identity); r.state != "" {
		return r.state
	}
	if served, agent := ix.users.serves(identity); agent && !served {
		return diagnose.ReasonUnknownUser
	}
	return ""
}

// target is the object whose owner can fix the failure: the Tunnel of
// the connection or the peer's address, the VPNUser of the identity, or
// else the gateway itself.
func (ix *diagIndex) target(f diagnose.Failure) member {
	if t, ok := ix.tunnels[f.Connection]; ok {
		return t
	}
	if u, ok := ix.users.ref(f.RemoteID); ok {
		return u.member
	}
	if t, ok := ix.peers[f.Remote]; ok {
		return t
	}
	return ix.gateway
}

// complete adds what the log does not say: the gateway's side of a
// traffic selector mismatch (the networks it offers), of an exhausted pool
// (its addresses) and of a peer certificate that does not verify (the CAs
// trusted for it); and it tells an enabled VPNUser whose password this pod
// does not hold yet from an unknown identity.
func (ix *diagIndex) complete(f diagnose.Failure) diagnose.Failure {
	if len(f.Configured) == 0 {
		switch f.Reason {
		case diagnose.ReasonTrafficSelectorMismatch:
			f.Configured = slices.Clone(ix.routes[f.Connection])
		case diagnose.ReasonPoolExhausted:
			f.Configured = slices.Clone(ix.pools[f.Connection])
		case diagnose.ReasonCertificateInvalid:
			if f.PeerCertificate {
				f.Configured = slices.Clone(ix.cas[f.Connection])
			}
		}
	}
	// With the agent's own RADIUS server, charon logs only that the server
	// rejected the login; the agent knows why.
	if served, agent := ix.users.serves(f.RemoteID); agent && f.Phase == diagnose.PhaseIKEAuth {
		switch {
		case f.Reason == diagnose.ReasonAuthenticationFailed && served:
			f.Detail = "wrong password: the client's EAP-MS-CHAPv2 response did not verify against the password this gateway pod holds for the user"
		case f.Reason == diagnose.ReasonUnknownUser:
			f.Detail = "no VPNUser of this gateway has this EAP identity"
		}
	}
	// charon has no password for the user while the manager has not
	// derived its hash, or the pod is loading it: "create a VPNUser"
	// would send the owner the wrong way.
	if u, ok := ix.users.ref(f.RemoteID); ok && f.Reason == diagnose.ReasonUnknownUser && u.state == "" {
		f.Reason = diagnose.ReasonCredentialsPending
		f.Detail = "the VPNUser " + u.name + " exists, but this gateway pod holds no password for it yet"
	}
	return f
}

// caSubjects are the subjects of the model's CA certificates by name, as
// "trusted CA CN=...".
func caSubjects(certs []swan.Cert) map[string]string {
	out := map[string]string{}
	for _, c := range certs {
		if c.Type != "x509ca" {
			continue
		}
		block, _ := pem.Decode(c.PEM)
		if block == nil {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			out[c.Name] = "trusted CA " + diagnose.Clean(cert.Subject.String())
		}
	}
	return out
}

// maxMessage bounds an Event's or a condition's message.
const maxMessage = 1024

// failureMessage names both sides' values and the change that fixes the
// failure. It holds no time, so that a repeated failure says the same.
func failureMessage(f diagnose.Failure) string {
	var b strings.Builder
	b.WriteString(string(f.Phase) + " failed (" + f.Reason + ")")
	if f.Remote != "" || f.RemoteID != "" {
		b.WriteString(" for " + peerName(f))
		if f.RemoteID != "" && f.Remote != "" && f.RemoteID != f.Remote {
			b.WriteString(" from " + f.Remote)
		}
	}
	if f.Detail != "" {
		b.WriteString(": " + f.Detail)
	}
	if len(f.Transforms) > 0 {
		b.WriteString("; no match for " + strings.Join(f.Transforms, ", "))
	}
	if len(f.Offered) > 0 {
		b.WriteString("; the peer offered " + strings.Join(f.Offered, ", "))
	}
	if len(f.Configured) > 0 {
		b.WriteString("; the gateway has " + strings.Join(f.Configured, ", "))
	}
	if adv := f.Advice(); adv != "" {
		b.WriteString(". Fix: " + adv)
	}
	return truncate(b.String(), maxMessage)
}

// peerName is the identity a failure is about, or its address.
func peerName(f diagnose.Failure) string {
	if f.RemoteID != "" {
		return f.RemoteID
	}
	return f.Remote
}

// logEvent turns a VICI log entry into the correlator's input.
func logEvent(l *vici.LogEntry, now time.Time) diagnose.LogEvent {
	return diagnose.LogEvent{Time: now, Group: l.Group, Level: l.Level, Thread: l.Thread,
		IKESA: l.IKEUniqueID, IKEName: l.IKEName, Msg: l.Message}
}

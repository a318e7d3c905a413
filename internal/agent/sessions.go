package agent

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// Charon's state names the agent reports on.
const (
	stateEstablished = "ESTABLISHED"
	stateInstalled   = "INSTALLED"
	stateRekeying    = "REKEYING"
	// stateDown is what the API shows for a tunnel or child charon has no SA of.
	stateDown = "Down"
)

// sessionClock remembers when each IKE_SA (by charon's unique id) was
// established. charon reports an age in seconds; turning it into a time on
// every poll would move the time by a second now and then and make every
// session look changed.
type sessionClock map[uint32]time.Time

func (c sessionClock) established(sa *vici.IKESA, now time.Time) time.Time {
	if t, ok := c[sa.UniqueID]; ok {
		return t
	}
	t := now.Add(-sa.Established).Truncate(time.Second)
	c[sa.UniqueID] = t
	return t
}

// prune forgets IKE_SAs that are gone.
func (c sessionClock) prune(sas []vici.IKESA) {
	live := make(map[uint32]bool, len(sas))
	for i := range sas {
		live[sas[i].UniqueID] = true
	}
	for id := range c {
		if !live[id] {
			delete(c, id)
		}
	}
}

// userSessions groups the established IKE_SAs of mobile clients (every
// connection but the tunnels') by the identity they authenticated with.
// An IKE_SA without an installed CHILD_SA carries no traffic (its CHILD_SA
// failed: proposals or traffic selectors did not match), so it is not a
// session and its virtual IP is no lease.
// Sessions are sorted by remote address and port; an IKE_SA and its
// rekeyed successor share the remote endpoint, so only the newest is kept.
func userSessions(sas []vici.IKESA, pod string, tunnels map[string]tunnelInfo, clock sessionClock, now time.Time) map[string][]v1alpha1.Session {
	out := map[string][]v1alpha1.Session{}
	type key struct {
		id, addr string
		port     int
	}
	newest := map[key]int{}
	for i := range sas {
		sa := &sas[i]
		if sa.State != stateEstablished || !carriesTraffic(sa) {
			continue
		}
		if _, isTunnel := tunnels[sa.Name]; isTunnel {
			continue
		}
		id := sa.Identity()
		k := key{id, sa.RemoteHost, sa.RemotePort}
		s := v1alpha1.Session{
			Pod:              pod,
			RemoteAddress:    sa.RemoteHost,
			RemotePort:       int32(sa.RemotePort),
			IKEIdentity:      sa.RemoteID,
			VirtualAddresses: slices.Clone(sa.RemoteVIPs),
			EstablishedAt:    metav1.NewTime(clock.established(sa, now)),
			IKEProposal:      proposalString(sa.Proposal, true),
		}
		for _, c := range sa.Children {
			if s.ESPProposal == "" && c.State == stateInstalled {
				s.ESPProposal = proposalString(c.Proposal, false)
			}
			s.TrafficCounters = addCounters(s.TrafficCounters, c)
		}
		if j, seen := newest[k]; seen {
			out[id][j] = s // sas are sorted by unique id: this one is newer
			continue
		}
		newest[k] = len(out[id])
		out[id] = append(out[id], s)
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b v1alpha1.Session) int {
			return cmp.Or(strings.Compare(a.RemoteAddress, b.RemoteAddress), cmp.Compare(a.RemotePort, b.RemotePort))
		})
	}
	return out
}

// carriesTraffic reports whether one of the IKE_SA's CHILD_SAs is installed
// (or being rekeyed, when its successor is not yet installed).
func carriesTraffic(sa *vici.IKESA) bool {
	return slices.ContainsFunc(sa.Children, func(c vici.ChildSA) bool {
		return c.State == stateInstalled || c.State == stateRekeying
	})
}

func addCounters(t v1alpha1.TrafficCounters, c vici.ChildSA) v1alpha1.TrafficCounters {
	t.BytesIn += int64(c.BytesIn)
	t.BytesOut += int64(c.BytesOut)
	t.PacketsIn += int64(c.PacketsIn)
	t.PacketsOut += int64(c.PacketsOut)
	return t
}

// proposalString prints a negotiated proposal the way charon logs it, e.g.
// AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519.
func proposalString(p vici.Proposal, ike bool) string {
	var parts []string
	if p.Encr != "" {
		e := p.Encr
		if p.EncrKeySize > 0 {
			e += "_" + strconv.Itoa(p.EncrKeySize)
		}
		parts = append(parts, e)
	}
	if p.Integ != "" {
		parts = append(parts, p.Integ)
	}
	if ike && p.PRF != "" {
		parts = append(parts, p.PRF)
	}
	if p.DHGroup != "" {
		parts = append(parts, p.DHGroup)
	}
	return strings.Join(parts, "/")
}

// sessionShape is a session without its counters: a change in it is written
// at once, a change in counters alone only every CounterInterval.
func sessionShape(ss []v1alpha1.Session) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s|%s|%d|%s|%s|%d|%s|%s;", s.Pod, s.RemoteAddress, s.RemotePort, s.IKEIdentity,
			strings.Join(s.VirtualAddresses, ","), s.EstablishedAt.Unix(), s.IKEProposal, s.ESPProposal)
	}
	return b.String()
}

func sessionCounters(ss []v1alpha1.Session) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%d/%d/%d/%d;", s.BytesIn, s.BytesOut, s.PacketsIn, s.PacketsOut)
	}
	return b.String()
}

// tunnelStatus is a Tunnel's Phase 1 and per-child state from the IKE_SAs
// of its connection. children are the child names configured, in order.
func tunnelStatus(sas []vici.IKESA, conn string, children []string, clock sessionClock, now time.Time) v1alpha1.TunnelStatus {
	var best *vici.IKESA
	for i := range sas {
		sa := &sas[i]
		if sa.Name != conn {
			continue
		}
		// The established one wins; among equals the newest.
		if best == nil || sa.State == stateEstablished || best.State != stateEstablished {
			best = sa
		}
	}
	st := v1alpha1.TunnelStatus{Phase1: &v1alpha1.Phase1Status{State: stateDown}}
	if best != nil {
		st.Phase1.State = best.State
		st.Phase1.RemoteAddress = best.RemoteHost
		if best.State == stateEstablished {
			t := metav1.NewTime(clock.established(best, now))
			st.Phase1.EstablishedAt = &t
			st.Phase1.IKEProposal = proposalString(best.Proposal, true)
		}
	}
	up := 0
	for _, name := range children {
		cs := v1alpha1.TunnelChildStatus{Name: name, State: stateDown}
		for i := range sas {
			if sas[i].Name != conn {
				continue
			}
			for _, c := range sas[i].Children {
				if c.Name != name || (cs.State == stateInstalled && c.State != stateInstalled) {
					continue
				}
				cs.State = c.State
				cs.ESPProposal = proposalString(c.Proposal, false)
				cs.LocalTS, cs.RemoteTS = slices.Clone(c.LocalTS), slices.Clone(c.RemoteTS)
				at := metav1.NewTime(now.Add(-c.InstallTime).Truncate(time.Second))
				cs.InstalledAt = &at
				cs.TrafficCounters = addCounters(v1alpha1.TrafficCounters{}, c)
			}
		}
		if cs.State == stateInstalled {
			up++
		}
		st.Children = append(st.Children, cs)
	}
	st.ChildrenUp = fmt.Sprintf("%d/%d", up, len(children))
	return st
}

// tunnelEstablished is a Tunnel's Established condition: its IKE_SA is up
// and every child installed. The transition time is the caller's.
func tunnelEstablished(st v1alpha1.TunnelStatus) (metav1.ConditionStatus, string, string) {
	if st.Phase1 == nil || st.Phase1.State != stateEstablished {
		return metav1.ConditionFalse, v1alpha1.ReasonConnecting, "the IKE_SA is not established"
	}
	up := 0
	for _, c := range st.Children {
		if c.State == stateInstalled || c.State == stateRekeying {
			up++
		}
	}
	if up < len(st.Children) {
		return metav1.ConditionFalse, v1alpha1.ReasonConnecting, fmt.Sprintf("%d of %d children installed", up, len(st.Children))
	}
	return metav1.ConditionTrue, v1alpha1.ConditionEstablished, "the IKE_SA and every child are up"
}

// tunnelShape and tunnelCounters split a tunnel status like sessionShape.
func tunnelShape(st v1alpha1.TunnelStatus) string {
	var b strings.Builder
	if p := st.Phase1; p != nil {
		at := int64(0)
		if p.EstablishedAt != nil {
			at = p.EstablishedAt.Unix()
		}
		fmt.Fprintf(&b, "%s|%d|%s|%s;", p.State, at, p.RemoteAddress, p.IKEProposal)
	}
	for _, c := range st.Children {
		fmt.Fprintf(&b, "%s|%s|%s|%v|%v;", c.Name, c.State, c.ESPProposal, c.LocalTS, c.RemoteTS)
	}
	if f := st.LastFailure; f != nil {
		// The time of a failure that repeats goes with the counters.
		fmt.Fprintf(&b, "%s|%s;", f.Reason, f.Message)
	}
	return b.String() + st.ChildrenUp
}

func tunnelCounters(st v1alpha1.TunnelStatus) string {
	var b strings.Builder
	for _, c := range st.Children {
		// The install time is charon's age of the CHILD_SA, which jitters
		// by a second between listings: written with the counters.
		at := int64(0)
		if c.InstalledAt != nil {
			at = c.InstalledAt.Unix()
		}
		fmt.Fprintf(&b, "%d/%d/%d/%d/%d;", c.BytesIn, c.BytesOut, c.PacketsIn, c.PacketsOut, at)
	}
	if f := st.LastFailure; f != nil {
		fmt.Fprintf(&b, "%d;", f.At.Unix())
	}
	return b.String()
}

// revoked are the IKE_SAs of clients whose authenticated identity (EAP
// identity, or the certificate's IKE identity with public keys) is no
// longer a user of the gateway: deleted, disabled or expired users, or
// users whose password Secret went away. IKE_SAs still authenticating
// carry no proven identity yet and are left alone.
func revoked(sas []vici.IKESA, allowed map[string]bool, tunnels map[string]tunnelInfo) []vici.IKESA {
	var out []vici.IKESA
	for _, sa := range sas {
		if _, isTunnel := tunnels[sa.Name]; isTunnel || swan.IsTunnelConnection(sa.Name) || !authenticated(sa) {
			continue
		}
		if !allowed[sa.Identity()] {
			out = append(out, sa)
		}
	}
	return out
}

// authenticated reports whether charon has finished IKE_AUTH of an IKE_SA:
// before that its remote identity is a claim, not a proof.
func authenticated(sa vici.IKESA) bool {
	switch sa.State {
	case "CREATED", "CONNECTING":
		return false
	}
	return true
}

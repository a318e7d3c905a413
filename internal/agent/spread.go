package agent

import (
	"cmp"
	"context"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// Spreading new clients over the replicas.
//
// The network cannot do it for IKE. A Service (or any 5-tuple hashing
// balancer) sees UDP 500 and UDP 4500 of one client as two flows, and
// NAT-T moves a client from the first to the second after IKE_SA_INIT:
// hashed apart, IKE_AUTH reaches a replica that never saw the IKE_SA.
// Only source-address affinity keeps them together, and then every client
// behind one NAT (an office, a carrier's CGNAT, or every client at all
// when the Service's externalTrafficPolicy is Cluster and the node's
// address replaces theirs) lands on one replica, a MOBIKE address change
// is sent to another replica that has no such IKE_SA, and no balancer
// counts sessions: a replica back from a rolling update gets 1/n of the
// new clients and none of the old. DNS round robin (HostNetwork) is no
// better: resolvers cache, clients take the first answer.
//
// So each agent redirects (IKEv2 REDIRECT, RFC 5685) a newly established
// client IKE_SA of its own, once it has been up for spreadSettle (so that
// clients connecting to the other replicas meanwhile are in their
// reports), to the replica with the fewest sessions when its own replica
// holds too many. The counts are those the agents report
// in the gateway's status.agents (written within a listing of their
// charon's SAs), plus the redirects this agent sent that the target's
// report does not show yet. A session moves when
//   - own - target >= spreadMinGap (2): the move narrows the gap, so the
//     target, seeing the same counts, never sends it back;
//   - own - share >= spreadMargin of the share (share = the mean over
//     the replicas): hysteresis, so that a thousand sessions against 990
//     move nobody, while a replica back from an update fills up;
//
// and never when charon logged that the client was redirected to us
// ("client got redirected from", the REDIRECTED_FROM notify), the pod is
// draining, the session is older than spreadMaxAge, or the rate limit
// (spreadRate, spreadBurst) is spent: a redirected client pays a second
// handshake (strongSwan's builds the new IKE_SA before it deletes the
// old) and gets a new virtual address, and a reconnect storm must not
// double the handshakes charon does. Clients without redirect support
// are refused by charon and stay. Sessions established before the agent
// started are left where they are.
//
// A user's static address belongs to the slice of one replica, the one
// the LAN routes it to (controllers' return routes), so a static user is
// steered there whatever the counts, and reported as held here
// (status.agents[].foreignStaticAddresses) while that replica is away or
// the client did not follow.
const (
	spreadMinGap = 2
	spreadMargin = 0.1
	spreadRate   = 5.0 // redirects per second, sustained
	spreadBurst  = 10.0
	// spreadPendingFor is how long a redirect counts toward its target
	// while the target's report does not show it yet.
	spreadPendingFor = 10 * time.Second
	// spreadSettle is how long a new session waits before it is
	// considered: clients connecting to several replicas at once are
	// counted by the others' reports only once those were written (a
	// listing, about 100 ms, and the write), and a decision on counts
	// that lag moves clients for nothing.
	spreadSettle = time.Second
	// spreadMaxAge is the oldest a session may be to be moved: a
	// redirected client gets a new virtual address, which breaks the
	// connections it opened, so only sessions just made move (the agent
	// sees them within a listing; this bounds a stalled session loop).
	spreadMaxAge = 30 * time.Second
	// redirectedInFor is how long a log line saying an IKE_SA was
	// redirected to us is kept for it to be established.
	redirectedInFor = time.Minute
)

// redirectedFromLog starts charon's log line of a client that arrived by
// redirect (ike_init.c, REDIRECTED_FROM).
const redirectedFromLog = "client got redirected from"

// peerLoad is another replica a client may be sent to.
type peerLoad struct {
	pod, addr string
	sessions  int
}

// balanceTarget is the peer a new session of a replica holding own
// sessions should move to, if any: the least loaded (first by pod among
// equals), when the replica is above its share as the package doc says.
func balanceTarget(own int, peers []peerLoad) (peerLoad, bool) {
	if len(peers) == 0 {
		return peerLoad{}, false
	}
	total := own
	best := peers[0]
	for _, p := range peers {
		total += p.sessions
		if p.sessions < best.sessions {
			best = p
		}
	}
	share := float64(total) / float64(len(peers)+1)
	margin := math.Max(1, math.Ceil(spreadMargin*share))
	if own-best.sessions < spreadMinGap || float64(own)-share < margin {
		return peerLoad{}, false
	}
	return best, true
}

// spreadState is the spreading's memory; only the session loop uses it.
type spreadState struct {
	primed bool
	// seen are the client IKE_SAs listed so far, by unique id, with the
	// listing that first showed them; done those already considered.
	seen map[uint32]time.Time
	done map[uint32]bool
	// in are the IKE_SAs charon logged as redirected to us, out those we
	// redirected away (gone once the client deletes them), with when.
	in, out map[uint32]time.Time
	// pending are our redirects per target address since its report was base.
	pending map[string]*pendingRedirects
	tokens  float64
	filled  time.Time
	// timer kicks the session loop (kick) for a listing once the next
	// new session has settled.
	timer *time.Timer
	kick  chan struct{}
}

type pendingRedirects struct {
	base, n int
	at      time.Time
}

func newSpreadState() *spreadState {
	return &spreadState{seen: map[uint32]time.Time{}, done: map[uint32]bool{}, in: map[uint32]time.Time{}, out: map[uint32]time.Time{},
		pending: map[string]*pendingRedirects{}, tokens: spreadBurst, kick: make(chan struct{}, 1)}
}

// scheduleSpread has the session loop list the SAs again after d, when a
// new session will have settled; 0 schedules nothing.
func (a *Agent) scheduleSpread(d time.Duration) {
	st := a.spreadSt
	if d <= 0 {
		return
	}
	if st.timer == nil {
		st.timer = time.AfterFunc(d, func() {
			select {
			case st.kick <- struct{}{}:
			default:
			}
		})
		return
	}
	st.timer.Reset(d)
}

// noteLog marks an IKE_SA whose client was redirected to this replica.
func (s *spreadState) noteLog(l *vici.LogEntry, now time.Time) {
	if strings.HasPrefix(l.Message, redirectedFromLog) && l.IKEUniqueID != 0 {
		s.in[l.IKEUniqueID] = now
	}
}

// take spends one redirect of the rate limit.
func (s *spreadState) take(now time.Time) bool {
	if !s.filled.IsZero() {
		s.tokens = min(spreadBurst, s.tokens+now.Sub(s.filled).Seconds()*spreadRate)
	}
	s.filled = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// load is what a peer holds as far as this agent knows.
func (s *spreadState) load(addr string, reported int, now time.Time) int {
	p := s.pending[addr]
	if p == nil || now.Sub(p.at) > spreadPendingFor {
		delete(s.pending, addr)
		return reported
	}
	return max(reported, p.base+p.n)
}

func (s *spreadState) sent(id uint32, to peerLoad, reported int, now time.Time) {
	s.out[id] = now
	p := s.pending[to.addr]
	if p == nil || now.Sub(p.at) > spreadPendingFor {
		p = &pendingRedirects{base: reported}
		s.pending[to.addr] = p
	}
	p.n++
	p.at = now
}

// fresh are the client sessions not considered before that have been up
// for spreadSettle, oldest first, and how long until the next younger one
// will have (0: none waits). It forgets what is gone.
func (s *spreadState) fresh(clients []vici.IKESA, now time.Time) ([]vici.IKESA, time.Duration) {
	live := map[uint32]bool{}
	var out []vici.IKESA
	var wait time.Duration
	for _, sa := range clients {
		live[sa.UniqueID] = true
		first, ok := s.seen[sa.UniqueID]
		if !ok {
			first = now
			s.seen[sa.UniqueID] = now
			// Those up before the agent's first listing stay where they are.
			s.done[sa.UniqueID] = !s.primed
		}
		if s.done[sa.UniqueID] {
			continue
		}
		if left := spreadSettle - now.Sub(first); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		s.done[sa.UniqueID] = true
		out = append(out, sa)
	}
	s.primed = true
	for id := range s.seen {
		if !live[id] {
			delete(s.seen, id)
			delete(s.done, id)
			delete(s.out, id)
		}
	}
	for id, at := range s.in {
		if now.Sub(at) > redirectedInFor && !live[id] {
			delete(s.in, id)
		}
	}
	slices.SortFunc(out, func(a, b vici.IKESA) int { return cmp.Compare(a.UniqueID, b.UniqueID) })
	return out, wait
}

// spreadInputs are what the last apply said about this replica's share.
type spreadInputs struct {
	replica swan.Replica
	// statics are the users' static addresses with their pool prefix.
	statics map[netip.Addr]netip.Prefix
}

// rememberSpread keeps what spreading needs of a Build.
func (a *Agent) rememberSpread(res *swan.Result) {
	in := spreadInputs{replica: res.Replica, statics: map[netip.Addr]netip.Prefix{}}
	for _, u := range res.Users {
		if !u.Address.IsValid() {
			continue
		}
		for _, p := range res.Pools {
			for _, pr := range p.Prefixes {
				if pr.Contains(u.Address) {
					in.statics[u.Address] = pr
				}
			}
		}
	}
	a.mu.Lock()
	a.spreadIn = in
	a.mu.Unlock()
}

// staticOwner is the ordinal owning the slice of a static address among
// the vips, if one is.
func (in spreadInputs) staticOwner(vips []string) (netip.Addr, int, bool) {
	for _, v := range vips {
		addr, err := netip.ParseAddr(v)
		if err != nil {
			continue
		}
		if p, ok := in.statics[addr]; ok {
			return addr, swan.OwnerOf(p, addr, in.replica.Count), true
		}
	}
	return netip.Addr{}, 0, false
}

// foreignStatics are the static addresses of sessions on this pod whose
// slice another replica owns, sorted; called under mu.
func (a *Agent) foreignStatics(users map[string][]v1alpha1.Session) []string {
	in := a.spreadIn
	if !in.replica.Split() {
		return nil
	}
	var out []string
	for _, ss := range users {
		for _, s := range ss {
			if addr, owner, ok := in.staticOwner(s.VirtualAddresses); ok && owner != in.replica.Ordinal {
				out = append(out, addr.String())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// otherReplicas are the other current replicas that can take clients
// (a node address, the current configuration applied, no error, not
// draining), with the sessions they report, by pod name.
func otherReplicas(gw *v1alpha1.VPNGateway, pod string) []peerLoad {
	n := int(gw.Spec.EffectiveReplicas())
	var out []peerLoad
	for _, s := range gw.Status.Agents {
		o, ok := v1alpha1.GatewayPodOrdinal(gw.Name, s.Pod)
		if !ok || o >= n || s.Pod == pod || s.NodeAddress == "" || s.LastError != "" || s.Draining || s.AppliedGeneration < gw.Generation {
			continue
		}
		out = append(out, peerLoad{pod: s.Pod, addr: s.NodeAddress, sessions: int(s.Sessions)})
	}
	slices.SortFunc(out, func(a, b peerLoad) int { return strings.Compare(a.pod, b.pod) })
	return out
}

// spread redirects this pod's new client sessions as the package doc
// says, and returns when a session not yet settled will be (0: none
// waits). sas is charon's listing; only the session loop calls it.
func (a *Agent) spread(ctx context.Context, sas []vici.IKESA) time.Duration {
	now := a.opts.Now()
	st := a.spreadSt
	clients := slices.DeleteFunc(clientSAs(sas), func(sa vici.IKESA) bool { return !carriesTraffic(&sa) })
	fresh, wait := st.fresh(clients, now)
	a.mu.Lock()
	in := a.spreadIn
	a.mu.Unlock()
	if len(fresh) == 0 || !in.replica.Split() || a.draining.Load() {
		return wait
	}
	var gw v1alpha1.VPNGateway
	if err := a.opts.Reader.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.Gateway}, &gw); err != nil || !gw.Spec.HostNetwork() {
		// Behind a LoadBalancer the replicas have no address of their own
		// to send a client to.
		return wait
	}
	peers := otherReplicas(&gw, a.opts.Pod)
	reported := map[string]int{}
	for i := range peers {
		reported[peers[i].addr] = peers[i].sessions
		peers[i].sessions = st.load(peers[i].addr, peers[i].sessions, now)
	}
	own := 0
	for _, sa := range clients {
		if _, away := st.out[sa.UniqueID]; !away {
			own++
		}
	}
	log := logr.FromContextOrDiscard(ctx)
	for _, sa := range fresh {
		if _, redirected := st.in[sa.UniqueID]; redirected || sa.Established > spreadMaxAge {
			continue
		}
		to, why, ok := a.spreadTarget(in, sa, own, peers)
		if !ok || !st.take(now) {
			continue
		}
		if done, err := vici.Redirect(ctx, a.opts.VICI, sa.UniqueID, to.addr); err != nil || !done {
			// Expected of clients without redirect support: not worth a line each.
			log.V(1).Info("New client not redirected", "ikeSA", sa.UniqueID, "to", to.pod, "error", errString(err))
			continue
		}
		log.Info("Redirected a new client", "ikeSA", sa.UniqueID, "to", to.pod, "why", why, "sessions", own, "theirs", to.sessions)
		st.sent(sa.UniqueID, to, reported[to.addr], now)
		own--
		for i := range peers {
			if peers[i].addr == to.addr {
				peers[i].sessions++
			}
		}
	}
	return wait
}

// spreadTarget is where a new session goes: a static user to the owner of
// its address's slice if that replica can take it (and nowhere else), any
// other to the least loaded replica when this one is above its share.
func (a *Agent) spreadTarget(in spreadInputs, sa vici.IKESA, own int, peers []peerLoad) (peerLoad, string, bool) {
	if _, owner, static := in.staticOwner(sa.RemoteVIPs); static {
		if owner == in.replica.Ordinal {
			return peerLoad{}, "", false
		}
		pod := v1alpha1.GatewayPodName(a.opts.Gateway, owner)
		i := slices.IndexFunc(peers, func(p peerLoad) bool { return p.pod == pod })
		if i < 0 {
			return peerLoad{}, "", false
		}
		return peers[i], "its static address is that replica's", true
	}
	to, ok := balanceTarget(own, peers)
	return to, "that replica has fewer sessions", ok
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

package swan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// parsedPool is a MobilePool of the gateway whose spec is valid on its own,
// with every value parsed once. Whether it is served also depends on the
// other pools and tunnels (see claims).
type parsedPool struct {
	obj   *v1alpha1.MobilePool
	addrs []netip.Prefix
	// local is nil for a full tunnel.
	local []netip.Prefix
	sel   labels.Selector
	key   string // canonical selector
	esp   []string
	life  time.Duration
	rekey time.Duration
	// ts are the local traffic selectors its clients get.
	ts    []string
	sig   string
	allow []AllowRule
}

// parsePools validates each pool of the gateway on its own.
func (b *builder) parsePools() []*parsedPool {
	var out []*parsedPool
	for i := range b.in.Pools {
		p := &b.in.Pools[i]
		if !b.belongs(p.Spec.GatewayRef, KindMobilePool, p.Name) {
			continue
		}
		if pp, ok := b.parsePool(p); ok {
			out = append(out, pp)
		}
	}
	return out
}

func (b *builder) parsePool(p *v1alpha1.MobilePool) (*parsedPool, bool) {
	bad := func(reason, format string, args ...any) (*parsedPool, bool) {
		b.problem(reason, KindMobilePool, p.Name, format, args...)
		return nil, false
	}
	pp := &parsedPool{obj: p}
	for _, a := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
		if a == "" {
			continue
		}
		pr, ok := parsePrefix(a)
		if !ok || pr.Bits() == pr.Addr().BitLen() {
			return bad(v1alpha1.ReasonInvalidSpec, "addresses %q is not a network in CIDR notation", a)
		}
		pp.addrs = append(pp.addrs, pr)
	}
	if len(pp.addrs) == 0 {
		return bad(v1alpha1.ReasonInvalidSpec, "addresses has neither ipv4 nor ipv6")
	}
	if !b.checkSplit(p, pp.addrs) {
		return nil, false
	}
	if (len(p.Spec.LocalNetworks) > 0) == p.Spec.FullTunnel {
		return bad(v1alpha1.ReasonInvalidSpec, "set exactly one of localNetworks and fullTunnel")
	}
	for _, n := range p.Spec.LocalNetworks {
		pr, ok := parsePrefix(n)
		if !ok {
			return bad(v1alpha1.ReasonInvalidSpec, "localNetworks entry %q is not a network in CIDR notation", n)
		}
		for _, a := range pp.addrs {
			if a.Overlaps(pr) {
				return bad(v1alpha1.ReasonPoolOverlapsLocalNetwork, "addresses %s overlap its own local network %s", a, pr)
			}
		}
		pp.local = append(pp.local, pr)
	}
	sel, err := selectorOf(p.Spec.UserSelector)
	if err != nil {
		return bad(v1alpha1.ReasonInvalidSpec, "userSelector: %v", err)
	}
	pp.sel, pp.key = sel, selectorKey(p.Spec.UserSelector)
	esp := p.Spec.ESP
	espProps, err := espProposals(esp.Preset, esp.Proposals, esp.PFSGroup)
	if err != nil {
		return bad(v1alpha1.ReasonInvalidSpec, "esp proposals: %v", err)
	}
	if msg := algorithmPolicy("esp proposals", espProps, p.Spec.AllowInsecureAlgorithms); msg != "" {
		return bad(v1alpha1.ReasonInsecureAlgorithm, "%s", msg)
	}
	allow, ok := b.parseAllow(p)
	if !ok {
		return nil, false
	}
	pp.esp, pp.allow = espProps, allow
	pp.life = durationOr(esp.Lifetime, defaultESPLife)
	pp.rekey, _ = rekey(pp.life, esp.RekeyTime)
	if p.Spec.FullTunnel {
		pp.ts = []string{"0.0.0.0/0", "::/0"}
	} else {
		for _, n := range pp.local {
			pp.ts = append(pp.ts, n.String())
		}
	}
	pp.sig = fmt.Sprintf("%v|%v|%v|%v|%v|%v|%q", espProps, pp.life, pp.rekey, p.Spec.FullTunnel, dnsSig(p.Spec.DNS), p.Spec.WINSServers, p.Spec.Banner)
	return pp, true
}

// parseAllow parses a pool's firewall allow list.
func (b *builder) parseAllow(p *v1alpha1.MobilePool) ([]AllowRule, bool) {
	var out []AllowRule
	for i, r := range p.Spec.Firewall.Allow {
		dst, ok := parsePrefix(r.To)
		if !ok {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "firewall.allow[%d].to %q is not a network in CIDR notation", i, r.To)
			return nil, false
		}
		ar := AllowRule{Destination: dst, Protocol: string(r.EffectiveProtocol())}
		for _, pr := range r.Ports {
			end := pr.LastPort()
			if pr.Port < 1 || end < pr.Port || end > 65535 {
				b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name, "firewall.allow[%d]: invalid port range %d-%d", i, pr.Port, end)
				return nil, false
			}
			ar.Ports = append(ar.Ports, PortRange{From: uint16(pr.Port), To: uint16(end)})
		}
		out = append(out, ar)
	}
	return out, true
}

// claim is a network an accepted pool or tunnel owns.
type claim struct {
	p    netip.Prefix
	kind string
	name string
	// what the network is to its owner, for messages.
	what string
}

// claims holds the networks of what has been accepted so far; objects are
// offered oldest first, so a new object never displaces a working one.
type claims struct {
	addrs []claim // pool addresses
	nets  []claim // networks reached: pool and tunnel local networks
	peers []claim // tunnel remote networks
}

// conflict returns the first claim in cs that overlaps one of ps.
func conflict(ps []netip.Prefix, cs []claim) (netip.Prefix, claim, bool) {
	for _, p := range ps {
		for _, c := range cs {
			if p.Overlaps(c.p) {
				return p, c, true
			}
		}
	}
	return netip.Prefix{}, claim{}, false
}

// admitPool reports whether a pool's networks collide with what was
// accepted before it, and if not claims them.
func (b *builder) admitPool(pp *parsedPool, c *claims) bool {
	name := pp.obj.Name
	if a, o, hit := conflict(pp.addrs, c.addrs); hit {
		b.problem(v1alpha1.ReasonPoolOverlap, KindMobilePool, name, "addresses %s overlap %s of MobilePool %s, which is older and keeps serving", a, o.p, o.name)
		return false
	}
	if a, o, hit := conflict(pp.addrs, c.nets); hit {
		b.problem(v1alpha1.ReasonPoolOverlapsLocalNetwork, KindMobilePool, name, "addresses %s overlap %s %s of %s %s", a, o.what, o.p, o.kind, o.name)
		return false
	}
	if a, o, hit := conflict(pp.addrs, c.peers); hit {
		b.problem(v1alpha1.ReasonPoolOverlap, KindMobilePool, name, "addresses %s overlap remote network %s of Tunnel %s, which is older", a, o.p, o.name)
		return false
	}
	if n, o, hit := conflict(pp.local, c.addrs); hit {
		b.problem(v1alpha1.ReasonPoolOverlapsLocalNetwork, KindMobilePool, name, "local network %s covers addresses %s of MobilePool %s", n, o.p, o.name)
		return false
	}
	for _, a := range pp.addrs {
		c.addrs = append(c.addrs, claim{a, KindMobilePool, name, "addresses"})
	}
	for _, n := range pp.local {
		c.nets = append(c.nets, claim{n, KindMobilePool, name, "local network"})
	}
	return true
}

// admitTunnel does for a tunnel what admitPool does for a pool: its local
// networks must not cover client addresses, and its remote networks must
// not hold them either, or return traffic to clients would enter the tunnel.
func (b *builder) admitTunnel(t *parsedTunnel, c *claims) bool {
	var local, remote []netip.Prefix
	for _, ch := range t.children {
		local = append(local, ch.LocalNetworks...)
		remote = append(remote, ch.RemoteNetworks...)
	}
	name := t.obj.Name
	if n, o, hit := conflict(local, c.addrs); hit {
		b.problem(v1alpha1.ReasonPoolOverlapsLocalNetwork, KindTunnel, name, "local network %s covers addresses %s of MobilePool %s, which is older", n, o.p, o.name)
		return false
	}
	if n, o, hit := conflict(remote, c.addrs); hit {
		b.problem(v1alpha1.ReasonPoolOverlap, KindTunnel, name, "remote network %s overlaps addresses %s of MobilePool %s, which is older", n, o.p, o.name)
		return false
	}
	for _, n := range local {
		c.nets = append(c.nets, claim{n, KindTunnel, name, "local network"})
	}
	for _, n := range remote {
		c.peers = append(c.peers, claim{n, KindTunnel, name, "remote network"})
	}
	return true
}

// admit offers the parsed pools and tunnels oldest first (then by kind and
// name) and returns those accepted, each ordered by name. The networks of
// the others are returned as refused ranges.
func (b *builder) admit(pools []*parsedPool, tunnels []*parsedTunnel) ([]*parsedPool, []*parsedTunnel) {
	type offer struct {
		at     time.Time
		kind   string
		name   string
		pool   *parsedPool
		tunnel *parsedTunnel
	}
	var offers []offer
	for _, p := range pools {
		offers = append(offers, offer{p.obj.CreationTimestamp.Time, KindMobilePool, p.obj.Name, p, nil})
	}
	for _, t := range tunnels {
		offers = append(offers, offer{t.obj.CreationTimestamp.Time, KindTunnel, t.obj.Name, nil, t})
	}
	slices.SortFunc(offers, func(x, y offer) int {
		return cmp.Or(x.at.Compare(y.at), strings.Compare(x.kind, y.kind), strings.Compare(x.name, y.name))
	})
	var c claims
	var okPools []*parsedPool
	var okTunnels []*parsedTunnel
	for _, o := range offers {
		switch {
		case o.pool != nil && b.admitPool(o.pool, &c):
			okPools = append(okPools, o.pool)
		case o.tunnel != nil && b.admitTunnel(o.tunnel, &c):
			okTunnels = append(okTunnels, o.tunnel)
		}
	}
	slices.SortFunc(okPools, func(x, y *parsedPool) int { return strings.Compare(x.obj.Name, y.obj.Name) })
	slices.SortFunc(okTunnels, func(x, y *parsedTunnel) int { return strings.Compare(x.obj.Name, y.obj.Name) })
	return okPools, okTunnels
}

// groupPools groups accepted pools (by name) by user selector. Pools with
// one selector must agree on what their clients get; a pool that differs
// from its group's first is refused.
func (b *builder) groupPools(pools []*parsedPool) []*poolGroup {
	var groups []*poolGroup
	byKey := map[string]*poolGroup{}
	for _, pp := range pools {
		g := byKey[pp.key]
		if g != nil && g.sig != pp.sig {
			b.problem(v1alpha1.ReasonPoolConflict, KindMobilePool, pp.obj.Name, "selects the same users as MobilePool %s but differs in esp, fullTunnel, dns, winsServers or banner", g.pools[0].obj.Name)
			continue
		}
		if g == nil {
			g = &poolGroup{key: pp.key, sel: pp.sel, sig: pp.sig}
			g.child = Child{
				Name:         sanitize(pp.obj.Name),
				ESPProposals: pp.esp,
				LifeTime:     pp.life,
				RekeyTime:    pp.rekey,
				DPDAction:    dpdAction(b.gw.Spec.IKE.DPD.Action),
			}
			byKey[pp.key] = g
			groups = append(groups, g)
		}
		g.pools = append(g.pools, pp)
		for _, t := range pp.ts {
			if !slices.Contains(g.child.LocalTS, t) {
				g.child.LocalTS = append(g.child.LocalTS, t)
			}
		}
	}
	return groups
}

package swan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// usable reports whether charon hands a out from a pool of p: not the
// network address, not the last address.
func usable(p netip.Prefix, a netip.Addr) bool {
	return p.Contains(a) && a != p.Addr() && a != lastAddr(p)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// poolLimitBits is charon's largest pool: mem_pool counts leases in 31
// bits, and limits a larger subnet pool to its first 2^31 addresses.
const poolLimitBits = 31

// servedRange is the first and last address charon hands out from a pool
// of p: not the network address, not the last address, and at most as many
// as charon's own limit of a subnet pool.
func servedRange(p netip.Prefix) (first, last netip.Addr) {
	p = splitPrefix(p)
	return p.Addr().Next(), lastAddr(p).Prev()
}

// PoolSize is how many addresses a pool of p hands out (see servedRange):
// 2^(host bits) - 2, at most 2^31 - 2.
func PoolSize(p netip.Prefix) int64 {
	host := min(p.Addr().BitLen()-p.Bits(), poolLimitBits)
	return int64(1)<<host - 2
}

// rangesAround are the addresses of [start, end] charon may hand to
// anybody: all but the static addresses (sorted). They are
// rendered as address ranges, never as the subnet: for a subnet pool
// charon 5.9.8 looks for a client's address among [network address,
// network address + size), which leaves out the last address it hands
// out, so that client got no DNS, domain or split attributes (fixed in
// 6.0 by strongSwan commit 2b11764b "mem-pool: Adjust the base address if
// it's the network ID"). A range pool starts at its first address and is
// checked right.
func rangesAround(start, end netip.Addr, static []netip.Addr) []string {
	var out []string
	for _, s := range static {
		if s.Less(start) || end.Less(s) {
			continue
		}
		if start.Less(s) {
			out = append(out, start.String()+"-"+s.Prev().String())
		}
		start = s.Next()
	}
	if !end.Less(start) {
		out = append(out, start.String()+"-"+end.String())
	}
	return out
}

// StaticPoolName is the one-address pool of a user's static address; the
// suffix is one no MobilePool's pool ends in.
func StaticPoolName(user string, a netip.Addr) string {
	if a.Is4() {
		return modelName("static-", user, "-v4")
	}
	return modelName("static-", user, "-v6")
}

func dnsSig(d *v1alpha1.DNSSettings) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%v|%s|%v", d.Servers, d.DefaultDomain, d.SplitDomains)
}

// pools adds the charon pools of a group with their attributes. charon sends
// the attributes of every pool that assigned the client an address: each
// pool carries the DNS servers and split networks of its family, and one
// pool (the group's first IPv4 pool, which every client asks for, else its
// first) the attributes that do not depend on the family. The pools of a
// group agree on those (see poolGroups), so the first pool's spec holds them.
// family holds, by "is IPv4", the attributes of the group's first pool of
// that family. With AgentRADIUS static addresses come from the agent's
// RADIUS server and users is empty.
func (b *builder) pools(g *poolGroup, statics map[*v1alpha1.VPNUser]netip.Addr) (group []string, users map[string][]string, family map[bool][]Attribute) {
	users = map[string][]string{}
	family = map[bool][]Attribute{}
	spec := &g.pools[0].obj.Spec
	type charonPool struct {
		name   string
		prefix netip.Prefix
	}
	var cps []charonPool
	for _, p := range g.pools {
		for _, pr := range p.addrs {
			cps = append(cps, charonPool{poolName(p, pr), pr})
		}
	}
	neutral := 0
	for i, cp := range cps {
		if cp.prefix.Addr().Is4() {
			neutral = i
			break
		}
	}
	var attrs []Attribute
	add := func(key string, vals ...string) {
		if len(vals) > 0 {
			attrs = append(attrs, Attribute{Key: key, Values: vals})
		}
	}
	// A static user's pool list: its own address and the group's pools of
	// the other family.
	familyPools := map[bool][]string{}
	for i, cp := range cps {
		v4 := cp.prefix.Addr().Is4()
		attrs = nil
		var dns []string
		if spec.DNS != nil {
			for _, s := range spec.DNS.Servers {
				if ip, err := netip.ParseAddr(string(s)); err == nil && ip.Is4() == v4 {
					dns = append(dns, ip.String())
				}
			}
		}
		add("dns", dns...)
		if i == neutral {
			var wins []string
			for _, w := range spec.WINSServers {
				wins = append(wins, string(w))
			}
			add("nbns", wins...)
		}
		var split []string
		if !spec.FullTunnel {
			for _, ts := range g.child.LocalTS {
				if pn, err := netip.ParsePrefix(ts); err == nil && pn.Addr().Is4() == v4 {
					split = append(split, ts)
				}
			}
		}
		add("split_include", split...)
		if i == neutral {
			if d := spec.DNS; d != nil {
				var domains []string
				for _, s := range d.SplitDomains {
					domains = append(domains, string(s))
				}
				// RFC 8598 INTERNAL_DNS_DOMAIN: one attribute per domain.
				add("25", domains...)
				if d.DefaultDomain != "" {
					add("28674", string(d.DefaultDomain))
				}
				if len(domains) > 0 {
					// Cisco Unity split DNS: one attribute, a space-separated list.
					add("28675", strings.Join(domains, " "))
				}
			}
			if spec.Banner != "" {
				add("28672", spec.Banner)
			}
		}
		if _, ok := family[v4]; !ok {
			family[v4] = attrs
		}
		var holes []netip.Addr
		var owners []*v1alpha1.VPNUser
		for _, u := range g.users {
			if a, ok := statics[u]; ok && cp.prefix.Contains(a) {
				holes = append(holes, a)
				owners = append(owners, u)
			}
		}
		slices.SortFunc(holes, func(x, y netip.Addr) int { return x.Compare(y) })
		// Without holes the pool keeps its name: charon refuses to replace a
		// pool while it holds leases, so a gateway that rendered this pool as
		// a subnet (before ranges) reloads it once the subnet pool's clients
		// left. Ranges around holes are named after themselves (see namedRanges).
		for _, r := range b.dynamicPools(cp.name, cp.prefix, holes) {
			b.m.Pools = append(b.m.Pools, Pool{Name: r.name, Addrs: r.addrs, Attributes: slices.Clone(attrs)})
			group = append(group, r.name)
			familyPools[v4] = append(familyPools[v4], r.name)
		}
		for _, u := range owners {
			if b.res.AgentRADIUS {
				break
			}
			a := statics[u]
			name := StaticPoolName(u.Name, a)
			b.m.Pools = append(b.m.Pools, Pool{Name: name, Addrs: a.String() + "-" + a.String(), Attributes: slices.Clone(attrs)})
			users[u.Name] = append(users[u.Name], name)
		}
	}
	for _, u := range g.users {
		if a, ok := statics[u]; ok && !b.res.AgentRADIUS {
			users[u.Name] = append(users[u.Name], familyPools[!a.Is4()]...)
		}
	}
	return group, users, family
}

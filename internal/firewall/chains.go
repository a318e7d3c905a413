package firewall

import (
	"fmt"
	"net/netip"
)

// builder makes the chains of one table; Build drives it.
type builder struct {
	dp  DataPlane
	tun string
}

// in marks r as matching traffic that arrived through IPsec.
func (b *builder) in(r Rule) Rule {
	if b.dp == DataPlaneUserspace {
		r.IIFName = b.tun
	} else {
		r.IPsecIn = true
	}
	return r
}

// out marks r as matching traffic leaving through IPsec, where the data plane
// can tell: the kernel decides about encapsulation after the forward hook, so
// there the destination networks in r have to say it.
func (b *builder) out(r Rule) Rule {
	if b.dp == DataPlaneUserspace {
		r.OIFName = b.tun
	}
	return r
}

func (b *builder) inputChain(addrs []netip.Addr) Chain {
	c := Chain{Name: ChainInput, Base: &Base{Type: "filter", Hook: HookInput, Priority: priorityFilter}}
	dsts := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		dsts = append(dsts, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(dsts) == 0 {
		dsts = []netip.Prefix{{}}
	}
	for _, d := range dsts {
		fam, key := FamilyAny, "any"
		if d.IsValid() {
			fam, key = familyOf(d), d.Addr().String()
		}
		for _, port := range []uint16{500, 4500} {
			c.Rules = append(c.Rules, Rule{
				ID: fmt.Sprintf("input/ike/%s/%d", key, port), Family: fam, DAddr: d,
				L4: L4UDP, DPorts: PortRange{port, port}, Counter: true, Verdict: VerdictAccept,
			})
		}
		c.Rules = append(c.Rules, Rule{
			ID: fmt.Sprintf("input/esp/%s", key), Family: fam, DAddr: d,
			L4: L4ESP, Counter: true, Verdict: VerdictAccept,
		})
	}
	return c
}

// mssChain clamps SYNs through tunnels in both directions. It hooks forward
// at mangle priority, before any filter chain accepts the SYN/ACK as
// established.
func (b *builder) mssChain(mss uint16, pools []Pool, tunnels []Tunnel) Chain {
	c := Chain{Name: ChainMSS, Base: &Base{Type: "filter", Hook: HookForward, Priority: priorityMangle}}
	clamp := func(id string, r Rule) {
		for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
			if r.Family != FamilyAny && r.Family != f {
				continue
			}
			v := mss
			suffix := "/ipv4"
			if f == FamilyIPv6 {
				v, suffix = mss-ipv6MSSDelta, "/ipv6"
			}
			rr := r
			rr.ID, rr.Family, rr.L4, rr.TCPSyn, rr.MSSAbove, rr.SetMSS, rr.Counter = id+suffix, f, L4TCP, true, v, v, true
			c.Rules = append(c.Rules, rr)
		}
	}
	clamp("mss/in", b.in(Rule{}))
	if b.dp == DataPlaneUserspace {
		clamp("mss/out", b.out(Rule{}))
		return c
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			clamp("mss/out/pool/"+p.Name+"/"+cidr.String(), Rule{Family: familyOf(cidr), DAddr: cidr})
		}
	}
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			clamp("mss/out/tunnel/"+t.Name+"/"+rn.String(), Rule{Family: familyOf(rn), DAddr: rn})
		}
	}
	return c
}

func (b *builder) forwardChain(pools []Pool, tunnels []Tunnel, refused []Refused) Chain {
	c := Chain{Name: ChainForward, Base: &Base{Type: "filter", Hook: HookForward, Priority: priorityFilter}}
	c.Rules = append(c.Rules, Rule{
		ID: "forward/established", CtState: CtStateEstablished | CtStateRelated, Counter: true, Verdict: VerdictAccept,
	})
	for _, t := range tunnels {
		for _, p := range t.pairs() {
			l, r := p[0], p[1]
			c.Rules = append(c.Rules,
				b.in(Rule{ID: fmt.Sprintf("tunnel/%s/in/%s/%s", t.Name, r, l), Family: familyOf(r),
					SAddr: r, DAddr: l, Counter: true, Verdict: VerdictAccept}),
				b.out(Rule{ID: fmt.Sprintf("tunnel/%s/out/%s/%s", t.Name, l, r), Family: familyOf(r),
					SAddr: l, DAddr: r, Counter: true, Verdict: VerdictAccept}))
		}
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			c.Rules = append(c.Rules, Rule{
				ID: "pool/" + p.Name + "/from/" + cidr.String(), Family: familyOf(cidr), SAddr: cidr,
				Verdict: VerdictJump, Jump: PoolChain(p.Name),
			})
		}
	}
	// What else arrives from a tunnel's remote networks is no child's
	// traffic: dropped and counted per tunnel. These come after every
	// accept, so that one tunnel's drops never shadow another's pairs.
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			c.Rules = append(c.Rules, b.in(Rule{
				ID: TunnelDropRuleID(t.Name, rn), Family: familyOf(rn), SAddr: rn,
				NamedCounter: TunnelDropCounter(t.Name), Verdict: VerdictDrop,
			}))
		}
	}
	for _, r := range refused {
		c.Rules = append(c.Rules, b.in(Rule{
			ID: "refused/" + r.Owner + "/" + r.Prefix.String(), Family: familyOf(r.Prefix), SAddr: r.Prefix,
			NamedCounter: CounterRefused, Verdict: VerdictDrop,
		}))
	}
	return c
}

func (b *builder) poolChain(p Pool) Chain {
	c := Chain{Name: PoolChain(p.Name)}
	for i, a := range p.Allow {
		n := 0
		for _, cidr := range p.CIDRs {
			fam := familyOf(cidr)
			if a.Destination.IsValid() && familyOf(a.Destination) != fam {
				continue
			}
			base := b.in(Rule{Family: fam, SAddr: cidr, DAddr: a.Destination, Counter: true, Verdict: VerdictAccept})
			var l4 L4
			switch a.Protocol {
			case ProtocolTCP:
				l4 = L4TCP
			case ProtocolUDP:
				l4 = L4UDP
			case ProtocolICMP:
				l4 = L4ICMP
				if fam == FamilyIPv6 {
					l4 = L4ICMPv6
				}
			}
			base.L4 = l4
			ports := a.Ports
			if len(ports) == 0 {
				ports = []PortRange{{}}
			}
			for _, pr := range ports {
				r := base
				r.DPorts = pr
				r.ID = fmt.Sprintf("pool/%s/allow/%d.%d", p.Name, i, n)
				n++
				c.Rules = append(c.Rules, r)
			}
		}
	}
	c.Rules = append(c.Rules, Rule{
		ID: PoolDropRuleID(p.Name), NamedCounter: PoolDropCounter(p.Name), Verdict: VerdictDrop,
	})
	return c
}

// natChain masquerades pool traffic that asked for it. Traffic to VPN
// networks (tunnel remote networks, pools) is accepted first so it keeps its
// source address: a peer's traffic selectors only cover the real networks.
func (b *builder) natChain(pools []Pool, tunnels []Tunnel) Chain {
	c := Chain{Name: ChainPostrouting, Base: &Base{Type: "nat", Hook: HookPostrouting, Priority: prioritySrcNAT}}
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			c.Rules = append(c.Rules, Rule{
				ID: "nat/keep/tunnel/" + t.Name + "/" + rn.String(), Family: familyOf(rn), DAddr: rn,
				Counter: true, Verdict: VerdictAccept,
			})
		}
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			c.Rules = append(c.Rules, Rule{
				ID: "nat/keep/pool/" + p.Name + "/" + cidr.String(), Family: familyOf(cidr), DAddr: cidr,
				Counter: true, Verdict: VerdictAccept,
			})
		}
	}
	for _, p := range pools {
		if !p.Masquerade {
			continue
		}
		for _, cidr := range p.CIDRs {
			dsts := p.LocalNetworks
			if len(dsts) == 0 {
				dsts = []netip.Prefix{{}}
			}
			for _, d := range dsts {
				if d.IsValid() && familyOf(d) != familyOf(cidr) {
					continue
				}
				to := "any"
				if d.IsValid() {
					to = d.String()
				}
				c.Rules = append(c.Rules, Rule{
					ID: "nat/masquerade/" + p.Name + "/" + cidr.String() + "/" + to, Family: familyOf(cidr),
					SAddr: cidr, DAddr: d, Counter: true, Verdict: VerdictMasquerade,
				})
			}
		}
	}
	return c
}

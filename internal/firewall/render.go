package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// RenderNft prints rs the way `nft list table inet <table>` (nftables 1.0.x)
// prints it right after Apply, counters at zero: for reviews, golden files
// and support bundles. It is also valid input for `nft -f`.
func RenderNft(rs *Ruleset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", rs.Table)
	first := true
	sep := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, name := range rs.Counters {
		sep()
		fmt.Fprintf(&b, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n", name)
	}
	for _, c := range rs.Chains {
		sep()
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Base != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy accept;\n", c.Base.Type, c.Base.Hook, priorityName(c.Base.Priority))
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s comment %q\n", r.text(), r.Comment())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func priorityName(p int32) string {
	switch p {
	case priorityMangle:
		return "mangle"
	case priorityFilter:
		return "filter"
	case prioritySrcNAT:
		return "srcnat"
	}
	return fmt.Sprint(p)
}

// text is the rule in nft syntax without its comment.
func (r Rule) text() string {
	var w []string
	add := func(s ...string) { w = append(w, s...) }
	if r.IPsecIn {
		add("meta ipsec exists")
	}
	if r.IIFName != "" {
		add(fmt.Sprintf("iifname %q", r.IIFName))
	}
	if r.OIFName != "" {
		add(fmt.Sprintf("oifname %q", r.OIFName))
	}
	ip := "ip"
	if r.Family == FamilyIPv6 {
		ip = "ip6"
	}
	if r.Family != FamilyAny && !r.SAddr.IsValid() && !r.DAddr.IsValid() {
		add("meta nfproto " + map[Family]string{FamilyIPv4: "ipv4", FamilyIPv6: "ipv6"}[r.Family])
	}
	if r.SAddr.IsValid() {
		add(ip + " saddr " + prefixText(r.SAddr))
	}
	if r.DAddr.IsValid() {
		add(ip + " daddr " + prefixText(r.DAddr))
	}
	l4 := l4Names[r.L4]
	switch {
	case r.DPorts != (PortRange{}):
		add(l4 + " dport " + r.DPorts.String())
	case r.TCPSyn:
		add("tcp flags syn / syn,rst")
	case r.L4 != L4Any:
		add("meta l4proto " + l4)
	}
	if r.CtState != 0 {
		var s []string
		for _, st := range []struct {
			bit  CtState
			name string
		}{{CtStateInvalid, "invalid"}, {CtStateEstablished, "established"}, {CtStateRelated, "related"}} {
			if r.CtState&st.bit != 0 {
				s = append(s, st.name)
			}
		}
		add("ct state " + strings.Join(s, ","))
	}
	if r.MSSAbove != 0 {
		add(fmt.Sprintf("tcp option maxseg size > %d", r.MSSAbove))
	}
	if r.NamedCounter != "" {
		add(fmt.Sprintf("counter name %q", r.NamedCounter))
	} else if r.Counter {
		add("counter packets 0 bytes 0")
	}
	if r.SetMSS != 0 {
		add(fmt.Sprintf("tcp option maxseg size set %d", r.SetMSS))
	}
	switch r.Verdict {
	case VerdictAccept:
		add("accept")
	case VerdictDrop:
		add("drop")
	case VerdictJump:
		add("jump " + r.Jump)
	case VerdictMasquerade:
		add("masquerade")
	}
	return strings.Join(w, " ")
}

var l4Names = map[L4]string{
	L4TCP:    "tcp",
	L4UDP:    "udp",
	L4ICMP:   "icmp",
	L4ICMPv6: "ipv6-icmp",
	L4ESP:    "esp",
}

func prefixText(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

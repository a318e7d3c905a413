package firewall

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// CounterRefused counts packets from networks whose pool or tunnel was
// refused; CounterClosed those a closed table dropped.
const (
	CounterRefused = "refused-dropped"
	CounterClosed  = "closed-dropped"
)

// refusedRanges sorts refused networks and drops duplicates.
func refusedRanges(rs []Refused) []Refused {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b Refused) int {
		return cmp.Or(strings.Compare(a.Owner, b.Owner), comparePrefix(a.Prefix, b.Prefix))
	})
	return slices.Compact(out)
}

// Closed is the table of a gateway whose firewall cannot be built: IKE and
// ESP still reach charon, so that sessions can be set up and the agent can
// report, but nothing that arrives through IPsec is forwarded. A firewall
// that cannot say what clients may reach lets them reach nothing.
func Closed(cfg Config) *Ruleset {
	b := &builder{dp: cmp.Or(cfg.DataPlane, DataPlaneKernel), tun: cmp.Or(cfg.TunDevice, DefaultTunDevice)}
	if b.dp != DataPlaneUserspace {
		b.dp = DataPlaneKernel
	}
	var addrs []netip.Addr
	for _, a := range cfg.GatewayAddresses {
		if a.IsValid() {
			addrs = append(addrs, a)
		}
	}
	fwd := Chain{Name: ChainForward, Base: &Base{Type: "filter", Hook: HookForward, Priority: priorityFilter}}
	fwd.Rules = append(fwd.Rules, b.in(Rule{ID: "closed/in", NamedCounter: CounterClosed, Verdict: VerdictDrop}))
	if b.dp == DataPlaneUserspace {
		fwd.Rules = append(fwd.Rules, b.out(Rule{ID: "closed/out", NamedCounter: CounterClosed, Verdict: VerdictDrop}))
	}
	return &Ruleset{
		Table:    cfg.Table,
		Counters: []string{CounterClosed},
		Chains:   []Chain{b.inputChain(addrs), fwd},
	}
}

package firewall

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// FromResources maps a gateway's API objects onto the firewall Config of its
// table. Pools and tunnels of other gateways are left out. Values the API
// server validates (CIDRs, addresses) but that do not parse are skipped
// rather than failing the whole table: the manager reports them.
func FromResources(table string, gw *v1alpha1.VPNGateway, pools []v1alpha1.MobilePool, tunnels []v1alpha1.Tunnel) Config {
	cfg := Config{Table: table, DataPlane: DataPlaneKernel}
	if gw.Spec.Dataplane == v1alpha1.DataplaneUserspace {
		cfg.DataPlane = DataPlaneUserspace
	}
	for _, a := range gw.Spec.Addresses {
		if addr, err := netip.ParseAddr(string(a)); err == nil {
			cfg.GatewayAddresses = append(cfg.GatewayAddresses, addr)
		}
	}
	if mss := gw.Spec.Firewall.MSSClamp; mss != nil {
		if *mss == 0 {
			cfg.DisableMSSClamp = true
		} else {
			cfg.MSS = uint16(*mss)
		}
	}
	for i := range pools {
		p := &pools[i]
		if p.Spec.GatewayRef.Name != gw.Name {
			continue
		}
		fp := Pool{Name: p.Name, Masquerade: gw.Spec.Firewall.Masquerade}
		if m := p.Spec.Firewall.Masquerade; m != nil {
			fp.Masquerade = *m
		}
		for _, c := range []v1alpha1.CIDR{p.Spec.Addresses.IPv4, p.Spec.Addresses.IPv6} {
			if pr, ok := prefix(c); ok {
				fp.CIDRs = append(fp.CIDRs, pr)
			}
		}
		if !p.Spec.FullTunnel {
			fp.LocalNetworks = prefixes(p.Spec.LocalNetworks)
		}
		for _, r := range p.Spec.Firewall.Allow {
			dst, ok := prefix(r.To)
			if !ok {
				continue
			}
			ar := AllowRule{Destination: dst, Protocol: Protocol(r.Protocol)}
			if ar.Protocol == "" {
				ar.Protocol = ProtocolAny
			}
			for _, pr := range r.Ports {
				end := pr.EndPort
				if end == 0 {
					end = pr.Port
				}
				ar.Ports = append(ar.Ports, PortRange{From: uint16(pr.Port), To: uint16(end)})
			}
			fp.Allow = append(fp.Allow, ar)
		}
		cfg.Pools = append(cfg.Pools, fp)
	}
	for i := range tunnels {
		t := &tunnels[i]
		if t.Spec.GatewayRef.Name != gw.Name {
			continue
		}
		ft := Tunnel{Name: t.Name}
		for _, c := range t.Spec.Children {
			ft.LocalNetworks = append(ft.LocalNetworks, prefixes(c.LocalNetworks)...)
			ft.RemoteNetworks = append(ft.RemoteNetworks, prefixes(c.RemoteNetworks)...)
		}
		ft.LocalNetworks = compactPrefixes(ft.LocalNetworks)
		ft.RemoteNetworks = compactPrefixes(ft.RemoteNetworks)
		cfg.Tunnels = append(cfg.Tunnels, ft)
	}
	slices.SortFunc(cfg.Pools, func(a, b Pool) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Tunnels, func(a, b Tunnel) int { return strings.Compare(a.Name, b.Name) })
	return cfg
}

func prefix(c v1alpha1.CIDR) (netip.Prefix, bool) {
	if c == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(string(c))
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func prefixes(cs []v1alpha1.CIDR) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cs {
		if p, ok := prefix(c); ok {
			out = append(out, p)
		}
	}
	return out
}

// compactPrefixes sorts and removes duplicates, so that the ruleset of a
// tunnel whose children share networks stays the same across rebuilds.
func compactPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

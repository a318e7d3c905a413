package firewall

import (
	"net/netip"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// FromBuild maps what swan.Build accepted for a gateway onto the firewall
// Config of its table: a chain for each accepted pool, rules for each
// accepted tunnel's children, and drops for the networks of refused ones.
// The gateway supplies only its own settings (addresses, data plane, MSS).
func FromBuild(table string, gw *v1alpha1.VPNGateway, res *swan.Result) Config {
	cfg := Config{Table: table, DataPlane: DataPlaneKernel}
	if gw.Spec.UserspaceDataplane() {
		cfg.DataPlane = DataPlaneUserspace
	}
	for _, a := range gw.Spec.Addresses {
		if addr, err := netip.ParseAddr(string(a)); err == nil {
			cfg.GatewayAddresses = append(cfg.GatewayAddresses, addr)
		}
	}
	if mss := gw.Spec.Firewall.EffectiveMSSClamp(); mss == 0 {
		cfg.DisableMSSClamp = true
	} else {
		cfg.MSS = uint16(mss)
	}
	for _, p := range res.Pools {
		fp := Pool{Name: p.Name, Masquerade: p.Masquerade, CIDRs: p.Prefixes, LocalNetworks: p.LocalNetworks}
		for _, r := range p.Allow {
			ar := AllowRule{Destination: r.Destination, Protocol: Protocol(r.Protocol)}
			for _, pr := range r.Ports {
				ar.Ports = append(ar.Ports, PortRange{From: pr.From, To: pr.To})
			}
			fp.Allow = append(fp.Allow, ar)
		}
		cfg.Pools = append(cfg.Pools, fp)
	}
	for _, t := range res.Tunnels {
		ft := Tunnel{Name: t.Name}
		for _, c := range t.Children {
			ft.Children = append(ft.Children, TunnelChild{LocalNetworks: c.LocalNetworks, RemoteNetworks: c.RemoteNetworks})
		}
		cfg.Tunnels = append(cfg.Tunnels, ft)
	}
	for _, r := range res.Refused {
		owner := "pool/" + r.Name
		if r.Kind == swan.KindTunnel {
			owner = "tunnel/" + r.Name
		}
		cfg.Refused = append(cfg.Refused, Refused{Owner: owner, Prefix: r.Prefix})
	}
	return cfg
}

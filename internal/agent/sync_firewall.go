package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
)

// syncFirewall programs the gateway's table from what Build accepted, or
// removes it (once) when the gateway's firewall is disabled, so that
// turning it off leaves no rules. A table that cannot be built is replaced
// by a closed one: clients reach nothing rather than everything.
func (a *Agent) syncFirewall(ctx context.Context, gw *v1alpha1.VPNGateway, res *swan.Result) error {
	if !gw.Spec.FirewallEnabled() {
		if a.firewallOff {
			return nil
		}
		if err := a.opts.Firewall.Delete(); err != nil {
			return fmt.Errorf("removing the firewall table: %w", err)
		}
		a.firewallOff = true
		return nil
	}
	a.firewallOff = false
	cfg := firewall.FromBuild(a.opts.Firewall.Table(), gw, res)
	rs, buildErr := firewall.Build(cfg)
	if buildErr != nil {
		logr.FromContextOrDiscard(ctx).Error(buildErr, "Firewall cannot be built; forwarding nothing from clients and tunnels")
		rs = firewall.Closed(cfg)
		buildErr = fmt.Errorf("building the firewall (closed meanwhile): %w", buildErr)
	}
	if _, err := a.opts.Firewall.Apply(rs); err != nil {
		return errors.Join(buildErr, fmt.Errorf("applying the firewall: %w", err))
	}
	return buildErr
}

// rememberTunnels records which charon connection serves which Tunnel, and
// the address ranges of the gateway's pools, for the session loop.
func (a *Agent) rememberTunnels(res *swan.Result) {
	out := make(map[string]tunnelInfo, len(res.Tunnels))
	for _, t := range res.Tunnels {
		info := tunnelInfo{name: t.Name}
		for _, ch := range t.Children {
			info.children = append(info.children, ch.Name)
		}
		out[t.Connection] = info
	}
	pools := make(map[string][]netip.Prefix, len(res.Pools))
	for _, p := range res.Pools {
		pools[p.Name] = p.Prefixes
	}
	a.mu.Lock()
	a.tunnelConns = out
	a.poolNets = pools
	a.splitPools = res.Replica.Split()
	a.mu.Unlock()
}

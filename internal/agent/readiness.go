package agent

import (
	"context"
	"errors"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// serving decides readiness from one apply of model m: whether charon
// serves the gateway's clients, and why not. The pod's readiness gates the
// gateway's Service, so it answers "can a client connect here", not "did
// every item load": a user's secret, a Tunnel, or one pool and its
// connection that charon refuses fail alone and are reported in status
// (one bad object affects only itself). The pod is not ready when charon
// is out of reach, lacks the gateway's own key, or serves none of the
// mobile connections m has, because then no client can connect.
func serving(m swan.Model, applied vici.Result, applyErr, other error, tunnelConn func(string) bool) (bool, string) {
	switch {
	case errors.Is(applyErr, vici.ErrUnavailable):
		return false, "charon is unreachable"
	case other != nil:
		return false, other.Error()
	case applyErr != nil && len(applied.Failed) == 0:
		// Nothing was planned: charon's inventory could not be read.
		return false, applyErr.Error()
	}
	failed := map[vici.Ref]bool{}
	for _, f := range applied.Failed {
		if f.Ref.Kind == vici.KindKey {
			return false, f.Ref.String() + " is not loaded"
		}
		failed[f.Ref] = true
	}
	mobile, served := 0, 0
	for _, c := range m.Connections {
		if tunnelConn(c.Name) {
			continue
		}
		mobile++
		if connServes(c, failed) {
			served++
		}
	}
	if mobile > 0 && served == 0 {
		return false, "charon serves none of the gateway's mobile connections: each one or its pools were refused"
	}
	return true, "charon holds the gateway's connections"
}

// connServes reports whether charon holds c and every pool it hands out
// addresses from.
func connServes(c swan.Connection, failed map[vici.Ref]bool) bool {
	if failed[vici.Ref{Kind: vici.KindConn, Name: c.Name}] {
		return false
	}
	for _, p := range c.Pools {
		if failed[vici.Ref{Kind: vici.KindPool, Name: p}] {
			return false
		}
	}
	return true
}

// updateReadiness sets Ready from an apply's result (see Ready); other
// are the errors of the firewall and RADIUS steps.
func (a *Agent) updateReadiness(ctx context.Context, m swan.Model, applied vici.Result, applyErr, other error) {
	ready, why := serving(m, applied, applyErr, other, a.isTunnelConn)
	if was := a.ready.Swap(ready); was != ready {
		logr.FromContextOrDiscard(ctx).Info("Readiness changed", "ready", ready, "reason", why)
	}
}

// isTunnelConn reports whether name is a Tunnel's connection.
func (a *Agent) isTunnelConn(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.tunnelConns[name]
	return ok
}

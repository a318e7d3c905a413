package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// endStaleSessions terminates the IKE_SAs that the applied model no longer
// allows: those of users who lost their secret, and those of tunnel
// connections charon no longer holds (unloading a connection leaves its
// SAs up, so a deleted Tunnel, or one left out for a problem, would go on
// carrying traffic until its peer gave up). It lists charon's SAs, once,
// only when the set of users or of tunnel connections changed, and after
// charon's state was read afresh (agent start, charon restart), so that
// users and tunnels removed while the agent was away are cut off too;
// established sessions of remaining users and tunnels are never touched.
func (a *Agent) endStaleSessions(ctx context.Context, res *swan.Result, synced bool) error {
	allowed := make(map[string]bool, len(res.Users))
	for _, u := range res.Users {
		allowed[u.Identity] = true
	}
	current := make(map[string]bool, len(res.Tunnels))
	for _, t := range res.Tunnels {
		current[t.Connection] = true
	}
	local := res.LocalUsers
	a.mu.Lock()
	usersChanged := a.allowed == nil || !maps.Equal(a.allowed, allowed) || a.localUsers != local
	tunnelsChanged := a.tunnelSet == nil || !maps.Equal(a.tunnelSet, current)
	a.allowed, a.localUsers, a.tunnelSet = allowed, local, current
	a.limits = limitsFrom(res)
	tunnels := a.tunnelConns
	a.mu.Unlock()
	checkUsers := local && (usersChanged || synced)
	checkTunnels := tunnelsChanged || synced
	if !checkUsers && !checkTunnels {
		return nil
	}
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		return err
	}
	var stale []vici.IKESA
	if checkUsers {
		stale = append(stale, revoked(sas, allowed, tunnels)...)
	}
	if checkTunnels {
		for _, sa := range sas {
			if swan.IsTunnelConnection(sa.Name) && !current[sa.Name] {
				stale = append(stale, sa)
			}
		}
	}
	log := logr.FromContextOrDiscard(ctx)
	var errs []error
	for _, sa := range stale {
		what := "a removed user"
		if swan.IsTunnelConnection(sa.Name) {
			what = "a removed tunnel"
		}
		ended, err := a.terminateIKESA(ctx, sa)
		if err != nil {
			errs = append(errs, fmt.Errorf("terminating IKE_SA %s[%d] of %s: %w", sa.Name, sa.UniqueID, what, err))
			continue
		}
		if ended {
			log.Info("Terminated the IKE_SA of "+what, "connection", sa.Name, "identity", diagnose.Clean(sa.Identity()), "remote", sa.RemoteHost, "ikeSA", sa.UniqueID)
			if !swan.IsTunnelConnection(sa.Name) {
				a.revokedEvent(ctx, sa)
			}
		}
	}
	return errors.Join(errs...)
}

// terminateIKESA ends one IKE_SA without waiting for the peer, and reports
// whether it was still there.
func (a *Agent) terminateIKESA(ctx context.Context, sa vici.IKESA) (bool, error) {
	return vici.TerminateSA(ctx, a.opts.VICI, sa.UniqueID)
}

// revokedEvent tells a disabled or expired user's owner that its session
// was ended; a deleted user has no object left to tell.
func (a *Agent) revokedEvent(ctx context.Context, sa vici.IKESA) {
	a.mu.Lock()
	var u userRef
	ok := false
	if a.diag != nil {
		u, ok = a.diag.users[sa.RemoteEAPID]
	}
	a.mu.Unlock()
	if !ok || u.state == "" {
		return
	}
	why := map[string]string{diagnose.ReasonDisabled: "the user is disabled", diagnose.ReasonExpired: "the user's expiresAt has passed"}[u.state]
	msg := "ended the session of " + diagnose.Clean(sa.RemoteEAPID) + " from " + diagnose.Clean(sa.RemoteHost) + ": " + why
	a.event(ctx, u.member, u.state, msg)
}

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

// endRevokedSessions terminates the IKE_SAs of users the model no longer
// allows (deleted, disabled, expired, or without their secret). It runs
// before charon's configuration is applied: the agent's RADIUS server
// already refuses such a user, so nothing charon holds is needed to cut it
// off, and a revocation does not wait for an apply of other changes. It
// lists charon's SAs, once, only when the set of users changed or after
// charon's state was read afresh (synced: agent start, charon restart), so
// that users removed while the agent was away are cut off too;
// established sessions of remaining users are never touched.
func (a *Agent) endRevokedSessions(ctx context.Context, res *swan.Result, synced bool) error {
	allowed := make(map[string]bool, len(res.Users))
	for _, u := range res.Users {
		allowed[u.Identity] = true
	}
	local := res.LocalUsers
	a.mu.Lock()
	changed := a.allowed == nil || !maps.Equal(a.allowed, allowed) || a.localUsers != local
	a.allowed, a.localUsers = allowed, local
	a.limits = limitsFrom(res)
	tunnels := a.tunnelConns
	a.mu.Unlock()
	if !local || (!changed && !synced) {
		return nil
	}
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		return err
	}
	return a.endSessions(ctx, revoked(sas, allowed, tunnels))
}

// endRemovedTunnels terminates the IKE_SAs of tunnel connections charon no
// longer holds: unloading a connection leaves its SAs up, so a deleted
// Tunnel, or one left out for a problem, would go on carrying traffic
// until its peer gave up. It runs after the apply that unloaded them, when
// the set of tunnels changed or charon's state was read afresh.
func (a *Agent) endRemovedTunnels(ctx context.Context, res *swan.Result, synced bool) error {
	current := make(map[string]bool, len(res.Tunnels))
	for _, t := range res.Tunnels {
		current[t.Connection] = true
	}
	a.mu.Lock()
	changed := a.tunnelSet == nil || !maps.Equal(a.tunnelSet, current)
	a.tunnelSet = current
	a.mu.Unlock()
	if !changed && !synced {
		return nil
	}
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		return err
	}
	var stale []vici.IKESA
	for _, sa := range sas {
		if swan.IsTunnelConnection(sa.Name) && !current[sa.Name] {
			stale = append(stale, sa)
		}
	}
	return a.endSessions(ctx, stale)
}

// endSessions terminates stale IKE_SAs and tells the owners of users' ones.
func (a *Agent) endSessions(ctx context.Context, stale []vici.IKESA) error {
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
		u, ok = a.diag.users.ref(sa.RemoteEAPID)
	}
	a.mu.Unlock()
	if !ok || u.state == "" {
		return
	}
	why := map[string]string{diagnose.ReasonDisabled: "the user is disabled", diagnose.ReasonExpired: "the user's expiresAt has passed"}[u.state]
	msg := "ended the session of " + diagnose.Clean(sa.RemoteEAPID) + " from " + diagnose.Clean(sa.RemoteHost) + ": " + why
	a.event(ctx, u.member, u.state, msg)
}

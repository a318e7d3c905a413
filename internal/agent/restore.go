package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// restoreCharon loads the last applied configuration into a charon whose
// socket came back, without reading or building the gateway again: while
// nothing but users changed since the last whole apply (its user index is
// kept), that configuration is still the gateway's, and charon holds
// nothing per user, so a charon restarted under 100,000 users is serving
// again after loading the connections, pools and certificates alone. The
// agent's RADIUS server kept its users all along.
//
// It reports false, and leaves the index dropped, when a whole apply must
// run instead: no index, or charon refused or lost part of the load.
func (a *Agent) restoreCharon(ctx context.Context) bool {
	x := a.index
	if x == nil {
		return false
	}
	// Until this succeeds, a retry is a whole apply.
	a.index = nil
	log := logr.FromContextOrDiscard(ctx)
	start := time.Now()
	applied, err := a.applyModel(ctx, a.lastModel)
	if err == nil {
		err = a.reloadRADIUS(ctx, false)
	}
	a.mu.Lock()
	local := a.localUsers
	a.mu.Unlock()
	if err == nil && applied.Synced && local {
		// The socket may have been dialled again without charon
		// restarting: sessions of users who lost their right to log in
		// meanwhile end now (none after a restart).
		err = a.endDisallowed(ctx)
	}
	if err != nil {
		log.Info("Restoring charon's configuration from the last apply failed; applying the whole gateway", "error", err.Error())
		return false
	}
	a.noteConnections(a.lastModel, applied)
	a.updateReadiness(ctx, a.lastModel, applied, nil, nil)
	a.metrics.restores.Inc()
	log.Info("Restored charon's configuration from the last apply", "writes", len(applied.Ops), "took", time.Since(start).String())
	a.index = x
	return true
}

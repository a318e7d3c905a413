package agent

import (
	"context"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// writeAgentCounts writes this pod's entry of the gateway's status.agents
// after a listing, holding a change of its session counts alone until
// Options.CountsWriteGap after the last write (and returning how long):
// each write of the entry has the manager write the gateway's and the
// pools' sums, and under a storm of logins every listing changes them.
func (a *Agent) writeAgentCounts(ctx context.Context, now time.Time) time.Duration {
	a.mu.Lock()
	rep, last, at := a.report, a.written.agent, a.written.agentAt
	a.mu.Unlock()
	if last != nil && equality.Semantic.DeepEqual(*last, rep) {
		return 0
	}
	if last != nil && countsAlone(*last, rep) {
		if since := now.Sub(at); since < a.opts.CountsWriteGap {
			return a.opts.CountsWriteGap - since
		}
	}
	a.writeAgentStatus(ctx)
	return 0
}

// countsAlone reports whether two reports differ in their session and
// lease counts at most. The slices a pod leases in are no count: a
// replica that takes a slice over waits for them.
func countsAlone(x, y v1alpha1.AgentStatus) bool {
	uncounted := func(r v1alpha1.AgentStatus) v1alpha1.AgentStatus {
		r.Sessions = 0
		r.Pools = slices.Clone(r.Pools)
		for i := range r.Pools {
			r.Pools[i].Leased = 0
		}
		return r
	}
	return equality.Semantic.DeepEqual(uncounted(x), uncounted(y))
}

// writeAgentStatus writes this pod's entry of the gateway's status.agents
// when it changed.
func (a *Agent) writeAgentStatus(ctx context.Context) {
	a.mu.Lock()
	rep := a.report
	last := a.written.agent
	a.mu.Unlock()
	if last != nil && equality.Semantic.DeepEqual(*last, rep) {
		return
	}
	entry, err := toMap(&rep)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Encoding the gateway's agent status failed")
		return
	}
	if err := a.applyStatus(ctx, "VPNGateway", a.opts.Gateway, map[string]any{"agents": []any{entry}}); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Writing the gateway's agent status failed")
		return
	}
	a.mu.Lock()
	a.written.agent, a.written.agentAt = &rep, a.opts.Now()
	a.mu.Unlock()
}

package agent

import (
	"context"
	"slices"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// Which replica serves the gateway's Tunnels.
//
// A site's peer must see one gateway, not one per replica: two replicas
// initiating the same Tunnel would each replace the other's IKE_SA (or keep
// two, and the peer's return traffic picks one), and their reports of its
// state would overwrite each other. So the replicas elect one holder
// through a coordination.k8s.io Lease per gateway
// (v1alpha1.TunnelLeaseName); only the holder loads the Tunnels' charon
// connections and writes their status. The others build the same Result
// (pools refused for overlapping a tunnel stay refused everywhere) and
// leave its tunnels out of what they apply.
//
// Takeover bound: a holder that dies (node lost, SIGKILL) stops renewing;
// another replica acquires the Lease at most LeaseDuration after the last
// renewal plus one RetryPeriod (times client-go's jitter, 1.2), then
// applies (Debounce) and charon initiates. With the defaults that is at
// most 15 s + 2.4 s + Debounce + one IKE exchange. A holder that stops on
// purpose releases the Lease, and the next takes over within one
// RetryPeriod.

// LeaseTiming is the Lease's client-go leader-election timing; zero values
// take the defaults.
type LeaseTiming struct {
	// Duration is how long a holder's claim lasts without renewal;
	// RenewDeadline how long the holder keeps trying to renew before it
	// gives up serving; RetryPeriod how often candidates try.
	Duration, RenewDeadline, RetryPeriod time.Duration
}

// Defaults of LeaseTiming, those of controller-runtime's manager election.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

func (l LeaseTiming) withDefaults() LeaseTiming {
	if l.Duration <= 0 {
		l.Duration = DefaultLeaseDuration
	}
	if l.RenewDeadline <= 0 || l.RenewDeadline >= l.Duration {
		l.RenewDeadline = min(DefaultRenewDeadline, l.Duration*2/3)
	}
	if l.RetryPeriod <= 0 || float64(l.RetryPeriod)*leaderelection.JitterFactor >= float64(l.RenewDeadline) {
		l.RetryPeriod = min(DefaultRetryPeriod, l.RenewDeadline/3)
	}
	return l
}

// servesTunnels reports whether this pod serves the gateway's Tunnels: it
// holds the Lease, or it elects nobody (no Leases client: a lone agent).
func (a *Agent) servesTunnels() bool { return a.opts.Leases == nil || a.tunnelsHeld.Load() }

// holdTunnels campaigns for the gateway's tunnel Lease until ctx is done,
// and has the configuration applied again whenever this pod gains or loses it.
func (a *Agent) holdTunnels(ctx context.Context) {
	if a.opts.Leases == nil {
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	timing := a.opts.TunnelLease.withDefaults()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: a.opts.Namespace, Name: v1alpha1.TunnelLeaseName(a.opts.Gateway)},
		Client:     a.opts.Leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.opts.Pod},
		Labels:     map[string]string{v1alpha1.LabelGateway: a.opts.Gateway},
	}
	set := func(ctx context.Context, held bool) {
		if a.tunnelsHeld.Swap(held) != held {
			log.Info("Tunnel lease changed hands", "held", held)
			// Reported with the apply it triggers: the LAN routes the
			// Tunnels' networks to the holder.
			term := int32(0)
			if held {
				term = a.tunnelTerm(ctx, lock.LeaseMeta.Name)
			}
			a.mu.Lock()
			a.report.HoldsTunnels, a.report.TunnelTerm = held, term
			a.mu.Unlock()
			a.Trigger()
		}
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          lock,
			LeaseDuration: timing.Duration, RenewDeadline: timing.RenewDeadline, RetryPeriod: timing.RetryPeriod,
			// A pod that stops on purpose hands the tunnels over at once.
			ReleaseOnCancel: true,
			Name:            lock.LeaseMeta.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) { set(ctx, true) },
				OnStoppedLeading: func() { set(ctx, false) },
			},
		})
		if err != nil {
			log.Error(err, "Tunnel lease election cannot run; this pod serves no Tunnel")
			return
		}
		// Run returns when the lease is lost; campaign again.
		le.Run(ctx)
	}
}

// tunnelTerm is the Lease's leaseTransitions plus one, read once this pod
// holds it (see v1alpha1.AgentStatus.TunnelTerm); 0 when it cannot be read.
func (a *Agent) tunnelTerm(ctx context.Context, name string) int32 {
	l, err := a.opts.Leases.Leases(a.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || l.Spec.LeaseTransitions == nil {
		return 0
	}
	return *l.Spec.LeaseTransitions + 1
}

// withoutTunnels is res less its Tunnels, for a pod that does not hold the
// tunnel Lease: no tunnel connection in charon, nothing to report on them.
func withoutTunnels(res swan.Result) swan.Result {
	res.Model.Connections = slices.DeleteFunc(slices.Clone(res.Model.Connections), func(c swan.Connection) bool {
		return swan.IsTunnelConnection(c.Name)
	})
	res.Tunnels = nil
	return res
}

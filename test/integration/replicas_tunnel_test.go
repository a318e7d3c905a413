package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// takeoverBound is how long the test waits for the other replica to bring
// the Tunnel up after the holder died: the rig's Lease duration (4 s) and
// retry (0.5 s x 1.2 jitter), an apply and an IKE exchange, with a wide
// margin for a loaded 2-core machine. It is a timeout, not the figure; the
// test logs that.
const takeoverBound = 60 * time.Second

// TestTheTunnelMovesToTheOtherReplicaWhenItsHolderDies runs a Tunnel on a
// two-replica gateway: exactly one replica loads and initiates it. Then
// that replica's node dies (its charon is killed, its agent loses the API
// server and stops without handing the Lease over): the other replica
// takes the Lease once it runs out, brings the Tunnel up, traffic passes,
// and the Tunnel's status says Established again, written by the new holder.
func TestTheTunnelMovesToTheOtherReplicaWhenItsHolderDies(t *testing.T) {
	r := newReplicaRig(t, 2, 0, v1alpha1.ReturnPathMasquerade)
	site := r.addSite(t)
	conn := swan.TunnelConnectionName(rigTunnel)

	var holder int
	waitFor(t, recoveryBound, "the tunnel up on one replica", func() (bool, string) {
		for k, nd := range r.nodes {
			if ok, _, _ := tunnelUpOn(t, nd.vici, 0); ok {
				holder = k
				return true, ""
			}
		}
		return false, "no replica has the tunnel up"
	})
	other := r.nodes[1-holder]
	if names, err := connNames(context.Background(), other.vici); err != nil || slices.Contains(names, conn) {
		t.Fatalf("%s holds no Lease but loaded the tunnel (%v): %v", other.pod, err, names)
	}

	r.waitTunnelRoutes(t, r.nodes[holder])

	dead := r.nodes[holder]
	dead.cut.Store(true)
	died := time.Now()
	killNamed(t, dead.ns, "charon-systemd")
	dead.agent.stop(t)
	sa := waitForTunnel(t, other)
	took := time.Since(died)
	if !sa.Initiator {
		t.Errorf("%s did not initiate the tunnel: %+v", other.pod, sa)
	}
	if out, err := site.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", rigSiteHost, other.lanHost); err != nil {
		t.Errorf("Ping through the tunnel on %s: %v\n%s", other.pod, err, out)
	}
	waitFor(t, 30*time.Second, "the Tunnel Established again, by "+other.pod, func() (bool, string) {
		var tn v1alpha1.Tunnel
		r.get(t, rigTunnel, &tn)
		c := meta.FindStatusCondition(tn.Status.Conditions, v1alpha1.ConditionEstablished)
		var owners []string
		for _, mf := range tn.ManagedFields {
			if mf.Subresource == "status" {
				owners = append(owners, mf.Manager)
			}
		}
		return c != nil && c.Status == metav1.ConditionTrue && slices.Contains(owners, v1alpha1.AgentFieldOwner(other.pod)),
			fmt.Sprintf("condition %+v, status owners %v", c, owners)
	})
	// The dead holder's report still claims the Lease, with the older term.
	r.waitTunnelRoutes(t, other)
	t.Logf("Tunnel up on %s %v after %s died (Lease %v, retry %v)", other.pod, took.Round(10*time.Millisecond), dead.pod, rigLease.Duration, rigLease.RetryPeriod)
}

// waitTunnelRoutes waits until the gateway's return routes send the
// Tunnel's remote networks, and nothing else, to nd's node.
func (r *replicaRig) waitTunnelRoutes(t *testing.T, nd *replicaNode) {
	t.Helper()
	waitFor(t, 30*time.Second, "the Tunnel's return routes toward "+nd.pod, func() (bool, string) {
		routes := r.gateway(t).Status.ReturnRoutes
		n := 0
		for _, rt := range routes {
			if rt.Tunnel != rigTunnel || rt.Pod != nd.pod || rt.NextHop != nd.addr {
				return false, fmt.Sprintf("routes %+v", routes)
			}
			n++
		}
		return n > 0, fmt.Sprintf("routes %+v", routes)
	})
}

func waitForTunnel(t *testing.T, nd *replicaNode) (sa vici.IKESA) {
	t.Helper()
	waitFor(t, takeoverBound, "the tunnel up on "+nd.pod, func() (bool, string) {
		ok, got, detail := tunnelUpOn(t, nd.vici, 0)
		sa = got
		return ok, detail
	})
	return sa
}

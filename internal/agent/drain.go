package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// Draining a replica before it stops (rolling update, scale-down, node
// drain): the pod's readiness fails at once, so the Service sends it no new
// client, and every client IKE_SA is redirected (RFC 5685) to another
// current replica, round robin over the node addresses their agents
// report. Clients that support redirect (strongSwan's do, and announce it)
// reconnect there at once instead of waiting for DPD to find the gateway
// gone; the others are left to end with the pod. Both containers' preStop
// hooks wait for the drain (v1alpha1.AgentDrainPath), so charon keeps
// serving until its clients left.

// DefaultDrainTimeout bounds how long a drain waits for the redirected
// clients to leave; the pod's terminationGracePeriodSeconds exceeds it.
const DefaultDrainTimeout = v1alpha1.AgentDrainTimeout

// DrainResult is what a drain did.
type DrainResult struct {
	// Targets are the other replicas' addresses the clients were sent to.
	Targets []string `json:"targets"`
	// Redirected counts the client IKE_SAs redirected, Failed those charon
	// refused to redirect, Left those still on the pod when the drain ended.
	Redirected int `json:"redirected"`
	Failed     int `json:"failed"`
	Left       int `json:"left"`
}

// Drain moves the pod's clients to the other replicas and waits, at most
// timeout, until none is left. Only the first call drains; later and
// concurrent calls (the second container's hook) wait for its result.
func (a *Agent) Drain(ctx context.Context, timeout time.Duration) (DrainResult, error) {
	a.drainOnce.Do(func() {
		a.draining.Store(true)
		// The other replicas send this pod no more clients.
		a.mu.Lock()
		a.report.Draining = true
		a.mu.Unlock()
		a.writeAgentStatus(ctx)
		a.drainRes, a.drainErr = a.drain(ctx, timeout)
		close(a.drained)
	})
	select {
	case <-a.drained:
		return a.drainRes, a.drainErr
	case <-ctx.Done():
		return DrainResult{}, ctx.Err()
	}
}

func (a *Agent) drain(ctx context.Context, timeout time.Duration) (DrainResult, error) {
	log := logr.FromContextOrDiscard(ctx)
	var res DrainResult
	var gw v1alpha1.VPNGateway
	if err := a.opts.Reader.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.Gateway}, &gw); err != nil {
		return res, fmt.Errorf("reading the gateway: %w", err)
	}
	res.Targets = drainTargets(&gw, a.opts.Pod)
	if len(res.Targets) == 0 {
		log.Info("No other replica to move clients to; they stay until the pod stops")
		return res, nil
	}
	sas, err := vici.ListSAs(ctx, a.opts.VICI)
	if err != nil {
		return res, err
	}
	clients := clientSAs(sas)
	for i, sa := range clients {
		to := res.Targets[i%len(res.Targets)]
		if ok, err := vici.Redirect(ctx, a.opts.VICI, sa.UniqueID, to); err != nil || !ok {
			res.Failed++
			log.Info("Client not redirected", "ikeSA", sa.UniqueID, "to", to, "error", fmt.Sprint(err))
			continue
		}
		res.Redirected++
	}
	deadline := time.Now().Add(timeout)
	for {
		sas, err := vici.ListSAs(ctx, a.opts.VICI)
		if err != nil {
			return res, err
		}
		res.Left = len(clientSAs(sas))
		if res.Left == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	log.Info("Drained", "redirected", res.Redirected, "failed", res.Failed, "left", res.Left, "targets", res.Targets)
	return res, nil
}

// clientSAs are the established IKE_SAs clients initiated (not Tunnels).
func clientSAs(sas []vici.IKESA) []vici.IKESA {
	return slices.DeleteFunc(slices.Clone(sas), func(sa vici.IKESA) bool {
		return sa.Initiator || sa.State != "ESTABLISHED" || swan.IsTunnelConnection(sa.Name)
	})
}

// drainTargets are the node addresses of the gateway's other replicas
// that can take clients (otherReplicas), sorted: where pod's clients go.
func drainTargets(gw *v1alpha1.VPNGateway, pod string) []string {
	var out []string
	for _, p := range otherReplicas(gw, pod) {
		if !slices.Contains(out, p.addr) {
			out = append(out, p.addr)
		}
	}
	slices.Sort(out)
	return out
}

// drainHandler serves v1alpha1.AgentDrainPath.
func (a *Agent) drainHandler(w http.ResponseWriter, r *http.Request) {
	log := logr.Discard()
	if l := a.log.Load(); l != nil {
		log = *l
	}
	ctx := logr.NewContext(r.Context(), log)
	res, err := a.Drain(ctx, a.opts.DrainTimeout)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// agentsFieldOwner owns what the gateway's status sums from its agents'
// reports. The agents write a report a few times a minute each; summing
// them is all that needs to follow, so it is a reconciler of its own and the
// gateway's certificates, workload and RBAC are not applied again for it.
const agentsFieldOwner = v1alpha1.ManagerFieldOwner + "-agents"

// phaseConditions are the gateway conditions VPNGatewayReconciler computes;
// GatewayAgentsReconciler reads them for Ready.
var phaseConditions = []string{v1alpha1.ConditionValid, v1alpha1.ConditionCertificateReady, v1alpha1.ConditionWorkloadReady}

// GatewayAgentsReconciler keeps a gateway's status.agents to the pods its
// StatefulSet runs and writes what follows from them: sessions,
// readyReplicas, ConfigApplied and Ready.
type GatewayAgentsReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	told     conditionMemory
}

// Reconcile prunes the reports of pods that are gone, then sums the rest.
func (r *GatewayAgentsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gw := &v1alpha1.VPNGateway{}
	if err := r.Client.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if pruned, err := r.pruneAgents(ctx, gw); err != nil || pruned {
		// The pruning's own event brings the gateway back with the rest.
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.writeSums(ctx, gw)
}

// currentPods are the pods the gateway's StatefulSet runs (ordinals below
// replicas): only their reports count.
func currentPods(gw *v1alpha1.VPNGateway) map[string]bool {
	current := map[string]bool{}
	for _, pod := range podNames(gw) {
		current[pod] = true
	}
	return current
}

// staleAgents are the indexes in gw.Status.Agents of reports from pods the
// StatefulSet does not run (ordinals at or above replicas), last first.
func staleAgents(gw *v1alpha1.VPNGateway) []int {
	current := currentPods(gw)
	var out []int
	for i := len(gw.Status.Agents) - 1; i >= 0; i-- {
		if !current[gw.Status.Agents[i].Pod] {
			out = append(out, i)
		}
	}
	return out
}

// pruneAgents removes the stale reports. Each pod's agent owns its entry
// under its own field owner, which a server-side apply of the manager's
// cannot take away, so this is a JSON patch; its test operations make it
// fail instead of removing another entry if the list moved meanwhile.
func (r *GatewayAgentsReconciler) pruneAgents(ctx context.Context, gw *v1alpha1.VPNGateway) (bool, error) {
	stale := staleAgents(gw)
	if len(stale) == 0 {
		return false, nil
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value,omitempty"`
	}
	var ops []op
	for _, i := range stale {
		p := "/status/agents/" + strconv.Itoa(i)
		ops = append(ops, op{Op: "test", Path: p + "/pod", Value: gw.Status.Agents[i].Pod}, op{Op: "remove", Path: p})
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return false, err
	}
	if err := r.Client.Status().Patch(ctx, gw, client.RawPatch(types.JSONPatchType, data)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("removing the reports of pods gone from VPNGateway %s: %w", gw.Name, err)
	}
	return true, nil
}

// agentsReadyCondition is Ready from the phase conditions the gateway
// reconciler wrote and ConfigApplied (see gatewayReadyCondition). A phase condition of an older
// generation, or none, means that reconciler has not looked at this
// generation yet.
func agentsReadyCondition(gw *v1alpha1.VPNGateway, applied metav1.Condition) metav1.Condition {
	conds := make([]metav1.Condition, 0, len(phaseConditions)+1)
	for _, t := range phaseConditions {
		c := meta.FindStatusCondition(gw.Status.Conditions, t)
		if c == nil || c.ObservedGeneration < gw.Generation {
			return condFalse(v1alpha1.ConditionReady, v1alpha1.ReasonReconciling, fmt.Sprintf("%s: generation %d not reconciled yet", t, gw.Generation))
		}
		conds = append(conds, *c)
	}
	return gatewayReadyCondition(gw, append(conds, applied)...)
}

// writeSums applies sessions, readyReplicas, ConfigApplied and Ready when
// they changed.
func (r *GatewayAgentsReconciler) writeSums(ctx context.Context, gw *v1alpha1.VPNGateway) error {
	applied := configAppliedCondition(gw)
	ready := agentsReadyCondition(gw, applied)
	next := append([]metav1.Condition(nil), gw.Status.Conditions...)
	for _, c := range []metav1.Condition{applied, ready} {
		c.ObservedGeneration = gw.Generation
		announce(r.Recorder, &r.told, gw, gw.Status.Conditions, c)
		meta.SetStatusCondition(&next, c)
	}
	sessions, readyReplicas := currentAgentSums(gw)
	if sessions == gw.Status.Sessions && readyReplicas == gw.Status.ReadyReplicas && equality.Semantic.DeepEqual(next, gw.Status.Conditions) {
		return nil
	}
	out := &v1alpha1.VPNGateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "VPNGateway"},
		ObjectMeta: metav1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace},
		Status: v1alpha1.VPNGatewayStatus{
			Sessions: sessions, ReadyReplicas: readyReplicas,
			Conditions: []metav1.Condition{
				*meta.FindStatusCondition(next, v1alpha1.ConditionConfigApplied),
				*meta.FindStatusCondition(next, v1alpha1.ConditionReady),
			},
		},
	}
	err := applyStatusAs(ctx, r.Client, out, agentsFieldOwner)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// agentInputsChanged passes the gateway updates that change what
// GatewayAgentsReconciler computes from: the reports, the generation (and
// replicas with it), or a phase condition. Its own writes change none of
// them.
func agentInputsChanged() predicate.Funcs {
	phases := func(gw *v1alpha1.VPNGateway) []metav1.Condition {
		var out []metav1.Condition
		for _, t := range phaseConditions {
			if c := meta.FindStatusCondition(gw.Status.Conditions, t); c != nil {
				out = append(out, *c)
			}
		}
		return out
	}
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.VPNGateway)
		n, ok2 := e.ObjectNew.(*v1alpha1.VPNGateway)
		if !ok1 || !ok2 {
			return true
		}
		return o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Status.Agents, n.Status.Agents) ||
			!equality.Semantic.DeepEqual(phases(o), phases(n))
	}}
}

// gatewayObjectChanged passes the gateway updates VPNGatewayReconciler acts
// on: spec (generation), labels, annotations, finalizers and deletion. A
// status write, an agent's report or its own, changes nothing it makes.
func gatewayObjectChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(o.GetFinalizers(), n.GetFinalizers()) ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
			returnRouteInputsChanged(o, n)
	}}
}

// returnRouteInputsChanged: the return routes come from the agents'
// reports of their nodes (next hops), of the tunnel Lease and of static
// addresses held away from their slice's replica, so a pod that starts,
// moves to another node, takes the Tunnels over or holds such a user
// brings the gateway reconciler back; other report changes do not.
func returnRouteInputsChanged(o, n client.Object) bool {
	og, ok1 := o.(*v1alpha1.VPNGateway)
	ng, ok2 := n.(*v1alpha1.VPNGateway)
	if !ok1 || !ok2 {
		return false
	}
	// Exported fields: equality.Semantic cannot compare unexported ones.
	type inputs struct {
		Hop     string
		Tunnels bool
		Term    int32
		Statics []string
	}
	of := func(gw *v1alpha1.VPNGateway) map[string]inputs {
		out := map[string]inputs{}
		for _, a := range gw.Status.Agents {
			out[a.Pod] = inputs{a.NodeAddress, a.HoldsTunnels, a.TunnelTerm, a.ForeignStaticAddresses}
		}
		return out
	}
	return !equality.Semantic.DeepEqual(of(og), of(ng))
}

package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// MembersReconciler reports on the MobilePools, VPNUsers and Tunnels of one
// gateway. It is keyed by the gateway (membersRequest): whether a pool
// overlaps or an identity is taken depends on all members at once, so one
// swan.Build per gateway decides for every member, and each member's status
// is written only when its verdict changed. A fix to one object (or to a
// Secret) therefore clears the conditions of every object it affected. A
// change of one user the build decides alone is reported on that user
// alone.
type MembersReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// StatusWorkers bounds the concurrent status writes of one reconcile.
	StatusWorkers int
	builds        *buildCache
	told          conditionMemory
	walks         walks
}

// member is what the reconciler needs of a pool, user or tunnel.
type member struct {
	kind       string
	obj        client.Object
	generation int64
	conditions []metav1.Condition
	observed   int64
	// status returns an object carrying only the given status, for apply.
	status func(conds []metav1.Condition, observed int64) client.Object
}

func (r *MembersReconciler) Reconcile(ctx context.Context, req membersRequest) (ctrl.Result, error) {
	return r.walks.partOrAll(req.Gateway,
		func() (bool, error) { return r.reportPart(ctx, req) },
		func() (ctrl.Result, error) { return r.reportEvery(ctx, req.Gateway) })
}

// reportEvery reports on every member of the gateway.
func (r *MembersReconciler) reportEvery(ctx context.Context, key types.NamespacedName) (ctrl.Result, error) {
	// Listing before getting the build means every listed member is one
	// the build saw or has pending: a newer member's event comes after.
	pools, users, tunnels, err := listMembers(ctx, r.Client, key, true)
	if err != nil {
		return ctrl.Result{}, err
	}
	b, gw, err := r.buildAndGateway(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reportAll(ctx, b, gw, collectMembers(pools.Items, users.Items, tunnels.Items)); err != nil {
		return ctrl.Result{}, err
	}
	if b.Gateway == nil {
		r.walks.forget(key)
	} else {
		r.walks.done(key, b.epoch)
	}
	if !b.NextExpiry.IsZero() {
		return ctrl.Result{RequeueAfter: max(0, time.Until(b.NextExpiry)) + time.Second}, nil
	}
	return ctrl.Result{}, nil
}

// reportPart reports on what a request of one user, or of pools and
// tunnels only, names, and returns false when the build is one not yet
// reported on in whole: then every member is.
func (r *MembersReconciler) reportPart(ctx context.Context, req membersRequest) (bool, error) {
	if req.User == "" && !req.NoUsers {
		return false, nil
	}
	b, gw, err := r.buildAndGateway(ctx, req.Gateway)
	if err != nil || !r.walks.walked(req.Gateway, b.epoch) {
		return false, err
	}
	if req.User != "" {
		return true, r.reportUser(ctx, b, gw, req)
	}
	pools, _, tunnels, err := listMembers(ctx, r.Client, req.Gateway, false)
	if err != nil {
		return true, err
	}
	return true, r.reportAll(ctx, b, gw, collectMembers(pools.Items, nil, tunnels.Items))
}

// buildAndGateway returns the gateway's build and the gateway as it is now
// (nil when gone): the build holds the gateway as it was when built, and
// Ready follows the gateway's current status, which changes without a new
// build.
func (r *MembersReconciler) buildAndGateway(ctx context.Context, key types.NamespacedName) (*gatewayBuild, *v1alpha1.VPNGateway, error) {
	b, err := r.builds.get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if b.Gateway == nil {
		return b, nil, nil
	}
	gw := &v1alpha1.VPNGateway{}
	if err := r.Client.Get(ctx, key, gw); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, err
		}
		gw = nil
	}
	return b, gw, nil
}

// reportUser reports on the one user the request names, as it is now.
func (r *MembersReconciler) reportUser(ctx context.Context, b *gatewayBuild, gw *v1alpha1.VPNGateway, req membersRequest) error {
	var u v1alpha1.VPNUser
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: req.Gateway.Namespace, Name: req.User}, &u); err != nil {
		return client.IgnoreNotFound(err)
	}
	if u.Spec.GatewayRef.Name != req.Gateway.Name {
		// Its new gateway's request reports it.
		return nil
	}
	return r.report(ctx, b, gw, collectMembers(nil, []v1alpha1.VPNUser{u}, nil)[0])
}

// reportAll reports on the members with StatusWorkers concurrent writes.
func (r *MembersReconciler) reportAll(ctx context.Context, b *gatewayBuild, gw *v1alpha1.VPNGateway, members []member) error {
	work := make(chan member)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range max(1, r.StatusWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := r.report(ctx, b, gw, m); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, m := range members {
		work <- m
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

func (r *MembersReconciler) report(ctx context.Context, b *gatewayBuild, gw *v1alpha1.VPNGateway, m member) error {
	var valid metav1.Condition
	if b.Gateway == nil {
		valid = condFalse(v1alpha1.ConditionValid, v1alpha1.ReasonGatewayNotFound,
			fmt.Sprintf("VPNGateway %s not found in namespace %s", gatewayRefOf(m.obj), m.obj.GetNamespace()))
	} else {
		problems, known := b.problemsOf(objectKey{m.kind, m.obj.GetName()})
		if !known {
			// Its event is on the way, and its own request reports it.
			return nil
		}
		valid = validCondition(problems)
	}
	ready := memberReadyCondition(valid, gw)
	if m.kind == swan.KindTunnel {
		ready = tunnelReadyCondition(ready, m.conditions)
	}

	next := append([]metav1.Condition(nil), m.conditions...)
	for _, c := range []metav1.Condition{valid, ready} {
		c.ObservedGeneration = m.generation
		announce(r.Recorder, &r.told, m.obj, m.conditions, c)
		meta.SetStatusCondition(&next, c)
	}
	// A pool's status also counts its addresses and the leases the agents report.
	pool, isPool := m.obj.(*v1alpha1.MobilePool)
	var counts poolCounts
	if isPool {
		counts = poolCountsFor(pool, gw)
		c := addressesCondition(counts)
		c.ObservedGeneration = m.generation
		announce(r.Recorder, &r.told, m.obj, m.conditions, c)
		meta.SetStatusCondition(&next, c)
	}
	countsSame := !isPool || (pool.Status.Leased == counts.Leased && pool.Status.Size == counts.Size &&
		equality.Semantic.DeepEqual(pool.Status.Replicas, counts.Replicas))
	if m.observed == m.generation && countsSame && equality.Semantic.DeepEqual(m.conditions, next) {
		return nil
	}
	// Only the manager's condition types go out: an agent owns the others
	// (Established of a Tunnel) under its own field owner.
	mine := []metav1.Condition{*meta.FindStatusCondition(next, v1alpha1.ConditionValid), *meta.FindStatusCondition(next, v1alpha1.ConditionReady)}
	if isPool {
		mine = append(mine, *meta.FindStatusCondition(next, v1alpha1.ConditionAddressesAvailable))
	}
	out := m.status(mine, m.generation)
	if p, ok := out.(*v1alpha1.MobilePool); ok {
		p.Status.Leased, p.Status.Size, p.Status.Replicas = counts.Leased, counts.Size, counts.Replicas
	}
	err := applyStatus(ctx, r.Client, out)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func gatewayRefOf(o client.Object) string {
	switch o := o.(type) {
	case *v1alpha1.MobilePool:
		return o.Spec.GatewayRef.Name
	case *v1alpha1.VPNUser:
		return o.Spec.GatewayRef.Name
	case *v1alpha1.Tunnel:
		return o.Spec.GatewayRef.Name
	}
	return ""
}

func collectMembers(pools []v1alpha1.MobilePool, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel) []member {
	var out []member
	typeMeta := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind}
	}
	for i := range pools {
		p := &pools[i]
		out = append(out, member{kind: swan.KindMobilePool, obj: p, generation: p.Generation, conditions: p.Status.Conditions, observed: p.Status.ObservedGeneration,
			status: func(c []metav1.Condition, g int64) client.Object {
				return &v1alpha1.MobilePool{TypeMeta: typeMeta("MobilePool"), ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
					Status: v1alpha1.MobilePoolStatus{Conditions: c, ObservedGeneration: g}}
			}})
	}
	for i := range users {
		u := &users[i]
		out = append(out, member{kind: swan.KindVPNUser, obj: u, generation: u.Generation, conditions: u.Status.Conditions, observed: u.Status.ObservedGeneration,
			status: func(c []metav1.Condition, g int64) client.Object {
				return &v1alpha1.VPNUser{TypeMeta: typeMeta("VPNUser"), ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: u.Namespace},
					Status: v1alpha1.VPNUserStatus{Conditions: c, ObservedGeneration: g}}
			}})
	}
	for i := range tunnels {
		t := &tunnels[i]
		out = append(out, member{kind: swan.KindTunnel, obj: t, generation: t.Generation, conditions: t.Status.Conditions, observed: t.Status.ObservedGeneration,
			status: func(c []metav1.Condition, g int64) client.Object {
				return &v1alpha1.Tunnel{TypeMeta: typeMeta("Tunnel"), ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace},
					Status: v1alpha1.TunnelStatus{Conditions: c, ObservedGeneration: g}}
			}})
	}
	return out
}

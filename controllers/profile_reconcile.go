package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Reconcile delivers the profile of the user the request names, or of
// every user of the gateway (after a whole build, every user's).
func (r *ProfilesReconciler) Reconcile(ctx context.Context, req membersRequest) (ctrl.Result, error) {
	return r.walks.partOrAll(req.Gateway,
		func() (bool, error) { return r.deliverOne(ctx, req) },
		func() (ctrl.Result, error) { return r.deliverEvery(ctx, req.Gateway) })
}

// deliverEvery delivers every user's profile.
func (r *ProfilesReconciler) deliverEvery(ctx context.Context, key types.NamespacedName) (ctrl.Result, error) {
	// As in MembersReconciler: listing first means the build saw every user.
	_, users, _, err := listMembers(ctx, r.Client, key, true)
	if err != nil {
		return ctrl.Result{}, err
	}
	b, err := r.builds.get(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if b.Gateway == nil {
		// The users' Valid says so; their profiles stay as they were.
		r.walks.forget(key)
		return ctrl.Result{}, nil
	}
	work := make(chan *v1alpha1.VPNUser)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range max(1, r.Workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				if err := r.reconcileUser(ctx, b, u); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("VPNUser %s: %w", u.Name, err))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range users.Items {
		work <- &users.Items[i]
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	r.walks.done(key, b.epoch)
	return ctrl.Result{}, nil
}

// deliverOne delivers the profile of the one user a request names, and
// returns false when the build is one not yet delivered in whole.
func (r *ProfilesReconciler) deliverOne(ctx context.Context, req membersRequest) (bool, error) {
	if req.User == "" {
		return false, nil
	}
	b, err := r.builds.get(ctx, req.Gateway)
	if err != nil {
		return false, err
	}
	if b.Gateway == nil {
		return true, nil
	}
	if !r.walks.walked(req.Gateway, b.epoch) {
		return false, nil
	}
	return true, r.deliverTo(ctx, b, req)
}

// deliverTo delivers the one user the request names, as it is now.
func (r *ProfilesReconciler) deliverTo(ctx context.Context, b *gatewayBuild, req membersRequest) error {
	var u v1alpha1.VPNUser
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: req.Gateway.Namespace, Name: req.User}, &u); err != nil {
		return client.IgnoreNotFound(err)
	}
	if u.Spec.GatewayRef.Name != req.Gateway.Name {
		return nil
	}
	if err := r.reconcileUser(ctx, b, &u); err != nil {
		return fmt.Errorf("VPNUser %s: %w", u.Name, err)
	}
	return nil
}

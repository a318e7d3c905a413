package controllers

import (
	"fmt"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// setupMembers registers the members and the profiles controllers. Every
// handler that enqueues records the change with the builds too: handlers
// of one informer run independently, so another controller's record may
// come after this controller's reconcile.
func setupMembers(mgr manager.Manager, o Options, m *mappers, mr *MembersReconciler, pr *ProfilesReconciler) error {
	c := mgr.GetCache()
	// Member events matter to a build only when the spec or the labels
	// (user selectors) changed, or the object came or went; status writes,
	// including the manager's own, do not.
	memberChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})
	kind := func(obj client.Object, h func() handlerOf, preds ...predicate.Predicate) source.TypedSource[membersRequest] {
		return source.TypedKind[client.Object, membersRequest](c, obj, h(), preds...)
	}
	pools := func() handlerOf { return settledFor(o.MemberSettle, m.poolOrTunnelMembers) }
	users := func() handlerOf { return settledFor(o.MemberSettle, m.userMembers) }
	secrets := func() handlerOf { return settledFor(o.MemberSettle, m.secretMembers) }

	if err := builder.TypedControllerManagedBy[membersRequest](mgr).
		Named("members").
		WatchesRawSource(kind(&v1alpha1.VPNGateway{}, func() handlerOf { return m.gatewayMembers(true) })).
		WatchesRawSource(kind(&v1alpha1.MobilePool{}, pools, memberChanged)).
		WatchesRawSource(kind(&v1alpha1.VPNUser{}, users, memberChanged)).
		// A Tunnel's Ready follows its Established condition, which its
		// agent writes.
		WatchesRawSource(kind(&v1alpha1.Tunnel{}, func() handlerOf { return m.tunnelMembers(o.MemberSettle) }, predicate.Or(memberChanged, establishedChanged()))).
		WatchesRawSource(kind(secretMetadata(), secrets)).
		WithOptions(controller.TypedOptions[membersRequest]{MaxConcurrentReconciles: o.MembersConcurrency}).
		Complete(mr); err != nil {
		return fmt.Errorf("members controller: %w", err)
	}

	// The profiles follow the same builds in a controller of their own, so
	// that building thousands of profiles never holds up the members'
	// conditions.
	profileSecrets := func() handlerOf { return settledFor(o.MemberSettle, profileSecretMembers) }
	if err := builder.TypedControllerManagedBy[membersRequest](mgr).
		Named("profiles").
		WatchesRawSource(kind(&v1alpha1.VPNGateway{}, func() handlerOf { return m.gatewayMembers(false) })).
		WatchesRawSource(kind(&v1alpha1.MobilePool{}, pools, memberChanged)).
		WatchesRawSource(kind(&v1alpha1.VPNUser{}, users, memberChanged)).
		WatchesRawSource(kind(&v1alpha1.Tunnel{}, pools, memberChanged)).
		WatchesRawSource(kind(secretMetadata(), secrets)).
		// A profile Secret deleted or edited is written again, and a client
		// certificate issued goes into its user's profile.
		WatchesRawSource(kind(secretMetadata(), profileSecrets)).
		// A client Certificate deleted is made again.
		WatchesRawSource(kind(&cmv1.Certificate{}, profileSecrets)).
		WithOptions(controller.TypedOptions[membersRequest]{MaxConcurrentReconciles: o.MembersConcurrency}).
		Complete(pr); err != nil {
		return fmt.Errorf("profiles controller: %w", err)
	}
	return nil
}

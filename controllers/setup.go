package controllers

import (
	"context"
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Options configure the reconcilers.
type Options struct {
	Images Images
	// Policy is what gateways may ask for; the zero Policy allows the least.
	Policy Policy
	// GatewayConcurrency and MembersConcurrency are the workers of each
	// controller (the credentials controller has MembersConcurrency too);
	// 0 means DefaultGatewayWorkers and DefaultMembersWorkers.
	GatewayConcurrency int
	MembersConcurrency int
	// StatusWorkers bounds concurrent member status writes per gateway; 0
	// means DefaultStatusWorkers.
	StatusWorkers int
	// MemberSettle is how long a gateway's validation waits after a change
	// to one of its pools, users, tunnels or referenced Secrets, counted
	// from the first change, so that a burst of them costs one build of
	// the whole gateway. 0 means DefaultMemberSettle, negative not to wait.
	MemberSettle time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Setup registers the field indexes and both controllers with mgr.
func Setup(ctx context.Context, mgr manager.Manager, o Options) error {
	if o.Images.Charon == "" {
		o.Images.Charon = DefaultCharonImage
	}
	if o.Images.Agent == "" {
		o.Images.Agent = DefaultAgentImage
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MemberSettle == 0 {
		o.MemberSettle = DefaultMemberSettle
	}
	if o.GatewayConcurrency <= 0 {
		o.GatewayConcurrency = DefaultGatewayWorkers
	}
	if o.MembersConcurrency <= 0 {
		o.MembersConcurrency = DefaultMembersWorkers
	}
	if o.StatusWorkers <= 0 {
		o.StatusWorkers = DefaultStatusWorkers
	}
	if err := indexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	// The Secrets' metadata says which exist and when they change; the
	// builds and the credentials read what they hold through secrets.
	secretInformer, err := mgr.GetCache().GetInformer(ctx, secretMetadata())
	if err != nil {
		return fmt.Errorf("Secret informer: %w", err)
	}
	secrets := newSecretReads(mgr.GetClient(), mgr.GetAPIReader())
	// What is known of a deleted Secret goes with it.
	if _, err := secretInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			secrets.forget(types.NamespacedName{Namespace: m.Namespace, Name: m.Name})
		}
	}}); err != nil {
		return fmt.Errorf("watching Secret deletions: %w", err)
	}
	builds := newBuildCache(mgr.GetClient(), o.Now, secrets)
	gwr := &VPNGatewayReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("ikegate-manager"), Images: o.Images, Policy: o.Policy, Now: o.Now, builds: builds}
	mr := &MembersReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("ikegate-manager"), StatusWorkers: o.StatusWorkers, builds: builds}
	pr := &ProfilesReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("ikegate-manager"), Workers: DefaultProfileWorkers, Now: o.Now, builds: builds}
	m := &mappers{c: mgr.GetClient(), builds: builds, policy: o.Policy}

	// Member events matter to a build only when the spec or the labels
	// (user selectors) changed, or the object came or went; status writes,
	// including the manager's own, do not.
	memberChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})

	err = ctrl.NewControllerManagedBy(mgr).
		Named("vpngateway").
		For(&v1alpha1.VPNGateway{}, builder.WithPredicates(m.invalidateOnGatewayChange(), gatewayObjectChanged())).
		Owns(&appsv1.StatefulSet{}).
		Owns(&cmv1.Certificate{}).
		Owns(&cmv1.Issuer{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&rbacv1.Role{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&v1alpha1.MobilePool{}, settled(o.MemberSettle, m.memberToGateway), builder.WithPredicates(memberChanged)).
		Watches(&v1alpha1.VPNUser{}, settled(o.MemberSettle, m.userToGateway), builder.WithPredicates(memberChanged)).
		Watches(&v1alpha1.Tunnel{}, settled(o.MemberSettle, m.memberToGateway), builder.WithPredicates(memberChanged)).
		WatchesMetadata(&corev1.Secret{}, settled(o.MemberSettle, m.secretToGateways)).
		Watches(&cmv1.Issuer{}, handler.EnqueueRequestsFromMapFunc(m.issuerToGateways)).
		Watches(&cmv1.ClusterIssuer{}, handler.EnqueueRequestsFromMapFunc(m.issuerToGateways)).
		WatchesMetadata(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(m.nodeToGateways), builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, createOrDelete()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.GatewayConcurrency}).
		Complete(gwr)
	if err != nil {
		return fmt.Errorf("vpngateway controller: %w", err)
	}

	ar := &GatewayAgentsReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("ikegate-manager")}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("gatewayagents").
		For(&v1alpha1.VPNGateway{}, builder.WithPredicates(agentInputsChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.GatewayConcurrency}).
		Complete(ar); err != nil {
		return fmt.Errorf("gateway agents controller: %w", err)
	}

	if err := setupMembers(mgr, o, m, mr, pr); err != nil {
		return err
	}

	cr := &CredentialsReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), secrets: secrets}
	if err := setupCredentials(mgr, cr, o.MembersConcurrency); err != nil {
		return fmt.Errorf("credentials controller: %w", err)
	}
	return nil
}

// The manager's default workers.
const (
	DefaultGatewayWorkers = 2
	DefaultMembersWorkers = 2
	DefaultStatusWorkers  = 16
	// DefaultProfileWorkers build and write users' profiles concurrently.
	// Building one user's five profiles takes milliseconds of CPU and about
	// 2 MB of allocations (BenchmarkProfileContent), and its Secret write
	// waits for the API server: enough workers to keep writes in flight,
	// not so many that their allocations pile up (32 workers held 39 KiB
	// per user during a cold start of 2,000 users, 4 held 13 KiB).
	DefaultProfileWorkers = 8
)

// DefaultMemberSettle is Options.MemberSettle's default: a user's
// conditions follow its change by about this much, and a bulk import of
// thousands of users builds the gateway a few times a second instead of
// once per user. The credentials a new user's agent waits for do not wait.
const DefaultMemberSettle = 200 * time.Millisecond

// settled enqueues the gateways fn maps an object to after settle (see
// settledFor).
func settled(settle time.Duration, fn handler.MapFunc) handler.EventHandler {
	return settledFor(settle, func(ctx context.Context, o client.Object) []reconcile.Request { return fn(ctx, o) })
}

func createOrDelete() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
}

// mappers turn events on other objects into the gateways they concern, and
// invalidate those gateways' builds on the way: handlers run after the
// informer cache holds the change, so the next build sees it.
type mappers struct {
	c client.Reader
	// builds is nil for a controller that does not read them.
	builds *buildCache
	// policy adds to every gateway's node selector.
	policy Policy
}

func (m *mappers) invalidateOnGatewayChange() predicate.Funcs {
	inv := func(o client.Object) { m.builds.invalidate(client.ObjectKeyFromObject(o)) }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { inv(e.Object); return true },
		DeleteFunc: func(e event.DeleteEvent) bool { inv(e.Object); return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() {
				inv(e.ObjectNew)
			}
			return true
		},
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

func (m *mappers) memberToGateway(_ context.Context, o client.Object) []reconcile.Request {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: gatewayRefOf(o)}
	m.builds.invalidate(key)
	return []reconcile.Request{{NamespacedName: key}}
}

// userToGateway records the user's change with its gateway's build, which
// decides it alone when it can.
func (m *mappers) userToGateway(_ context.Context, o client.Object) []reconcile.Request {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: gatewayRefOf(o)}
	m.builds.userChanged(key, o.GetName())
	return []reconcile.Request{{NamespacedName: key}}
}

// secretToGateways finds the gateways whose build reads the Secret (see
// secretMembers).
func (m *mappers) secretToGateways(ctx context.Context, o client.Object) []reconcile.Request {
	set := map[types.NamespacedName]struct{}{}
	for _, r := range m.secretMembers(ctx, o) {
		set[r.Gateway] = struct{}{}
	}
	out := make([]reconcile.Request, 0, len(set))
	for k := range set {
		out = append(out, reconcile.Request{NamespacedName: k})
	}
	return out
}

// issuerToGateways finds the gateways whose issuerRef names the issuer.
func (m *mappers) issuerToGateways(ctx context.Context, o client.Object) []reconcile.Request {
	kind := cmv1.IssuerKind
	var opts []client.ListOption
	if o.GetNamespace() == "" {
		kind = cmv1.ClusterIssuerKind
	} else {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	var gws v1alpha1.VPNGatewayList
	if err := m.c.List(ctx, &gws, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, g := range gws.Items {
		ref := issuerRef(&g)
		if ref.Name == o.GetName() && ref.Kind == kind {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
		}
	}
	return out
}

// nodeToGateways wakes the gateways with a node selector (theirs or the
// policy's) when nodes come, go or change labels.
func (m *mappers) nodeToGateways(ctx context.Context, _ client.Object) []reconcile.Request {
	var gws v1alpha1.VPNGatewayList
	if err := m.c.List(ctx, &gws, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, g := range gws.Items {
		if len(m.policy.nodeSelector(&g)) > 0 {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
		}
	}
	return out
}

// establishedChanged passes the updates that change a Tunnel's Established
// condition's status, and nothing else of its status.
func establishedChanged() predicate.Predicate {
	status := func(o client.Object) metav1.ConditionStatus {
		t, ok := o.(*v1alpha1.Tunnel)
		if !ok {
			return ""
		}
		if c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.ConditionEstablished); c != nil {
			return c.Status
		}
		return ""
	}
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { return status(e.ObjectOld) != status(e.ObjectNew) },
	}
}

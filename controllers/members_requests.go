package controllers

import (
	"context"
	"maps"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// membersRequest is what the members and profiles controllers reconcile:
// every member of a gateway, or one user of it. A user's change is decided
// alone by the gateway's build (applyUsers) and touches no other member,
// so only that user is reported; a whole build decides every member anew,
// and the first reconcile after it reports them all (walks).
type membersRequest struct {
	Gateway types.NamespacedName
	// User names the one user to report, "" for every member.
	User string
	// NoUsers leaves the users out of a report on every member: the
	// gateway's status changed in a way no user's conditions follow.
	NoUsers bool
}

func (r membersRequest) String() string {
	s := r.Gateway.String()
	if r.User != "" {
		s += "/user:" + r.User
	}
	if r.NoUsers {
		s += "#nousers"
	}
	return s
}

func allMembers(gw types.NamespacedName) []membersRequest {
	return []membersRequest{{Gateway: gw}}
}

// walks remembers the build epoch each gateway's members were last all
// reported on, and serialises those reports: the requests of single users
// are keys of their own, so without it several workers would each report
// on every member after the same whole build (a start queues every user).
type walks struct {
	mu      sync.Mutex
	epoch   map[types.NamespacedName]uint64
	walking map[types.NamespacedName]*sync.Mutex
}

// lock holds off other reports on every member of the gateway until
// unlock.
func (w *walks) lock(gw types.NamespacedName) (unlock func()) {
	w.mu.Lock()
	if w.walking == nil {
		w.walking = map[types.NamespacedName]*sync.Mutex{}
	}
	l := w.walking[gw]
	if l == nil {
		l = &sync.Mutex{}
		w.walking[gw] = l
	}
	w.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// partOrAll runs part, the work of a request of one user (or of pools and
// tunnels only), and where part finds a build not yet gone through in
// whole, every runs instead: one at a time per gateway, and part is tried
// again once it may go, as a walk may have ended meanwhile.
func (w *walks) partOrAll(gw types.NamespacedName, part func() (bool, error), every func() (ctrl.Result, error)) (ctrl.Result, error) {
	if done, err := part(); done || err != nil {
		return ctrl.Result{}, err
	}
	defer w.lock(gw)()
	if done, err := part(); done || err != nil {
		return ctrl.Result{}, err
	}
	return every()
}

func (w *walks) done(gw types.NamespacedName, epoch uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.epoch == nil {
		w.epoch = map[types.NamespacedName]uint64{}
	}
	w.epoch[gw] = epoch
}

func (w *walks) walked(gw types.NamespacedName, epoch uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.epoch[gw] == epoch
}

func (w *walks) forget(gw types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.epoch, gw)
}

// settledFor enqueues the requests fn maps an object to after settle (the
// queue keeps the earliest time of a request already waiting, so a steady
// stream of changes cannot put it off for ever). An update maps the old
// object and the new, so a member moved to another gateway is reported
// on both.
func settledFor[R comparable](settle time.Duration, fn func(context.Context, client.Object) []R) handler.TypedEventHandler[client.Object, R] {
	type queue = workqueue.TypedRateLimitingInterface[R]
	add := func(ctx context.Context, q queue, o client.Object) {
		for _, r := range fn(ctx, o) {
			if settle > 0 {
				q.AddAfter(r, settle)
			} else {
				q.Add(r)
			}
		}
	}
	return handler.TypedFuncs[client.Object, R]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q queue) { add(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q queue) {
			if gatewayRefOf(e.ObjectOld) != gatewayRefOf(e.ObjectNew) {
				add(ctx, q, e.ObjectOld)
			}
			add(ctx, q, e.ObjectNew)
		},
		DeleteFunc:  func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q queue) { add(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[client.Object], q queue) { add(ctx, q, e.Object) },
	}
}

// gatewayMembers is the members controller's handler of gateway events: a
// new spec builds the gateway anew and reports every member; a status
// change reports every member when it changes whether the gateway serves
// clients (every member's Ready follows that), otherwise only the pools
// (their counts follow the agents' leases) and tunnels. The profiles
// controller passes status alone false: no profile follows the status.
func (m *mappers) gatewayMembers(statusToo bool) handler.TypedEventHandler[client.Object, membersRequest] {
	type queue = workqueue.TypedRateLimitingInterface[membersRequest]
	whole := func(q queue, o client.Object) {
		key := client.ObjectKeyFromObject(o)
		m.builds.invalidate(key)
		q.Add(membersRequest{Gateway: key})
	}
	return handler.TypedFuncs[client.Object, membersRequest]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q queue) { whole(q, e.Object) },
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q queue) { whole(q, e.Object) },
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], q queue) {
			key := client.ObjectKeyFromObject(e.ObjectNew)
			switch {
			case e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration():
				whole(q, e.ObjectNew)
			case !statusToo:
			case servingOf(e.ObjectOld) != servingOf(e.ObjectNew):
				q.Add(membersRequest{Gateway: key})
			default:
				q.Add(membersRequest{Gateway: key, NoUsers: true})
			}
		},
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[client.Object], q queue) {
			q.Add(membersRequest{Gateway: client.ObjectKeyFromObject(e.Object)})
		},
	}
}

// servingOf is what a member's Ready reads of its gateway's status.
func servingOf(o client.Object) bool {
	gw, ok := o.(*v1alpha1.VPNGateway)
	if !ok {
		return false
	}
	return memberReadyCondition(metav1.Condition{Status: metav1.ConditionTrue}, gw).Status == metav1.ConditionTrue
}

// poolOrTunnelMembers builds the member's gateway anew and reports every
// member of it.
func (m *mappers) poolOrTunnelMembers(_ context.Context, o client.Object) []membersRequest {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: gatewayRefOf(o)}
	m.builds.invalidate(key)
	return allMembers(key)
}

// tunnelMembers is poolOrTunnelMembers for a Tunnel, except that a change of
// its status alone (its agent's Established) needs no build, and no user
// follows it.
func (m *mappers) tunnelMembers(settle time.Duration) handler.TypedEventHandler[client.Object, membersRequest] {
	whole := settledFor(settle, m.poolOrTunnelMembers)
	return handler.TypedFuncs[client.Object, membersRequest]{
		CreateFunc: whole.Create,
		DeleteFunc: whole.Delete,
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[membersRequest]) {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() || !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) {
				whole.Update(ctx, e, q)
				return
			}
			q.Add(membersRequest{Gateway: types.NamespacedName{Namespace: e.ObjectNew.GetNamespace(), Name: gatewayRefOf(e.ObjectNew)}, NoUsers: true})
		},
		GenericFunc: whole.Generic,
	}
}

// userMembers records the user's change with its gateway's build and asks
// for that user's report.
func (m *mappers) userMembers(_ context.Context, o client.Object) []membersRequest {
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: gatewayRefOf(o)}
	return []membersRequest{m.userRequest(key, o.GetName())}
}

// userRequest records a user's change and asks for its report; in a burst
// of more changes than a build decides one by one (a start, a bulk import)
// it asks for the report on every member instead, which that build needs
// anyway. A request of one user is a key of the queues' own: the queues'
// maps keep the room for as many keys as they once held, so a key per user
// of a start would stay in memory as long as the manager runs.
func (m *mappers) userRequest(gw types.NamespacedName, name string) membersRequest {
	if m.builds.userChanged(gw, name) > maxUserChanges {
		return membersRequest{Gateway: gw}
	}
	return membersRequest{Gateway: gw, User: name}
}

// secretMembers finds what a Secret's change concerns: a gateway whose own
// or whose tunnels' references name it, or whose certificate it holds
// (labelled with its name), is built anew; a user whose password it holds is decided alone.
func (m *mappers) secretMembers(ctx context.Context, o client.Object) []membersRequest {
	whole, users := secretReferrers(ctx, m.c, o)
	if gw := o.GetLabels()[v1alpha1.LabelGateway]; gw != "" {
		// The credentials Secrets are written from the members and read
		// by no build: the credentials controller watches them itself.
		if credentials.IsShard(gw, o.GetName()) {
			return nil
		}
		// The gateway's certificate.
		whole = append(whole, types.NamespacedName{Namespace: o.GetNamespace(), Name: gw})
	}
	var out []membersRequest
	for _, gw := range whole {
		m.builds.invalidate(gw)
		out = append(out, membersRequest{Gateway: gw})
	}
	for _, u := range users {
		out = append(out, m.userRequest(u.gateway, u.name))
	}
	return out
}

// profileSecretMembers asks for the report on the user whose profile or
// client certificate (Secret or Certificate) changed, or on every user of
// its gateway when it names no user. No build reads them, so the build
// stays valid.
func profileSecretMembers(_ context.Context, o client.Object) []membersRequest {
	for _, l := range []string{labelProfileOf, labelClientCertOf} {
		gw := o.GetLabels()[l]
		if gw == "" {
			continue
		}
		key := types.NamespacedName{Namespace: o.GetNamespace(), Name: gw}
		if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "VPNUser" {
			return []membersRequest{{Gateway: key, User: ref.Name}}
		}
		return allMembers(key)
	}
	return nil
}

// handlerOf is the handler the members and profiles controllers take.
type handlerOf = handler.TypedEventHandler[client.Object, membersRequest]

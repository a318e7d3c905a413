package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// objects holds the objects of one kind as the informer delivered them,
// keyed by name. They are the informer's own objects: nobody may modify
// them. Listing through the cache's reader copies every object into a
// typed list by reflection, which at 10,000 users cost as much as building
// the whole charon model; the agent only ever reads.
type objects[T client.Object] struct {
	mu sync.RWMutex
	m  map[string]T
	// onSet and onRemove keep indexes of the objects current, each in turn.
	onSet    []func(T)
	onRemove []func(T)
}

func newObjects[T client.Object]() *objects[T] { return &objects[T]{m: map[string]T{}} }

func (s *objects[T]) set(o T) {
	s.mu.Lock()
	s.m[o.GetName()] = o
	s.mu.Unlock()
	for _, f := range s.onSet {
		f(o)
	}
}

// remove forgets a deleted object and returns it.
func (s *objects[T]) remove(obj any) (T, bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, ok := obj.(T)
	if !ok {
		return o, false
	}
	s.mu.Lock()
	delete(s.m, o.GetName())
	s.mu.Unlock()
	for _, f := range s.onRemove {
		f(o)
	}
	return o, true
}

func (s *objects[T]) list() []T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]T, 0, len(s.m))
	for _, o := range s.m {
		out = append(out, o)
	}
	return out
}

func (s *objects[T]) get(name string) (T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.m[name]
	return o, ok
}

// handler keeps the store current and then calls changed with the name of
// the object, so that an apply started by it sees the change.
func (s *objects[T]) handler(changed func(name string)) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			name := ""
			if o, ok := obj.(T); ok {
				s.set(o)
				name = o.GetName()
			}
			changed(name)
		},
		UpdateFunc: func(oldObj, newObj any) {
			name := ""
			if o, ok := newObj.(T); ok {
				s.set(o)
				name = o.GetName()
			}
			onUpdate(oldObj, newObj, func() { changed(name) })
		},
		DeleteFunc: func(obj any) {
			name := ""
			if o, ok := s.remove(obj); ok {
				name = o.GetName()
			}
			changed(name)
		},
	}
}

// stores are the agent's views of its informers.
type stores struct {
	gateways *objects[*v1alpha1.VPNGateway]
	pools    *objects[*v1alpha1.MobilePool]
	users    *objects[*v1alpha1.VPNUser]
	tunnels  *objects[*v1alpha1.Tunnel]
	// secrets are the credentials shards and the certificate Secret: the informers
	// hold no other, so every change of one counts.
	secrets *objects[*corev1.Secret]
	// pending are the password hashes on their way; nil when nobody awaits
	// them (see awaitHashes).
	pending *pendingHashes
	// index finds the users an SA listing concerns; nil until indexUsers.
	index *userIndex
}

// indexUsers keeps an index of the gateway's users (userIndex) as the
// users' informer delivers them.
func (st *stores) indexUsers(gateway, pod string) {
	st.index = newUserIndex(gateway, pod)
	st.users.onSet = append(st.users.onSet, st.index.set)
	st.users.onRemove = append(st.users.onRemove, st.index.remove)
}

func newStores() *stores {
	return &stores{
		gateways: newObjects[*v1alpha1.VPNGateway](),
		pools:    newObjects[*v1alpha1.MobilePool](),
		users:    newObjects[*v1alpha1.VPNUser](),
		tunnels:  newObjects[*v1alpha1.Tunnel](),
		secrets:  newObjects[*corev1.Secret](),
	}
}

// triggers are what the stores' handlers call on a change: a user's and a
// Secret's name the apply loop, which may then decide single users'
// changes alone; anything else asks for a whole apply.
type triggers struct {
	other        func()
	user, secret func(name string)
}

// watch registers the stores' handlers on the informers of c and of
// secretCaches (one Secret each) and returns once every handler has
// seen the informers' initial lists, so that the first apply never works
// from a partial view (which would unload users).
func (st *stores) watch(ctx context.Context, c cache.Cache, secretCaches []cache.Cache, t triggers) (func(context.Context) error, error) {
	other := func(string) { t.other() }
	regs := []struct {
		c   cache.Cache
		obj client.Object
		h   toolscache.ResourceEventHandler
	}{
		{c, &v1alpha1.VPNGateway{}, st.gateways.handler(other)},
		{c, &v1alpha1.MobilePool{}, st.pools.handler(other)},
		{c, &v1alpha1.VPNUser{}, st.users.handler(t.user)},
		{c, &v1alpha1.Tunnel{}, st.tunnels.handler(other)},
	}
	for _, sc := range secretCaches {
		regs = append(regs, struct {
			c   cache.Cache
			obj client.Object
			h   toolscache.ResourceEventHandler
		}{sc, &corev1.Secret{}, st.secrets.handler(t.secret)})
	}
	var synced []toolscache.ResourceEventHandlerRegistration
	for _, r := range regs {
		inf, err := r.c.GetInformer(ctx, r.obj)
		if err != nil {
			return nil, fmt.Errorf("informer for %T: %w", r.obj, err)
		}
		reg, err := inf.AddEventHandler(r.h)
		if err != nil {
			return nil, fmt.Errorf("watching %T: %w", r.obj, err)
		}
		synced = append(synced, reg)
	}
	wait := func(ctx context.Context) error {
		for _, reg := range synced {
			for !reg.HasSynced() {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		return nil
	}
	return wait, nil
}

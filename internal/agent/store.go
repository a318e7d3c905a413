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
	// onSet and onRemove keep indexes of the objects current.
	onSet    func(T)
	onRemove func(T)
}

func newObjects[T client.Object]() *objects[T] { return &objects[T]{m: map[string]T{}} }

func (s *objects[T]) set(o T) {
	s.mu.Lock()
	s.m[o.GetName()] = o
	s.mu.Unlock()
	if s.onSet != nil {
		s.onSet(o)
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
	if s.onRemove != nil {
		s.onRemove(o)
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

// handler keeps the store current and then calls trigger, so that an apply
// started by the trigger sees the change.
func (s *objects[T]) handler(trigger func()) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				s.set(o)
			}
			trigger()
		},
		UpdateFunc: func(oldObj, newObj any) {
			if o, ok := newObj.(T); ok {
				s.set(o)
			}
			onUpdate(oldObj, newObj, trigger)
		},
		DeleteFunc: func(obj any) {
			s.remove(obj)
			trigger()
		},
	}
}

// secretHandler keeps the Secret store current but calls trigger only for
// Secrets the gateway's objects reference: a namespace has Secrets of all
// kinds (tokens, other applications' certificates), and each change would
// otherwise rebuild a configuration of up to 10,000 users for nothing. A
// Secret that a new object is about to reference needs no trigger either:
// the object's own event causes the apply, which reads the Secret store.
func secretHandler(s *objects[*corev1.Secret], referenced func(name string) bool, trigger func()) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(*corev1.Secret); ok {
				s.set(o)
				if referenced(o.Name) {
					trigger()
				}
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok := newObj.(*corev1.Secret)
			if !ok {
				return
			}
			s.set(o)
			if referenced(o.Name) {
				onUpdate(oldObj, newObj, trigger)
			}
		},
		DeleteFunc: func(obj any) {
			if o, ok := s.remove(obj); ok && referenced(o.Name) {
				trigger()
			}
		},
	}
}

// secretRefs counts the VPNUsers that reference each Secret; there may be
// tens of thousands of users, so looking through them per Secret event is
// no option.
type secretRefs struct {
	mu     sync.Mutex
	byUser map[string]string
	count  map[string]int
}

func newSecretRefs() *secretRefs {
	return &secretRefs{byUser: map[string]string{}, count: map[string]int{}}
}

func (r *secretRefs) set(u *v1alpha1.VPNUser) {
	secret := ""
	if ref := u.Spec.PasswordSecretRef; ref != nil {
		secret = ref.Name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byUser[u.Name]; ok {
		if old == secret {
			return
		}
		r.drop(old)
	}
	r.byUser[u.Name] = secret
	if secret != "" {
		r.count[secret]++
	}
}

func (r *secretRefs) remove(u *v1alpha1.VPNUser) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byUser[u.Name]; ok {
		r.drop(old)
		delete(r.byUser, u.Name)
	}
}

// drop releases one reference; r.mu must be held.
func (r *secretRefs) drop(secret string) {
	if secret == "" {
		return
	}
	if r.count[secret]--; r.count[secret] <= 0 {
		delete(r.count, secret)
	}
}

func (r *secretRefs) has(secret string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[secret] > 0
}

// stores are the agent's views of its informers.
type stores struct {
	gateways *objects[*v1alpha1.VPNGateway]
	pools    *objects[*v1alpha1.MobilePool]
	users    *objects[*v1alpha1.VPNUser]
	tunnels  *objects[*v1alpha1.Tunnel]
	secrets  *objects[*corev1.Secret]
	userRefs *secretRefs
	// certSecret overrides the gateway's status.certificateSecretName.
	certSecret string
}

func newStores(certSecret string) *stores {
	st := &stores{
		gateways:   newObjects[*v1alpha1.VPNGateway](),
		pools:      newObjects[*v1alpha1.MobilePool](),
		users:      newObjects[*v1alpha1.VPNUser](),
		tunnels:    newObjects[*v1alpha1.Tunnel](),
		secrets:    newObjects[*corev1.Secret](),
		userRefs:   newSecretRefs(),
		certSecret: certSecret,
	}
	st.users.onSet, st.users.onRemove = st.userRefs.set, st.userRefs.remove
	return st
}

// referenced reports whether any of the gateway's objects names the Secret.
// Gateways and tunnels are few and are looked through; users are indexed.
func (st *stores) referenced(name string) bool {
	if name == st.certSecret || st.userRefs.has(name) {
		return true
	}
	for _, gw := range st.gateways.list() {
		if gw.Status.CertificateSecretName == name {
			return true
		}
		if ca := gw.Spec.ClientAuth.ClientCA; ca != nil && ca.Name == name {
			return true
		}
		if r := gw.Spec.ClientAuth.RADIUS; r != nil {
			for _, srv := range r.Servers {
				if srv.SecretRef.Name == name {
					return true
				}
			}
		}
	}
	for _, t := range st.tunnels.list() {
		if p := t.Spec.Auth.PSK; p != nil && p.SecretRef.Name == name {
			return true
		}
		if c := t.Spec.Auth.Certificate; c != nil && c.PeerCARef.Name == name {
			return true
		}
	}
	return false
}

// watch registers the stores' handlers on c's informers and returns once
// every handler has seen the informers' initial lists, so that the first
// apply never works from a partial view (which would unload users).
func (st *stores) watch(ctx context.Context, c cache.Cache, trigger func()) (func(context.Context) error, error) {
	regs := []struct {
		obj client.Object
		h   toolscache.ResourceEventHandler
	}{
		{&v1alpha1.VPNGateway{}, st.gateways.handler(trigger)},
		{&v1alpha1.MobilePool{}, st.pools.handler(trigger)},
		{&v1alpha1.VPNUser{}, st.users.handler(trigger)},
		{&v1alpha1.Tunnel{}, st.tunnels.handler(trigger)},
		{&corev1.Secret{}, secretHandler(st.secrets, st.referenced, trigger)},
	}
	var synced []toolscache.ResourceEventHandlerRegistration
	for _, r := range regs {
		inf, err := c.GetInformer(ctx, r.obj)
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

package agent

import (
	"sync"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// userIndex finds, without a pass over every user, the users a listing of
// charon's SAs may change the status of: the gateway's users by identity,
// and those whose status lists sessions of this pod. At 100,000 users a
// pass over all of them on every listing (one per burst of SA events, and
// every SAInterval) cost more CPU than the logins it reported.
type userIndex struct {
	gateway, pod string

	mu sync.Mutex
	// byIdentity are the names of the gateway's users by identity (more
	// than one only while a duplicate is being refused).
	byIdentity map[string][]string
	// identityOf is what byIdentity holds each name under.
	identityOf map[string]string
	// holding are the users whose status lists a session of this pod.
	holding map[string]bool
}

func newUserIndex(gateway, pod string) *userIndex {
	return &userIndex{gateway: gateway, pod: pod, byIdentity: map[string][]string{}, identityOf: map[string]string{}, holding: map[string]bool{}}
}

// set indexes u as the informer delivered it.
func (x *userIndex) set(u *v1alpha1.VPNUser) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unindex(u.Name)
	if u.Spec.GatewayRef.Name != x.gateway {
		return
	}
	id := string(u.Spec.Identity)
	x.identityOf[u.Name] = id
	x.byIdentity[id] = append(x.byIdentity[id], u.Name)
	for _, s := range u.Status.Sessions {
		if s.Pod == x.pod {
			x.holding[u.Name] = true
			break
		}
	}
}

// remove forgets a deleted user.
func (x *userIndex) remove(u *v1alpha1.VPNUser) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unindex(u.Name)
}

// unindex drops name from the index; x.mu must be held.
func (x *userIndex) unindex(name string) {
	delete(x.holding, name)
	id, ok := x.identityOf[name]
	if !ok {
		return
	}
	delete(x.identityOf, name)
	names := x.byIdentity[id]
	for i, n := range names {
		if n == name {
			names = append(names[:i], names[i+1:]...)
			break
		}
	}
	if len(names) == 0 {
		delete(x.byIdentity, id)
	} else {
		x.byIdentity[id] = names
	}
}

// candidates are the names of the users with an identity of identities,
// and of those whose status lists this pod's sessions, added to names.
func (x *userIndex) candidates(identities map[string][]v1alpha1.Session, names map[string]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id := range identities {
		for _, n := range x.byIdentity[id] {
			names[n] = true
		}
	}
	for n := range x.holding {
		names[n] = true
	}
}

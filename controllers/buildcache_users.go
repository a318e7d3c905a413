package controllers

import (
	"context"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// maxUserChanges is the most user changes a build takes one by one; a
// larger batch (a bulk import, a restart) builds the whole gateway, which
// costs about as much as a few thousand changes.
const maxUserChanges = 512

// buildEpochs numbers the whole builds, so that a reconciler tells a build
// it has reported on from a newer one.
var buildEpochs atomic.Uint64

// userVerdicts is what a build decided of each user of a gateway whose
// users the agent's RADIUS server checks (swan.UserIndex), kept current by
// changes of single users between whole builds. The reconcilers read it
// while a change updates it, hence the lock.
type userVerdicts struct {
	mu    sync.RWMutex
	index *swan.UserIndex
}

// problemsOf returns the build's problems of an object, and false for a
// user the build has not decided yet (its event is on the way).
func (b *gatewayBuild) problemsOf(k objectKey) ([]swan.Problem, bool) {
	if b.verdicts == nil || k.Kind != swan.KindVPNUser {
		return b.Problems[k], true
	}
	b.verdicts.mu.RLock()
	defer b.verdicts.mu.RUnlock()
	_, p, known := b.verdicts.index.User(k.Name)
	return p, known
}

// acceptedUser returns the user's entry among the served users, nil when it
// is not served, and false when the build has not decided it yet.
func (b *gatewayBuild) acceptedUser(name string) (*swan.AcceptedUser, bool) {
	if b.Result == nil {
		return nil, true
	}
	if b.verdicts == nil {
		return b.Result.ServedUser(name), true
	}
	b.verdicts.mu.RLock()
	defer b.verdicts.mu.RUnlock()
	a, _, known := b.verdicts.index.User(name)
	return a, known
}

// userChanged records that the user named name of gateway gw changed (or
// its password Secret did): the next get decides it alone when it can. It
// returns how many users of the gateway are waiting so.
func (b *buildCache) userChanged(gw types.NamespacedName, name string) int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.pending[gw]
	if set == nil {
		set = map[string]struct{}{}
		b.pending[gw] = set
	}
	set[name] = struct{}{}
	return len(set)
}

// takePending returns the gateway's generation and the users changed since
// the last get, and forgets those.
func (b *buildCache) takePending(gw types.NamespacedName) (uint64, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.pending[gw]))
	for n := range b.pending[gw] {
		names = append(names, n)
	}
	delete(b.pending, gw)
	return b.gens[gw], names
}

// applyUsers decides the named users of build b one by one through its
// index, and reports false when one of them needs a whole build (the
// caller then builds; what was applied so far is superseded by it).
func (b *buildCache) applyUsers(ctx context.Context, key types.NamespacedName, build *gatewayBuild, names []string) bool {
	if build.verdicts == nil || build.Gateway == nil || len(names) > maxUserChanges {
		return false
	}
	now := b.now()
	users := make([]*v1alpha1.VPNUser, len(names))
	var uses []secretUse
	for i, name := range names {
		u, ok := b.currentUser(ctx, key, name)
		if !ok {
			return false
		}
		// An expiry sooner than the build's next one would need the build
		// to wake earlier than it does.
		if u != nil && u.Spec.ExpiresAt != nil && now.Before(u.Spec.ExpiresAt.Time) &&
			(build.NextExpiry.IsZero() || u.Spec.ExpiresAt.Time.Before(build.NextExpiry)) {
			return false
		}
		if u != nil {
			uses = append(uses, userSecretUses(u)...)
		}
		users[i] = u
	}
	// One read for all of them: a batch of many stale Secrets is listed.
	vals, err := b.secrets.read(ctx, key.Namespace, uses)
	if err != nil {
		return false
	}
	in := swan.UserInputs{Now: now, Secrets: vals.Values, PasswordHashes: vals.Hashes}
	build.verdicts.mu.Lock()
	defer build.verdicts.mu.Unlock()
	for i, name := range names {
		if _, ok := build.verdicts.index.Change(name, users[i], in); !ok {
			return false
		}
	}
	return true
}

// currentUser reads the user from the cache: nil when it is gone or names
// another gateway now; false when it could not be read.
func (b *buildCache) currentUser(ctx context.Context, key types.NamespacedName, name string) (*v1alpha1.VPNUser, bool) {
	var u v1alpha1.VPNUser
	if err := b.reader.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: name}, &u); err != nil {
		return nil, apierrors.IsNotFound(err)
	}
	if u.Spec.GatewayRef.Name != key.Name {
		return nil, true
	}
	return &u, true
}

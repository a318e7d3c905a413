package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// shardMark says what changed in a credentials shard: the entries derived
// from one referenced Secret, or with whole any of them. With neither, the
// shard is only to be checked against what it should hold (a change
// someone else made to the shard's Secret).
type shardMark struct {
	credentialsRequest
	secret string
	whole  bool
	// rebase is set when someone else wrote the shard's Secret: it is to
	// be read again (see shardBase).
	rebase bool
}

// maxDirtySecrets bounds the Secrets a shard's next reconcile derives
// alone; past it (a bulk import) the shard is derived whole, which reads
// its users once instead of a lookup per Secret.
const maxDirtySecrets = 512

// shardMemory keeps each shard's data as last derived, and which of its
// Secrets changed since, so that a change of one user's password derives
// that user's entries instead of every entry of the shard: at 100,000
// users a shard holds about 6,250. The handlers mark before they enqueue
// and a reconcile takes the marks before it reads the cache, so a change a
// reconcile missed stays marked for the next. Safe for concurrent use; a
// shard's data is changed only by its own reconcile, of which there is one
// at a time.
type shardMemory struct {
	mu sync.Mutex
	m  map[credentialsRequest]*shardState
}

type shardState struct {
	// gateway is the UID of the gateway the data was derived for.
	gateway types.UID
	// entries is nil until the shard was derived whole.
	entries *shardEntries
	dirty   map[string]struct{}
	whole   bool
	// base is the shard's Secret as last written whole or read, if
	// known; recentAt the last write of its recent changes.
	base     shardBase
	based    bool
	recentAt time.Time
	// diff is the recent changes against base, while diffKnown.
	diff      credentials.Recent
	diffKnown bool
}

func (m *shardMemory) mark(k shardMark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(k.credentialsRequest)
	if k.rebase {
		s.based = false
	}
	if s.whole {
		return
	}
	if !k.whole && k.secret == "" {
		return
	}
	if k.whole || len(s.dirty) >= maxDirtySecrets {
		s.whole, s.dirty = true, nil
		return
	}
	if s.dirty == nil {
		s.dirty = map[string]struct{}{}
	}
	s.dirty[k.secret] = struct{}{}
}

// take returns the shard's entries and the Secrets whose entries are to be
// derived again, and clears the marks; whole when the shard is to be
// derived whole instead (first seen, marked whole, or another gateway of
// the same name).
func (m *shardMemory) take(req credentialsRequest, gateway types.UID) (entries *shardEntries, secrets []string, whole bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.m[req]
	if s == nil || s.entries == nil || s.whole || s.gateway != gateway {
		if s != nil {
			s.whole, s.dirty = false, nil
		}
		return nil, nil, true
	}
	secrets = slices.Sorted(maps.Keys(s.dirty))
	s.dirty = nil
	return s.entries, secrets, false
}

// keep stores a shard's data derived whole.
func (m *shardMemory) keep(req credentialsRequest, gateway types.UID, data map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(req)
	s.gateway, s.entries = gateway, newShardEntries(data)
}

// state is the shard's state, made when missing; the caller holds mu.
func (m *shardMemory) state(req credentialsRequest) *shardState {
	if m.m == nil {
		m.m = map[credentialsRequest]*shardState{}
	}
	s := m.m[req]
	if s == nil {
		s = &shardState{}
		m.m[req] = s
	}
	return s
}

// spoil makes the shard's next reconcile derive it whole and read its
// Secret again: this one failed partway, and its data may hold part of a
// change, its Secret a write whose answer was lost.
func (m *shardMemory) spoil(req credentialsRequest) {
	m.mark(shardMark{credentialsRequest: req, whole: true, rebase: true})
}

// rebase makes the shard's next reconcile read its Secret again: a write
// of it or of its recent changes failed.
func (m *shardMemory) rebase(req credentialsRequest) {
	m.mark(shardMark{credentialsRequest: req, rebase: true})
}

// base is the shard's Secret as last written whole or read, if known for
// the gateway of that UID.
func (m *shardMemory) base(req credentialsRequest, gateway types.UID) (shardBase, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.m[req]
	if s == nil || !s.based || s.gateway != gateway {
		return shardBase{}, false
	}
	return s.base, true
}

// based records the shard's Secret as written whole or read.
func (m *shardMemory) based(req credentialsRequest, gateway types.UID, b shardBase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(req)
	if s.gateway != gateway {
		s.entries, s.gateway = nil, gateway
	}
	s.base, s.based, s.diffKnown = b, true, false
}

// wroteRecent records a write of the shard's recent changes.
func (m *shardMemory) wroteRecent(req credentialsRequest, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state(req).recentAt = at
}

// lastRecent is the last write of the shard's recent changes.
func (m *shardMemory) lastRecent(req credentialsRequest) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.m[req]; s != nil {
		return s.recentAt
	}
	return time.Time{}
}

// forget drops a deleted gateway's shards.
func (m *shardMemory) forget(gw types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.m, func(r credentialsRequest, _ *shardState) bool { return r.Gateway == gw })
}

// shardData is the shard's data: its memory changed in the entries of the
// marked Secrets, with the keys that changed; or derived whole (all).
func (r *CredentialsReconciler) shardData(ctx context.Context, gw *v1alpha1.VPNGateway, req credentialsRequest) (data map[string][]byte, touched []string, all bool, err error) {
	entries, changed, whole := r.memory.take(req, gw.UID)
	if whole {
		data, err := r.deriveWhole(ctx, gw, req)
		if err != nil {
			return nil, nil, false, err
		}
		r.memory.keep(req, gw.UID, data)
		return data, nil, true, nil
	}
	touched, err = r.deriveSecrets(ctx, gw, entries, changed)
	if err != nil {
		return nil, nil, false, err
	}
	return entries.data, touched, false, nil
}

// deriveWhole derives the shard from all of its users, the gateway's own
// references and its tunnels'.
func (r *CredentialsReconciler) deriveWhole(ctx context.Context, gw *v1alpha1.VPNGateway, req credentialsRequest) (map[string][]byte, error) {
	var users v1alpha1.VPNUserList
	if err := r.Client.List(ctx, &users, client.InNamespace(gw.Namespace),
		client.MatchingFields{indexCredentialsShard: shardIndexValue(gw.Name, req.Shard)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the users of %s: %w", req, err)
	}
	tunnels, err := r.tunnelsOf(ctx, gw)
	if err != nil {
		return nil, err
	}
	secrets, err := r.secrets.read(ctx, gw.Namespace, secretUses(gw, users.Items, tunnels))
	if err != nil {
		return nil, err
	}
	return credentials.Split(credentials.Data(gw, users.Items, tunnels, secrets.Values, secrets.Hashes))[req.Shard], nil
}

// deriveSecrets derives again, in entries, the entries of the named
// Secrets: those of the users, tunnels and gateway references that name
// them. It returns the keys it removed or set.
func (r *CredentialsReconciler) deriveSecrets(ctx context.Context, gw *v1alpha1.VPNGateway, entries *shardEntries, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	tunnels, err := r.tunnelsOf(ctx, gw)
	if err != nil {
		return nil, err
	}
	named := map[string]struct{}{}
	var users []v1alpha1.VPNUser
	for _, name := range names {
		named[name] = struct{}{}
		found, err := r.usersNaming(ctx, gw, name)
		if err != nil {
			return nil, err
		}
		users = append(users, found...)
	}
	// A user naming two changed Secrets is found twice; Data adds its
	// entries once either way.
	var uses []secretUse
	for _, u := range secretUses(gw, users, tunnels) {
		if _, ok := named[u.Name]; ok {
			uses = append(uses, u)
		}
	}
	secrets, err := r.secrets.read(ctx, gw.Namespace, uses)
	if err != nil {
		return nil, err
	}
	return entries.replace(named, credentials.Data(gw, users, tunnels, secrets.Values, secrets.Hashes)), nil
}

// tunnelsOf lists the gateway's tunnels: few, and read whole.
func (r *CredentialsReconciler) tunnelsOf(ctx context.Context, gw *v1alpha1.VPNGateway) ([]v1alpha1.Tunnel, error) {
	var tunnels v1alpha1.TunnelList
	if err := r.Client.List(ctx, &tunnels, client.InNamespace(gw.Namespace),
		client.MatchingFields{indexGateway: gw.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the tunnels of %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	return tunnels.Items, nil
}

// usersNaming are the gateway's users that reference the Secret.
func (r *CredentialsReconciler) usersNaming(ctx context.Context, gw *v1alpha1.VPNGateway, secret string) ([]v1alpha1.VPNUser, error) {
	users, err := usersReferencing(ctx, r.Client, gw.Namespace, secret)
	if err != nil {
		return nil, fmt.Errorf("listing the users of Secret %s: %w", secret, err)
	}
	return slices.DeleteFunc(users, func(u v1alpha1.VPNUser) bool { return u.Spec.GatewayRef.Name != gw.Name }), nil
}

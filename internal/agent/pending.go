package agent

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// pendingHashes are the password hashes the agent knows are on their way.
//
// A new user is two writes the agent sees separately: the VPNUser, and the
// manager's credentials shard with the user's NT hash, which follows the
// VPNUser by the manager's reaction time. An apply between the two builds
// the whole gateway (10,000 users) to load nothing new, and the user then
// waits for the next apply. So a user whose hash is not in its shard yet is
// noted here, and the apply loop waits for it, for at most
// Options.CredentialsWait past the debounce: a hash that never comes (the
// user's Secret or key is missing, which the manager reports on the
// VPNUser) costs one apply that wait, once.
type pendingHashes struct {
	mu sync.Mutex
	// since is when each awaited data key was first expected.
	since map[string]time.Time
	// byUser is the key each user awaits, so that a user whose reference
	// changed or who was deleted stops awaiting the old one.
	byUser map[string]string
	// revoked is set when a user was deleted or disabled since the last
	// apply began: cutting a session off must not wait for another
	// user's hash, which under churn (or for a user whose Secret never
	// comes) would add CredentialsWait to every revocation.
	revoked bool
}

func newPendingHashes() *pendingHashes {
	return &pendingHashes{since: map[string]time.Time{}, byUser: map[string]string{}}
}

// expect notes that user awaits key, unless it already does: a status
// write to a user whose hash never came must not make it awaited again.
func (p *pendingHashes) expect(user, key string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byUser[user]; ok {
		if old == key {
			return
		}
		delete(p.since, old)
	}
	p.byUser[user] = key
	if _, ok := p.since[key]; !ok {
		p.since[key] = now
	}
}

// forget stops user awaiting anything.
func (p *pendingHashes) forget(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if key, ok := p.byUser[user]; ok {
		delete(p.byUser, user)
		delete(p.since, key)
	}
}

// arrived drops the awaited keys that data (a credentials shard) holds.
func (p *pendingHashes) arrived(data map[string][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.since) == 0 {
		return
	}
	for key := range p.since {
		if _, ok := data[key]; ok {
			delete(p.since, key)
		}
	}
	for user, key := range p.byUser {
		if _, ok := p.since[key]; !ok {
			delete(p.byUser, user)
		}
	}
}

// revoke notes that a user lost access: the next apply goes ahead
// without waiting.
func (p *pendingHashes) revoke() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = true
}

// waiting reports whether a key expected less than wait ago is still
// awaited at now and no user was revoked since the last call that said
// no; the apply that follows a no takes the revocation.
func (p *pendingHashes) waiting(now time.Time, wait time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revoked {
		p.revoked = false
		return false
	}
	for _, since := range p.since {
		if now.Sub(since) < wait {
			return true
		}
	}
	return false
}

// awaitHashes makes the stores note the users whose hash has not arrived
// in their credentials shard, and the shards that bring them.
func (st *stores) awaitHashes(gateway string, now func() time.Time) {
	st.pending = newPendingHashes()
	st.users.onSet = append(st.users.onSet, func(u *v1alpha1.VPNUser) {
		if u.Spec.Disabled {
			st.pending.revoke()
		}
		ref := u.Spec.PasswordSecretRef
		if ref == nil || u.Spec.GatewayRef.Name != gateway {
			st.pending.forget(u.Name)
			return
		}
		key := credentials.NTHashKey(ref.Name, ref.Key)
		i := credentials.Shard(ref.Name)
		for _, name := range []string{credentials.ShardName(gateway, i), credentials.RecentName(gateway, i)} {
			if s, ok := st.secrets.get(name); ok {
				if _, ok := s.Data[key]; ok {
					st.pending.forget(u.Name)
					return
				}
			}
		}
		st.pending.expect(u.Name, key, now())
	})
	st.users.onRemove = append(st.users.onRemove, func(u *v1alpha1.VPNUser) {
		st.pending.forget(u.Name)
		st.pending.revoke()
	})
	st.secrets.onSet = append(st.secrets.onSet, func(s *corev1.Secret) {
		if credentials.IsShard(gateway, s.Name) {
			st.pending.arrived(s.Data)
		}
	})
}

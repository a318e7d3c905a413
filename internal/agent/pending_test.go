package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func pendingUser(name, gateway, secret string) *v1alpha1.VPNUser {
	u := gen.User("", name, "", gen.OfGateway(gateway), gen.WithPassword(secret, gen.PasswordKey))
	u.ResourceVersion = "1"
	return u
}

func shardWith(gateway string, secrets ...string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: credentials.ShardName(gateway, credentials.Shard(secrets[0])), ResourceVersion: "1"}, Data: map[string][]byte{}}
	for _, name := range secrets {
		if credentials.ShardName(gateway, credentials.Shard(name)) != s.Name {
			panic("secrets of different shards")
		}
		s.Data[credentials.NTHashKey(name, "password")] = make([]byte, 16)
	}
	return s
}

func TestPendingHashes(t *testing.T) {
	const wait = time.Second
	t0 := time.Unix(1000, 0)
	now := t0
	st := newStores()
	st.awaitHashes("vpn", func() time.Time { return now })
	users := st.users.handler(func(string) {})
	secrets := st.secrets.handler(func(string) {})

	// A user whose shard already holds the hash awaits nothing.
	secrets.OnAdd(shardWith("vpn", "old"), false)
	users.OnAdd(pendingUser("old", "vpn", "old"), false)
	if st.pending.waiting(now, wait) {
		t.Fatal("Awaiting a hash the shard holds")
	}
	// Users of another gateway or without a password await nothing.
	users.OnAdd(pendingUser("elsewhere", "other", "elsewhere"), false)
	tls := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Spec: v1alpha1.VPNUserSpec{GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}}}
	users.OnAdd(tls, false)
	if st.pending.waiting(now, wait) {
		t.Fatal("Awaiting a hash for another gateway's user or a user without a password")
	}

	// A new user's hash is awaited until its shard brings it.
	users.OnAdd(pendingUser("new", "vpn", "new"), false)
	if !st.pending.waiting(now, wait) {
		t.Fatal("Not awaiting the new user's hash")
	}
	// Another shard (another user's Secret) does not bring it.
	other := "x"
	for credentials.Shard(other) == credentials.Shard("new") {
		other += "x"
	}
	secrets.OnAdd(shardWith("vpn", other), false)
	if !st.pending.waiting(now, wait) {
		t.Fatal("Another shard ended the wait")
	}
	secrets.OnAdd(shardWith("vpn", "new"), false)
	if st.pending.waiting(now, wait) {
		t.Fatal("Still awaiting a hash its shard brought")
	}

	// A hash that never comes is awaited for wait, and only once: status
	// writes to the user do not make it awaited again.
	missing := pendingUser("missing", "vpn", "missing")
	users.OnAdd(missing, false)
	now = now.Add(wait / 2)
	if !st.pending.waiting(now, wait) {
		t.Fatal("Gave up before wait")
	}
	now = now.Add(wait)
	if st.pending.waiting(now, wait) {
		t.Fatal("Still awaiting after wait")
	}
	updated := missing.DeepCopy()
	updated.ResourceVersion = "2"
	users.OnUpdate(missing, updated)
	if st.pending.waiting(now, wait) {
		t.Fatal("A status write made an abandoned hash awaited again")
	}
	// A new reference is a new wait; the old one is dropped.
	moved := updated.DeepCopy()
	moved.ResourceVersion, moved.Generation = "3", 2
	moved.Spec.PasswordSecretRef.Name = "missing-2"
	users.OnUpdate(updated, moved)
	if !st.pending.waiting(now, wait) {
		t.Fatal("Not awaiting the hash of the user's new Secret")
	}
	if _, ok := st.pending.since[credentials.NTHashKey("missing", "password")]; ok {
		t.Error("The user's former key is still noted")
	}
	// A deleted user awaits nothing.
	users.OnDelete(moved)
	if st.pending.waiting(now, wait) || len(st.pending.since) != 0 || len(st.pending.byUser) != 0 {
		t.Errorf("A deleted user is still noted: %v %v", st.pending.since, st.pending.byUser)
	}
}

// An apply waits for the hash of a user it knows is coming (it would build
// every user to load nothing new), and goes ahead as soon as it arrives.
func TestApplyWaitsForAComingHash(t *testing.T) {
	a := &Agent{opts: Options{Debounce: 10 * time.Millisecond, CredentialsWait: time.Minute}, kick: make(chan struct{}, 1)}
	a.stores = newStores()
	a.stores.awaitHashes("vpn", time.Now)
	users, secrets := a.stores.users.handler(a.triggers().user), a.stores.secrets.handler(a.triggers().secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	users.OnAdd(pendingUser("new", "vpn", "new"), false)
	<-a.kick
	done := make(chan bool, 1)
	go func() { done <- a.gather(ctx) }()
	// Long past the debounce the apply still waits.
	select {
	case <-done:
		t.Fatal("The apply went ahead without the awaited hash")
	case <-time.After(200 * time.Millisecond):
	}
	// Changes that do not bring the hash do not end the wait either.
	users.OnAdd(pendingUser("other", "vpn", "new"), false)
	select {
	case <-done:
		t.Fatal("A change without the hash ended the wait")
	case <-time.After(50 * time.Millisecond):
	}
	secrets.OnAdd(shardWith("vpn", "new"), false)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("gather reported the context done")
		}
	case <-ctx.Done():
		t.Fatal("The apply did not go ahead when the hash arrived")
	}

	// With nothing awaited, the debounce alone; a cancelled context ends it.
	users.OnAdd(pendingUser("late", "vpn", "late"), false)
	cancel()
	if a.gather(ctx) {
		t.Error("gather went on after its context was done")
	}
}

// A revocation does not wait for another user's hash: the next apply cuts
// the revoked user off at once, and later applies wait again.
func TestRevocationDoesNotWaitForHashes(t *testing.T) {
	const wait = time.Second
	now := time.Unix(1000, 0)
	st := newStores()
	st.awaitHashes("vpn", func() time.Time { return now })
	users := st.users.handler(func(string) {})
	users.OnAdd(pendingUser("coming", "vpn", "coming"), false)
	users.OnAdd(pendingUser("leaving", "vpn", "leaving"), false)
	for _, tc := range []struct {
		name   string
		revoke func()
	}{
		{"deleted", func() { users.OnDelete(pendingUser("leaving", "vpn", "leaving")) }},
		{"disabled", func() {
			u := pendingUser("leaving", "vpn", "leaving")
			u.Spec.Disabled, u.ResourceVersion = true, "2"
			users.OnUpdate(pendingUser("leaving", "vpn", "leaving"), u)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !st.pending.waiting(now, wait) {
				t.Fatal("Not awaiting the new user's hash")
			}
			tc.revoke()
			if st.pending.waiting(now, wait) {
				t.Error("The apply after a revocation waits for another user's hash")
			}
			if !st.pending.waiting(now, wait) {
				t.Error("The apply after that does not wait for the hash any more")
			}
		})
	}
}

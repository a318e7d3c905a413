package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestCredentialsShardChangesAgreeWithWholeShards makes random changes of
// users, their password references and their Secrets, marks each as the
// credentials handlers do, reconciles the marked shards, and checks that
// every shard Secret then holds what a derivation of the whole shard
// gives. Both paths must be taken.
func TestCredentialsShardChangesAgreeWithWholeShards(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { shardChangesAgree(t, seed) })
	}
}

const deltaUsers = 40

func shardChangesAgree(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	ctx := context.Background()
	objs := []client.Object{gateway(), gen.Gateway(gen.Namespace, "vpn2", gen.Stored)}
	for i := range deltaUsers {
		name := fmt.Sprintf("u%02d", i)
		objs = append(objs, gen.User(gen.Namespace, name, v1alpha1.Identity(name+"@example.com"), gen.Stored, gen.WithPassword(deltaSecret(i), gen.PasswordKey)),
			gen.Secret(gen.Namespace, deltaSecret(i), map[string]string{gen.PasswordKey: "pw-" + name}))
	}
	c := credentialsFake(t, objs...)
	r := &CredentialsReconciler{Client: c, APIReader: c, secrets: newSecretReads(c, c)}
	// Small bounds, no wait for quiet: the changes are folded into their
	// shards now and then, and written as recent changes in between.
	r.bounds = recentBounds{foldAt: 20 + rng.IntN(80), maxRecent: 150, quiet: time.Nanosecond}
	gw := types.NamespacedName{Namespace: gen.Namespace, Name: gen.GatewayName}
	var all []shardMark
	all = append(all, gatewayShards(gw, true)...)
	all = append(all, gatewayShards(types.NamespacedName{Namespace: gen.Namespace, Name: "vpn2"}, true)...)
	reconcileMarked(t, ctx, r, all)
	partial, whole, recent := 0, 0, 0
	for step := range 300 {
		what, marks := changeForShards(t, ctx, c, rng, r.secrets.forget)
		p, w := reconcileMarked(t, ctx, r, marks)
		partial, whole = partial+p, whole+w
		d, n := shardsDiffer(t, ctx, c, gw)
		if d != "" {
			t.Fatalf("step %d (%s): %s", step, what, d)
		}
		recent += n
	}
	folds := int64(0)
	for i := range credentials.Shards {
		var s corev1.Secret
		must(t, c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: credentials.ShardName(gw.Name, i)}, &s))
		folds += credentials.Generation(&s) - 1
	}
	t.Logf("seed %d: %d shard reconciles derived changed Secrets alone, %d whole; %d folds, %d shards with recent changes after a step",
		seed, partial, whole, folds, recent)
	if partial == 0 || whole == 0 || folds == 0 || recent == 0 {
		t.Fatalf("partial %d, whole %d, folds %d, recent changes %d: every path must be taken", partial, whole, folds, recent)
	}
}

// deltaSecret is the name of the i-th password Secret: users start with
// their own and move to others'.
func deltaSecret(i int) string { return fmt.Sprintf("pw-%02d", i) }

// credentialsFake is a fake client with the indexes the credentials
// controller queries.
func credentialsFake(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(testScheme(t)).WithInterceptorFuncs(secretListsIgnoreFields)
	b = b.WithIndex(&v1alpha1.VPNUser{}, indexCredentialsShard, userShard).
		WithIndex(&v1alpha1.VPNUser{}, indexUserSecretBuckets, userSecretBuckets).
		WithIndex(&v1alpha1.VPNGateway{}, indexSecrets, func(o client.Object) []string { return v1alpha1.SecretNames(o.(*v1alpha1.VPNGateway).SecretRefs()) }).
		WithIndex(&v1alpha1.Tunnel{}, indexSecrets, func(o client.Object) []string { return v1alpha1.SecretNames(o.(*v1alpha1.Tunnel).SecretRefs()) })
	return fakeReaderWith(t, b, objs...)
}

// reconcileMarked marks as the handlers do and reconciles each shard
// marked, counting those derived from their changed Secrets alone and
// those derived whole.
func reconcileMarked(t *testing.T, ctx context.Context, r *CredentialsReconciler, marks []shardMark) (partial, whole int) {
	t.Helper()
	reqs := map[credentialsRequest]struct{}{}
	for _, m := range marks {
		r.memory.mark(m)
		reqs[m.credentialsRequest] = struct{}{}
	}
	for req := range reqs {
		r.memory.mu.Lock()
		s := r.memory.m[req]
		if s == nil || s.entries == nil || s.whole {
			whole++
		} else if len(s.dirty) > 0 {
			partial++
		}
		r.memory.mu.Unlock()
		// No pacing here: each change is written at once.
		r.pacer = newShardPacer()
		res, err := r.Reconcile(ctx, req)
		if err != nil || res.RequeueAfter != 0 {
			t.Fatalf("reconciling %s: %v, %+v", req, err, res)
		}
		memoryAgrees(t, r, req)
	}
	return partial, whole
}

// memoryAgrees checks what the reconciler keeps of a shard against what it
// stands for: the recent changes it updates key by key against a diff of
// the whole shard, the index of keys by Secret against the data.
func memoryAgrees(t *testing.T, r *CredentialsReconciler, req credentialsRequest) {
	t.Helper()
	r.memory.mu.Lock()
	defer r.memory.mu.Unlock()
	s := r.memory.m[req]
	if s == nil || s.entries == nil {
		return
	}
	if s.diffKnown && s.based {
		if want := credentials.Diff(s.base.data, s.entries.data, s.base.gen); !s.diff.Equal(want) {
			t.Fatalf("shard %s: recent changes kept %+v, against its base %+v", req, s.diff, want)
		}
	}
	want := newShardEntries(s.entries.data).bySecret
	got := s.entries.bySecret
	if len(got) != len(want) {
		t.Fatalf("shard %s: keys of %d Secrets indexed, data has %d", req, len(got), len(want))
	}
	for secret, keys := range want {
		if !slices.Equal(slices.Sorted(slices.Values(got[secret])), slices.Sorted(slices.Values(keys))) {
			t.Fatalf("shard %s: Secret %s's keys indexed %v, in the data %v", req, secret, got[secret], keys)
		}
	}
}

// changeForShards makes one random change and returns the marks the
// handlers make of its events.
// deleted is called with a Secret deleted, as the manager's Secret
// informer forgets what it knew of it.
func changeForShards(t *testing.T, ctx context.Context, c client.Client, rng *rand.Rand, deleted func(types.NamespacedName)) (string, []shardMark) {
	t.Helper()
	i := rng.IntN(deltaUsers + 2)
	name := fmt.Sprintf("u%02d", i)
	u := &v1alpha1.VPNUser{}
	err := c.Get(ctx, types.NamespacedName{Namespace: gen.Namespace, Name: name}, u)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	old := u.DeepCopy()
	updated := func(what string) (string, []shardMark) {
		must(t, c.Update(ctx, u))
		return what, append(userShardMarks(ctx, old), userShardMarks(ctx, u)...)
	}
	switch op := rng.IntN(8); {
	case !exists:
		u = gen.User(gen.Namespace, name, v1alpha1.Identity(name+"@example.com"), gen.Stored, gen.WithPassword(deltaSecret(rng.IntN(deltaUsers)), gen.PasswordKey))
		must(t, c.Create(ctx, u))
		return "create", userShardMarks(ctx, u)
	case op == 0:
		must(t, c.Delete(ctx, u))
		return "delete", userShardMarks(ctx, u)
	case op == 1:
		u.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: deltaSecret(rng.IntN(deltaUsers)), Key: gen.PasswordKey}
		return updated("another user's Secret or its own")
	case op == 2:
		keys := []string{gen.PasswordKey, "alt"}
		u.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: u.Spec.PasswordSecretRef.Name, Key: keys[rng.IntN(2)]}
		return updated("another key")
	case op == 3:
		if u.Spec.GatewayRef.Name == gen.GatewayName {
			u.Spec.GatewayRef.Name = "vpn2"
		} else {
			u.Spec.GatewayRef.Name = gen.GatewayName
		}
		return updated("moved between gateways")
	case op == 4 && rng.IntN(4) == 0:
		// The gateway's own references changed: every shard whole.
		return "gateway", gatewayShards(types.NamespacedName{Namespace: gen.Namespace, Name: gen.GatewayName}, true)
	default:
		secret := deltaSecret(rng.IntN(deltaUsers))
		shardSecretChange(t, ctx, c, rng, secret, deleted)
		meta := secretMetadata()
		meta.Namespace, meta.Name = gen.Namespace, secret
		return "password Secret", (&CredentialsReconciler{Client: c}).secretShards(ctx, meta)
	}
}

// shardSecretChange creates, deletes or changes a password Secret: a new
// password, one under the other key, an invalid one, or none.
func shardSecretChange(t *testing.T, ctx context.Context, c client.Client, rng *rand.Rand, name string, deleted func(types.NamespacedName)) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: gen.Namespace, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err):
		must(t, c.Create(ctx, gen.Secret(gen.Namespace, name, map[string]string{gen.PasswordKey: fmt.Sprint("pw-", rng.Int())})))
		return
	case err != nil:
		t.Fatal(err)
	}
	switch rng.IntN(4) {
	case 0:
		must(t, c.Delete(ctx, s))
		deleted(client.ObjectKeyFromObject(s))
		return
	case 1:
		s.Data = map[string][]byte{"alt": fmt.Append(nil, "alt-", rng.Int()), gen.PasswordKey: fmt.Append(nil, "pw-", rng.Int())}
	case 2:
		s.Data = map[string][]byte{gen.PasswordKey: []byte("{nthash}not-hex")}
	default:
		s.Data = map[string][]byte{gen.PasswordKey: fmt.Append(nil, "pw-", rng.Int())}
	}
	must(t, c.Update(ctx, s))
}

// shardsDiffer compares each of the gateway's shards, as its Secret with
// its recent changes gives it, with the shard derived whole from the
// objects as they are, "" when all agree; and counts the shards with
// recent changes.
func shardsDiffer(t *testing.T, ctx context.Context, c client.Client, key types.NamespacedName) (string, int) {
	t.Helper()
	var gw v1alpha1.VPNGateway
	must(t, c.Get(ctx, key, &gw))
	fresh := &CredentialsReconciler{Client: c, APIReader: c, secrets: newSecretReads(c, c)}
	recent := 0
	for i := range credentials.Shards {
		want, err := fresh.deriveWhole(ctx, &gw, credentialsRequest{Gateway: key, Shard: i})
		if err != nil {
			t.Fatal(err)
		}
		var s, r corev1.Secret
		must(t, c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: credentials.ShardName(key.Name, i)}, &s))
		must(t, c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: credentials.RecentName(key.Name, i)}, &r))
		if len(r.Data) > 0 {
			recent++
		}
		if got := credentials.Effective(&s, &r); !maps.EqualFunc(got, want, bytes.Equal) {
			return fmt.Sprintf("shard %d holds %s, derived whole %s", i, shardKeys(got), shardKeys(want)), recent
		}
	}
	return "", recent
}

func shardKeys(data map[string][]byte) string {
	var out strings.Builder
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(&out, "%s=%x ", k, data[k])
	}
	return out.String()
}

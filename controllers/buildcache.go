package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// Field indexes on the cache.
const (
	// indexGateway indexes pools, users and tunnels by gatewayRef.name.
	indexGateway = "spec.gatewayRef.name"
	// indexSecrets indexes gateways and tunnels by the Secrets they
	// reference (users: indexUserSecretBuckets).
	indexSecrets = "ikegate.secretRefs"
	// indexCredentialsShard indexes users by "<gateway>/<shard>": the
	// credentials shard that holds their password's hash.
	indexCredentialsShard = "ikegate.credentialsShard"
)

// gatewayBuild is the outcome of swan.Build over one gateway and everything
// that references it, as the cache held them.
type gatewayBuild struct {
	// Gateway is nil when the gateway does not exist.
	Gateway *v1alpha1.VPNGateway
	// Problems by object kind and name.
	Problems map[objectKey][]swan.Problem
	// Result is the Build itself, nil without a gateway, less the model's
	// secrets and keys. Profiles are made from it, so a profile offers
	// exactly what the gateway's charon is given. Its model carries the
	// server certificate and CA.
	Result *swan.Result
	// Secrets the gateway and its members reference.
	Secrets []string
	// NextExpiry is the earliest expiresAt of a user still in the future:
	// Build's result changes then without any event.
	NextExpiry time.Time
	// epoch numbers the whole build (buildEpochs); changes of single
	// users keep it.
	epoch uint64
	// verdicts holds the users' problems and entries instead of Problems
	// and Result.Users (which keeps only the users with static addresses)
	// on gateways whose users the agent's RADIUS server checks: there, a
	// change of one user is decided alone (applyUsers). Read them with
	// problemsOf and acceptedUser.
	verdicts *userVerdicts
}

type objectKey struct{ Kind, Name string }

// buildCache shares one swan.Build per gateway between the reconcilers: the
// validity of a user or pool depends on all the others (overlaps, duplicate
// identities), so it is computed for the whole gateway at once and reused
// until an event invalidates it. Event handlers bump a gateway's generation
// after the informer cache was updated, so a build started after the bump
// sees the change.
type buildCache struct {
	reader client.Reader
	now    func() time.Time
	// secrets reads what the referenced Secrets hold, shared with the
	// credentials controller.
	secrets *secretReads

	mu      sync.Mutex
	gens    map[types.NamespacedName]uint64
	entries map[types.NamespacedName]cacheEntry
	// pending names each gateway's users changed since its last get.
	pending map[types.NamespacedName]map[string]struct{}
	// building serialises builds of one gateway so concurrent reconciles
	// wait for one result instead of each building their own.
	building map[types.NamespacedName]*sync.Mutex
}

type cacheEntry struct {
	gen   uint64
	build *gatewayBuild
}

func newBuildCache(r client.Reader, now func() time.Time, secrets *secretReads) *buildCache {
	return &buildCache{
		reader:   r,
		now:      now,
		secrets:  secrets,
		gens:     map[types.NamespacedName]uint64{},
		entries:  map[types.NamespacedName]cacheEntry{},
		pending:  map[types.NamespacedName]map[string]struct{}{},
		building: map[types.NamespacedName]*sync.Mutex{},
	}
}

// invalidate marks a gateway's build stale; a nil cache has nothing to mark.
func (b *buildCache) invalidate(gw types.NamespacedName) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.gens[gw]++
	b.mu.Unlock()
}

// get returns the gateway's current build, building it if stale.
func (b *buildCache) get(ctx context.Context, gw types.NamespacedName) (*gatewayBuild, error) {
	b.mu.Lock()
	lock, ok := b.building[gw]
	if !ok {
		lock = &sync.Mutex{}
		b.building[gw] = lock
	}
	b.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	// The pending users are taken before anything is read: a change after
	// this is pending again, and deciding a user twice is harmless.
	gen, changed := b.takePending(gw)
	b.mu.Lock()
	e, ok := b.entries[gw]
	b.mu.Unlock()
	now := b.now()
	if ok && e.gen == gen && (e.build.NextExpiry.IsZero() || now.Before(e.build.NextExpiry)) &&
		(len(changed) == 0 || b.applyUsers(ctx, gw, e.build, changed)) {
		return e.build, nil
	}
	res, err := b.build(ctx, gw, now)
	if err != nil {
		// The users taken are in no build: the next get builds again.
		b.invalidate(gw)
		return nil, err
	}
	b.mu.Lock()
	b.entries[gw] = cacheEntry{gen: gen, build: res}
	b.mu.Unlock()
	return res, nil
}

// forget drops a deleted gateway's entry once nothing references it.
func (b *buildCache) forget(gw types.NamespacedName) {
	b.mu.Lock()
	delete(b.entries, gw)
	delete(b.pending, gw)
	b.mu.Unlock()
}

func (b *buildCache) build(ctx context.Context, key types.NamespacedName, now time.Time) (*gatewayBuild, error) {
	pools, users, tunnels, err := listMembers(ctx, b.reader, key, true)
	if err != nil {
		return nil, err
	}
	// The member lists are not kept: holding a copy of every user between
	// builds would cost as much memory as the cache itself.
	out := &gatewayBuild{Problems: map[objectKey][]swan.Problem{}, epoch: buildEpochs.Add(1)}
	for i := range users.Items {
		if e := users.Items[i].Spec.ExpiresAt; e != nil && now.Before(e.Time) && (out.NextExpiry.IsZero() || e.Time.Before(out.NextExpiry)) {
			out.NextExpiry = e.Time
		}
	}

	var gw v1alpha1.VPNGateway
	if err := b.reader.Get(ctx, key, &gw); err != nil {
		if apierrors.IsNotFound(err) {
			return out, nil
		}
		return nil, fmt.Errorf("getting gateway %s: %w", key, err)
	}
	out.Gateway = &gw
	out.Secrets = referencedSecrets(&gw, users.Items, tunnels.Items)

	tlsName := v1alpha1.ServerTLSSecretName(gw.Name)
	secrets, err := b.secrets.read(ctx, key.Namespace, secretUses(&gw, users.Items, tunnels.Items))
	if err != nil {
		return nil, err
	}
	tls := secrets.Values[tlsName]
	if !slices.Contains(out.Secrets, tlsName) {
		delete(secrets.Values, tlsName)
	}
	res := swan.Build(swan.Resources{
		Gateway: gw,
		Pools:   pools.Items,
		Users:   users.Items,
		Tunnels: tunnels.Items,
		Secrets: secrets.Values,
		// The hashes secretReads keeps: with 10,000 users, hashing every
		// password is most of a build.
		PasswordHashes: secrets.Hashes,
		ServerCertPEM:  tls[corev1.TLSCertKey],
		CAPEM:          tls[cmmeta.TLSCAKey],
		Now:            now,
		// As replica 0 builds it: a pool too small to split between the
		// replicas is refused by every agent, and its conditions say so.
		Replica: swan.Replica{Count: int(gw.Spec.EffectiveReplicas())},
		// Taken on gateways whose users the agent's RADIUS server checks.
		IndexUsers: true,
	})
	// The cached result keeps no secrets: profiles do not need them, and
	// NT hashes and pre-shared keys should not outlive the build.
	res.Model.Secrets, res.Model.Keys = nil, nil
	if res.Index != nil {
		res.Index.DecideOnly()
		out.verdicts = &userVerdicts{index: res.Index}
		res.Index = nil
		// The index holds the users. The static addresses' routes read
		// the users with one: a copy of those, as the deleted would keep
		// their room in the array.
		res.Users = slices.Clone(slices.DeleteFunc(res.Users, func(u swan.AcceptedUser) bool { return !u.Address.IsValid() }))
	}
	for i := range res.Users {
		res.Users[i].NTHash = [16]byte{}
	}
	out.Result = &res
	for _, p := range res.Problems {
		if out.verdicts != nil && p.Kind == swan.KindVPNUser {
			continue
		}
		k := objectKey{p.Kind, p.Name}
		out.Problems[k] = append(out.Problems[k], p)
	}
	res.Problems = nil
	return out, nil
}

// listMembers lists the pools, users and tunnels whose gatewayRef names the
// gateway. The lists share the cache's objects (no deep copy): Build and the
// reconcilers only read them, and copying 10,000 users per pass would
// dominate the cost.
// Without withUsers the users' list stays empty.
func listMembers(ctx context.Context, r client.Reader, key types.NamespacedName, withUsers bool) (*v1alpha1.MobilePoolList, *v1alpha1.VPNUserList, *v1alpha1.TunnelList, error) {
	inGateway := []client.ListOption{client.InNamespace(key.Namespace), client.MatchingFields{indexGateway: key.Name}, client.UnsafeDisableDeepCopy}
	pools, users, tunnels := &v1alpha1.MobilePoolList{}, &v1alpha1.VPNUserList{}, &v1alpha1.TunnelList{}
	lists := []client.ObjectList{pools, tunnels}
	if withUsers {
		lists = append(lists, users)
	}
	for _, l := range lists {
		if err := r.List(ctx, l, inGateway...); err != nil {
			return nil, nil, nil, fmt.Errorf("listing members of gateway %s: %w", key, err)
		}
	}
	return pools, users, tunnels, nil
}

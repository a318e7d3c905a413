package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// indexUserSecretBuckets indexes VPNUsers by secretBucket of the Secrets
// they reference. indexSecrets would index them by each Secret's name,
// but a user's password Secret is usually its own: an index value per user
// is a set per user, twice over (the cache indexes every value by
// namespace and across namespaces), some 450 bytes a user. A bucket's set
// is shared by a thousandth of the users, and a lookup sorts out the few
// that reference another Secret of the bucket.
const indexUserSecretBuckets = "ikegate.secretBuckets"

// secretBuckets is the number of buckets: few enough that their sets cost
// little next to 10,000 users, many enough that a Secret's change reads
// about 100 users of 100,000.
const secretBuckets = 1024

// bucketNames are the index values, made once.
var bucketNames = func() []string {
	out := make([]string, secretBuckets)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

// secretBucket is the bucket of a Secret's name.
func secretBucket(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return bucketNames[h.Sum32()%secretBuckets]
}

func userSecretBuckets(o client.Object) []string {
	var out []string
	for _, s := range v1alpha1.SecretNames(o.(*v1alpha1.VPNUser).SecretRefs()) {
		out = append(out, secretBucket(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// indexFields registers the indexes the reconcilers and mappers query.
func indexFields(ctx context.Context, idx client.FieldIndexer) error {
	for obj, fn := range map[client.Object]client.IndexerFunc{
		&v1alpha1.MobilePool{}: func(o client.Object) []string { return []string{o.(*v1alpha1.MobilePool).Spec.GatewayRef.Name} },
		&v1alpha1.VPNUser{}:    func(o client.Object) []string { return []string{o.(*v1alpha1.VPNUser).Spec.GatewayRef.Name} },
		&v1alpha1.Tunnel{}:     func(o client.Object) []string { return []string{o.(*v1alpha1.Tunnel).Spec.GatewayRef.Name} },
	} {
		if err := idx.IndexField(ctx, obj, indexGateway, fn); err != nil {
			return fmt.Errorf("indexing %T by gateway: %w", obj, err)
		}
	}
	for obj, fn := range map[client.Object]client.IndexerFunc{
		&v1alpha1.VPNGateway{}: func(o client.Object) []string { return v1alpha1.SecretNames(o.(*v1alpha1.VPNGateway).SecretRefs()) },
		&v1alpha1.Tunnel{}:     func(o client.Object) []string { return v1alpha1.SecretNames(o.(*v1alpha1.Tunnel).SecretRefs()) },
	} {
		if err := idx.IndexField(ctx, obj, indexSecrets, fn); err != nil {
			return fmt.Errorf("indexing %T by Secret: %w", obj, err)
		}
	}
	if err := idx.IndexField(ctx, &v1alpha1.VPNUser{}, indexUserSecretBuckets, userSecretBuckets); err != nil {
		return fmt.Errorf("indexing VPNUsers by Secret: %w", err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.VPNUser{}, indexCredentialsShard, userShard); err != nil {
		return fmt.Errorf("indexing VPNUsers by credentials shard: %w", err)
	}
	return nil
}

// gatewaysReferencing returns the gateways that reference the Secret
// themselves or through a user or tunnel, from the field indexes.
func gatewaysReferencing(ctx context.Context, r client.Reader, o client.Object) []types.NamespacedName {
	whole, users := secretReferrers(ctx, r, o)
	set := map[types.NamespacedName]struct{}{}
	for _, gw := range whole {
		set[gw] = struct{}{}
	}
	for _, u := range users {
		set[u.gateway] = struct{}{}
	}
	out := make([]types.NamespacedName, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// userOfGateway names a user and its gateway.
type userOfGateway struct {
	gateway types.NamespacedName
	name    string
}

// secretReferrers splits what references a Secret into the gateways that
// read it for themselves (their own references, their tunnels') and the
// users whose password it holds, each named with its gateway.
func secretReferrers(ctx context.Context, r client.Reader, o client.Object) ([]types.NamespacedName, []userOfGateway) {
	set := map[types.NamespacedName]struct{}{}
	in := client.InNamespace(o.GetNamespace())
	by := []client.ListOption{in, client.MatchingFields{indexSecrets: o.GetName()}, client.UnsafeDisableDeepCopy}
	var gws v1alpha1.VPNGatewayList
	if err := r.List(ctx, &gws, by...); err == nil {
		for _, g := range gws.Items {
			set[types.NamespacedName{Namespace: g.Namespace, Name: g.Name}] = struct{}{}
		}
	}
	var tunnels v1alpha1.TunnelList
	if err := r.List(ctx, &tunnels, by...); err == nil {
		for _, t := range tunnels.Items {
			set[types.NamespacedName{Namespace: t.Namespace, Name: t.Spec.GatewayRef.Name}] = struct{}{}
		}
	}
	var users []userOfGateway
	if list, err := usersReferencing(ctx, r, o.GetNamespace(), o.GetName()); err == nil {
		for i := range list {
			u := &list[i]
			users = append(users, userOfGateway{types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.GatewayRef.Name}, u.Name})
		}
	}
	whole := make([]types.NamespacedName, 0, len(set))
	for k := range set {
		whole = append(whole, k)
	}
	return whole, users
}

// usersReferencing are the namespace's users that reference the Secret,
// of every gateway, found through the index of their Secrets' buckets.
// The users are the cache's: read them, never change them.
func usersReferencing(ctx context.Context, r client.Reader, ns, secret string) ([]v1alpha1.VPNUser, error) {
	var list v1alpha1.VPNUserList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{indexUserSecretBuckets: secretBucket(secret)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(u v1alpha1.VPNUser) bool {
		return !slices.ContainsFunc(u.SecretRefs(), func(ref v1alpha1.SecretKeyReference) bool { return ref.Name == secret })
	}), nil
}

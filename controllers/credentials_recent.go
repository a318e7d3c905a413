package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// Bounds of a shard's recent changes, in bytes of their Secret's data (see
// package credentials). A change of one user adds about 100.
const (
	// foldAt is the size past which recent changes are folded into the
	// shard once they were quiet for foldQuiet: a steady trickle of
	// changes writes the shard whole about once per 150 of them.
	foldAt = 16 << 10
	// maxRecent is the size past which they are folded at once (a bulk
	// import), so that no write of them is more than a fifth of a shard
	// at 100,000 users.
	maxRecent = 100 << 10
	foldQuiet = 2 * time.Second
)

// recentBounds are the bounds the reconciler folds at; zero fields take
// the constants above.
type recentBounds struct {
	foldAt, maxRecent int
	quiet             time.Duration
}

func (b recentBounds) orDefaults() recentBounds {
	if b.foldAt == 0 {
		b.foldAt = foldAt
	}
	if b.maxRecent == 0 {
		b.maxRecent = maxRecent
	}
	if b.quiet == 0 {
		b.quiet = foldQuiet
	}
	return b
}

// shardBase is a shard's Secret as last written whole, or read.
type shardBase struct {
	data   map[string][]byte
	gen    int64
	exists bool
}

// publish makes the shard's two Secrets hold data: the changes from the
// shard's Secret in its recent changes, or, when those grew too large, or
// large and quiet, data whole in the shard's Secret (a new generation)
// and no changes. touched are the keys changed since the last publish,
// unless all did (see shardMemory.recent). It reports whether it wrote,
// and when to look again for a fold that waits for quiet.
func (r *CredentialsReconciler) publish(ctx context.Context, gw *v1alpha1.VPNGateway, req credentialsRequest, data map[string][]byte, touched []string, all bool) (bool, time.Duration, error) {
	base, err := r.shardBase(ctx, gw, req)
	if err != nil {
		return false, 0, err
	}
	bounds := r.bounds.orDefaults()
	now := time.Now()
	diff := r.memory.recent(req, base, data, touched, all)
	quiet := now.Sub(r.memory.lastRecent(req)) >= bounds.quiet
	wrote := false
	if !base.exists || diff.Size() > bounds.maxRecent || (diff.Size() > bounds.foldAt && quiet) || (diff.Len() > 0 && shardOnlyAgents(gw)) {
		// A new generation above any the recent changes named, so that
		// none of theirs applies to it.
		gen := max(base.gen, r.recentBase(ctx, gw, req)) + 1
		shard := credentialsSecret(gw, credentials.ShardName(gw.Name, req.Shard), v1alpha1.AnnotationCredentialsGeneration, gen, data)
		if wrote, err = r.write(ctx, gw, shard); err != nil {
			return false, 0, err
		}
		// data is the memory's own, which later changes edit in place.
		r.memory.based(req, gw.UID, shardBase{data: maps.Clone(data), gen: gen, exists: true})
		diff = r.memory.folded(req, gen)
	}
	recent := credentialsSecret(gw, credentials.RecentName(gw.Name, req.Shard), v1alpha1.AnnotationCredentialsBase, diff.Base, diff.Data())
	wroteRecent, err := r.write(ctx, gw, recent)
	if err != nil {
		return wrote, 0, err
	}
	if wroteRecent {
		r.memory.wroteRecent(req, now)
	}
	if diff.Size() > bounds.foldAt {
		return wrote || wroteRecent, bounds.quiet, nil
	}
	return wrote || wroteRecent, 0, nil
}

// shardOnlyAgents reports whether one of the gateway's pods runs an agent
// that reads only the shards, not their recent changes (an older agent,
// during a rolling upgrade): then every change goes into the shard.
func shardOnlyAgents(gw *v1alpha1.VPNGateway) bool {
	return slices.ContainsFunc(gw.Status.Agents, func(a v1alpha1.AgentStatus) bool { return !a.CredentialsRecent })
}

// shardOnlyAgentCame passes a gateway status update in which a pod whose
// agent reads only the shards appeared among none: the recent changes
// such an agent misses are to be folded into their shards now.
func shardOnlyAgentCame() predicate.TypedPredicate[*v1alpha1.VPNGateway] {
	return predicate.TypedFuncs[*v1alpha1.VPNGateway]{
		CreateFunc:  func(event.TypedCreateEvent[*v1alpha1.VPNGateway]) bool { return false },
		DeleteFunc:  func(event.TypedDeleteEvent[*v1alpha1.VPNGateway]) bool { return false },
		GenericFunc: func(event.TypedGenericEvent[*v1alpha1.VPNGateway]) bool { return false },
		UpdateFunc: func(e event.TypedUpdateEvent[*v1alpha1.VPNGateway]) bool {
			return !shardOnlyAgents(e.ObjectOld) && shardOnlyAgents(e.ObjectNew)
		},
	}
}

// shardBase is the shard's Secret as last written whole, read from the
// API server when the memory does not have it: at the manager's start, or
// after a change someone else made to it.
func (r *CredentialsReconciler) shardBase(ctx context.Context, gw *v1alpha1.VPNGateway, req credentialsRequest) (shardBase, error) {
	if b, ok := r.memory.base(req, gw.UID); ok {
		return b, nil
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: credentials.ShardName(gw.Name, req.Shard)}
	var have corev1.Secret
	switch err := r.APIReader.Get(ctx, key, &have); {
	case apierrors.IsNotFound(err):
		return shardBase{}, nil
	case err != nil:
		return shardBase{}, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	if err := takesOver(&have, gw); err != nil {
		return shardBase{}, err
	}
	b := shardBase{data: have.Data, gen: credentials.Generation(&have), exists: true}
	if b.data == nil {
		b.data = map[string][]byte{}
	}
	r.written.remember(key, have.ResourceVersion, secretSum(&have))
	r.memory.based(req, gw.UID, b)
	return b, nil
}

// recentBase is the generation the shard's recent changes name, as the
// cache has them; -1 without.
func (r *CredentialsReconciler) recentBase(ctx context.Context, gw *v1alpha1.VPNGateway, req credentialsRequest) int64 {
	m := secretMetadata()
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: credentials.RecentName(gw.Name, req.Shard)}, m); err != nil {
		return -1
	}
	g, err := strconv.ParseInt(m.Annotations[v1alpha1.AnnotationCredentialsBase], 10, 64)
	if err != nil {
		return -1
	}
	return g
}

// ownShard reports whether a shard Secret's event shows the version the
// reconciler last wrote or read of it, and the Secret is still there (a
// deletion's event shows its last version).
func (r *CredentialsReconciler) ownShard(ctx context.Context, o client.Object) bool {
	last, ok := r.written.last(client.ObjectKeyFromObject(o))
	if !ok || last.resourceVersion != o.GetResourceVersion() {
		return false
	}
	return r.Client.Get(ctx, client.ObjectKeyFromObject(o), secretMetadata()) == nil
}

package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// credentialsRequest names one credentials shard of a gateway: the unit the
// credentials controller reconciles. A change to one user's password touches
// one shard, and the reconcile reads that shard's users (about 1/Shards of
// the gateway's) instead of all of them.
type credentialsRequest struct {
	Gateway types.NamespacedName
	Shard   int
}

func (r credentialsRequest) String() string {
	return r.Gateway.String() + "#" + strconv.Itoa(r.Shard)
}

// CredentialsReconciler writes each gateway's credentials Secrets, one shard
// per reconcile. It does not build the gateway's configuration: the
// credentials depend only on which Secrets the gateway and its members
// reference, and a new user's agent should not wait for the validation of
// every other user.
type CredentialsReconciler struct {
	Client client.Client
	// APIReader reads the shards themselves: the cache holds Secrets
	// without their data.
	APIReader client.Reader
	secrets   *secretReads
	// pacer spaces each shard's writes; setupCredentials sets it.
	pacer *shardPacer
	// written remembers each shard as last written or found current.
	written shardVersions
	// memory keeps each shard's data and what changed in it since.
	memory shardMemory
	// bounds are when recent changes are folded into their shard.
	bounds recentBounds
}

func (r *CredentialsReconciler) Reconcile(ctx context.Context, req credentialsRequest) (ctrl.Result, error) {
	if wait := r.pacer.wait(req, time.Now()); wait > 0 {
		// The changes that arrive meanwhile go out with that write.
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	var gw v1alpha1.VPNGateway
	if err := r.Client.Get(ctx, req.Gateway, &gw); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(req.Gateway)
			r.memory.forget(req.Gateway)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		// A deleted gateway's Secrets go with it (owner reference).
		return ctrl.Result{}, nil
	}
	data, touched, all, err := r.shardData(ctx, &gw, req)
	if err != nil {
		r.memory.spoil(req)
		return ctrl.Result{}, err
	}
	wrote, again, err := r.publish(ctx, &gw, req, data, touched, all)
	if err != nil {
		// What the Secrets hold is not known now.
		r.memory.rebase(req)
	}
	if apierrors.IsConflict(err) {
		// The cache has not seen the shard's last write yet: try again when
		// it has, without the growing backoff of a failure. The data stays
		// as derived: it holds this reconcile's changes.
		return ctrl.Result{RequeueAfter: firstShardGap}, nil
	}
	if wrote {
		r.pacer.wrote(req, time.Now())
	}
	return ctrl.Result{RequeueAfter: again}, err
}

// shardIndexValue is the value of indexCredentialsShard for the users of a
// gateway's shard.
func shardIndexValue(gateway string, shard int) string {
	return gateway + "/" + strconv.Itoa(shard)
}

// userShard is indexCredentialsShard's function: the credentials shard that
// holds the user's password hash.
func userShard(o client.Object) []string {
	u := o.(*v1alpha1.VPNUser)
	var out []string
	for _, s := range v1alpha1.SecretNames(u.SecretRefs()) {
		out = append(out, shardIndexValue(u.Spec.GatewayRef.Name, credentials.Shard(s)))
	}
	return out
}

// gatewayShards marks every shard of a gateway: to be derived whole (the
// gateway's own references changed), or only checked (what its agents
// read changed, not what the shards hold).
func gatewayShards(gw types.NamespacedName, whole bool) []shardMark {
	out := make([]shardMark, credentials.Shards)
	for i := range out {
		out[i] = shardMark{credentialsRequest: credentialsRequest{Gateway: gw, Shard: i}, whole: whole}
	}
	return out
}

// shardsOf marks, in the shards that hold them, the entries derived from
// the Secrets an object references.
func shardsOf(gateway types.NamespacedName, secrets []string) []shardMark {
	out := make([]shardMark, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, shardMark{credentialsRequest: credentialsRequest{Gateway: gateway, Shard: credentials.Shard(s)}, secret: s})
	}
	return out
}

// credentialsHandler marks and enqueues the shards fn names for an object;
// on an update, those of the old object too, so a reference that moved
// away leaves its former shard. It marks before it enqueues: the
// reconcile takes the marks (see shardMemory).
func credentialsHandler[T client.Object](m *shardMemory, fn func(context.Context, T) []shardMark) handler.TypedEventHandler[T, credentialsRequest] {
	type queue = workqueue.TypedRateLimitingInterface[credentialsRequest]
	add := func(ctx context.Context, q queue, o T) {
		for _, k := range fn(ctx, o) {
			m.mark(k)
			q.Add(k.credentialsRequest)
		}
	}
	return handler.TypedFuncs[T, credentialsRequest]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[T], q queue) { add(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[T], q queue) {
			add(ctx, q, e.ObjectOld)
			add(ctx, q, e.ObjectNew)
		},
		DeleteFunc:  func(ctx context.Context, e event.TypedDeleteEvent[T], q queue) { add(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[T], q queue) { add(ctx, q, e.Object) },
	}
}

// setupCredentials registers the credentials controller. It has a queue
// of its own: a reconcile of the members may write thousands of statuses
// (after a restart, a bulk import), and a new user's agent must not wait
// for them. It does not read the builds, so its handlers do not invalidate
// them: an invalidation after the other controllers' build started would
// make them build the gateway once more for the same change.
func setupCredentials(mgr manager.Manager, r *CredentialsReconciler, workers int) error {
	c := mgr.GetCache()
	r.pacer = newShardPacer()
	m := &r.memory
	gateways := credentialsHandler(m, func(_ context.Context, gw *v1alpha1.VPNGateway) []shardMark {
		return gatewayShards(client.ObjectKeyFromObject(gw), true)
	})
	agents := credentialsHandler(m, func(_ context.Context, gw *v1alpha1.VPNGateway) []shardMark {
		return gatewayShards(client.ObjectKeyFromObject(gw), false)
	})
	users := credentialsHandler(m, userShardMarks)
	tunnels := credentialsHandler(m, func(_ context.Context, t *v1alpha1.Tunnel) []shardMark {
		return shardsOf(types.NamespacedName{Namespace: t.Namespace, Name: t.Spec.GatewayRef.Name}, v1alpha1.SecretNames(t.SecretRefs()))
	})
	secrets := credentialsHandler(m, func(ctx context.Context, s *metav1.PartialObjectMetadata) []shardMark {
		return r.secretShards(ctx, s)
	})
	return builder.TypedControllerManagedBy[credentialsRequest](mgr).
		Named("credentials").
		WatchesRawSource(source.TypedKind(c, &v1alpha1.VPNGateway{}, gateways, predicate.TypedGenerationChangedPredicate[*v1alpha1.VPNGateway]{})).
		WatchesRawSource(source.TypedKind(c, &v1alpha1.VPNGateway{}, agents, shardOnlyAgentCame())).
		WatchesRawSource(source.TypedKind(c, &v1alpha1.VPNUser{}, users, specOrLabelsChanged[*v1alpha1.VPNUser]())).
		WatchesRawSource(source.TypedKind(c, &v1alpha1.Tunnel{}, tunnels, specOrLabelsChanged[*v1alpha1.Tunnel]())).
		WatchesRawSource(source.TypedKind(c, secretMetadata(), secrets)).
		WithOptions(controller.TypedOptions[credentialsRequest]{MaxConcurrentReconciles: max(1, workers)}).
		Complete(r)
}

// userShardMarks marks the entries of a user's password Secrets.
func userShardMarks(_ context.Context, u *v1alpha1.VPNUser) []shardMark {
	return shardsOf(types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.GatewayRef.Name}, v1alpha1.SecretNames(u.SecretRefs()))
}

// specOrLabelsChanged passes creations, deletions, and updates of the spec
// (generation) or the labels (pools select users by label); not status
// writes.
func specOrLabelsChanged[T client.Object]() predicate.TypedPredicate[T] {
	return predicate.Or[T](predicate.TypedGenerationChangedPredicate[T]{}, predicate.TypedLabelChangedPredicate[T]{})
}

// secretShards finds the shards a Secret's change concerns: a credentials
// Secret itself (to put a change made by someone else right), or the shard
// of the Secret's name in every gateway that references it directly or
// through a user or tunnel.
func (r *CredentialsReconciler) secretShards(ctx context.Context, s client.Object) []shardMark {
	if gw := s.GetLabels()[v1alpha1.LabelGateway]; gw != "" {
		if i, ok := credentials.ShardIndex(gw, s.GetName()); ok {
			req := credentialsRequest{Gateway: types.NamespacedName{Namespace: s.GetNamespace(), Name: gw}, Shard: i}
			return []shardMark{{credentialsRequest: req, rebase: !credentials.IsRecent(gw, s.GetName()) && !r.ownShard(ctx, s)}}
		}
	}
	var out []shardMark
	for _, gw := range gatewaysReferencing(ctx, r.Client, s) {
		out = append(out, shardMark{credentialsRequest: credentialsRequest{Gateway: gw, Shard: credentials.Shard(s.GetName())}, secret: s.GetName()})
	}
	return out
}

// credentialsSecret is one of the Secrets the gateway's agent reads instead
// of the Secrets the gateway's objects reference: see package credentials.
// The annotation (AnnotationCredentialsGeneration on a shard,
// AnnotationCredentialsBase on its recent changes) carries gen.
func credentialsSecret(gw *v1alpha1.VPNGateway, name, annotation string, gen int64, data map[string][]byte) *corev1.Secret {
	meta := objectMeta(gw, name)
	meta.Annotations = map[string]string{annotation: strconv.FormatInt(gen, 10)}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// write writes one of the gateway's credentials Secrets when its data
// differs from the Secret's, and reports whether it wrote: every write
// reaches every gateway pod and makes its agent rebuild, so an unchanged
// shard is not written. The cache holds the shard's metadata only: while
// its version is the one this reconciler last wrote or read, and the data
// is the same as then, nothing is read; otherwise the shard is read from
// the API server, so a change someone else made is put right.
func (r *CredentialsReconciler) write(ctx context.Context, gw *v1alpha1.VPNGateway, want *corev1.Secret) (bool, error) {
	key := client.ObjectKeyFromObject(want)
	sum := secretSum(want)
	cached := secretMetadata()
	err := r.Client.Get(ctx, key, cached)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return false, nil
			}
			return false, fmt.Errorf("creating Secret %s: %w", want.Name, err)
		}
		r.written.remember(key, want.ResourceVersion, sum)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("getting Secret %s: %w", want.Name, err)
	}
	if err := takesOver(cached, gw); err != nil {
		return false, err
	}
	sameMeta := sameCredentialsMeta(cached, want)
	last, ours := r.written.last(key)
	ours = ours && last.resourceVersion == cached.ResourceVersion
	if sameMeta && ours && last.sum == sum {
		return false, nil
	}
	if sameMeta && ours {
		// The Secret is as this reconciler last wrote it: the new data goes
		// over that version without reading the old back (at 100,000 users
		// a shard is some 500 KB). Someone else's write since makes this a
		// conflict, and the next reconcile reads it.
		want.ResourceVersion = cached.ResourceVersion
		if err := r.Client.Update(ctx, want); err != nil {
			return false, fmt.Errorf("updating Secret %s: %w", want.Name, err)
		}
		r.written.remember(key, want.ResourceVersion, sum)
		return true, nil
	}
	var have corev1.Secret
	if err := r.APIReader.Get(ctx, key, &have); err != nil {
		return false, fmt.Errorf("reading Secret %s: %w", want.Name, err)
	}
	if have.Type == want.Type && maps.EqualFunc(have.Data, want.Data, bytes.Equal) && sameCredentialsMeta(&have, want) {
		r.written.remember(key, have.ResourceVersion, sum)
		return false, nil
	}
	have.Type, have.Data, have.Labels, have.OwnerReferences = want.Type, want.Data, want.Labels, want.OwnerReferences
	if have.Annotations == nil {
		have.Annotations = map[string]string{}
	}
	maps.Copy(have.Annotations, want.Annotations)
	if err := r.Client.Update(ctx, &have); err != nil {
		return false, fmt.Errorf("updating Secret %s: %w", want.Name, err)
	}
	r.written.remember(key, have.ResourceVersion, sum)
	return true, nil
}

// shardVersions are the version and data digest of each shard as last
// written or found current.
type shardVersions struct {
	mu sync.Mutex
	m  map[types.NamespacedName]shardVersion
}

type shardVersion struct {
	resourceVersion string
	sum             [sha256.Size]byte
}

func (v *shardVersions) remember(key types.NamespacedName, rv string, sum [sha256.Size]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[types.NamespacedName]shardVersion{}
	}
	v.m[key] = shardVersion{rv, sum}
}

// last is the shard's version and digest as last written or found
// current, if any.
func (v *shardVersions) last(key types.NamespacedName) (shardVersion, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	w, ok := v.m[key]
	return w, ok
}

// takesOver refuses a credentials Secret of another owner: a Secret of a
// former gateway of the same name is taken over; one the user made is not
// overwritten.
func takesOver(s client.Object, gw *v1alpha1.VPNGateway) error {
	if !metav1.IsControlledBy(s, gw) && s.GetLabels()[v1alpha1.LabelGateway] != gw.Name {
		return fmt.Errorf("Secret %s exists and is not VPNGateway %s's: remove it so the gateway's agent can get its credentials", s.GetName(), gw.Name)
	}
	return nil
}

// sameCredentialsMeta reports whether have's labels, owners and
// credentials annotations are want's.
func sameCredentialsMeta(have client.Object, want *corev1.Secret) bool {
	for k, v := range want.Annotations {
		if have.GetAnnotations()[k] != v {
			return false
		}
	}
	return maps.Equal(have.GetLabels(), want.Labels) && equality.Semantic.DeepEqual(have.GetOwnerReferences(), want.OwnerReferences)
}

// secretSum digests a credentials Secret's data and annotations.
func secretSum(s *corev1.Secret) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
		fmt.Fprintf(h, "%d:%s:%d:%s:", len(k), k, len(s.Annotations[k]), s.Annotations[k])
	}
	dataSum(h, s.Data)
	return [sha256.Size]byte(h.Sum(nil))
}

// dataSum digests a shard's data into h, keys in order, each key and
// value preceded by its length.
func dataSum(h hash.Hash, data map[string][]byte) {
	var buf []byte
	for _, k := range slices.Sorted(maps.Keys(data)) {
		buf = strconv.AppendInt(buf[:0], int64(len(k)), 10)
		buf = append(append(append(buf, ':'), k...), ':')
		buf = strconv.AppendInt(buf, int64(len(data[k])), 10)
		buf = append(buf, ':')
		h.Write(buf)
		h.Write(data[k])
	}
}

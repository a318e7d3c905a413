package controllers

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// secretUse is one key of a Secret that an ikegate object references, and
// what the manager keeps of it.
type secretUse struct {
	Name, Key string
	// Password marks a user's password: only its NT hash is kept.
	Password bool
}

// secretUses are the Secret keys a gateway's build and credentials read:
// the gateway's own references, its server certificate and CA, its
// tunnels' references and its users' passwords.
func secretUses(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel) []secretUse {
	out := serverCertUses(gw.Name)
	values := func(refs []v1alpha1.SecretKeyReference) {
		for _, r := range refs {
			out = append(out, secretUse{Name: r.Name, Key: r.Key})
		}
	}
	values(gw.SecretRefs())
	for i := range tunnels {
		if tunnels[i].Spec.GatewayRef.Name == gw.Name {
			values(tunnels[i].SecretRefs())
		}
	}
	for i := range users {
		if users[i].Spec.GatewayRef.Name == gw.Name {
			out = append(out, userSecretUses(&users[i])...)
		}
	}
	return out
}

// userSecretUses are the keys of a user's passwords.
func userSecretUses(u *v1alpha1.VPNUser) []secretUse {
	var out []secretUse
	for _, r := range u.SecretRefs() {
		out = append(out, secretUse{Name: r.Name, Key: r.Key, Password: true})
	}
	return out
}

// serverCertUses are the keys of the gateway's server certificate Secret
// the manager reads: the certificate and the CA, never the private key.
func serverCertUses(gw string) []secretUse {
	name := v1alpha1.ServerTLSSecretName(gw)
	return []secretUse{{Name: name, Key: corev1.TLSCertKey}, {Name: name, Key: cmmeta.TLSCAKey}}
}

// secretValues is what the referenced Secrets hold, as swan.Resources takes
// it. The maps are the caller's; the byte slices are shared and read-only.
type secretValues struct {
	// Values has an entry for every Secret found, holding the keys used as
	// values (empty for a Secret used only for passwords), so that Build
	// tells a missing Secret from a missing key.
	Values map[string]map[string][]byte
	// Hashes are the NT hashes of the valid passwords found. An invalid one
	// is among Values instead, as a stand-in Build refuses the way it
	// refuses the value itself.
	Hashes map[swan.SecretKeyRef][]byte
}

// noValues stands for every Secret of which no key is used as a value:
// with 100,000 users, a map each per read would dominate its cost.
var noValues = map[string][]byte{}

// secretReads reads Secrets with their data from the API server, only the
// ones ikegate objects reference and only when they changed, and keeps of
// each only what the manager uses (a password's NT hash, a PSK, a CA). The
// manager's cache holds Secrets as metadata only (CacheOptions): what
// changed, and when, comes from there, so an unchanged Secret is never read
// again and no Secret of the cluster is held whole in memory.
//
// A few stale Secrets are read with a GET each. When many are (a cold
// start, a restart, a bulk import), the namespace's Secrets are listed in
// pages instead: with 100,000 users a GET each would take 1,000 s at the
// manager's default 100 requests per second, the pages take 200 requests.
// A page passes the namespace's other Secrets (not the manager's own:
// the selector leaves them out) through memory, but nothing of them is
// kept, and the manager's RBAC lists them anyway for the metadata watch.
type secretReads struct {
	// cache reads the Secrets' metadata, and the gateways and members
	// whose references a list of a namespace reads, from the manager's
	// cache.
	cache client.Reader
	// api reads from the API server.
	api client.Reader

	mu    sync.Mutex
	known map[types.NamespacedName]*secretFacts
	// listing serialises the lists of a namespace, so that concurrent
	// reconciles after a start wait for one list instead of each making
	// their own.
	listing sync.Map // namespace -> *sync.Mutex
	// considered are the namespaces whose first read considered a list of
	// every Secret their objects reference (a start reads them all, but
	// each credentials shard asks for a sixteenth).
	considered sync.Map // namespace -> struct{}
}

// secretFacts is what the manager keeps of one Secret at one
// resourceVersion. Never changed once stored (a new version replaces it),
// so readers use it without the lock.
type secretFacts struct {
	resourceVersion string
	keys            []keyFact
}

// keyFact is one used key of a Secret.
type keyFact struct {
	key      string
	password bool
	present  bool
	// value is a value's content, or the stand-in of an invalid password;
	// hash a password's NT hash, valid when it is one.
	value []byte
	hash  [ntHashLen]byte
	valid bool
}

const ntHashLen = 16

// notAPassword stands in for an invalid password that is not empty (an NT
// hash that is not 32 hex digits), so that Build reports it as such without
// the manager keeping the value.
var notAPassword = []byte("not an NT hash")

func (f *secretFacts) fact(u secretUse) (*keyFact, bool) {
	for i := range f.keys {
		if k := &f.keys[i]; k.key == u.Key && k.password == u.Password {
			return k, true
		}
	}
	return nil, false
}

func newSecretReads(cache, api client.Reader) *secretReads {
	return &secretReads{cache: cache, api: api, known: map[types.NamespacedName]*secretFacts{}}
}

// A read that finds at most listAbove Secrets stale GETs them, unless it
// is the first of its namespace; so does one that finds at most one in
// listShare of the namespace's Secrets stale: a list returns every Secret
// of the namespace, and during a bulk import into 100,000 users, listing
// them for each few hundred new ones made the import quadratic. listPage
// is the page size of a list.
const (
	listAbove = 8
	listShare = 8
	listPage  = 500
)

// worthListing reports whether stale Secrets of a namespace of listed are
// better read with a list of the namespace than with a GET each.
func worthListing(stale, listed int) bool {
	return stale > listAbove && stale > listed/listShare
}

// read returns what uses select from the namespace's Secrets, reading the
// stale ones from the API server first.
func (r *secretReads) read(ctx context.Context, ns string, uses []secretUse) (secretValues, error) {
	stale := r.stale(ctx, ns, uses)
	many := len(stale) > listAbove && worthListing(len(stale), r.listed(ctx, ns))
	if _, seen := r.considered.Load(ns); many || (len(stale) > 0 && !seen) {
		if err := r.listNamespace(ctx, ns, many); err != nil {
			return secretValues{}, err
		}
		stale = r.stale(ctx, ns, uses)
	}
	if err := r.getAll(ctx, ns, stale); err != nil {
		return secretValues{}, err
	}
	return r.collect(ctx, ns, uses), nil
}

// getParallel is how many GETs of stale Secrets a read has in flight: a
// read of a bulk import's new users finds up to one in listShare of the
// namespace's Secrets stale, a thousand at 10,000, and one GET after
// another took seconds.
const getParallel = 8

// getAll GETs the stale Secrets, getParallel at a time.
func (r *secretReads) getAll(ctx context.Context, ns string, stale map[string][]secretUse) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(getParallel)
	for name, want := range stale {
		g.Go(func() error { return r.get(ctx, types.NamespacedName{Namespace: ns, Name: name}, want) })
	}
	return g.Wait()
}

// resourceVersion is the Secret's version in the metadata cache, "" when
// the cache holds no such Secret.
func (r *secretReads) resourceVersion(ctx context.Context, key types.NamespacedName) string {
	// No copy: only the version is read, once per Secret and pass.
	m := secretMetadata()
	if err := r.cache.Get(ctx, key, m, client.UnsafeDisableDeepCopy); err != nil {
		return ""
	}
	return m.ResourceVersion
}

// stale returns, by name, the uses of Secrets that exist and whose facts
// are missing or older than the metadata cache's version.
func (r *secretReads) stale(ctx context.Context, ns string, uses []secretUse) map[string][]secretUse {
	out := map[string][]secretUse{}
	for _, u := range uses {
		key := types.NamespacedName{Namespace: ns, Name: u.Name}
		rv := r.resourceVersion(ctx, key)
		if rv == "" {
			continue
		}
		if f := r.facts(key); f != nil && f.resourceVersion == rv {
			if _, ok := f.fact(u); ok {
				continue
			}
		}
		out[u.Name] = append(out[u.Name], u)
	}
	return out
}

// collect assembles what uses select from the facts known. A Secret the
// metadata cache does not hold counts as missing even when facts of it
// remain: its deletion is on its way to them.
func (r *secretReads) collect(ctx context.Context, ns string, uses []secretUse) secretValues {
	out := secretValues{Values: map[string]map[string][]byte{}, Hashes: map[swan.SecretKeyRef][]byte{}}
	for _, u := range uses {
		key := types.NamespacedName{Namespace: ns, Name: u.Name}
		f := r.facts(key)
		if f == nil || r.resourceVersion(ctx, key) == "" {
			continue
		}
		if _, ok := out.Values[u.Name]; !ok {
			out.Values[u.Name] = noValues
		}
		k, ok := f.fact(u)
		if !ok || !k.present {
			continue
		}
		if u.Password && k.valid {
			out.Hashes[swan.SecretKeyRef{Name: u.Name, Key: u.Key}] = k.hash[:]
			continue
		}
		if len(out.Values[u.Name]) == 0 {
			out.Values[u.Name] = map[string][]byte{}
		}
		out.Values[u.Name][u.Key] = k.value
	}
	return out
}

func (r *secretReads) facts(key types.NamespacedName) *secretFacts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.known[key]
}

// get reads one Secret and keeps the facts of uses.
func (r *secretReads) get(ctx context.Context, key types.NamespacedName, uses []secretUse) error {
	var s corev1.Secret
	if err := r.api.Get(ctx, key, &s); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
			return nil
		}
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}
	r.keep(&s, uses)
	return nil
}

// keep stores the facts of uses of s, along with the facts already known
// of the same version.
func (r *secretReads) keep(s *corev1.Secret, uses []secretUse) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	next := &secretFacts{resourceVersion: s.ResourceVersion}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.known[key]; f != nil && f.resourceVersion == s.ResourceVersion {
		next.keys = append(next.keys[:0:0], f.keys...)
	}
	for _, u := range uses {
		if _, ok := next.fact(u); ok {
			continue
		}
		next.keys = append(next.keys, factOf(s, u))
	}
	r.known[key] = next
}

// factOf derives what the manager keeps of one key of a Secret.
func factOf(s *corev1.Secret, u secretUse) keyFact {
	v, present := s.Data[u.Key]
	f := keyFact{key: u.Key, password: u.Password, present: present}
	switch {
	case !present:
	case u.Password:
		hash, valid := swan.PasswordHash(u.Key, v)
		f.valid = valid && len(hash) == ntHashLen
		copy(f.hash[:], hash)
		if !f.valid && len(v) > 0 {
			f.value = notAPassword
		} else if !f.valid {
			f.value = []byte{}
		}
	default:
		// A copy: the Secret read is dropped, and with it anything else
		// its decoding allocated.
		f.value = bytes.Clone(v)
	}
	return f
}

// forget drops what is known of a Secret that was deleted.
func (r *secretReads) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.known, key)
	r.mu.Unlock()
}

// notOurs selects the Secrets a list reads: the manager's own (profiles,
// credentials, certificates) are large, and read one by one.
var notOurs = func() labels.Selector {
	r, err := labels.NewRequirement("app.kubernetes.io/managed-by", selection.NotEquals, []string{"ikegate"})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*r)
}()

// listNamespace reads the stale Secrets of every use in the namespace by
// listing its Secrets, when many of them are stale (see listShare): on the
// namespace's first read, or when a read has many stale.
func (r *secretReads) listNamespace(ctx context.Context, ns string, many bool) error {
	lock, _ := r.listing.LoadOrStore(ns, &sync.Mutex{})
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	if _, seen := r.considered.Load(ns); seen && !many {
		return nil
	}
	// Marked when done, so that the reads waiting for the lock meanwhile
	// find what the list read.
	defer r.considered.Store(ns, struct{}{})
	uses, err := r.namespaceUses(ctx, ns)
	if err != nil {
		return err
	}
	stale := r.stale(ctx, ns, uses)
	if !worthListing(len(stale), r.listed(ctx, ns)) {
		return nil
	}
	opts := []client.ListOption{client.InNamespace(ns), client.Limit(listPage),
		client.MatchingLabelsSelector{Selector: notOurs}, client.MatchingFieldsSelector{Selector: readSecretTypes()}}
	for cont := ""; ; {
		var page corev1.SecretList
		if err := r.api.List(ctx, &page, append(opts, client.Continue(cont))...); err != nil {
			return fmt.Errorf("listing the Secrets of %s: %w", ns, err)
		}
		for i := range page.Items {
			if want, ok := stale[page.Items[i].Name]; ok {
				r.keep(&page.Items[i], want)
			}
		}
		if cont = page.Continue; cont == "" {
			return nil
		}
	}
}

// listed counts the Secrets of the namespace a list returns.
func (r *secretReads) listed(ctx context.Context, ns string) int {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.cache.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: notOurs}, client.UnsafeDisableDeepCopy); err != nil {
		return 0
	}
	return len(list.Items)
}

// namespaceUses are the uses of every gateway of the namespace.
func (r *secretReads) namespaceUses(ctx context.Context, ns string) ([]secretUse, error) {
	var gws v1alpha1.VPNGatewayList
	if err := r.cache.List(ctx, &gws, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the gateways of %s: %w", ns, err)
	}
	var out []secretUse
	for i := range gws.Items {
		gw := &gws.Items[i]
		_, users, tunnels, err := listMembers(ctx, r.cache, client.ObjectKeyFromObject(gw), true)
		if err != nil {
			return nil, err
		}
		out = append(out, secretUses(gw, users.Items, tunnels.Items)...)
	}
	return out, nil
}

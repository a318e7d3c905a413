package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// NewForConfig returns an agent that reads through an informer cache of its
// own (see NewCache) and writes status through a client, both made from cfg.
// Run starts the cache and waits for it before the first apply, so an agent
// never applies a half-listed configuration (which would unload users).
func NewForConfig(cfg *rest.Config, opts Options) (*Agent, error) {
	// The informer watches one Secret by name from the start, so the name
	// cannot follow the gateway's status: it is the manager's fixed name
	// unless the caller gave one.
	if opts.CertificateSecret == "" {
		opts.CertificateSecret = v1alpha1.ServerTLSSecretName(opts.Gateway)
	}
	c, err := NewCache(cfg, opts.Namespace, opts.Gateway)
	if err != nil {
		return nil, fmt.Errorf("creating the informer cache: %w", err)
	}
	var secretCaches []cache.Cache
	for _, name := range append(credentials.SecretNames(opts.Gateway), opts.CertificateSecret) {
		sc, err := NewSecretCache(cfg, opts.Namespace, name)
		if err != nil {
			return nil, fmt.Errorf("creating the informer cache of Secret %s: %w", name, err)
		}
		secretCaches = append(secretCaches, sc)
	}
	w, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("creating the API client: %w", err)
	}
	leases, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the Lease client: %w", err)
	}
	opts.Reader, opts.Writer, opts.Leases = c, w, leases
	a, err := New(opts)
	if err != nil {
		return nil, err
	}
	a.cache, a.secretCaches = c, secretCaches
	return a, nil
}

// startCache starts the agent's own cache, if it has one, and waits until
// every informer has listed and the agent's stores hold what they listed,
// serving the saved configuration meanwhile if the API server does not
// answer (serveSavedUntil).
func (a *Agent) startCache(ctx context.Context) error {
	if a.cache == nil {
		return nil
	}
	a.stores = newStores()
	a.stores.awaitHashes(a.opts.Gateway, time.Now)
	a.stores.indexUsers(a.opts.Gateway, a.opts.Pod)
	handlersSynced, err := a.stores.watch(ctx, a.cache, a.secretCaches, a.triggers())
	if err != nil {
		return err
	}
	caches := append([]cache.Cache{a.cache}, a.secretCaches...)
	synced := make(chan error, 1)
	go func() { synced <- startCaches(ctx, caches, handlersSynced) }()
	return a.serveSavedUntil(ctx, synced)
}

// startCaches starts every cache and returns once all have synced and the
// stores hold what they listed; with the API server unreachable, that is
// when it answers again.
func startCaches(ctx context.Context, caches []cache.Cache, handlersSynced func(context.Context) error) error {
	errc := make(chan error, len(caches))
	for _, c := range caches {
		go func() { errc <- c.Start(ctx) }()
		if !c.WaitForCacheSync(ctx) {
			select {
			case err := <-errc:
				return fmt.Errorf("informer cache: %w", err)
			default:
			}
			return errors.New("informer cache did not sync")
		}
	}
	return handlersSynced(ctx)
}

package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// The manager's Secret cache holds the metadata of the Secrets ikegate
// objects can reference, and not at all those of types none can (here a
// Helm release); with namespaces, only those namespaces' Secrets.
func TestSecretCache(t *testing.T) {
	s := testScheme(t)
	cfg, c, _ := testenv.Start(t, testenv.WithScheme(s))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, ns := range []string{"vpn", "elsewhere"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, sec := range []*corev1.Secret{
			gen.Secret(ns, "jimp", map[string]string{"password": "abc123"}),
			{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sh.helm.release.v1.app.v1"}, Type: "helm.sh/release.v1", Data: map[string][]byte{"release": []byte("H4sI")}},
		} {
			if err := c.Create(ctx, sec); err != nil {
				t.Fatal(err)
			}
		}
	}
	get := func(opts cache.Options, ns, name string) error {
		opts.Scheme = s
		cc, err := cache.New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = cc.Start(ctx) }()
		if !cc.WaitForCacheSync(ctx) {
			t.Fatal("cache did not sync")
		}
		return cc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secretMetadata())
	}
	if err := get(CacheOptions(), "elsewhere", "jimp"); err != nil {
		t.Errorf("a user's password Secret: %v", err)
	}
	if err := get(CacheOptions(), "vpn", "sh.helm.release.v1.app.v1"); !apierrors.IsNotFound(err) {
		t.Errorf("a Helm release Secret: %v, want NotFound", err)
	}
	if err := get(CacheOptions("vpn"), "vpn", "jimp"); err != nil {
		t.Errorf("a watched namespace's Secret: %v", err)
	}
	if err := get(CacheOptions("vpn"), "elsewhere", "jimp"); err == nil {
		t.Error("an unwatched namespace's Secret is cached")
	}
}

package agent

import (
	"context"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
)

// Secret keys of cert-manager's certificate Secrets.
const (
	keyTLSCert = "tls.crt"
	keyTLSKey  = "tls.key"
	keyCACert  = "ca.crt"
)

// Scheme holds the types the agent reads and writes.
func Scheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// NewCache returns an informer cache of what one gateway's agent reads
// besides Secrets: its VPNGateway and the MobilePools, VPNUsers and Tunnels
// of its namespace. Each Secret the agent reads (the credentials shards,
// see package credentials, and its certificate's) has a cache of its own
// (NewSecretCache): a cache holds one selector per type, and a field
// selector names one object. This one must not be asked for Secrets: it
// would list all of the namespace's, which the agent's Role forbids.
func NewCache(cfg *rest.Config, namespace, gateway string) (cache.Cache, error) {
	return cache.New(cfg, cache.Options{
		Scheme:            Scheme(),
		Mapper:            cachedKindsMapper(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.VPNGateway{}: {Field: fields.OneTermEqualSelector("metadata.name", gateway)},
		},
	})
}

// NewSecretCache returns an informer cache of the one Secret named secret.
// Listing and watching by a field selector on the name is authorized as
// reading that name, so the agent's Role names its Secrets instead of
// granting all of the namespace's. Mounted Secrets would take up to a
// minute to reach the pod; an informer sees a change within milliseconds.
func NewSecretCache(cfg *rest.Config, namespace, secret string) (cache.Cache, error) {
	return cache.New(cfg, cache.Options{
		Scheme:            Scheme(),
		Mapper:            cachedKindsMapper(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", secret)},
		},
	})
}

// cachedKindsMapper maps the kinds the agent's caches hold, all namespaced,
// without asking the API server: an agent must start while the API server
// is unreachable, to serve its saved configuration (persist.go), and the
// default mapper would fail the cache's creation then.
func cachedKindsMapper() meta.RESTMapper {
	s := Scheme()
	m := meta.NewDefaultRESTMapper(nil)
	for _, obj := range []client.Object{&v1alpha1.VPNGateway{}, &v1alpha1.MobilePool{}, &v1alpha1.VPNUser{}, &v1alpha1.Tunnel{}, &corev1.Secret{}} {
		gvk, err := apiutil.GVKForObject(obj, s)
		if err != nil {
			panic(err)
		}
		// Add would guess "vpngatewaies"; each of these kinds' plural is
		// its name and an s.
		plural := gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind) + "s")
		m.AddSpecific(gvk, plural, gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind)), meta.RESTScopeNamespace)
	}
	return m
}

// onUpdate ignores updates that cannot change charon's configuration:
// status writes (the agents' own session reports among them) and resyncs.
// Secrets have neither generation nor status: every change counts.
func onUpdate(oldObj, newObj any, trigger func()) {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 {
		trigger()
		return
	}
	if o.GetResourceVersion() == n.GetResourceVersion() {
		return
	}
	if _, isSecret := n.(*corev1.Secret); isSecret {
		trigger()
		return
	}
	// Pools select users by label, so labels count as much as the spec.
	if o.GetGeneration() != n.GetGeneration() || !maps.Equal(o.GetLabels(), n.GetLabels()) {
		trigger()
		return
	}
	// The gateway's status names its certificate Secret; the rest of that
	// status is written by the manager and by every gateway pod's agent.
	og, okO := oldObj.(*v1alpha1.VPNGateway)
	ng, okN := newObj.(*v1alpha1.VPNGateway)
	if okO && okN && og.Status.CertificateSecretName != ng.Status.CertificateSecretName {
		trigger()
	}
}

// view is what the agent reads, shared with the informers: read only.
type view struct {
	gateway *v1alpha1.VPNGateway
	pools   []*v1alpha1.MobilePool
	users   []*v1alpha1.VPNUser
	tunnels []*v1alpha1.Tunnel
	secrets []*corev1.Secret
}

// read returns the agent's objects: from its own informers' stores, or
// through Options.Reader when the caller supplied one.
func (a *Agent) read(ctx context.Context, withSecrets bool) (view, error) {
	var v view
	if st := a.stores; st != nil {
		v.gateway, _ = st.gateways.get(a.opts.Gateway)
		v.pools, v.users, v.tunnels = st.pools.list(), st.users.list(), st.tunnels.list()
		if withSecrets {
			v.secrets = st.secrets.list()
		}
		return v, nil
	}
	r, ns := a.opts.Reader, client.InNamespace(a.opts.Namespace)
	var gw v1alpha1.VPNGateway
	switch err := r.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.Gateway}, &gw); {
	case err == nil:
		v.gateway = &gw
	case !apierrors.IsNotFound(err):
		return v, fmt.Errorf("reading VPNGateway: %w", err)
	}
	var (
		pools   v1alpha1.MobilePoolList
		users   v1alpha1.VPNUserList
		tunnels v1alpha1.TunnelList
	)
	for _, l := range []client.ObjectList{&pools, &users, &tunnels} {
		if err := r.List(ctx, l, ns); err != nil {
			return v, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	for i := range pools.Items {
		v.pools = append(v.pools, &pools.Items[i])
	}
	for i := range users.Items {
		v.users = append(v.users, &users.Items[i])
	}
	for i := range tunnels.Items {
		v.tunnels = append(v.tunnels, &tunnels.Items[i])
	}
	if !withSecrets {
		return v, nil
	}
	// The same Secrets the informers would hold, read by name.
	names := credentials.SecretNames(a.opts.Gateway)
	if c := a.certSecret(v.gateway); c != "" {
		names = append(names, c)
	}
	for _, name := range names {
		var s corev1.Secret
		switch err := r.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: name}, &s); {
		case err == nil:
			v.secrets = append(v.secrets, &s)
		case !apierrors.IsNotFound(err):
			return v, fmt.Errorf("reading Secret %s: %w", name, err)
		}
	}
	return v, nil
}

// certSecret names the Secret with the gateway's certificate and key.
func (a *Agent) certSecret(gw *v1alpha1.VPNGateway) string {
	if a.opts.CertificateSecret != "" || gw == nil {
		return a.opts.CertificateSecret
	}
	return gw.Status.CertificateSecretName
}

// resources reads everything the gateway's charon configuration depends on.
func (a *Agent) resources(ctx context.Context) (swan.Resources, *v1alpha1.VPNGateway, error) {
	v, err := a.read(ctx, true)
	if err != nil {
		return swan.Resources{}, nil, err
	}
	if v.gateway == nil {
		return swan.Resources{}, nil, fmt.Errorf("VPNGateway %s/%s not found", a.opts.Namespace, a.opts.Gateway)
	}
	gw := v.gateway
	in := swan.Resources{
		Gateway: *gw,
		// The users' copies go into the last apply's slice: with 10,000
		// users a new one is half of what an apply allocates, and Build
		// keeps nothing of it once the apply is done.
		Users: a.usersBuf[:0],
		Now:   a.opts.Now(),
		// With its own informers the agent hears which users changed,
		// and decides them alone (users_delta.go).
		IndexUsers: a.stores != nil,
	}
	// Build reports objects of other gateways as problems; leaving them out
	// here keeps the problem list about this gateway.
	for _, p := range v.pools {
		if p.Spec.GatewayRef.Name == gw.Name {
			in.Pools = append(in.Pools, *p)
		}
	}
	for _, u := range v.users {
		if u.Spec.GatewayRef.Name == gw.Name {
			in.Users = append(in.Users, *u)
		}
	}
	// Users gone since the last apply are not kept alive by the slice.
	clear(in.Users[len(in.Users):cap(in.Users)])
	a.usersBuf = in.Users
	for _, t := range v.tunnels {
		if t.Spec.GatewayRef.Name == gw.Name {
			in.Tunnels = append(in.Tunnels, *t)
		}
	}
	certSecret := a.certSecret(gw)
	var cert *corev1.Secret
	// Users' passwords arrive as NT hashes only. Without the credentials
	// Secrets (the manager has not written them yet) every user and tunnel
	// with a secret is reported, not applied.
	// Only the shards that changed since the last apply are decoded.
	in.Secrets, in.PasswordHashes = a.decoder.Update(v.secrets)
	for _, s := range v.secrets {
		if s.Name == certSecret {
			cert = s
		}
	}
	if certSecret == "" {
		return in, gw, fmt.Errorf("VPNGateway %s has no certificate Secret yet", gw.Name)
	}
	if cert == nil {
		return in, gw, fmt.Errorf("certificate Secret %s not found", certSecret)
	}
	data := cert.Data
	in.ServerCertPEM, in.ServerKeyPEM, in.CAPEM = data[keyTLSCert], data[keyTLSKey], data[keyCACert]
	if len(in.ServerCertPEM) == 0 || len(in.ServerKeyPEM) == 0 {
		return in, gw, fmt.Errorf("certificate Secret %s lacks %s or %s", certSecret, keyTLSCert, keyTLSKey)
	}
	return in, gw, nil
}

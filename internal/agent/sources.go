package agent

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
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

// NewCache returns an informer cache of what one gateway's agent reads:
// its VPNGateway and the MobilePools, VPNUsers, Tunnels and Secrets of its
// namespace. Mounted Secrets would take up to a minute to reach the pod; an
// informer sees a change within milliseconds.
func NewCache(cfg *rest.Config, namespace, gateway string) (cache.Cache, error) {
	return cache.New(cfg, cache.Options{
		Scheme:            Scheme(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.VPNGateway{}: {Field: fields.OneTermEqualSelector("metadata.name", gateway)},
		},
	})
}

// Watch makes every change of the objects an agent reads call trigger.
// The cache must be started afterwards (or already be running).
func Watch(ctx context.Context, c cache.Cache, trigger func()) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { trigger() },
		UpdateFunc: func(oldObj, newObj any) { onUpdate(oldObj, newObj, trigger) },
		DeleteFunc: func(any) { trigger() },
	}
	for _, obj := range []client.Object{
		&v1alpha1.VPNGateway{}, &v1alpha1.MobilePool{}, &v1alpha1.VPNUser{}, &v1alpha1.Tunnel{}, &corev1.Secret{},
	} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	return nil
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
	if o.GetGeneration() != n.GetGeneration() || !equalStrings(o.GetLabels(), n.GetLabels()) {
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

func equalStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// resources reads everything the gateway's charon configuration depends on.
func (a *Agent) resources(ctx context.Context) (swan.Resources, *v1alpha1.VPNGateway, error) {
	r, ns := a.opts.Reader, client.InNamespace(a.opts.Namespace)
	// The objects are only read: skipping the cache's deep copies keeps a
	// gateway with 10,000 users cheap to rebuild on every change.
	noCopy := client.UnsafeDisableDeepCopy
	var gw v1alpha1.VPNGateway
	if err := r.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.Gateway}, &gw); err != nil {
		if apierrors.IsNotFound(err) {
			return swan.Resources{}, nil, fmt.Errorf("VPNGateway %s/%s not found", a.opts.Namespace, a.opts.Gateway)
		}
		return swan.Resources{}, nil, fmt.Errorf("reading VPNGateway: %w", err)
	}
	var (
		pools   v1alpha1.MobilePoolList
		users   v1alpha1.VPNUserList
		tunnels v1alpha1.TunnelList
		secrets corev1.SecretList
	)
	for _, l := range []client.ObjectList{&pools, &users, &tunnels, &secrets} {
		if err := r.List(ctx, l, ns, noCopy); err != nil {
			return swan.Resources{}, nil, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	in := swan.Resources{
		Gateway: gw,
		Secrets: make(map[string]map[string][]byte, len(secrets.Items)),
		Now:     a.opts.Now(),
	}
	// Build reports objects of other gateways as problems; leaving them out
	// here keeps the problem list about this gateway.
	for _, p := range pools.Items {
		if p.Spec.GatewayRef.Name == gw.Name {
			in.Pools = append(in.Pools, p)
		}
	}
	for _, u := range users.Items {
		if u.Spec.GatewayRef.Name == gw.Name {
			in.Users = append(in.Users, u)
		}
	}
	for _, t := range tunnels.Items {
		if t.Spec.GatewayRef.Name == gw.Name {
			in.Tunnels = append(in.Tunnels, t)
		}
	}
	for _, s := range secrets.Items {
		in.Secrets[s.Name] = s.Data
	}
	certSecret := a.opts.CertificateSecret
	if certSecret == "" {
		certSecret = gw.Status.CertificateSecretName
	}
	if certSecret == "" {
		return in, &gw, fmt.Errorf("VPNGateway %s has no certificate Secret yet", gw.Name)
	}
	data, ok := in.Secrets[certSecret]
	if !ok {
		return in, &gw, fmt.Errorf("certificate Secret %s not found", certSecret)
	}
	in.ServerCertPEM, in.ServerKeyPEM, in.CAPEM = data[keyTLSCert], data[keyTLSKey], data[keyCACert]
	if len(in.ServerCertPEM) == 0 || len(in.ServerKeyPEM) == 0 {
		return in, &gw, fmt.Errorf("certificate Secret %s lacks %s or %s", certSecret, keyTLSCert, keyTLSKey)
	}
	return in, &gw, nil
}

// tunnelConnection is the charon connection swan.Build makes of a Tunnel.
func tunnelConnection(tunnel string) string {
	return "tunnel-" + strings.ReplaceAll(tunnel, ".", "_")
}

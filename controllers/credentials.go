package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// CredentialsReconciler writes each gateway's credentials Secrets. It does
// not build the gateway's configuration: the credentials depend only on
// which Secrets the gateway and its members reference, and a new user's
// agent should not wait for the validation of every other user.
type CredentialsReconciler struct {
	Client client.Client
	hashes *credentials.Hashes
	// secrets is the manager's Secret informer store, nil to list instead.
	secrets toolscache.Indexer
}

func (r *CredentialsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var gw v1alpha1.VPNGateway
	if err := r.Client.Get(ctx, req.NamespacedName, &gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		// A deleted gateway's Secrets go with it (owner reference).
		return ctrl.Result{}, nil
	}
	_, users, tunnels, err := listMembers(ctx, r.Client, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	secrets, err := readSecrets(ctx, r.Client, r.secrets, gw.Namespace, referencedSecrets(&gw, users.Items, tunnels.Items), r.hashes)
	if err != nil {
		return ctrl.Result{}, err
	}
	shards := credentials.Split(credentials.Data(&gw, users.Items, tunnels.Items, secrets, r.hashes))
	var errs []error
	for i, data := range shards {
		errs = append(errs, writeCredentials(ctx, r.Client, &gw, credentials.ShardName(gw.Name, i), data))
	}
	return ctrl.Result{}, errors.Join(errs...)
}

// readSecrets returns the namespace's Secrets named in names, by name.
// With the Secret informer's store it looks each one up there: with 10,000
// users, a list (a copy of every Secret of the namespace) or a Get per
// Secret (a deep copy each) would cost more than the rest. Without the
// store it lists without copies. The Secrets stay the cache's: callers only
// read them. The cached hashes of Secrets that are gone are dropped on the
// way.
func readSecrets(ctx context.Context, r client.Reader, store toolscache.Indexer, namespace string, names []string, hashes *credentials.Hashes) (map[string]*corev1.Secret, error) {
	out := make(map[string]*corev1.Secret, len(names))
	live := map[types.UID]bool{}
	if store != nil {
		for _, name := range names {
			o, ok, err := store.GetByKey(namespace + "/" + name)
			if err != nil {
				return nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
			}
			if s, isSecret := o.(*corev1.Secret); ok && isSecret {
				out[name] = s
			}
		}
		all, err := store.ByIndex(toolscache.NamespaceIndex, namespace)
		if err != nil {
			return nil, fmt.Errorf("listing Secrets of %s: %w", namespace, err)
		}
		for _, o := range all {
			if s, ok := o.(*corev1.Secret); ok {
				live[s.UID] = true
			}
		}
		hashes.Retain(namespace, live)
		return out, nil
	}
	var all corev1.SecretList
	if err := r.List(ctx, &all, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Secrets of %s: %w", namespace, err)
	}
	wanted := make(map[string]bool, len(names))
	for _, name := range names {
		wanted[name] = true
	}
	for i := range all.Items {
		s := &all.Items[i]
		live[s.UID] = true
		if wanted[s.Name] {
			out[s.Name] = s
		}
	}
	hashes.Retain(namespace, live)
	return out, nil
}

// CredentialsSecret is one of the Secrets the gateway's agent reads instead
// of the Secrets the gateway's objects reference: see package credentials.
func CredentialsSecret(gw *v1alpha1.VPNGateway, name string, data map[string][]byte) *corev1.Secret {
	meta := objectMeta(gw, name)
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// writeCredentials writes one of the gateway's credentials Secrets when its
// data differs from what the cache holds: every write reaches every gateway
// pod and makes its agent rebuild, so an unchanged shard is not written.
func writeCredentials(ctx context.Context, c client.Client, gw *v1alpha1.VPNGateway, name string, data map[string][]byte) error {
	want := CredentialsSecret(gw, name, data)
	var have corev1.Secret
	err := c.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: want.Name}, &have)
	switch {
	case apierrors.IsNotFound(err):
		if err := c.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Secret %s: %w", want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("getting Secret %s: %w", want.Name, err)
	}
	// A Secret of a former gateway of the same name is taken over; one the
	// user made is not overwritten.
	if !metav1.IsControlledBy(&have, gw) && have.Labels[v1alpha1.LabelGateway] != gw.Name {
		return fmt.Errorf("Secret %s exists and is not VPNGateway %s's: remove it so the gateway's agent can get its credentials", want.Name, gw.Name)
	}
	if have.Type == want.Type && sameData(have.Data, want.Data) && sameLabels(have.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
		return nil
	}
	have.Type, have.Data, have.Labels, have.OwnerReferences = want.Type, want.Data, want.Labels, want.OwnerReferences
	if err := c.Update(ctx, &have); err != nil {
		return fmt.Errorf("updating Secret %s: %w", want.Name, err)
	}
	return nil
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func sameLabels(a, b map[string]string) bool {
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

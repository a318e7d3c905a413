package controllers

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// CredentialsReconciler writes each gateway's credentials Secret from the
// gateway's build, shared with the MembersReconciler.
type CredentialsReconciler struct {
	Client client.Client
	builds *buildCache
}

func (r *CredentialsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b, err := r.builds.get(ctx, req.NamespacedName)
	if err != nil || b.Gateway == nil || !b.Gateway.DeletionTimestamp.IsZero() {
		// A deleted gateway's Secret goes with it (owner reference).
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, writeCredentials(ctx, r.Client, b.Gateway, b.Credentials)
}

// CredentialsSecret is the Secret the gateway's agent reads instead of the
// Secrets the gateway's objects reference: see package credentials.
func CredentialsSecret(gw *v1alpha1.VPNGateway, data map[string][]byte) *corev1.Secret {
	meta := objectMeta(gw, credentials.SecretName(gw.Name))
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// writeCredentials writes the gateway's credentials Secret when its data
// differs from what the cache holds: every write reaches every gateway pod
// and makes its agent rebuild, so an unchanged Secret is not written.
func writeCredentials(ctx context.Context, c client.Client, gw *v1alpha1.VPNGateway, data map[string][]byte) error {
	want := CredentialsSecret(gw, data)
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

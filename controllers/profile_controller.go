package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
)

// ProfilesReconciler keeps every VPNUser's profile Secret and client
// certificate in step with its gateway. Like MembersReconciler it is keyed
// by the gateway and reads the shared build, so a profile offers what the
// gateway's charon is given; it writes its conditions (ProfileReady,
// CertificateReady) and the Secret names under a field owner of its own,
// so it and the members controller never remove each other's status.
type ProfilesReconciler struct {
	Client client.Client
	// APIReader reads what the cache does not hold: a user's client
	// certificate with its private key, when its PKCS#12 is made.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Workers bounds the users delivered to concurrently.
	Workers int
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	builds *buildCache
	told   conditionMemory
	walks  walks
}

// profilesFieldOwner owns the status fields ProfilesReconciler writes.
const profilesFieldOwner = v1alpha1.ManagerFieldOwner + "-profiles"

func (r *ProfilesReconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// reconcileUser delivers one user's profile and writes its status when the
// verdict changed.
func (r *ProfilesReconciler) reconcileUser(ctx context.Context, b *gatewayBuild, u *v1alpha1.VPNUser) error {
	entry, known := b.acceptedUser(u.Name)
	if !known {
		// Its event is on the way, and its own request delivers it.
		return nil
	}
	d, err := r.deliver(ctx, b, entry, u)
	if err != nil {
		return err
	}
	next := append([]metav1.Condition(nil), u.Status.Conditions...)
	for i := range d.conditions {
		d.conditions[i].ObservedGeneration = u.Generation
		announce(r.Recorder, &r.told, u, u.Status.Conditions, d.conditions[i])
		meta.SetStatusCondition(&next, d.conditions[i])
	}
	if !issuesCertificate(u) {
		// A condition no longer computed goes.
		meta.RemoveStatusCondition(&next, v1alpha1.ConditionCertificateReady)
	}
	if u.Status.ProfileSecretName == d.profileSecretName && u.Status.CertificateSecretName == d.certificateSecretName &&
		equality.Semantic.DeepEqual(u.Status.Conditions, next) {
		return nil
	}
	out := &v1alpha1.VPNUser{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "VPNUser"},
		ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: u.Namespace},
		Status:     v1alpha1.VPNUserStatus{ProfileSecretName: d.profileSecretName, CertificateSecretName: d.certificateSecretName},
	}
	for _, c := range d.conditions {
		out.Status.Conditions = append(out.Status.Conditions, *meta.FindStatusCondition(next, c.Type))
	}
	err = applyStatusAs(ctx, r.Client, out, profilesFieldOwner)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// delivery is what delivering one user's profile and certificate decided:
// the status the manager writes for them.
type delivery struct {
	// conditions are ProfileReady, and CertificateReady when the user asks
	// for a certificate.
	conditions            []metav1.Condition
	profileSecretName     string
	certificateSecretName string
}

// deliver keeps a user's client certificate and profile Secret in step with
// the gateway's build. A profile is rebuilt only when what it is built from
// changed (profileHash), so a settled gateway writes nothing and a user's
// PKCS#12 keeps its password until its certificate or profile changes.
func (r *ProfilesReconciler) deliver(ctx context.Context, b *gatewayBuild, entry *swan.AcceptedUser, u *v1alpha1.VPNUser) (delivery, error) {
	out := delivery{profileSecretName: u.Status.ProfileSecretName, certificateSecretName: u.Status.CertificateSecretName}
	certSecret, wait, err := r.clientCert(ctx, b.Gateway, u, &out)
	if err != nil || wait {
		return out, err
	}
	in, err := profile.FromEntry(b.Result, entry, b.Gateway, u, profile.Options{})
	if err != nil {
		out.conditions = append(out.conditions, profileCondition(err, ""))
		return out, nil
	}
	if len(in.ServerCertPEM) == 0 || len(in.CAPEM) == 0 {
		// Every new gateway passes through this; a profile without the CA
		// would be refused in every format.
		out.conditions = append(out.conditions, condFalse(v1alpha1.ConditionProfileReady, v1alpha1.ReasonCertificatePending,
			"the profile waits for the gateway's server certificate and CA"))
		return out, nil
	}
	cond, name, err := r.writeProfile(ctx, b.Gateway.Name, u, in, certSecret)
	if err != nil {
		return out, err
	}
	if name != "" {
		out.profileSecretName = name
	}
	out.conditions = append(out.conditions, cond)
	return out, nil
}

// clientCert issues the user's certificate when asked for (CertificateReady
// into out), and removes one no longer asked for. It returns the issued
// certificate's Secret once ready, or wait while the profile must wait
// for it.
func (r *ProfilesReconciler) clientCert(ctx context.Context, gw *v1alpha1.VPNGateway, u *v1alpha1.VPNUser, out *delivery) (ready *issuedCert, wait bool, err error) {
	if !issuesCertificate(u) {
		if u.Status.CertificateSecretName != "" {
			if err := r.dropClientCert(ctx, u); err != nil {
				return nil, false, err
			}
			out.certificateSecretName = ""
		}
		return nil, false, nil
	}
	cond, s, err := r.reconcileClientCert(ctx, gw, u)
	if err != nil {
		return nil, false, err
	}
	out.conditions = append(out.conditions, cond)
	if s != nil {
		out.certificateSecretName = s.key.Name
	}
	switch {
	case cond.Reason == v1alpha1.ReasonCertificatePending:
		out.conditions = append(out.conditions, condFalse(v1alpha1.ConditionProfileReady, v1alpha1.ReasonCertificatePending,
			"the profile waits for the client certificate it carries"))
		return nil, true, nil
	case cond.Status == metav1.ConditionTrue:
		return s, false, nil
	}
	return nil, false, nil
}

// writeProfile writes the user's profile Secret when what it is built from
// changed, and returns ProfileReady and the Secret's name ("" when none
// could be written).
func (r *ProfilesReconciler) writeProfile(ctx context.Context, gw string, u *v1alpha1.VPNUser, in profile.Input, cert *issuedCert) (metav1.Condition, string, error) {
	var certPEM []byte
	if cert != nil {
		certPEM = cert.pem
	}
	hash := profileHash(in, certPEM)
	have := secretMetadata()
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: u.Namespace, Name: profileSecretName(u.Name)}, have)
	switch {
	case apierrors.IsNotFound(err):
		have = nil
	case err != nil:
		return metav1.Condition{}, "", err
	case have.Annotations[annotationProfileHash] == hash:
		return profileCondition(nil, have.Annotations[annotationUnavailable]), have.Name, nil
	}
	if cert != nil {
		if in.PKCS12, in.PKCS12Password, err = r.clientBundle(ctx, cert.key); err != nil {
			return metav1.Condition{}, "", err
		}
	}
	data, unavailable := profileContent(in)
	want := profileSecret(gw, u, data, hash, unavailable)
	if err := r.writeSecret(ctx, have, want); errors.Is(err, errNotOurs) {
		return profileCondition(err, ""), "", nil
	} else if err != nil {
		return metav1.Condition{}, "", err
	}
	return profileCondition(nil, unavailable), want.Name, nil
}

// errNotOurs is a profile Secret's name taken by a Secret the user does not
// control: the user's profile cannot be delivered until it is renamed.
var errNotOurs = errors.New("is not controlled by the VPNUser: rename or delete it to receive the profile")

// writeSecret creates the profile Secret or replaces all of it. Update, not
// apply: the cache holds its metadata only (see CacheOptions) and every key
// is the manager's, so nothing of another writer is lost.
func (r *ProfilesReconciler) writeSecret(ctx context.Context, have *metav1.PartialObjectMetadata, want *corev1.Secret) error {
	if have == nil {
		// AlreadyExists and Conflict below mean the cache has not seen a
		// write yet (often this controller's own, a pass ago); that
		// write's event brings the Secret back to be compared.
		if err := r.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating profile Secret %s: %w", want.Name, err)
		}
		return nil
	}
	// A Secret of that name someone else controls is not ours to replace.
	if owner := metav1.GetControllerOf(have); owner == nil || owner.UID != want.OwnerReferences[0].UID {
		return fmt.Errorf("Secret %s %w", have.Name, errNotOurs)
	}
	want.ResourceVersion = have.ResourceVersion
	if err := r.Client.Update(ctx, want); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("updating profile Secret %s: %w", want.Name, err)
	}
	return nil
}

// issuedCert is a user's issued client certificate: its Secret and the
// certificate (never the key).
type issuedCert struct {
	key types.NamespacedName
	pem []byte
}

// reconcileClientCert makes sure the user's Certificate exists as wanted and
// returns its condition and, once issued, the certificate.
func (r *ProfilesReconciler) reconcileClientCert(ctx context.Context, gw *v1alpha1.VPNGateway, u *v1alpha1.VPNUser) (metav1.Condition, *issuedCert, error) {
	want, cannot := clientCertificate(gw, u)
	if want == nil {
		return clientCertCondition(cannot, nil, r.now()), nil, nil
	}
	var have cmv1.Certificate
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	if err != nil && !apierrors.IsNotFound(err) {
		return metav1.Condition{}, nil, err
	}
	if err != nil || !equality.Semantic.DeepEqual(have.Spec, want.Spec) || !equality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
		if err := applyObject(ctx, r.Client, want); err != nil {
			return metav1.Condition{}, nil, err
		}
	}
	key := types.NamespacedName{Namespace: u.Namespace, Name: want.Spec.SecretName}
	s := secretMetadata()
	err = r.Client.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		return clientCertCondition("", nil, r.now()), nil, nil
	}
	if err != nil {
		return metav1.Condition{}, nil, err
	}
	if err := r.ownSecret(ctx, s, u); err != nil {
		return metav1.Condition{}, nil, err
	}
	issued, err := r.builds.secrets.read(ctx, key.Namespace, []secretUse{{Name: key.Name, Key: corev1.TLSCertKey}})
	if err != nil {
		return metav1.Condition{}, nil, err
	}
	cert := &issuedCert{key: key, pem: issued.Values[key.Name][corev1.TLSCertKey]}
	return clientCertCondition("", cert.pem, r.now()), cert, nil
}

// dropClientCert removes the Certificate and Secret of a user who no longer
// asks for a certificate: a key nobody uses should not stay readable.
func (r *ProfilesReconciler) dropClientCert(ctx context.Context, u *v1alpha1.VPNUser) error {
	key := types.NamespacedName{Namespace: u.Namespace, Name: clientCertName(u.Name)}
	var cert cmv1.Certificate
	if err := r.Client.Get(ctx, key, &cert); err == nil && metav1.IsControlledBy(&cert, u) {
		if err := r.Client.Delete(ctx, &cert); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Certificate %s: %w", cert.Name, err)
		}
	} else if client.IgnoreNotFound(err) != nil {
		return err
	}
	s := secretMetadata()
	key.Name = clientCertSecretName(u.Name)
	if err := r.Client.Get(ctx, key, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, o := range s.OwnerReferences {
		if o.UID == u.UID {
			if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting Secret %s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// ownSecret makes the user the owner of cert-manager's Secret, which
// cert-manager leaves behind when its Certificate goes: the user's key must
// go with the user. Only the owner reference is applied, under the
// manager's field owner, so cert-manager's fields are left alone.
func (r *ProfilesReconciler) ownSecret(ctx context.Context, s *metav1.PartialObjectMetadata, u *v1alpha1.VPNUser) error {
	for _, o := range s.OwnerReferences {
		if o.UID == u.UID {
			return nil
		}
	}
	ref := userOwner(u)
	ref.Controller = nil
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      s.Name,
			"namespace": s.Namespace,
			"ownerReferences": []any{map[string]any{
				"apiVersion": ref.APIVersion, "kind": ref.Kind, "name": ref.Name, "uid": string(ref.UID),
			}},
		},
	}}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner(v1alpha1.ManagerFieldOwner)); err != nil {
		return fmt.Errorf("owning Secret %s: %w", s.Name, err)
	}
	return nil
}

// clientBundle reads the issued certificate with its key from the API
// server (the cache holds no Secret's data) and bundles it as PKCS#12.
func (r *ProfilesReconciler) clientBundle(ctx context.Context, key types.NamespacedName) ([]byte, string, error) {
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, key, &s); err != nil {
		return nil, "", fmt.Errorf("reading client certificate Secret %s: %w", key.Name, err)
	}
	data, password, err := clientPKCS12(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, "", fmt.Errorf("Secret %s: %w", s.Name, err)
	}
	return data, password, nil
}

package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// GatewayFinalizer holds a VPNGateway until the objects owner references
// cannot remove are gone: the Secrets cert-manager issued for it.
const GatewayFinalizer = "ikegate.io/gateway-cleanup"

// VPNGatewayReconciler turns a VPNGateway into its certificates, workload,
// agent RBAC and CA bundle, and reports on them in the gateway's conditions.
type VPNGatewayReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Images   Images
	// Policy says what a gateway may ask for; a gateway it denies gets
	// nothing written for it.
	Policy Policy
	// Now is the clock for certificate expiry; time.Now when nil.
	Now    func() time.Time
	builds *buildCache
	told   conditionMemory
}

// gatewayScope carries what the phases found to the status computation.
type gatewayScope struct {
	gw       *v1alpha1.VPNGateway
	build    *gatewayBuild
	issuer   issuerState
	cert     certState
	workload workloadState
	caPEM    []byte
	// denied is what of the gateway the manager's policy does not allow.
	denied []string
	// Errors of the phases that make the certificate (and CA bundle) and
	// the workload (and its RBAC).
	pkiErr, workloadErr error
}

// Reconcile reads like the list of what a gateway needs.
func (r *VPNGatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	gw := &v1alpha1.VPNGateway{}
	if err := r.Client.Get(ctx, req.NamespacedName, gw); err != nil {
		if apierrors.IsNotFound(err) {
			r.builds.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !gw.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, gw)
	}
	if !controllerutil.ContainsFinalizer(gw, GatewayFinalizer) {
		patch := client.MergeFrom(gw.DeepCopy())
		controllerutil.AddFinalizer(gw, GatewayFinalizer)
		if err := r.Client.Patch(ctx, gw, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}

	s := &gatewayScope{gw: gw}
	defer func() {
		if err := r.writeStatus(ctx, s, retErr == nil); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	b, err := r.builds.get(ctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.build = b

	// A gateway the policy denies gets no certificate, workload or RBAC,
	// and what already exists of it stays as it was.
	if s.denied = r.Policy.Denials(gw); len(s.denied) > 0 {
		return ctrl.Result{}, nil
	}
	// Every phase runs even if one before it failed, so the conditions
	// report on all of them.
	s.pkiErr = errors.Join(r.reconcilePKI(ctx, s), r.reconcileCABundle(ctx, s))
	s.workloadErr = errors.Join(r.reconcileWorkload(ctx, s), r.reconcileAgentRBAC(ctx, s))
	if err := errors.Join(s.pkiErr, s.workloadErr); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.requeueAfter(s)}, nil
}

// requeueAfter wakes the reconciler when the certificate passes its expiry
// or a user expires, which no event announces.
func (r *VPNGatewayReconciler) requeueAfter(s *gatewayScope) time.Duration {
	var next time.Time
	if s.cert.Leaf != nil {
		next = s.cert.Leaf.NotAfter
	}
	if rt := s.cert.RenewalTime; rt != nil {
		if due := rt.Add(renewalGrace); due.After(r.now()) && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	if e := s.build.NextExpiry; !e.IsZero() && (next.IsZero() || e.Before(next)) {
		next = e
	}
	if next.IsZero() {
		return 0
	}
	return max(time.Second, next.Sub(r.now())+time.Second)
}

func (r *VPNGatewayReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *VPNGatewayReconciler) reconcilePKI(ctx context.Context, s *gatewayScope) error {
	gw := s.gw
	n := namesFor(gw.Name)
	if gw.Spec.Certificate.IssuerRef == nil {
		if err := r.bootstrapCA(ctx, gw); err != nil {
			return err
		}
	}
	if err := r.observeIssuer(ctx, s); err != nil {
		return err
	}
	// A Certificate whose Issuer is not there yet only makes cert-manager
	// tell of a missing issuer; the gateway's own comes within seconds, and
	// it and its Ready condition changing reconcile the gateway again.
	if s.issuer.Own && (!s.issuer.Found || !s.issuer.Ready) {
		s.cert = certState{Name: n.Server, SecretName: n.ServerSecret}
		return nil
	}
	if err := applyObject(ctx, r.Client, serverCertificate(gw)); err != nil {
		return err
	}

	s.cert = certState{Name: n.Server, SecretName: n.ServerSecret}
	var cert cmv1.Certificate
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: n.Server}, &cert); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	s.cert.Found = true
	s.cert.Ready = cmCertCondition(&cert, cmv1.CertificateConditionReady)
	s.cert.Issuing = cmCertCondition(&cert, cmv1.CertificateConditionIssuing)
	if rt := cert.Status.RenewalTime; rt != nil {
		s.cert.RenewalTime = &rt.Time
	}

	secrets, err := r.builds.secrets.read(ctx, gw.Namespace, serverCertUses(gw.Name))
	if err != nil {
		return err
	}
	sec, ok := secrets.Values[n.ServerSecret]
	if !ok {
		return nil
	}
	if blk, _ := pem.Decode(sec[corev1.TLSCertKey]); blk != nil && blk.Type == "CERTIFICATE" {
		if leaf, err := x509.ParseCertificate(blk.Bytes); err == nil {
			s.cert.Leaf = leaf
		}
	}
	s.caPEM = sec[cmmeta.TLSCAKey]
	return nil
}

// bootstrapCA makes the gateway's own CA when the spec names no issuer: a
// self-signed Issuer, the CA Certificate it signs, and, once cert-manager
// has issued that, the CA Issuer. Made before its Secret exists, the CA
// Issuer would have cert-manager raise ErrGetKeyPair and ErrInitIssuer
// Warnings on every new gateway. The CA Certificate turning Ready is a
// change of an owned object and reconciles the gateway again.
func (r *VPNGatewayReconciler) bootstrapCA(ctx context.Context, gw *v1alpha1.VPNGateway) error {
	self, ca, caIssuer := caBootstrap(gw)
	for _, o := range []client.Object{self, ca} {
		if err := applyObject(ctx, r.Client, o); err != nil {
			return err
		}
	}
	var cur cmv1.Certificate
	switch err := r.Client.Get(ctx, client.ObjectKeyFromObject(ca), &cur); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	if c := cmCertCondition(&cur, cmv1.CertificateConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		return nil
	}
	return applyObject(ctx, r.Client, caIssuer)
}

func (r *VPNGatewayReconciler) observeIssuer(ctx context.Context, s *gatewayScope) error {
	ref := issuerRef(s.gw)
	s.issuer = issuerState{Kind: ref.Kind, Name: ref.Name, Checked: ref.Group == "cert-manager.io", Own: s.gw.Spec.Certificate.IssuerRef == nil}
	if !s.issuer.Checked {
		return nil
	}
	var status cmv1.IssuerStatus
	var err error
	if ref.Kind == cmv1.ClusterIssuerKind {
		var ci cmv1.ClusterIssuer
		err = r.Client.Get(ctx, types.NamespacedName{Name: ref.Name}, &ci)
		status = ci.Status
	} else {
		var is cmv1.Issuer
		err = r.Client.Get(ctx, types.NamespacedName{Namespace: s.gw.Namespace, Name: ref.Name}, &is)
		status = is.Status
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("getting %s %s: %w", ref.Kind, ref.Name, err)
	}
	s.issuer.Found = true
	s.issuer.Ready, s.issuer.Message = cmIssuerReady(status)
	return nil
}

func (r *VPNGatewayReconciler) reconcileWorkload(ctx context.Context, s *gatewayScope) error {
	gw := s.gw
	n := namesFor(gw.Name)
	conf, err := charonConfigMap(gw)
	if err != nil {
		return err
	}
	if err := applyObject(ctx, r.Client, conf); err != nil {
		return err
	}
	if !gw.Spec.HostNetwork() {
		if err := applyObject(ctx, r.Client, loadBalancerService(gw)); err != nil {
			return err
		}
	}
	if err := applyObject(ctx, r.Client, podDisruptionBudget(gw)); err != nil {
		return fmt.Errorf("applying the PodDisruptionBudget: %w", err)
	}
	nodeSelector := r.Policy.nodeSelector(gw)
	sts := statefulSet(gw, r.Images, nodeSelector, conf)
	if err := applyObject(ctx, r.Client, sts); err != nil {
		return err
	}

	s.workload = workloadState{Name: n.Workload, Desired: gw.Spec.EffectiveReplicas(), NodeSelector: nodeSelector, NodeSelectorMatches: -1}
	if sel := nodeSelector; len(sel) > 0 {
		nodes := &metav1.PartialObjectMetadataList{}
		nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
		if err := r.Client.List(ctx, nodes, client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(sel)}); err != nil {
			return fmt.Errorf("listing nodes: %w", err)
		}
		s.workload.NodeSelectorMatches = len(nodes.Items)
	}
	var cur appsv1.StatefulSet
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: n.Workload}, &cur); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	s.workload.Found = true
	s.workload.Generation = cur.Generation
	s.workload.ObservedGeneration = cur.Status.ObservedGeneration
	s.workload.Ready = cur.Status.ReadyReplicas
	s.workload.Updated = cur.Status.UpdatedReplicas
	s.workload.CurrentRevision = cur.Status.CurrentRevision
	s.workload.UpdateRevision = cur.Status.UpdateRevision
	return nil
}

func (r *VPNGatewayReconciler) reconcileAgentRBAC(ctx context.Context, s *gatewayScope) error {
	sa, role, rb := agentRBAC(s.gw)
	for _, o := range []client.Object{sa, role, rb} {
		if err := applyObject(ctx, r.Client, o); err != nil {
			return err
		}
	}
	return nil
}

func (r *VPNGatewayReconciler) reconcileCABundle(ctx context.Context, s *gatewayScope) error {
	if len(s.caPEM) == 0 {
		// External issuers may not say which CA signed; then there is
		// nothing to publish and clients are told out of band.
		return nil
	}
	return applyObject(ctx, r.Client, caConfigMap(s.gw, s.caPEM))
}

// finalize deletes the Secrets cert-manager wrote for the gateway (they
// carry no owner reference) and releases the gateway; owner references
// remove the rest. The Certificates go first: while one exists,
// cert-manager would issue its Secret again after it was deleted.
func (r *VPNGatewayReconciler) finalize(ctx context.Context, gw *v1alpha1.VPNGateway) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(gw, GatewayFinalizer) {
		return ctrl.Result{}, nil
	}
	n := namesFor(gw.Name)
	pending := false
	for _, name := range []string{n.Server, n.CA} {
		cert := &cmv1.Certificate{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: name}, cert)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		if cert.Labels[v1alpha1.LabelGateway] != gw.Name {
			continue
		}
		pending = true
		if cert.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, cert); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("deleting Certificate %s: %w", name, err)
			}
		}
	}
	if pending {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	for _, name := range []string{n.ServerSecret, n.CA} {
		sec := secretMetadata()
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: name}, sec); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return ctrl.Result{}, err
		}
		// A Secret of that name the user made themselves is not ours to delete.
		if sec.Labels[v1alpha1.LabelGateway] != gw.Name {
			continue
		}
		if err := r.Client.Delete(ctx, sec); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting Secret %s: %w", name, err)
		}
	}
	patch := client.MergeFrom(gw.DeepCopy())
	controllerutil.RemoveFinalizer(gw, GatewayFinalizer)
	return ctrl.Result{}, r.Client.Patch(ctx, gw, patch)
}

// writeStatus computes the conditions from what the phases found and writes
// them only when they changed. observedGeneration moves only when the whole
// reconcile succeeded. What follows from the agents' reports (sessions,
// readyReplicas, ConfigApplied, Ready) is GatewayAgentsReconciler's.
func (r *VPNGatewayReconciler) writeStatus(ctx context.Context, s *gatewayScope, ok bool) error {
	gw := s.gw
	if s.build == nil {
		return nil
	}
	valid := validCondition(s.build.Problems[objectKey{"VPNGateway", gw.Name}])
	certC := withPhaseError(certificateCondition(gw, s.issuer, s.cert, r.now()), s.pkiErr)
	work := withPhaseError(workloadCondition(gw, s.workload), s.workloadErr)
	if len(s.denied) > 0 {
		certC, work = policyDenied(v1alpha1.ConditionCertificateReady, s.denied), policyDenied(v1alpha1.ConditionWorkloadReady, s.denied)
	}

	old := gw.Status
	next := v1alpha1.VPNGatewayStatus{
		ObservedGeneration:    old.ObservedGeneration,
		CertificateSecretName: namesFor(gw.Name).ServerSecret,
	}
	if ok {
		next.ObservedGeneration = gw.Generation
	}
	if len(s.caPEM) > 0 {
		next.CAConfigMapName = namesFor(gw.Name).CAConfigMap
	}
	if s.cert.Leaf != nil {
		next.CertificateNotAfter = &metav1.Time{Time: s.cert.Leaf.NotAfter.UTC()}
	}
	next.ReturnRoutes = returnRoutes(gw, s.build.Result)
	conds := append([]metav1.Condition(nil), old.Conditions...)
	for _, c := range []metav1.Condition{valid, certC, work} {
		c.ObservedGeneration = gw.Generation
		r.announce(gw, old.Conditions, c)
		meta.SetStatusCondition(&conds, c)
	}
	for _, t := range phaseConditions {
		next.Conditions = append(next.Conditions, *meta.FindStatusCondition(conds, t))
	}
	if equality.Semantic.DeepEqual(phaseStatus(old), next) {
		return nil
	}
	out := &v1alpha1.VPNGateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "VPNGateway"},
		ObjectMeta: metav1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace},
		Status:     next,
	}
	return applyStatus(ctx, r.Client, out)
}

// phaseStatus is the part of st that writeStatus writes, in its order.
func phaseStatus(st v1alpha1.VPNGatewayStatus) v1alpha1.VPNGatewayStatus {
	out := v1alpha1.VPNGatewayStatus{
		ObservedGeneration:    st.ObservedGeneration,
		CAConfigMapName:       st.CAConfigMapName,
		CertificateSecretName: st.CertificateSecretName,
		CertificateNotAfter:   st.CertificateNotAfter,
		ReturnRoutes:          st.ReturnRoutes,
	}
	for _, t := range phaseConditions {
		if c := meta.FindStatusCondition(st.Conditions, t); c != nil {
			out.Conditions = append(out.Conditions, *c)
		}
	}
	return out
}

// announce records an Event when a condition turns False or changes its
// reason while False (Warning), or turns True again (Normal).
func (r *VPNGatewayReconciler) announce(obj client.Object, old []metav1.Condition, c metav1.Condition) {
	announce(r.Recorder, &r.told, obj, old, c)
}

// progressReasons are states every new object passes through; they are
// not worth a Warning.
var progressReasons = map[string]bool{
	v1alpha1.ReasonReconciling:        true,
	v1alpha1.ReasonCertificatePending: true,
	v1alpha1.ReasonApplyPending:       true,
	v1alpha1.ReasonRollingOut:         true,
	v1alpha1.ReasonGatewayNotReady:    true,
}

// idleReasons are states that need nothing done, so neither entering nor
// leaving them is an Event: a pool no VPNUser is selected for (made before
// its users, as `kubectl apply -f dir/` does in file order, or whose users
// are gone) serves nobody and refuses nobody. Its Valid condition says so;
// a Warning would send a user looking for a fault on a start that works.
var idleReasons = map[string]bool{
	v1alpha1.ReasonPoolUnused: true,
}

func announce(rec events.EventRecorder, told *conditionMemory, obj client.Object, old []metav1.Condition, c metav1.Condition) {
	if rec == nil || c.Type == v1alpha1.ConditionReady {
		return
	}
	if !told.changed(obj, c) {
		return
	}
	prev := meta.FindStatusCondition(old, c.Type)
	if progressReasons[c.Reason] || idleReasons[c.Reason] || (c.Reason == v1alpha1.ReasonPodsUnavailable && (prev == nil || prev.Status != metav1.ConditionTrue)) {
		return
	}
	switch {
	case c.Status == metav1.ConditionFalse &&
		(prev == nil || prev.Status != c.Status || prev.Reason != c.Reason || prev.Message != c.Message):
		rec.Eventf(obj, nil, corev1.EventTypeWarning, c.Reason, "Check"+c.Type, "%s", c.Message)
	case c.Status == metav1.ConditionTrue && prev != nil && prev.Status == metav1.ConditionFalse && !idleReasons[prev.Reason]:
		rec.Eventf(obj, nil, corev1.EventTypeNormal, c.Reason, "Check"+c.Type, "%s is True: %s", c.Type, c.Message)
	}
}

package controllers

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// Each condition is computed by a function of explicit inputs with no I/O,
// so a table test covers every reason. Messages name the objects and values
// involved and never hold timestamps, so an unchanged world writes no status.

func condTrue(t, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, Message: msg}
}

func condFalse(t, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
}

// issuerState is what the reconciler found of the certificate's issuer.
type issuerState struct {
	Kind, Name string
	// Checked is false for issuers of other API groups, which cert-manager's
	// external issuers serve with their own kinds and readiness.
	Checked bool
	// Own is true for the gateway's own CA Issuer, which the manager makes
	// when the spec names none.
	Own     bool
	Found   bool
	Ready   bool
	Message string // the issuer's Ready condition message
}

// certState is what the reconciler found of the server certificate.
type certState struct {
	Name       string
	SecretName string
	Found      bool
	// Ready and Issuing are cert-manager's conditions on the Certificate.
	Ready   *metav1.Condition
	Issuing *metav1.Condition
	// Leaf is the parsed tls.crt of the issued Secret, nil if there is none.
	Leaf *x509.Certificate
	// RenewalTime is when cert-manager plans to renew (its status.renewalTime).
	RenewalTime *time.Time
}

// renewalGrace is how long past its renewal time a certificate may stay
// unrenewed before the gateway reports it: cert-manager retries with backoff
// and a slow issuer needs a while.
const renewalGrace = time.Hour

// certificateCondition checks, in order: the issuer, cert-manager's verdict,
// the issued certificate's SANs against the spec, and its expiry.
func certificateCondition(gw *v1alpha1.VPNGateway, iss issuerState, cert certState, now time.Time) metav1.Condition {
	const t = v1alpha1.ConditionCertificateReady
	// The manager has just made its own Issuer, so "not found" (the cache
	// has not seen it yet) and "not ready" (cert-manager is still issuing
	// the CA it signs with) are every new gateway's first seconds, not a
	// fault: pending, which raises no Warning. An Issuer the user named is
	// likely misspelled when missing and is reported as such.
	if iss.Checked && iss.Own && (!iss.Found || !iss.Ready) {
		return condFalse(t, v1alpha1.ReasonCertificatePending, fmt.Sprintf("waiting for cert-manager to make the gateway's own %s %s ready", iss.Kind, iss.Name))
	}
	if iss.Checked && !iss.Found {
		return condFalse(t, v1alpha1.ReasonIssuerNotFound, fmt.Sprintf("%s %s not found in namespace %s", iss.Kind, iss.Name, gw.Namespace))
	}
	if iss.Checked && !iss.Ready {
		return condFalse(t, v1alpha1.ReasonIssuerNotReady, fmt.Sprintf("%s %s is not ready: %s", iss.Kind, iss.Name, orDash(iss.Message)))
	}
	if !cert.Found {
		return condFalse(t, v1alpha1.ReasonCertificatePending, fmt.Sprintf("Certificate %s not created yet", cert.Name))
	}
	if cert.Issuing != nil && cert.Issuing.Status == metav1.ConditionFalse && cert.Issuing.Reason == "Failed" {
		return condFalse(t, v1alpha1.ReasonCertificateFailed, fmt.Sprintf("cert-manager failed to issue Certificate %s: %s", cert.Name, cert.Issuing.Message))
	}
	if cert.Leaf == nil {
		msg := fmt.Sprintf("cert-manager has not issued Certificate %s into Secret %s yet", cert.Name, cert.SecretName)
		if cert.Ready != nil && cert.Ready.Message != "" {
			msg += ": " + cert.Ready.Message
		}
		return condFalse(t, v1alpha1.ReasonCertificatePending, msg)
	}
	if missing := missingSANs(gw, cert.Leaf); len(missing) > 0 {
		msg := fmt.Sprintf("certificate in Secret %s lacks %s", cert.SecretName, strings.Join(missing, ", "))
		if cert.Ready != nil && cert.Ready.Status != metav1.ConditionTrue {
			msg += fmt.Sprintf("; cert-manager: %s", cert.Ready.Message)
		}
		return condFalse(t, v1alpha1.ReasonSANMismatch, msg)
	}
	if !now.Before(cert.Leaf.NotAfter) {
		return condFalse(t, v1alpha1.ReasonCertificateExpiring, fmt.Sprintf("certificate in Secret %s has expired and was not renewed", cert.SecretName))
	}
	if cert.Ready != nil && cert.Ready.Status == metav1.ConditionFalse && cert.Ready.Reason == "Expired" {
		return condFalse(t, v1alpha1.ReasonCertificateExpiring, fmt.Sprintf("Certificate %s: %s", cert.Name, cert.Ready.Message))
	}
	if cert.RenewalTime != nil && now.After(cert.RenewalTime.Add(renewalGrace)) {
		msg := fmt.Sprintf("certificate in Secret %s is past its renewal time and cert-manager has not renewed it; it expires at status.certificateNotAfter", cert.SecretName)
		if cert.Issuing != nil && cert.Issuing.Message != "" {
			msg += "; cert-manager: " + cert.Issuing.Message
		}
		return condFalse(t, v1alpha1.ReasonCertificateExpiring, msg)
	}
	return condTrue(t, v1alpha1.ReasonReady, fmt.Sprintf("certificate in Secret %s covers %s", cert.SecretName, strings.Join(wantSANs(gw), ", ")))
}

func wantSANs(gw *v1alpha1.VPNGateway) []string {
	var out []string
	for _, h := range gw.Spec.Hostnames {
		out = append(out, string(h))
	}
	for _, a := range gw.Spec.Addresses {
		out = append(out, string(a))
	}
	return out
}

// missingSANs lists the hostnames and addresses of the spec the certificate
// does not carry; clients check the name they dial against them.
func missingSANs(gw *v1alpha1.VPNGateway, leaf *x509.Certificate) []string {
	var out []string
	for _, h := range gw.Spec.Hostnames {
		if !slices.Contains(leaf.DNSNames, string(h)) {
			out = append(out, "DNS name "+string(h))
		}
	}
	for _, a := range gw.Spec.Addresses {
		ip := net.ParseIP(string(a))
		if !slices.ContainsFunc(leaf.IPAddresses, func(x net.IP) bool { return x.Equal(ip) }) {
			out = append(out, "IP address "+string(a))
		}
	}
	return out
}

// workloadState is what the reconciler found of the gateway pods.
type workloadState struct {
	Name  string
	Found bool
	// NodeSelector is the pods' node selector: the exposure's and the
	// manager's policy's labels.
	NodeSelector map[string]string
	// NodeSelectorMatches is how many nodes NodeSelector selects, or -1
	// when there is no selector.
	NodeSelectorMatches int
	Desired             int32
	ObservedGeneration  int64
	Generation          int64
	Ready               int32
	Updated             int32
	CurrentRevision     string
	UpdateRevision      string
}

func workloadCondition(gw *v1alpha1.VPNGateway, w workloadState) metav1.Condition {
	const t = v1alpha1.ConditionWorkloadReady
	if w.NodeSelectorMatches == 0 {
		return condFalse(t, v1alpha1.ReasonNoNodesSelected, fmt.Sprintf("no node matches the node selector %s (exposure.nodeSelector and the manager's policy.nodeSelector)", selectorString(w.NodeSelector)))
	}
	if !w.Found {
		return condFalse(t, v1alpha1.ReasonReconciling, fmt.Sprintf("StatefulSet %s not created yet", w.Name))
	}
	if w.ObservedGeneration < w.Generation {
		return condFalse(t, v1alpha1.ReasonRollingOut, fmt.Sprintf("StatefulSet %s has not observed its latest spec yet", w.Name))
	}
	if w.Ready < w.Desired {
		return condFalse(t, v1alpha1.ReasonPodsUnavailable, fmt.Sprintf("%d of %d gateway pods of StatefulSet %s are ready", w.Ready, w.Desired, w.Name))
	}
	if w.UpdateRevision != "" && w.CurrentRevision != w.UpdateRevision && w.Updated < w.Desired {
		return condFalse(t, v1alpha1.ReasonRollingOut, fmt.Sprintf("%d of %d gateway pods of StatefulSet %s run the current template", w.Updated, w.Desired, w.Name))
	}
	return condTrue(t, v1alpha1.ReasonReady, fmt.Sprintf("%d of %d gateway pods are ready", w.Ready, w.Desired))
}

func selectorString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// configAppliedCondition compares what the gateway's agents report with the
// generation the manager asks for; reports of pods outside the StatefulSet
// (a scaled-down ordinal) do not count.
func configAppliedCondition(gw *v1alpha1.VPNGateway) metav1.Condition {
	const t = v1alpha1.ConditionConfigApplied
	reports := map[string]v1alpha1.AgentStatus{}
	for _, a := range gw.Status.Agents {
		reports[a.Pod] = a
	}
	var failed, pending []string
	var firstErr string
	for _, pod := range podNames(gw) {
		a, ok := reports[pod]
		switch {
		case ok && a.LastError != "":
			failed = append(failed, pod)
			if firstErr == "" {
				firstErr = a.LastError
			}
		case !ok || a.AppliedGeneration < gw.Generation:
			pending = append(pending, pod)
		}
	}
	if len(failed) > 0 {
		return condFalse(t, v1alpha1.ReasonApplyFailed, fmt.Sprintf("charon refused the configuration on %s: %s", strings.Join(failed, ", "), firstErr))
	}
	if len(pending) > 0 {
		return condFalse(t, v1alpha1.ReasonApplyPending, fmt.Sprintf("%s ha%s not applied generation %d yet", strings.Join(pending, ", "), plural(len(pending), "s", "ve"), gw.Generation))
	}
	return condTrue(t, v1alpha1.ReasonReady, fmt.Sprintf("all %d gateway pods hold generation %d", len(podNames(gw)), gw.Generation))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// withPhaseError replaces a condition by the error of the phase behind it:
// when the manager cannot write what the condition depends on, what it read
// says nothing.
func withPhaseError(c metav1.Condition, err error) metav1.Condition {
	if err == nil {
		return c
	}
	return condFalse(c.Type, v1alpha1.ReasonReconcileError, err.Error())
}

// policyDenied is a condition of a gateway the manager's policy denies: it
// names every setting that stands in the way, since nothing of the gateway
// is made until all of them allow it.
func policyDenied(t string, denials []string) metav1.Condition {
	return condFalse(t, v1alpha1.ReasonPolicyDenied, strings.Join(denials, "; "))
}

// validCondition puts Build's problems of one object on it: the first
// problem's reason, every problem's message.
func validCondition(problems []swan.Problem) metav1.Condition {
	const t = v1alpha1.ConditionValid
	if len(problems) == 0 {
		return condTrue(t, v1alpha1.ReasonReady, "references resolve and nothing conflicts")
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Message
	}
	return condFalse(t, problems[0].Reason, strings.Join(msgs, "; "))
}

// readyCondition is the first of the given conditions that is not True, or
// True when all are.
func readyCondition(conds ...metav1.Condition) metav1.Condition {
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue {
			return condFalse(v1alpha1.ConditionReady, c.Reason, c.Type+": "+c.Message)
		}
	}
	return condTrue(v1alpha1.ConditionReady, v1alpha1.ReasonReady, "the gateway serves clients")
}

// gatewayReadyCondition is readyCondition of the given conditions, False
// with NoConnections when they all hold but a gateway pod's charon holds no
// connection: a gateway that refuses every client does not serve them.
func gatewayReadyCondition(gw *v1alpha1.VPNGateway, conds ...metav1.Condition) metav1.Condition {
	ready := readyCondition(conds...)
	if ready.Status != metav1.ConditionTrue {
		return ready
	}
	if pods := podsWithoutConnections(gw); len(pods) > 0 {
		return condFalse(v1alpha1.ConditionReady, v1alpha1.ReasonNoConnections, fmt.Sprintf(
			"charon on %s holds no connection, so it refuses every client: no MobilePool has a valid, enabled user and no Tunnel was accepted",
			strings.Join(pods, ", ")))
	}
	return ready
}

// podsWithoutConnections are the gateway's pods whose agent reports, for
// the current generation, that charon holds no connection.
func podsWithoutConnections(gw *v1alpha1.VPNGateway) []string {
	reports := map[string]v1alpha1.AgentStatus{}
	for _, a := range gw.Status.Agents {
		reports[a.Pod] = a
	}
	var pods []string
	for _, pod := range podNames(gw) {
		a, ok := reports[pod]
		if ok && a.AppliedGeneration >= gw.Generation && a.Connections != nil && *a.Connections == 0 {
			pods = append(pods, pod)
		}
	}
	return pods
}

// memberReadyCondition: a pool, user or tunnel is Ready when it is valid and
// its gateway serves clients: the gateway is valid, its certificate and pods
// are ready, and charon did not refuse its configuration. A gateway that is
// still applying a new generation keeps serving the members it had, so
// ApplyPending does not count; otherwise every gateway edit would flip, and
// rewrite, the status of every member.
func memberReadyCondition(valid metav1.Condition, gw *v1alpha1.VPNGateway) metav1.Condition {
	const t = v1alpha1.ConditionReady
	if valid.Status != metav1.ConditionTrue {
		return condFalse(t, valid.Reason, valid.Message)
	}
	if gw == nil {
		return condFalse(t, v1alpha1.ReasonGatewayNotFound, "gateway not found")
	}
	serving := true
	for _, typ := range []string{v1alpha1.ConditionValid, v1alpha1.ConditionCertificateReady, v1alpha1.ConditionWorkloadReady} {
		c := meta.FindStatusCondition(gw.Status.Conditions, typ)
		serving = serving && c != nil && c.Status == metav1.ConditionTrue
	}
	if c := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionConfigApplied); c == nil || c.Reason == v1alpha1.ReasonApplyFailed {
		serving = false
	}
	if serving {
		return condTrue(t, v1alpha1.ReasonReady, fmt.Sprintf("VPNGateway %s serves clients", gw.Name))
	}
	// The message leaves out why: every member carries it, and a change of
	// the gateway's reason would rewrite thousands of statuses. The
	// gateway's own conditions say why.
	return condFalse(t, v1alpha1.ReasonGatewayNotReady, fmt.Sprintf("VPNGateway %s is not serving clients; see its conditions", gw.Name))
}

// tunnelReadyCondition: a Tunnel whose gateway serves it is Ready only when
// the agent reports it Established, its IKE_SA up and every child
// installed; an IKE_SA alone carries no traffic.
func tunnelReadyCondition(ready metav1.Condition, conds []metav1.Condition) metav1.Condition {
	if ready.Status != metav1.ConditionTrue {
		return ready
	}
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionEstablished); c == nil || c.Status != metav1.ConditionTrue {
		return condFalse(v1alpha1.ConditionReady, v1alpha1.ReasonConnecting, "the tunnel's IKE_SA or a child is not up; see its Established condition")
	}
	return ready
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmCondition finds a cert-manager condition.
func cmCertCondition(c *cmv1.Certificate, t cmv1.CertificateConditionType) *metav1.Condition {
	for _, x := range c.Status.Conditions {
		if x.Type == t {
			return &metav1.Condition{Type: string(x.Type), Status: metav1.ConditionStatus(x.Status), Reason: x.Reason, Message: x.Message}
		}
	}
	return nil
}

func cmIssuerReady(s cmv1.IssuerStatus) (bool, string) {
	for _, x := range s.Conditions {
		if x.Type == cmv1.IssuerConditionReady {
			return x.Status == "True", x.Message
		}
	}
	return false, "no Ready condition yet"
}

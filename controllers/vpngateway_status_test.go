package controllers

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func leafFor(dns []string, ips []string, notAfter time.Time) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: dns[0]}, DNSNames: dns, NotAfter: notAfter}
	for _, ip := range ips {
		c.IPAddresses = append(c.IPAddresses, net.ParseIP(ip))
	}
	return c
}

func TestCertificateCondition(t *testing.T) {
	issuerOK := issuerState{Kind: "Issuer", Name: "vpn-ca", Checked: true, Found: true, Ready: true}
	ready := &metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Ready"}
	good := certState{Name: "vpn-server", SecretName: "vpn-server-tls", Found: true, Ready: ready,
		Leaf: leafFor([]string{"vpn.example.com"}, []string{"198.51.100.10"}, now.Add(time.Hour))}
	with := func(f func(*certState)) certState { c := good; f(&c); return c }

	tests := []struct {
		name   string
		gw     *v1alpha1.VPNGateway
		issuer issuerState
		cert   certState
		want   metav1.Condition
	}{
		{"issued and matching", gateway(), issuerOK, good,
			condTrue("CertificateReady", "Ready", "certificate in Secret vpn-server-tls covers vpn.example.com, 198.51.100.10")},
		{"issuer missing", gateway(), issuerState{Kind: "Issuer", Name: "corp-ca", Checked: true}, certState{},
			condFalse("CertificateReady", "IssuerNotFound", "Issuer corp-ca not found in namespace vpn")},
		{"issuer not ready", gateway(), issuerState{Kind: "ClusterIssuer", Name: "corp", Checked: true, Found: true, Message: "secret corp-ca not found"}, good,
			condFalse("CertificateReady", "IssuerNotReady", "ClusterIssuer corp is not ready: secret corp-ca not found")},
		{"the gateway's own issuer not made yet is pending", gateway(), issuerState{Kind: "Issuer", Name: "vpn-ca", Checked: true, Own: true}, certState{},
			condFalse("CertificateReady", "CertificatePending", "waiting for cert-manager to make the gateway's own Issuer vpn-ca ready")},
		{"the gateway's own issuer not ready yet is pending", gateway(), issuerState{Kind: "Issuer", Name: "vpn-ca", Checked: true, Own: true, Found: true, Message: "secret vpn-ca not found"}, certState{},
			condFalse("CertificateReady", "CertificatePending", "waiting for cert-manager to make the gateway's own Issuer vpn-ca ready")},
		{"external issuer is not checked", gateway(), issuerState{Kind: "AWSPCAIssuer", Name: "pca"}, good,
			condTrue("CertificateReady", "Ready", "certificate in Secret vpn-server-tls covers vpn.example.com, 198.51.100.10")},
		{"certificate not created", gateway(), issuerOK, certState{Name: "vpn-server", SecretName: "vpn-server-tls"},
			condFalse("CertificateReady", "CertificatePending", "Certificate vpn-server not created yet")},
		{"not issued yet", gateway(), issuerOK, with(func(c *certState) {
			c.Leaf = nil
			c.Ready = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "DoesNotExist", Message: "Issuing certificate as Secret does not exist"}
		}), condFalse("CertificateReady", "CertificatePending", "cert-manager has not issued Certificate vpn-server into Secret vpn-server-tls yet: Issuing certificate as Secret does not exist")},
		{"issuance failed", gateway(), issuerOK, with(func(c *certState) {
			c.Issuing = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "Failed", Message: "The certificate request has failed to complete"}
		}), condFalse("CertificateReady", "CertificateFailed", "cert-manager failed to issue Certificate vpn-server: The certificate request has failed to complete")},
		{"SAN missing", gateway(func(g *v1alpha1.VPNGateway) {
			g.Spec.Hostnames = append(g.Spec.Hostnames, "vpn2.example.com")
			g.Spec.Addresses = append(g.Spec.Addresses, "2001:db8::1")
		}), issuerOK, with(func(c *certState) {
			c.Ready = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "DoesNotMatch", Message: "DNS names do not match"}
		}), condFalse("CertificateReady", "SANMismatch", "certificate in Secret vpn-server-tls lacks DNS name vpn2.example.com, IP address 2001:db8::1; cert-manager: DNS names do not match")},
		{"renewal due, within grace", gateway(), issuerOK, with(func(c *certState) { c.RenewalTime = ptr.To(now.Add(-30 * time.Minute)) }),
			condTrue("CertificateReady", "Ready", "certificate in Secret vpn-server-tls covers vpn.example.com, 198.51.100.10")},
		{"renewal overdue", gateway(), issuerOK, with(func(c *certState) {
			c.RenewalTime = ptr.To(now.Add(-2 * time.Hour))
			c.Issuing = &metav1.Condition{Status: metav1.ConditionTrue, Reason: "Renewing", Message: "Renewing certificate as renewal was scheduled at 2026-11-27"}
		}), condFalse("CertificateReady", "CertificateExpiring", "certificate in Secret vpn-server-tls is past its renewal time and cert-manager has not renewed it; it expires at status.certificateNotAfter; cert-manager: Renewing certificate as renewal was scheduled at 2026-11-27")},
		{"expired", gateway(), issuerOK, with(func(c *certState) {
			c.Leaf = leafFor([]string{"vpn.example.com"}, []string{"198.51.100.10"}, now.Add(-time.Minute))
		}), condFalse("CertificateReady", "CertificateExpiring", "certificate in Secret vpn-server-tls has expired and was not renewed")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, certificateCondition(tc.gw, tc.issuer, tc.cert, now)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkloadCondition(t *testing.T) {
	base := workloadState{Name: "vpn-gateway", Found: true, NodeSelectorMatches: -1, Desired: 2, Generation: 3, ObservedGeneration: 3, Ready: 2, Updated: 2, CurrentRevision: "a", UpdateRevision: "a"}
	with := func(f func(*workloadState)) workloadState { w := base; f(&w); return w }
	tests := []struct {
		name string
		gw   *v1alpha1.VPNGateway
		w    workloadState
		want metav1.Condition
	}{
		{"ready", gateway(), base, condTrue("WorkloadReady", "Ready", "2 of 2 gateway pods are ready")},
		{"no nodes", gateway(), with(func(w *workloadState) {
			w.NodeSelectorMatches, w.NodeSelector = 0, map[string]string{"zone": "edge", "ikegate.io/gateway": "true"}
		}),
			condFalse("WorkloadReady", "NoNodesSelected", "no node matches the node selector ikegate.io/gateway=true,zone=edge (exposure.nodeSelector and the manager's policy.nodeSelector)")},
		{"not created", gateway(), workloadState{Name: "vpn-gateway", NodeSelectorMatches: -1},
			condFalse("WorkloadReady", "Reconciling", "StatefulSet vpn-gateway not created yet")},
		{"spec not observed", gateway(), with(func(w *workloadState) { w.ObservedGeneration = 2 }),
			condFalse("WorkloadReady", "RollingOut", "StatefulSet vpn-gateway has not observed its latest spec yet")},
		{"pods missing", gateway(), with(func(w *workloadState) { w.Ready = 1 }),
			condFalse("WorkloadReady", "PodsUnavailable", "1 of 2 gateway pods of StatefulSet vpn-gateway are ready")},
		{"rolling", gateway(), with(func(w *workloadState) { w.UpdateRevision, w.Updated = "b", 1 }),
			condFalse("WorkloadReady", "RollingOut", "1 of 2 gateway pods of StatefulSet vpn-gateway run the current template")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, workloadCondition(tc.gw, tc.w)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigAppliedCondition(t *testing.T) {
	two := func(agents ...v1alpha1.AgentStatus) *v1alpha1.VPNGateway {
		return gateway(func(g *v1alpha1.VPNGateway) {
			g.Generation = 4
			g.Spec.Exposure.Replicas = 2
			g.Status.Agents = agents
		})
	}
	tests := []struct {
		name string
		gw   *v1alpha1.VPNGateway
		want metav1.Condition
	}{
		{"all applied", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4}),
			condTrue("ConfigApplied", "Ready", "all 2 gateway pods hold generation 4")},
		{"no reports", two(), condFalse("ConfigApplied", "ApplyPending", "vpn-gateway-0, vpn-gateway-1 have not applied generation 4 yet")},
		{"one behind", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 3}),
			condFalse("ConfigApplied", "ApplyPending", "vpn-gateway-1 has not applied generation 4 yet")},
		{"stale pod does not count", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4},
			v1alpha1.AgentStatus{Pod: "vpn-gateway-2", LastError: "old"}),
			condTrue("ConfigApplied", "Ready", "all 2 gateway pods hold generation 4")},
		{"refused", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 3, LastError: "loading pool staff: address in use"}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4}),
			condFalse("ConfigApplied", "ApplyFailed", "charon refused the configuration on vpn-gateway-0: loading pool staff: address in use")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, configAppliedCondition(tc.gw)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidAndReadyConditions(t *testing.T) {
	problems := []swan.Problem{
		{Reason: "PoolOverlap", Kind: "MobilePool", Name: "staff", Message: "addresses 10.3.200.0/24 overlap 10.3.200.128/25 of MobilePool guests"},
		{Reason: "PoolOverlapsLocalNetwork", Kind: "MobilePool", Name: "staff", Message: "addresses 10.3.200.0/24 overlap local network 10.3.200.0/23 of MobilePool staff"},
	}
	got := validCondition(problems)
	want := condFalse("Valid", "PoolOverlap", "addresses 10.3.200.0/24 overlap 10.3.200.128/25 of MobilePool guests; addresses 10.3.200.0/24 overlap local network 10.3.200.0/23 of MobilePool staff")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("valid (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(condTrue("Valid", "Ready", "references resolve and nothing conflicts"), validCondition(nil)); diff != "" {
		t.Errorf("valid without problems (-want +got):\n%s", diff)
	}

	okC := condTrue("X", "Ready", "fine")
	tests := []struct {
		name  string
		conds []metav1.Condition
		want  metav1.Condition
	}{
		{"all true", []metav1.Condition{okC, okC}, condTrue("Ready", "Ready", "the gateway serves clients")},
		{"first failure wins", []metav1.Condition{okC, condFalse("CertificateReady", "SANMismatch", "lacks DNS name b"), condFalse("WorkloadReady", "PodsUnavailable", "0 of 1")},
			condFalse("Ready", "SANMismatch", "CertificateReady: lacks DNS name b")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, readyCondition(tc.conds...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAGatewayWhoseCharonHoldsNoConnectionIsNotReady(t *testing.T) {
	n := func(v int32) *int32 { return &v }
	two := func(agents ...v1alpha1.AgentStatus) *v1alpha1.VPNGateway {
		return gateway(func(g *v1alpha1.VPNGateway) {
			g.Generation = 4
			g.Spec.Exposure.Replicas = 2
			g.Status.Agents = agents
		})
	}
	okC := condTrue("X", "Ready", "fine")
	serving := condTrue("Ready", "Ready", "the gateway serves clients")
	tests := []struct {
		name  string
		gw    *v1alpha1.VPNGateway
		conds []metav1.Condition
		want  metav1.Condition
	}{
		{"both pods serve", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4, Connections: n(1)}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4, Connections: n(2)}),
			[]metav1.Condition{okC}, serving},
		{"no connection", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4, Connections: n(0)}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4, Connections: n(0)}),
			[]metav1.Condition{okC}, condFalse("Ready", "NoConnections",
				"charon on vpn-gateway-0, vpn-gateway-1 holds no connection, so it refuses every client: no MobilePool has a valid, enabled user and no Tunnel was accepted")},
		{"an agent that never said counts as serving", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4}, v1alpha1.AgentStatus{Pod: "vpn-gateway-1", AppliedGeneration: 4}),
			[]metav1.Condition{okC}, serving},
		{"a report of an older generation does not count", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 3, Connections: n(0)}),
			[]metav1.Condition{okC}, serving},
		{"another failure comes first", two(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", AppliedGeneration: 4, Connections: n(0)}),
			[]metav1.Condition{condFalse("WorkloadReady", "PodsUnavailable", "0 of 2")}, condFalse("Ready", "PodsUnavailable", "WorkloadReady: 0 of 2")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, gatewayReadyCondition(tc.gw, tc.conds...)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMemberReadyCondition(t *testing.T) {
	withConds := func(conds ...metav1.Condition) *v1alpha1.VPNGateway {
		return gateway(func(g *v1alpha1.VPNGateway) { g.Status.Conditions = conds })
	}
	v, c, w := condTrue("Valid", "Ready", ""), condTrue("CertificateReady", "Ready", ""), condTrue("WorkloadReady", "Ready", "")
	applied := condTrue("ConfigApplied", "Ready", "")
	valid := condTrue("Valid", "Ready", "ok")
	notServing := condFalse("Ready", "GatewayNotReady", "VPNGateway vpn is not serving clients; see its conditions")
	tests := []struct {
		name  string
		valid metav1.Condition
		gw    *v1alpha1.VPNGateway
		want  metav1.Condition
	}{
		{"ready", valid, withConds(v, c, w, applied), condTrue("Ready", "Ready", "VPNGateway vpn serves clients")},
		{"gateway applying a new generation", valid, withConds(v, c, w, condFalse("ConfigApplied", "ApplyPending", "")), condTrue("Ready", "Ready", "VPNGateway vpn serves clients")},
		{"invalid", condFalse("Valid", "SecretNotFound", "password: Secret jimp not found"), withConds(v, c, w, applied), condFalse("Ready", "SecretNotFound", "password: Secret jimp not found")},
		{"charon refused", valid, withConds(v, c, w, condFalse("ConfigApplied", "ApplyFailed", "x")), notServing},
		{"no pods", valid, withConds(v, c, condFalse("WorkloadReady", "PodsUnavailable", ""), applied), notServing},
		{"certificate", valid, withConds(v, condFalse("CertificateReady", "SANMismatch", ""), w, applied), notServing},
		{"gateway without status", valid, gateway(), notServing},
		{"gateway missing", valid, nil, condFalse("Ready", "GatewayNotFound", "gateway not found")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, memberReadyCondition(tc.valid, tc.gw)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithPhaseError(t *testing.T) {
	ok := condTrue("WorkloadReady", "Ready", "1 of 1 gateway pods are ready")
	if diff := cmp.Diff(ok, withPhaseError(ok, nil)); diff != "" {
		t.Errorf("without error (-want +got):\n%s", diff)
	}
	err := errors.New(`applying StatefulSet vpn-gateway: StatefulSet.apps "vpn-gateway" is invalid: spec.template.spec.containers[0].image: Required value`)
	want := condFalse("WorkloadReady", "ReconcileError", err.Error())
	if diff := cmp.Diff(want, withPhaseError(ok, err)); diff != "" {
		t.Errorf("with error (-want +got):\n%s", diff)
	}
}

func TestTunnelReadyCondition(t *testing.T) {
	ready := condTrue(v1alpha1.ConditionReady, v1alpha1.ReasonReady, "VPNGateway vpn serves clients")
	established := func(s metav1.ConditionStatus) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionEstablished, Status: s, Reason: v1alpha1.ReasonConnecting}}
	}
	tests := []struct {
		name  string
		ready metav1.Condition
		conds []metav1.Condition
		want  metav1.ConditionStatus
	}{
		{"established", ready, established(metav1.ConditionTrue), metav1.ConditionTrue},
		{"children not installed", ready, established(metav1.ConditionFalse), metav1.ConditionFalse},
		{"not reported yet", ready, nil, metav1.ConditionFalse},
		{"gateway not serving wins", condFalse(v1alpha1.ConditionReady, v1alpha1.ReasonGatewayNotReady, "x"), established(metav1.ConditionTrue), metav1.ConditionFalse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tunnelReadyCondition(tc.ready, tc.conds)
			if got.Status != tc.want {
				t.Errorf("Ready = %s (%s), want %s", got.Status, got.Reason, tc.want)
			}
			if tc.want == metav1.ConditionFalse && tc.ready.Status == metav1.ConditionTrue && got.Reason != v1alpha1.ReasonConnecting {
				t.Errorf("Reason %s, want Connecting", got.Reason)
			}
		})
	}
}

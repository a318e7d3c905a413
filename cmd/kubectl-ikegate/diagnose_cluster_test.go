package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testenv"
)

// TestDiagnoseReadsTheClusterAgentsFindings writes what an agent writes
// (recent failures in the gateway's status, Warning Events) into a real
// API server and reads it back through the command, per object asked for.
func TestDiagnoseReadsTheClusterAgentsFindings(t *testing.T) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	_, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	ctx := context.Background()
	const ns = "vpn"
	at := metav1.NewTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp"},
		Spec: v1alpha1.VPNGatewaySpec{Hostnames: []v1alpha1.Hostname{"vpn.example.com"}}}
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"},
		Spec: v1alpha1.VPNUserSpec{GatewayRef: v1alpha1.GatewayReference{Name: "corp"}, Identity: "jimp@example.com",
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "jimp", Key: "password"}}}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, gw, user} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	gw.Status.Agents = []v1alpha1.AgentStatus{{Pod: "corp-gateway-0", RecentFailures: []v1alpha1.RecentFailure{{
		Phase: "IKE_SA_INIT", Reason: v1alpha1.ReasonProposalMismatch, Kind: "VPNGateway", Name: "corp", Peer: "192.0.2.3",
		RemoteAddress: "192.0.2.3", Count: 2, FirstSeen: at, LastSeen: at,
		Message: "IKE_SA_INIT failed (ProposalMismatch) for 192.0.2.3: the peer offered IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024. Fix: make the client's IKE proposal share encryption with the gateway's",
	}, {
		Phase: "IKE_AUTH", Reason: v1alpha1.ReasonAuthenticationFailed, Kind: "VPNUser", Name: "jimp", Peer: "jimp@example.com",
		RemoteAddress: "192.0.2.2", Count: 5, FirstSeen: at, LastSeen: metav1.NewTime(at.Add(time.Minute)),
		Message: "IKE_AUTH failed (AuthenticationFailed) for jimp@example.com from 192.0.2.2: EAP-MS-CHAPv2 verification failed. Fix: check the password (or credentials) the client uses for jimp@example.com",
	}}}}
	if err := c.Status().Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: "jimp.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "VPNUser", Namespace: ns, Name: "jimp", APIVersion: v1alpha1.GroupVersion.String()},
		Reason:         v1alpha1.ReasonDisabled, Type: corev1.EventTypeWarning, Count: 1,
		Message:        "ended the session of jimp@example.com from 192.0.2.2: the user is disabled",
		Source:         corev1.EventSource{Component: "ikegate-agent", Host: "corp-gateway-0"},
		FirstTimestamp: metav1.NewTime(at.Add(2 * time.Minute)), LastTimestamp: metav1.NewTime(at.Add(2 * time.Minute)),
	}
	if err := c.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		arg          string
		want, absent []string
	}{
		{arg: "corp", want: []string{"ProposalMismatch", "AuthenticationFailed", "Disabled", "3DES_CBC", "check the password", "reported on:    VPNUser/jimp, 5 time(s), by corp-gateway-0"}},
		{arg: "vpnuser/jimp", want: []string{"AuthenticationFailed", "jimp@example.com", "Disabled", "the user is disabled"}, absent: []string{"ProposalMismatch"}},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			out, errOut, err := runCLI(t, "diagnose", "--kubeconfig", kubeconfig, "-n", ns, tc.arg)
			if err != nil {
				t.Fatalf("diagnose %s: %v\n%s", tc.arg, err, errOut)
			}
			if !strings.HasPrefix(out, "#  WHEN") {
				t.Errorf("Output is not the --log table:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("diagnose %s lacks %q:\n%s", tc.arg, w, out)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(out, w) {
					t.Errorf("diagnose %s shows %q, which is not about it:\n%s", tc.arg, w, out)
				}
			}
		})
	}
	if _, _, err := runCLI(t, "diagnose", "--kubeconfig", kubeconfig, "-n", ns, "vpnuser/nobody"); err == nil {
		t.Error("diagnose of a missing VPNUser succeeded")
	}
}

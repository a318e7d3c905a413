package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// reconciles is controller-runtime's count of the named controller's
// reconciles in this process so far.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestAgentReportsOnlyRunTheirSums has three agents report, counts the
// gateway reconciles their reports cause (none: only the sums follow), then
// scales the gateway down and checks that the reports of the pods gone are
// removed and counted no more.
func TestAgentReportsOnlyRunTheirSums(t *testing.T) {
	c := startSeedGateway(t)
	ctx := context.Background()
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}}
	gwConds := func() []metav1.Condition { return gw.Status.Conditions }
	mustGet(t, c, ns, "vpn", gw)
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.Exposure.Replicas = 3
	if err := c.Patch(ctx, gw, patch); err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Labels: map[string]string{"ikegate.io/gateway": "true"}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CertificateReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	eventually(t, "StatefulSet of 3", func() error {
		var sts appsv1.StatefulSet
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-gateway"}, &sts); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 3 {
			return fmt.Errorf("replicas %d", *sts.Spec.Replicas)
		}
		return nil
	})
	// Play the StatefulSet controller and the kubelet.
	setStatefulSetStatus(t, c, ns, "vpn-gateway", 3)
	eventually(t, "WorkloadReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionTrue, v1alpha1.ReasonReady))

	report := func(pod string, sessions int32) {
		agentReport(t, c, gw, v1alpha1.AgentStatus{Pod: pod, AppliedGeneration: gw.Generation, Sessions: sessions})
	}
	sums := func(sessions, ready int32) func() error {
		return func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
				return err
			}
			if gw.Status.Sessions != sessions || gw.Status.ReadyReplicas != ready {
				return fmt.Errorf("sessions %d readyReplicas %d, want %d and %d (agents %v)", gw.Status.Sessions, gw.Status.ReadyReplicas, sessions, ready, gw.Status.Agents)
			}
			return nil
		}
	}

	t.Run("reports run the sums only", func(t *testing.T) {
		for i, pod := range []string{"vpn-gateway-0", "vpn-gateway-1", "vpn-gateway-2"} {
			report(pod, int32(i+1))
		}
		eventually(t, "all three counted", sums(6, 3))
		eventually(t, "gateway Ready", conditionIs(c, gw, gwConds, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
		// Settle: no gateway reconcile for a second.
		var before float64
		eventually(t, "gateway reconciles settled", func() error {
			a := reconciles(t, "vpngateway")
			time.Sleep(time.Second)
			if b := reconciles(t, "vpngateway"); a != b {
				return fmt.Errorf("still reconciling: %v -> %v", a, b)
			}
			before = a
			return nil
		})
		sumsBefore := reconciles(t, "gatewayagents")
		for n := int32(1); n <= 10; n++ {
			report("vpn-gateway-1", 10*n)
			eventually(t, "the report counted", sums(1+10*n+3, 3))
		}
		if got := reconciles(t, "vpngateway") - before; got != 0 {
			t.Errorf("10 agent reports ran %v gateway reconciles, want 0", got)
		}
		if got := reconciles(t, "gatewayagents") - sumsBefore; got < 10 {
			t.Errorf("10 agent reports ran %v sums, want at least 10", got)
		}
	})

	t.Run("scaled-down pods' reports go", func(t *testing.T) {
		mustGet(t, c, ns, "vpn", gw)
		patch := client.MergeFrom(gw.DeepCopy())
		gw.Spec.Exposure.Replicas = 1
		if err := c.Patch(ctx, gw, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, "only vpn-gateway-0 reported", func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
				return err
			}
			if len(gw.Status.Agents) != 1 || gw.Status.Agents[0].Pod != "vpn-gateway-0" {
				return fmt.Errorf("agents %v", gw.Status.Agents)
			}
			return nil
		})
		eventually(t, "sums of the pod left", sums(1, 0))
		// The pod left reports the new generation; a pod going away that
		// reports once more is removed again.
		report("vpn-gateway-0", 4)
		report("vpn-gateway-2", 7)
		eventually(t, "sums after the late report", sums(4, 1))
		eventually(t, "late report removed", func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
				return err
			}
			if len(gw.Status.Agents) != 1 {
				return fmt.Errorf("agents %v", gw.Status.Agents)
			}
			return nil
		})
	})
}

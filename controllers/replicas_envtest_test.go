package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestRoutedGatewayRoutesStaticUsersAndTunnelsToTheirReplica runs the
// manager against a real API server with a Routed gateway of two replicas,
// a user with a static address and a Tunnel, and plays the agents'
// reports: the static address routes to the owner of its slice until
// another replica reports holding it, the Tunnel's remote network routes
// to whichever replica reports the tunnel Lease, and the gateway's
// PodDisruptionBudget comes back when deleted.
func TestRoutedGatewayRoutesStaticUsersAndTunnelsToTheirReplica(t *testing.T) {
	c := startSeedGateway(t)
	ctx := context.Background()
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{}
	mustGet(t, c, ns, "vpn", gw)
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.Exposure.Replicas = 2
	gw.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathRouted
	if err := c.Patch(ctx, gw, patch); err != nil {
		t.Fatal(err)
	}
	user := &v1alpha1.VPNUser{}
	mustGet(t, c, ns, "jimp", user)
	patch = client.MergeFrom(user.DeepCopy())
	// Slice 12 of 10.3.200.0/24: replica 1's.
	user.Spec.StaticAddress = "10.3.200.200"
	if err := c.Patch(ctx, user, patch); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, gen.Secret(ns, "branch-psk", map[string]string{gen.PSKKey: "a-long-enough-pre-shared-key-0123456789"})); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, gen.Tunnel(ns, "branch")); err != nil {
		t.Fatal(err)
	}

	static := func(pod, hop string) v1alpha1.ReturnRoute {
		return v1alpha1.ReturnRoute{Destination: "10.3.200.200/32", Pool: "staff", User: "jimp", Pod: pod, NextHop: hop}
	}
	tunnel := func(pod, hop string) v1alpha1.ReturnRoute {
		return v1alpha1.ReturnRoute{Destination: "10.20.0.0/16", Tunnel: "branch", Pod: pod, NextHop: hop}
	}
	routesInclude := func(want ...v1alpha1.ReturnRoute) func() error {
		return func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
				return err
			}
			for _, w := range want {
				if !slices.Contains(gw.Status.ReturnRoutes, w) {
					return fmt.Errorf("no route %+v in %+v", w, gw.Status.ReturnRoutes)
				}
			}
			return nil
		}
	}
	report := func(a v1alpha1.AgentStatus) {
		a.AppliedGeneration = gw.Generation
		agentReport(t, c, gw, a)
	}

	t.Run("before the agents report", func(t *testing.T) {
		eventually(t, "routes without next hops", routesInclude(static("vpn-gateway-1", ""), tunnel("", "")))
	})
	t.Run("static address to its slice's replica, tunnel to the Lease holder", func(t *testing.T) {
		report(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.10"})
		report(v1alpha1.AgentStatus{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11", HoldsTunnels: true})
		eventually(t, "routes to vpn-gateway-1", routesInclude(static("vpn-gateway-1", "192.0.2.11"), tunnel("vpn-gateway-1", "192.0.2.11")))
	})
	t.Run("both follow the agents' reports", func(t *testing.T) {
		report(v1alpha1.AgentStatus{Pod: "vpn-gateway-1", NodeAddress: "192.0.2.11"})
		report(v1alpha1.AgentStatus{Pod: "vpn-gateway-0", NodeAddress: "192.0.2.10", HoldsTunnels: true, ForeignStaticAddresses: []string{"10.3.200.200"}})
		eventually(t, "routes to vpn-gateway-0", routesInclude(static("vpn-gateway-0", "192.0.2.10"), tunnel("vpn-gateway-0", "192.0.2.10")))
	})
	t.Run("the PodDisruptionBudget comes back", func(t *testing.T) {
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.GatewayWorkloadName("vpn")}}
		eventually(t, "the PodDisruptionBudget", func() error { return c.Get(ctx, client.ObjectKeyFromObject(pdb), pdb) })
		uid := pdb.UID
		if err := c.Delete(ctx, pdb); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new PodDisruptionBudget", func() error {
			got := &policyv1.PodDisruptionBudget{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(pdb), got); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("not made again yet")
				}
				return err
			}
			if got.UID == uid {
				return fmt.Errorf("still the deleted one")
			}
			return nil
		})
	})
}

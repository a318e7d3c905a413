package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
)

// TestTwoReplicasSplitThePoolAndBothReturnPathsWork runs two gateway
// replicas on two "nodes" and four clients, two per replica: every client
// gets an address of its own replica's slices (as the pool's status lists
// them), no two share one, each session names its replica, and traffic
// flows both ways on a Routed return path (the LAN routes each slice to
// the node the gateway's status names) and then, with those routes gone,
// on a Masquerade one.
func TestTwoReplicasSplitThePoolAndBothReturnPathsWork(t *testing.T) {
	r := newReplicaRig(t, 2, 4, v1alpha1.ReturnPathRouted)
	ctx := context.Background()

	var pool v1alpha1.MobilePool
	waitFor(t, 30*time.Second, "the pool's status listing both replicas' slices", func() (bool, string) {
		pool = r.pool(t)
		return len(pool.Status.Replicas) == 2, fmt.Sprintf("replicas %+v", pool.Status.Replicas)
	})
	slicesOf := map[string][]netip.Prefix{}
	for _, rep := range pool.Status.Replicas {
		for _, s := range rep.Slices {
			slicesOf[rep.Pod] = append(slicesOf[rep.Pod], netip.MustParsePrefix(s))
		}
	}
	for _, p := range slicesOf[r.nodes[0].pod] {
		if slices.ContainsFunc(slicesOf[r.nodes[1].pod], p.Overlaps) {
			t.Fatalf("Slices of the replicas overlap: %v", slicesOf)
		}
	}

	vips := map[netip.Addr]string{}
	for _, cl := range r.clients {
		vip := cl.connect(t)
		pod := r.nodes[cl.node].pod
		if !slices.ContainsFunc(slicesOf[pod], func(p netip.Prefix) bool { return p.Contains(vip) }) {
			t.Errorf("%s on %s got %s, outside its slices %v", cl.name, pod, vip, slicesOf[pod])
		}
		if other, dup := vips[vip]; dup {
			t.Errorf("%s and %s share %s", cl.name, other, vip)
		}
		vips[vip] = cl.name
	}
	for _, cl := range r.clients {
		pod := r.nodes[cl.node].pod
		waitFor(t, 20*time.Second, cl.name+"'s session naming "+pod, func() (bool, string) {
			u := getUser(t, r.c, cl.name)
			return len(u.Status.Sessions) == 1 && u.Status.Sessions[0].Pod == pod, sessionsString(u)
		})
	}

	// Routed: the LAN installs the routes the gateway's status lists.
	var routes []v1alpha1.ReturnRoute
	waitFor(t, 30*time.Second, "return routes with both nodes as next hops", func() (bool, string) {
		routes = r.gateway(t).Status.ReturnRoutes
		hops := map[string]bool{}
		for _, rt := range routes {
			hops[rt.NextHop] = true
		}
		return len(routes) == 16 && hops[r.nodes[0].addr] && hops[r.nodes[1].addr] && !hops[""], fmt.Sprintf("routes %+v", routes)
	})
	for _, rt := range routes {
		r.lan.AddRoute(t, rt.Destination, "via", rt.NextHop, "dev", r.node(t, rt.NextHop).lanDev, "onlink")
	}
	for _, cl := range r.clients {
		if ok, out := pings(cl.ns, "", lanAddr, 3); !ok {
			t.Errorf("Routed: %s cannot ping the LAN:\n%s", cl.name, out)
		}
		vip := cl.vip(t).String()
		// From the LAN host: the client's tunnel carries lanNet only.
		if ok, out := pings(r.lan, lanAddr, vip, 3); !ok {
			t.Errorf("Routed: the LAN cannot reach %s at %s:\n%s", cl.name, vip, out)
		}
	}

	// Masquerade: the LAN forgets the pool, the gateway hides it.
	gw := r.gateway(t)
	gw.Spec.Exposure.ReturnPath = v1alpha1.ReturnPathMasquerade
	if err := r.c.Update(ctx, &gw); err != nil {
		t.Fatalf("Switching to Masquerade: %v", err)
	}
	for _, rt := range routes {
		r.lan.Run(t, "ip", "route", "del", rt.Destination)
	}
	waitFor(t, 30*time.Second, "both agents applying the Masquerade gateway", func() (bool, string) {
		g := r.gateway(t)
		n := 0
		for _, a := range g.Status.Agents {
			if a.AppliedGeneration >= gw.Generation && a.LastError == "" {
				n++
			}
		}
		return n == 2 && len(g.Status.ReturnRoutes) == 0, agentsString(g.Status.Agents)
	})
	for _, nd := range r.nodes {
		if out := nd.ns.Run(t, "nft", "list", "chain", "inet", firewall.TableName(namespace, gatewayName), firewall.ChainPostrouting); !strings.Contains(out, "masquerade") {
			t.Errorf("%s's firewall does not masquerade:\n%s", nd.pod, out)
		}
	}
	for _, cl := range r.clients {
		if ok, out := pings(cl.ns, "", lanAddr, 3); !ok {
			t.Errorf("Masquerade: %s cannot ping the LAN:\n%s", cl.name, out)
		}
	}
	t.Logf("Clients: %v", vips)
}

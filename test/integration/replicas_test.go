package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
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

// TestNewClientsAllDiallingOneReplicaAreSpreadOverBoth has four clients
// dial replica 0 one after the other: replica 0's agent redirects new
// sessions to replica 1 whenever it holds two more, so they end up two
// and two, stay there (nobody is sent back), and every client reaches
// the LAN. It reports how long each moved client took from its session
// on replica 0 to its session on replica 1.
func TestNewClientsAllDiallingOneReplicaAreSpreadOverBoth(t *testing.T) {
	r := newReplicaRigDialing(t, 2, 4, v1alpha1.ReturnPathMasquerade, func(int) int { return 0 })
	r.waitReported(t)

	// Each client's watcher notes when it is first connected to replica 1.
	connected := make([]time.Time, len(r.clients))
	moved := make([]time.Time, len(r.clients))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, cl := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if on, _ := cl.replicaOf(ctx); on == r.nodes[1].addr {
					moved[i] = time.Now()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for i, cl := range r.clients {
		cl.connect(t)
		connected[i] = time.Now()
	}
	on := map[string][]string{}
	waitFor(t, 60*time.Second, "two clients on each replica", func() (bool, string) {
		on = map[string][]string{}
		for _, cl := range r.clients {
			addr, n := cl.replicaOf(context.Background())
			if n != 1 {
				return false, fmt.Sprintf("%s has %d IKE_SAs", cl.name, n)
			}
			on[addr] = append(on[addr], cl.name)
		}
		return len(on[r.nodes[0].addr]) == 2 && len(on[r.nodes[1].addr]) == 2, fmt.Sprintf("clients by replica %v", on)
	})
	// Nobody moves again: the replicas are even. (The watchers of the
	// moved clients have seen them meanwhile.)
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()
	for _, cl := range r.clients {
		addr, n := cl.replicaOf(context.Background())
		if n != 1 || !slices.Contains(on[addr], cl.name) {
			t.Errorf("%s moved again: now %d IKE_SAs, on %s; was %v", cl.name, n, addr, on)
		}
	}

	vips := map[netip.Addr]string{}
	var took []time.Duration
	for i, cl := range r.clients {
		if ok, out := pings(cl.ns, "", lanAddr, 3); !ok {
			t.Errorf("%s cannot ping the LAN:\n%s", cl.name, out)
		}
		vip := cl.vip(t)
		if other, dup := vips[vip]; dup {
			t.Errorf("%s and %s share %s", cl.name, other, vip)
		}
		vips[vip] = cl.name
		if moved[i].IsZero() {
			continue
		}
		if !slices.ContainsFunc(swan.ReplicaPrefixes(netip.MustParsePrefix(poolNet), swan.Replica{Ordinal: 1, Count: 2}), func(p netip.Prefix) bool { return p.Contains(vip) }) {
			t.Errorf("%s moved to %s but holds %s, not an address of its slices", cl.name, r.nodes[1].pod, vip)
		}
		took = append(took, moved[i].Sub(connected[i]))
		t.Logf("%s: connected to %s, on %s %v later", cl.name, r.nodes[0].pod, r.nodes[1].pod, moved[i].Sub(connected[i]).Round(time.Millisecond))
	}
	if len(took) != 2 {
		t.Fatalf("%d clients were seen moving to %s, want 2", len(took), r.nodes[1].pod)
	}
	// What keeps replica 1 from sending them on: charon's word that they
	// came by redirect (REDIRECTED_FROM).
	if n := strings.Count(r.nodes[1].gw.Log(), "client got redirected from"); n != 2 {
		t.Errorf("%s's charon logged %d clients redirected to it, want 2", r.nodes[1].pod, n)
	}
	slices.Sort(took)
	t.Logf("Moved clients: median %v, worst %v from their session on %s to their session on %s",
		((took[0] + took[1]) / 2).Round(time.Millisecond), took[1].Round(time.Millisecond), r.nodes[0].pod, r.nodes[1].pod)
}

// replicaOf is the gateway address of the client's established IKE_SA
// carrying an installed CHILD_SA, and how many IKE_SAs it has.
func (cl *replicaClient) replicaOf(ctx context.Context) (string, int) {
	sas, err := vici.ListSAs(ctx, cl.vici)
	if err != nil {
		return "", 0
	}
	addr := ""
	for _, sa := range sas {
		if sa.State == "ESTABLISHED" && slices.ContainsFunc(sa.Children, func(c vici.ChildSA) bool { return c.State == "INSTALLED" }) {
			addr = sa.RemoteHost
		}
	}
	return addr, len(sas)
}

// TestAStaticUserIsSteeredToItsReplicaAndRoutedThere has a user whose
// static address lies in replica 1's slice dial replica 0: replica 0's
// agent redirects it to replica 1 at once, the gateway's return routes
// send the address to replica 1's node, and the LAN reaches the client
// there.
func TestAStaticUserIsSteeredToItsReplicaAndRoutedThere(t *testing.T) {
	r := newReplicaRigDialing(t, 2, 1, v1alpha1.ReturnPathRouted, func(int) int { return 0 })
	const static = "10.3.200.200" // slice 12: replica 1's
	cl := r.clients[0]
	u := getUser(t, r.c, cl.name)
	u.Spec.StaticAddress = static
	if err := r.c.Update(context.Background(), &u); err != nil {
		t.Fatalf("Giving %s a static address: %v", cl.name, err)
	}
	for _, nd := range r.nodes {
		waitFor(t, 30*time.Second, nd.pod+" serving the static address", func() (bool, string) {
			inv, err := vici.ReadInventory(context.Background(), nd.vici)
			if err != nil {
				return false, err.Error()
			}
			return slices.ContainsFunc(inv.Pools, func(p vici.PoolState) bool { return p.Base == static || p.Base == static+"/32" }), fmt.Sprintf("pools %+v", inv.Pools)
		})
	}
	want := v1alpha1.ReturnRoute{Destination: static + "/32", Pool: poolName, User: cl.name, Pod: r.nodes[1].pod, NextHop: r.nodes[1].addr}
	var routes []v1alpha1.ReturnRoute
	waitFor(t, 30*time.Second, "a return route of the static address toward "+r.nodes[1].pod, func() (bool, string) {
		routes = r.gateway(t).Status.ReturnRoutes
		return slices.Contains(routes, want) && !slices.ContainsFunc(routes, func(rt v1alpha1.ReturnRoute) bool { return rt.NextHop == "" }), fmt.Sprintf("routes %+v", routes)
	})

	cl.connect(t)
	waitFor(t, 30*time.Second, cl.name+" on "+r.nodes[1].pod, func() (bool, string) {
		addr, n := cl.replicaOf(context.Background())
		return addr == r.nodes[1].addr && n == 1, fmt.Sprintf("on %q with %d IKE_SAs", addr, n)
	})
	if vip := cl.vip(t); vip.String() != static {
		t.Errorf("%s holds %s, want its static address %s", cl.name, vip, static)
	}
	for _, rt := range routes {
		r.lan.AddRoute(t, rt.Destination, "via", rt.NextHop, "dev", r.node(t, rt.NextHop).lanDev, "onlink")
	}
	if ok, out := pings(cl.ns, "", lanAddr, 3); !ok {
		t.Errorf("%s cannot ping the LAN:\n%s", cl.name, out)
	}
	if ok, out := pings(r.lan, lanAddr, static, 3); !ok {
		t.Errorf("The LAN cannot reach %s at %s:\n%s", cl.name, static, out)
	}
	// Served where its slice is: no replica reports it held elsewhere.
	if got := r.gateway(t).Status.ReturnRoutes; !slices.Contains(got, want) {
		t.Errorf("the static address's route changed: %+v", got)
	}
}

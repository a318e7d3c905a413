package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/nftables"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// The scale-out topology: two gateway replicas, each in a namespace that
// plays its node, reached by the clients through a router namespace (the
// Internet) and reaching the LAN namespace over a link of its own. The
// LAN's host is lanAddr; the pool's local network is lanNet.
//
//	client i (198.18.i.2) -- inet -- node k (192.0.2.4k+2) -- LAN (10.10.k.1 / node 10.10.k.2)
//
// As a node has one address, the LAN reaches node k's public address over
// its link to it (routes "via 192.0.2.4k+2 dev <link> onlink").
//
// Node k also holds 10.3.0.(11+k) on its loopback.
type replicaRig struct {
	inet, lan *netns.NS
	nodes     []*replicaNode
	clients   []*replicaClient
	c         client.Client
	pki       *charontest.PKI
}

type replicaNode struct {
	pod string
	ns  *netns.NS
	gw  *charontest.Charon
	// addr is its public address (the node address its agent reports),
	// lanSide its address on the LAN link, lanDev the LAN's end of that
	// link, lanHost its address inside lanNet.
	addr, lanSide, lanDev, lanHost string
	vici                           *vici.Client
	agent                          *runningAgent
	// cut, once set, fails every API request of the node's agent: the
	// node is gone as far as the API server can tell.
	cut atomic.Bool
}

// rigLease is the tunnel Lease timing of the rig's agents: a dead
// holder's Lease runs out after 4 s, candidates try every 0.5 s.
var rigLease = agent.LeaseTiming{Duration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}

// cutTransport fails requests while cut is set.
type cutTransport struct {
	next http.RoundTripper
	cut  *atomic.Bool
}

func (c cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("node unreachable")
	}
	return c.next.RoundTrip(req)
}

type replicaClient struct {
	name, identity string
	ns             *netns.NS
	cl             *charontest.Charon
	vici           *vici.Client
	// node is the replica the client dials.
	node int
}

// nodeAddr is the public address of node k.
func nodeAddr(k int) string { return fmt.Sprintf("192.0.2.%d", 4*k+2) }

// newReplicaRig builds the topology with nodes replicas of a gateway whose
// return path is path, each replica's charon and agent, and n clients
// dialling the replicas in turn (client i dials node i mod nodes).
func newReplicaRig(t *testing.T, nodes, n int, path v1alpha1.ReturnPath) *replicaRig {
	t.Helper()
	return newReplicaRigDialing(t, nodes, n, path, func(i int) int { return i % nodes })
}

// newReplicaRigDialing is newReplicaRig with client i dialling node dial(i).
func newReplicaRigDialing(t *testing.T, nodes, n int, path v1alpha1.ReturnPath, dial func(i int) int) *replicaRig {
	t.Helper()
	require.Root(t)
	r := &replicaRig{inet: netns.New(t, "rpin"), lan: netns.New(t, "rpln")}
	r.inet.EnableForwarding(t)
	r.lan.AddLoopbackAddr(t, lanAddr+"/24")
	var addrs []string
	for k := range nodes {
		nd := &replicaNode{pod: v1alpha1.GatewayPodName(gatewayName, k), ns: netns.New(t, fmt.Sprintf("rpg%d", k)),
			addr: nodeAddr(k), lanSide: fmt.Sprintf("10.10.%d.2", k), lanHost: fmt.Sprintf("10.3.0.%d", 11+k)}
		netns.Veth(t, nd.ns, r.inet, nd.addr+"/30", fmt.Sprintf("192.0.2.%d/30", 4*k+1))
		_, nd.lanDev = netns.Veth(t, nd.ns, r.lan, nd.lanSide+"/30", fmt.Sprintf("10.10.%d.1/30", k))
		nd.ns.AddRoute(t, "default", "via", fmt.Sprintf("192.0.2.%d", 4*k+1))
		nd.ns.AddRoute(t, lanNet, "via", fmt.Sprintf("10.10.%d.1", k))
		// charon routes client addresses from an address of its own inside
		// the local traffic selector, as a node on the LAN has one.
		nd.ns.AddLoopbackAddr(t, nd.lanHost+"/32")
		nd.ns.EnableForwarding(t)
		r.nodes = append(r.nodes, nd)
		addrs = append(addrs, nd.addr)
	}
	r.pki = charontest.NewPKI(t, "Replica Test CA")
	server := r.pki.Server(t, hostname, append([]string{hostname}, addrs...)...)
	for _, nd := range r.nodes {
		nd.gw = charontest.Start(t, nd.ns, charontest.Options{Name: "gw", Userspace: true})
		nd.vici = vici.NewClient(nd.gw.VICISocket())
		t.Cleanup(func() { nd.vici.Close() })
	}
	cfg, c := startAPI(t)
	r.c = c
	createGateway(t, c, r.pki, server, addrs, gen2Replicas(nodes, path))
	for _, nd := range r.nodes {
		fw, err := firewall.NewApplier(firewall.TableName(namespace, gatewayName), nftables.WithNetNSFd(nd.ns.Fd()))
		if err != nil {
			t.Fatalf("Opening nftables in %s: %v", nd.pod, err)
		}
		ncfg := rest.CopyConfig(cfg)
		ncfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return cutTransport{rt, &nd.cut} })
		nd.agent = startAgent(t, ncfg, agentConfig{pod: nd.pod, gw: nd.gw, firewall: fw,
			nodeAddress: nd.addr, tunnelLease: rigLease, log: testr.New(t).WithName(nd.pod)})
	}
	for i := range n {
		cl := &replicaClient{name: fmt.Sprintf("user%d", i), node: dial(i), ns: netns.New(t, fmt.Sprintf("rpc%d", i))}
		cl.identity = cl.name + "@example.com"
		netns.Veth(t, cl.ns, r.inet, fmt.Sprintf("198.18.%d.2/24", i), fmt.Sprintf("198.18.%d.1/24", i))
		cl.ns.AddRoute(t, "default", "via", fmt.Sprintf("198.18.%d.1", i))
		if err := createUser(context.Background(), c, cl.name, cl.identity, "pw-"+cl.name); err != nil {
			t.Fatal(err)
		}
		cl.cl = charontest.Start(t, cl.ns, charontest.Options{Name: "cl", Userspace: true, Client: true})
		cl.vici = vici.NewClient(cl.cl.VICISocket())
		t.Cleanup(func() { cl.vici.Close() })
		conn, secret := clientConf("home", r.nodes[cl.node].addr, cl.identity, "pw-"+cl.name)
		loadClient(t, cl.cl, r.pki, []string{conn}, []string{secret})
		r.clients = append(r.clients, cl)
	}
	var users []string
	for _, cl := range r.clients {
		users = append(users, cl.name)
	}
	for _, nd := range r.nodes {
		nd.agent.waitReady(t, 60*time.Second)
		// Every replica serves every user; on a loaded machine a user's
		// password hash may reach a replica after it is ready.
		waitServed(t, nd.agent, users...)
	}
	return r
}

func gen2Replicas(n int, path v1alpha1.ReturnPath) func(*v1alpha1.VPNGateway) {
	return func(gw *v1alpha1.VPNGateway) {
		gw.Spec.Exposure.Replicas = int32(n)
		gw.Spec.Exposure.ReturnPath = path
	}
}

var vipRE = regexp.MustCompile(`ipsec0\s+inet (\d+\.\d+\.\d+\.\d+)/`)

// connect brings the client's tunnel up and returns its virtual IP.
func (cl *replicaClient) connect(t *testing.T) netip.Addr {
	t.Helper()
	if _, err := initiate(context.Background(), cl.vici, "home"); err != nil {
		t.Fatalf("%s: %v\n%s", cl.name, err, cl.cl.Log())
	}
	return cl.vip(t)
}

// vip is the client's virtual IP on its TUN device.
func (cl *replicaClient) vip(t *testing.T) netip.Addr {
	t.Helper()
	out := cl.ns.Run(t, "ip", "-4", "-o", "addr", "show")
	m := vipRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s has no virtual IP on ipsec0:\n%s", cl.name, out)
	}
	return netip.MustParseAddr(m[1])
}

// pings sends n pings from ns to addr (from the source address from, if
// set) until all come back, for at most reachWithin, and reports whether
// they did: on a loaded machine the userspace data path drops a packet
// now and then, which says nothing about the routes under test.
func pings(ns *netns.NS, from, addr string, n int) (bool, string) {
	deadline := time.Now().Add(reachWithin)
	for {
		ok, out := pingOnce(ns, from, addr, n)
		if ok || time.Now().After(deadline) {
			return ok, out
		}
	}
}

// reachWithin bounds how long pings tries.
const reachWithin = 15 * time.Second

// pingOnce sends n pings and reports whether all came back.
func pingOnce(ns *netns.NS, from, addr string, n int) (bool, string) {
	args := []string{"ping", "-c", fmt.Sprint(n), "-i", "0.2", "-W", "2", addr}
	if from != "" {
		args = append(args, "-I", from)
	}
	out, err := ns.Exec(args...)
	return err == nil && strings.Contains(out, fmt.Sprintf("%d received", n)), out
}

// waitReported waits until every replica's agent reported its node and
// the current configuration: a replica other agents can send clients to.
func (r *replicaRig) waitReported(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "every replica reporting its node", func() (bool, string) {
		gw := r.gateway(t)
		n := 0
		for _, a := range gw.Status.Agents {
			if a.NodeAddress != "" && a.AppliedGeneration >= gw.Generation {
				n++
			}
		}
		return n == len(r.nodes), agentsString(gw.Status.Agents)
	})
}

// gateway reads the VPNGateway.
func (r *replicaRig) gateway(t *testing.T) v1alpha1.VPNGateway {
	var gw v1alpha1.VPNGateway
	r.get(t, gatewayName, &gw)
	return gw
}

// pool reads the MobilePool.
func (r *replicaRig) pool(t *testing.T) v1alpha1.MobilePool {
	var p v1alpha1.MobilePool
	r.get(t, poolName, &p)
	return p
}

func (r *replicaRig) get(t *testing.T, name string, obj client.Object) {
	t.Helper()
	if err := r.c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("Reading %T %s: %v", obj, name, err)
	}
}

// addSite attaches the rig's site (rigSiteAddr, LAN rigSiteHost) to the
// Internet, starts its responder (for the tunnel from whichever replica
// serves it) and creates the rig's Tunnel.
func (r *replicaRig) addSite(t *testing.T) *netns.NS {
	t.Helper()
	site := netns.New(t, "rpst")
	netns.Veth(t, site, r.inet, rigSiteAddr+"/24", "203.0.113.1/24")
	site.AddRoute(t, "default", "via", "203.0.113.1")
	site.AddLoopbackAddr(t, rigSiteHost+"/24")
	cl := charontest.Start(t, site, charontest.Options{Name: "site", Userspace: true})
	loadSiteConf(t, cl, strings.Replace(strongSwanSite, "remote_addrs = "+rigGWAddr, "remote_addrs = %any", 1))
	createRigTunnel(t, r.c, r.pki, rigTunnelSpec())
	return site
}

// node is the rig's node whose public address is addr.
func (r *replicaRig) node(t *testing.T, addr string) *replicaNode {
	t.Helper()
	for _, nd := range r.nodes {
		if nd.addr == addr {
			return nd
		}
	}
	t.Fatalf("No node has address %q", addr)
	return nil
}

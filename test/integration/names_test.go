package integration

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/nftables"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// maximalName is a 253-character object name, the most the API server
// allows, with dots; the names differ only in their last characters.
func maximalName(tag string) string {
	return strings.Repeat("long.", 51)[:253-len(tag)] + tag
}

// TestMaximalNamesConverge runs a gateway whose MobilePool, Tunnel and
// VPNUser have maximal names next to ordinary ones: the agent applies all of
// it without an error, the firewall builds, the long-named user connects
// through the long-named pool, and deleting that user ends its session.
func TestMaximalNamesConverge(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		gwAddr   = "192.0.2.1"
		identity = "long@example.com"
		password = "pw-long"
		longNet  = "10.3.201.0/24"
	)
	longPool, tunnelName, userName := maximalName("ops"), maximalName("hq"), maximalName("usr")

	gwNS, clNS := netns.New(t, "nmgw"), netns.New(t, "nmcl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Names Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(ctx, c, "jimp", "jimp@example.com", "abc123"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		gen.Pool(namespace, longPool, longNet, gen.SplitTunnel(lanNet), gen.Allowing(lanNet), gen.Selecting(map[string]string{"team": "ops"})),
		gen.Secret(namespace, "hq-psk", map[string]string{gen.PSKKey: "a tunnel key long enough for PSK rules"}),
		&v1alpha1.Tunnel{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: tunnelName},
			Spec: v1alpha1.TunnelSpec{
				GatewayRef: v1alpha1.GatewayReference{Name: gatewayName},
				Remote:     v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.9"}},
				Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "hq-psk", Key: "psk"}}},
				Children: []v1alpha1.TunnelChild{{
					Name: "lan", LocalNetworks: []v1alpha1.CIDR{lanNet}, RemoteNetworks: []v1alpha1.CIDR{"10.9.0.0/24"},
					StartAction: "None",
				}},
			},
		},
		gen.Secret(namespace, "long-password", map[string]string{gen.PasswordKey: password}),
		gen.User(namespace, userName, identity, gen.WithPassword("long-password", gen.PasswordKey), gen.WithLabels(map[string]string{"team": "ops"})),
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %T %.20s...: %v", o, o.GetName(), err)
		}
	}

	table := firewall.TableName(namespace, gatewayName)
	fw, err := firewall.NewApplier(table, nftables.WithNetNSFd(gwNS.Fd()))
	if err != nil {
		t.Fatalf("Opening nftables in the gateway namespace: %v", err)
	}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, firewall: fw, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)

	// Converged: this pod applied the gateway's generation without an error.
	waitFor(t, 10*time.Second, "the agent's report of the applied generation", func() (bool, string) {
		var g v1alpha1.VPNGateway
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &g); err != nil {
			return false, err.Error()
		}
		for _, a := range g.Status.Agents {
			if a.AppliedGeneration == g.Generation && a.LastError == "" {
				return true, ""
			}
		}
		return false, "agents: " + agentsString(g.Status.Agents)
	})
	conns, err := connNames(ctx, gwVICI)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{swan.MobileConnectionName(poolName), swan.MobileConnectionName(longPool), swan.TunnelConnectionName(tunnelName)} {
		if !slices.Contains(conns, want) {
			t.Errorf("charon lacks connection %s: %v", want, conns)
		}
	}
	keys, err := sharedKeys(ctx, gwVICI)
	if err != nil || len(keys) != 1 {
		t.Fatalf("charon's shared keys = %v, %v; want the tunnel's only (the agent checks the users)", keys, err)
	}
	ag.waitServes(t, 2)
	ruleset := gwNS.Run(t, "nft", "list", "table", "inet", table)
	for _, chain := range []string{firewall.PoolChain(poolName), firewall.PoolChain(longPool)} {
		if !strings.Contains(ruleset, "chain "+chain+" {") {
			t.Errorf("Firewall lacks chain %s:\n%s", chain, ruleset)
		}
	}

	// The long-named user draws its address from the long-named pool.
	conn, secret := clientConf("home", gwAddr, identity, password)
	loadClient(t, cl, pki, []string{conn}, []string{secret})
	if _, err := initiate(ctx, clVICI, "home"); err != nil {
		t.Fatalf("The long-named user could not connect: %v", err)
	}
	addrs := clNS.Run(t, "ip", "-4", "-o", "addr", "show")
	if !regexp.MustCompile(`ipsec0\s+inet 10\.3\.201\.\d+/`).MatchString(addrs) {
		t.Fatalf("No virtual IP from %s on ipsec0:\n%s", longNet, addrs)
	}
	ping(t, clNS, 3)

	var u v1alpha1.VPNUser
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: userName}, &u); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &u); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted user's session to end", func() (bool, string) {
		sas, err := vici.ListSAs(ctx, clVICI)
		return err == nil && len(sas) == 0, "the client still has an IKE_SA"
	})
	ag.waitServes(t, 1)
}

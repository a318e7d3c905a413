package firewall_test

import (
	"net"
	"testing"
	"time"

	"github.com/google/nftables"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// TestRefusedObjectsOpenNothing builds the table from swan.Build over an
// accepted pool next to a newer pool that overlaps it (and sorts first by
// name, with an allow-all policy) and a Tunnel that Build refuses (its PSK
// Secret is missing) whose remote networks cover the pool's range. A client
// of the accepted pool reaches exactly its allow list: neither refused
// object's rules exist, and their ranges are dropped.
func TestRefusedObjectsOpenNothing(t *testing.T) {
	require.Root(t)

	gw := netns.New(t, "frgw")
	cl := netns.New(t, "frcl")
	lan := netns.New(t, "frlan")
	netns.Veth(t, gw, cl, gatewayWAN+"/24", clientWAN+"/24")
	netns.Veth(t, gw, lan, gatewayLAN+"/24", server+"/24")
	lan.AddLoopbackAddr(t, otherHost+"/32")
	lan.AddRoute(t, pool, "via", gatewayLAN)
	gw.EnableForwarding(t)

	seen := newRecorder()
	for _, addr := range []string{server + ":" + itoa(allowedPort), server + ":" + itoa(otherPort), otherHost + ":" + itoa(allowedPort)} {
		var ln net.Listener
		lan.MustDo(t, func() (err error) {
			ln, err = net.Listen("tcp4", addr)
			return err
		})
		t.Cleanup(func() { ln.Close() })
		go seen.serve(ln)
	}
	connectClient(t, gw, cl)

	fw, err := firewall.NewApplier(firewall.TableName("vpn", "vpn"), nftables.WithNetNSFd(gw.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Delete() })
	res := swan.Build(refusedNeighbours())
	refused := map[string]bool{}
	for _, p := range res.Problems {
		refused[p.Kind+"/"+p.Name] = true
	}
	if len(res.Pools) != 1 || res.Pools[0].Name != "staff" || !refused["MobilePool/all-access"] || !refused["Tunnel/a-site"] {
		t.Fatalf("Build accepted %v, problems %v; want staff only, all-access and a-site refused", res.Pools, res.Problems)
	}
	gateway := refusedNeighbours().Gateway
	cfg := firewall.FromBuild(fw.Table(), &gateway, &res)
	apply(t, fw, cfg)

	if err := dial(t, cl, server+":"+itoa(allowedPort)); err != nil {
		t.Fatalf("the accepted pool's allowed destination is unreachable: %v", err)
	}
	seen.last(t, server+":"+itoa(allowedPort))
	for _, dst := range []string{server + ":" + itoa(otherPort), otherHost + ":" + itoa(allowedPort)} {
		if err := dial(t, cl, dst); err == nil {
			t.Errorf("%s is outside the accepted pool's policy but was reachable", dst)
		}
	}
	cs, err := fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c := cs[firewall.PoolDropRuleID("staff")]; c.Packets < 2 {
		t.Errorf("staff's drop counter saw %d packets, want the two refused SYNs", c.Packets)
	}

	// A table that cannot be built is replaced by a closed one.
	t.Run("closed table", func(t *testing.T) {
		apply(t, fw, cfg)
		if _, err := fw.Apply(firewall.Closed(cfg)); err != nil {
			t.Fatal(err)
		}
		if err := dial(t, cl, server+":"+itoa(allowedPort)); err == nil {
			t.Fatal("a closed table forwarded client traffic")
		}
	})
}

// refusedNeighbours: staff (oldest, allow 10.3.0.2:8080/tcp), all-access
// (newer, overlaps staff, allows everything) and a-site (a Tunnel without its
// PSK Secret whose remote networks hold staff's range).
func refusedNeighbours() swan.Resources {
	ref := v1alpha1.GatewayReference{Name: "vpn"}
	at := func(h int) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "", Namespace: "vpn", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC))}
	}
	staff := v1alpha1.MobilePool{ObjectMeta: at(0), Spec: v1alpha1.MobilePoolSpec{
		GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: pool}, LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
		Firewall: v1alpha1.PoolFirewall{Allow: []v1alpha1.AllowRule{{To: server + "/32", Protocol: v1alpha1.ProtocolTCP, Ports: []v1alpha1.PortRange{{Port: allowedPort}}}}},
	}}
	staff.Name = "staff"
	wide := v1alpha1.MobilePool{ObjectMeta: at(1), Spec: v1alpha1.MobilePoolSpec{
		GatewayRef: ref, Addresses: v1alpha1.PoolAddresses{IPv4: "10.3.200.0/23"}, LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
		Firewall: v1alpha1.PoolFirewall{Allow: []v1alpha1.AllowRule{{To: "0.0.0.0/0", Protocol: v1alpha1.ProtocolAny}}},
	}}
	wide.Name = "all-access"
	site := v1alpha1.Tunnel{ObjectMeta: at(2), Spec: v1alpha1.TunnelSpec{
		GatewayRef: ref, Remote: v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.9"}},
		Auth:     v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "missing", Key: "psk"}}},
		Children: []v1alpha1.TunnelChild{{Name: "all", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"}, RemoteNetworks: []v1alpha1.CIDR{"10.3.0.0/16"}}},
	}}
	site.Name = "a-site"
	jimp := v1alpha1.VPNUser{ObjectMeta: at(0), Spec: v1alpha1.VPNUserSpec{
		GatewayRef: ref, Identity: "jimp@example.com", PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "jimp", Key: "password"},
	}}
	jimp.Name = "jimp"
	return swan.Resources{
		Gateway: v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Name: "vpn", Namespace: "vpn"}, Spec: v1alpha1.VPNGatewaySpec{
			Hostnames: []v1alpha1.Hostname{"vpn.example.com"}, Addresses: []v1alpha1.IPAddress{gatewayWAN},
			Dataplane: v1alpha1.DataplaneUserspace,
		}},
		Pools:   []v1alpha1.MobilePool{wide, staff},
		Tunnels: []v1alpha1.Tunnel{site},
		Users:   []v1alpha1.VPNUser{jimp},
		Secrets: map[string]map[string][]byte{"jimp": {"password": []byte("abc123")}},
	}
}

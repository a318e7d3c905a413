package integration

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// TestTunnelPeersBehindNATOrGoneLandOnTheirTunnels: a site behind a
// masquerading router that identifies itself by its private address is a
// NATMismatch Event on its Tunnel, naming the private and the public
// address; a Tunnel whose peer never answers is a PeerUnreachable Event on
// that Tunnel. One gateway serves both.
func TestTunnelPeersBehindNATOrGoneLandOnTheirTunnels(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		gwAddr    = "203.0.113.1"
		natPublic = "203.0.113.2"
		natInside = "10.0.0.1"
		branch    = "10.0.0.2"
		gone      = "203.0.113.9"
		siteLAN   = "10.9.0.0/24"
		psk       = "a tunnel key long enough for PSK rules"
	)
	gwNS, rtNS, brNS := netns.New(t, "dngw"), netns.New(t, "dnrt"), netns.New(t, "dnbr")
	_, rtOut := netns.Veth(t, gwNS, rtNS, gwAddr+"/24", natPublic+"/24")
	netns.Veth(t, rtNS, brNS, natInside+"/24", branch+"/24")
	brNS.AddRoute(t, "default", "via", natInside)
	rtNS.EnableForwarding(t)
	rtNS.Run(t, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname "+rtOut+" masquerade")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")

	pki := charontest.NewPKI(t, "Tunnel NAT CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw, enfy := diagGateway(t, gwNS, swan.Retransmit{Tries: 1, Timeout: time.Second, Base: 1.5}, nil)
	br := charontest.Start(t, brNS, charontest.Options{Name: "branch", Userspace: true})

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	tunnel := func(name, addr string, start v1alpha1.StartAction) *v1alpha1.Tunnel {
		return &v1alpha1.Tunnel{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: v1alpha1.TunnelSpec{
				GatewayRef: v1alpha1.GatewayReference{Name: gatewayName},
				Remote:     v1alpha1.TunnelRemote{Addresses: []string{addr}},
				Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "site-psk", Key: "psk"}}},
				Children: []v1alpha1.TunnelChild{{
					Name: "lan", LocalNetworks: []v1alpha1.CIDR{lanNet}, RemoteNetworks: []v1alpha1.CIDR{siteLAN}, StartAction: start,
				}},
			},
		}
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "site-psk"}, Data: map[string][]byte{"psk": []byte(psk)}},
		// The gateway expects the branch to identify itself by the
		// address it comes from, the router's public one.
		tunnel("branch", natPublic, "None"),
		tunnel("gone", gone, "Start"),
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, log: testr.New(t), errorNotify: enfy})
	ag.waitReady(t, 30*time.Second)
	waitConn(t, gw, "branch")

	t.Run("peer-unreachable", func(t *testing.T) {
		ev := waitEvent(t, c, v1alpha1.ReasonPeerUnreachable, "Tunnel", "gone")
		checkEvent(t, ev, "Tunnel", "gone", "IKE_SA_INIT failed", gone, "retransmits", "check that the peer is up")
	})

	t.Run("nat-private-identity", func(t *testing.T) {
		// Configured with no identity, the branch sends its own address.
		conf := `connections {
  hq {
    version = 2
    remote_addrs = ` + gwAddr + `
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
    }
    remote {
      auth = psk
      id = ` + hostname + `
    }
    children {
      lan {
        local_ts = ` + siteLAN + `
        remote_ts = ` + lanNet + `
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-hq {
    id = ` + hostname + `
    secret = "` + psk + `"
  }
}
`
		if out, err := br.LoadAll(conf, nil); err != nil {
			t.Fatalf("Loading the branch: %v\n%s", err, out)
		}
		if out, err := br.Swanctl("--initiate", "--child", "lan", "--timeout", "10"); err == nil {
			t.Fatalf("The branch connected with its private identity:\n%s", out)
		}
		ev := waitEvent(t, c, v1alpha1.ReasonNATMismatch, "Tunnel", "branch")
		checkEvent(t, ev, "Tunnel", "branch", "behind NAT", "the peer offered "+branch, "the gateway has "+natPublic,
			"set the peer's local ID explicitly")
	})
}

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// TestATunnelPeersFailureLandsOnTheTunnel: a site peer with the wrong
// pre-shared key is a PSKMismatch Event and Connected=False on its Tunnel,
// not on the gateway; with the right key the condition turns True.
func TestATunnelPeersFailureLandsOnTheTunnel(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		gwAddr   = "203.0.113.1"
		siteAddr = "203.0.113.2"
		siteLAN  = "10.9.0.0/24"
		siteHost = "10.9.0.1"
		psk      = "a tunnel key long enough for PSK rules"
	)
	gwNS, siteNS := netns.New(t, "dtgw"), netns.New(t, "dtst")
	netns.Veth(t, gwNS, siteNS, gwAddr+"/24", siteAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	// kernel-libipsec installs the site's policies only with an address of its LAN.
	siteNS.AddLoopbackAddr(t, siteHost+"/24")
	pki := charontest.NewPKI(t, "Tunnel Diagnosis CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw, enfy := diagGateway(t, gwNS, swan.Retransmit{}, nil)
	site := charontest.Start(t, siteNS, charontest.Options{Name: "site", Userspace: true})

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "hq-psk"}, Data: map[string][]byte{"psk": []byte(psk)}},
		&v1alpha1.Tunnel{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "hq"},
			Spec: v1alpha1.TunnelSpec{
				GatewayRef: v1alpha1.GatewayReference{Name: gatewayName},
				Remote:     v1alpha1.TunnelRemote{Addresses: []string{siteAddr}},
				Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "hq-psk", Key: "psk"}}},
				Children: []v1alpha1.TunnelChild{{
					Name: "lan", LocalNetworks: []v1alpha1.CIDR{lanNet}, RemoteNetworks: []v1alpha1.CIDR{siteLAN}, StartAction: "None",
				}},
			},
		},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, log: testr.New(t), errorNotify: enfy})
	ag.waitReady(t, 30*time.Second)
	waitConn(t, gw, "hq")

	siteConf := func(key string) string {
		return `connections {
  hq {
    version = 2
    remote_addrs = ` + gwAddr + `
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = ` + siteAddr + `
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
    id-1 = ` + hostname + `
    id-2 = ` + siteAddr + `
    secret = "` + key + `"
  }
}
`
	}
	tunnelConnected := func(status metav1.ConditionStatus, reason string) func() (bool, string) {
		return func() (bool, string) {
			var tun v1alpha1.Tunnel
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "hq"}, &tun); err != nil {
				return false, err.Error()
			}
			cond := meta.FindStatusCondition(tun.Status.Conditions, v1alpha1.ConditionConnected)
			return cond != nil && cond.Status == status && cond.Reason == reason, fmt.Sprintf("conditions: %+v", tun.Status.Conditions)
		}
	}

	if out, err := site.LoadAll(siteConf("not the key the gateway has"), nil); err != nil {
		t.Fatalf("Loading the site: %v\n%s", err, out)
	}
	if out, err := site.Swanctl("--initiate", "--child", "lan", "--timeout", "10"); err == nil {
		t.Fatalf("The site connected with the wrong key:\n%s", out)
	}
	var ev corev1.Event
	waitFor(t, 20*time.Second, "the PSKMismatch Event", func() (bool, string) {
		evs := warningEvents(t, c)
		for _, e := range evs {
			if e.Reason == v1alpha1.ReasonPSKMismatch {
				ev = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("Events: %v", evs)
	})
	if ev.InvolvedObject.Kind != "Tunnel" || ev.InvolvedObject.Name != "hq" || !strings.Contains(ev.Message, siteAddr) ||
		!strings.Contains(ev.Message, "use the same pre-shared key on both sides") {
		t.Errorf("PSKMismatch Event on %s/%s: %s; want it on Tunnel hq naming the peer and the fix", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
	}
	t.Logf("%s on %s/%s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
	waitFor(t, 10*time.Second, "Connected=False on Tunnel hq", tunnelConnected(metav1.ConditionFalse, v1alpha1.ReasonPSKMismatch))

	if out, err := site.LoadAll(siteConf(psk), nil); err != nil {
		t.Fatalf("Loading the site: %v\n%s", err, out)
	}
	if out, err := site.Swanctl("--initiate", "--child", "lan", "--timeout", "20"); err != nil {
		t.Fatalf("The site could not connect with the right key: %v\n%s", err, out)
	}
	waitFor(t, 15*time.Second, "Connected=True on Tunnel hq", tunnelConnected(metav1.ConditionTrue, v1alpha1.ReasonConnected))
	// The status keeps the last failure after the tunnel is up again.
	waitFor(t, 15*time.Second, "the Tunnel's status naming its last failure", func() (bool, string) {
		var tun v1alpha1.Tunnel
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "hq"}, &tun); err != nil {
			return false, err.Error()
		}
		f := tun.Status.LastFailure
		return f != nil && f.Reason == v1alpha1.ReasonPSKMismatch && strings.Contains(f.Message, "pre-shared key"), fmt.Sprintf("lastFailure %+v", f)
	})
}

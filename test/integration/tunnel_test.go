package integration

import (
	"context"
	"fmt"
	"slices"
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
	"github.com/ikegate/ikegate/internal/vici"
)

// TestTunnelStatus brings up a site-to-site Tunnel (PSK) between the
// agent's gateway and a peer charon and follows its status: Down before,
// Phase 1 and the child up with counters while it runs, Down after the
// peer closed it.
func TestTunnelStatus(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		gwAddr   = "203.0.113.1"
		siteAddr = "203.0.113.2"
		siteLAN  = "10.9.0.0/24"
		siteHost = "10.9.0.1"
		psk      = "a tunnel key long enough for PSK rules"
	)
	gwNS, siteNS := netns.New(t, "tngw"), netns.New(t, "tnst")
	netns.Veth(t, gwNS, siteNS, gwAddr+"/24", siteAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	siteNS.AddLoopbackAddr(t, siteHost+"/24")
	pki := charontest.NewPKI(t, "Tunnel Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	site := charontest.Start(t, siteNS, charontest.Options{Name: "site", Userspace: true})
	siteVICI := vici.NewClient(site.VICISocket())
	t.Cleanup(func() { siteVICI.Close() })

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
					Name: "lan", LocalNetworks: []v1alpha1.CIDR{lanNet}, RemoteNetworks: []v1alpha1.CIDR{siteLAN},
					StartAction: "None",
				}},
			},
		},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)

	status := func() v1alpha1.TunnelStatus {
		var tun v1alpha1.Tunnel
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "hq"}, &tun); err != nil {
			t.Fatal(err)
		}
		return tun.Status
	}
	established := func(st v1alpha1.TunnelStatus) metav1.ConditionStatus {
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionEstablished); c != nil {
			return c.Status
		}
		return ""
	}
	describe := func(st v1alpha1.TunnelStatus) string {
		s := fmt.Sprintf("childrenUp %q, established %q", st.ChildrenUp, established(st))
		if st.Phase1 != nil {
			s += fmt.Sprintf(", phase1 %+v", *st.Phase1)
		}
		for _, ch := range st.Children {
			s += fmt.Sprintf(", child %+v", ch)
		}
		return s
	}
	waitFor(t, 10*time.Second, "the tunnel reported down", func() (bool, string) {
		st := status()
		return st.Phase1 != nil && st.Phase1.State == "Down" && st.ChildrenUp == "0/1", describe(st)
	})

	siteConf := `connections {
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
    secret = "` + psk + `"
  }
}
`
	if out, err := site.LoadAll(siteConf, nil); err != nil {
		t.Fatalf("Loading the site: %v\n%s", err, out)
	}
	if out, err := site.Swanctl("--initiate", "--child", "lan", "--timeout", "20"); err != nil {
		t.Fatalf("Site could not bring the tunnel up: %v\n%s", err, out)
	}
	if out, err := siteNS.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", siteHost, lanAddr); err != nil {
		t.Fatalf("Ping through the tunnel: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the tunnel reported up with traffic", func() (bool, string) {
		st := status()
		ok := st.Phase1 != nil && st.Phase1.State == "ESTABLISHED" && st.Phase1.RemoteAddress == siteAddr &&
			st.Phase1.EstablishedAt != nil && st.Phase1.IKEProposal != "" && st.ChildrenUp == "1/1" &&
			len(st.Children) == 1 && st.Children[0].Name == "lan" && st.Children[0].State == "INSTALLED" &&
			st.Children[0].ESPProposal != "" && st.Children[0].PacketsIn >= 3 && st.Children[0].BytesIn > 0 &&
			slices.Equal(st.Children[0].LocalTS, []string{lanNet}) && slices.Equal(st.Children[0].RemoteTS, []string{siteLAN}) &&
			st.Children[0].InstalledAt != nil && established(st) == metav1.ConditionTrue
		return ok, describe(st)
	})

	if err := terminate(ctx, siteVICI, "hq"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the tunnel reported down again", func() (bool, string) {
		st := status()
		return st.Phase1 != nil && st.Phase1.State == "Down" && st.ChildrenUp == "0/1" &&
			len(st.Children) == 1 && st.Children[0].State == "Down" && established(st) == metav1.ConditionFalse, describe(st)
	})

	// Deleting the Tunnel ends its IKE_SA: unloading the connection alone
	// would leave it up, carrying traffic, until the peer gave up.
	if out, err := site.Swanctl("--initiate", "--child", "lan", "--timeout", "20"); err != nil {
		t.Fatalf("Site could not bring the tunnel up again: %v\n%s", err, out)
	}
	gwVICI := vici.NewClient(gw.VICISocket())
	t.Cleanup(func() { gwVICI.Close() })
	tunnelSAs := func(s vici.Session) (int, string) {
		sas, err := vici.ListSAs(ctx, s)
		if err != nil {
			return -1, err.Error()
		}
		n := 0
		for _, sa := range sas {
			if sa.Name == "hq" || sa.Name == swan.TunnelConnectionName("hq") {
				n++
			}
		}
		return n, fmt.Sprintf("%d IKE_SAs of the tunnel", n)
	}
	waitFor(t, 10*time.Second, "the tunnel up again on the gateway", func() (bool, string) {
		n, detail := tunnelSAs(gwVICI)
		return n == 1, detail
	})
	if err := c.Delete(ctx, &v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "hq"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted tunnel's IKE_SA gone from the gateway", func() (bool, string) {
		n, detail := tunnelSAs(gwVICI)
		return n == 0, detail
	})
	waitFor(t, 10*time.Second, "the peer told the tunnel is gone", func() (bool, string) {
		n, detail := tunnelSAs(siteVICI)
		return n == 0, detail
	})
	if out, err := siteNS.Exec("ping", "-c", "1", "-W", "1", "-I", siteHost, lanAddr); err == nil {
		t.Errorf("Ping through the deleted tunnel still answered:\n%s", out)
	}
}

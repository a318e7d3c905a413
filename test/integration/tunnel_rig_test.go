package integration

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	"github.com/ikegate/ikegate/internal/vici"
)

// The site-to-site topology of the recovery and interop tests: the
// gateway's namespace and a peer site's, one veth between them.
const (
	rigGWAddr   = "203.0.113.1"
	rigSiteAddr = "203.0.113.2"
	rigSiteLAN  = "10.9.0.0/24"
	rigSiteHost = "10.9.0.1"
	rigPSK      = "a tunnel key long enough for PSK rules"
	rigTunnel   = "hq"
)

// rigDPDDelay and rigRetransmit make the gateway declare a silent peer
// dead within seconds (DPD after 2 s of silence, two retransmissions 1 s
// and 1.5 s apart, then 2.25 s: 6.75 s in all) instead of charon's default
// of about 3 minutes, and bound the wait between two tries to reach an
// absent peer to 2.25 s. Recovery after the peer returns is bounded by that
// schedule, not by anything ikegate adds.
var (
	rigDPDDelay   = 2 * time.Second
	rigRetransmit = swan.Retransmit{Tries: 2, Timeout: time.Second, Base: 1.5}
)

// recoveryBound is how long a test waits for the tunnel after the peer is
// back: one retransmission schedule (6.75 s) plus a handshake, with a wide
// margin for a loaded 2-core machine. It is a timeout, not the figure
// measured; the tests log that.
const recoveryBound = 60 * time.Second

// tunnelRig is a gateway charon driven by the agent, serving one Tunnel
// whose children start at once, and a namespace for the peer.
type tunnelRig struct {
	gwNS, siteNS *netns.NS
	gw           *charontest.Charon
	gwVICI       *vici.Client
	c            client.Client
	// pki issued the gateway's certificate; a peer's may come from it too,
	// and the Secret rigCASecret holds its CA for certificate tunnels.
	pki *charontest.PKI
}

// rigCASecret is the Secret (key ca.crt) with the CA a certificate
// tunnel's peer chains to.
const rigCASecret = "hq-ca"

// newTunnelRig builds the topology, the gateway charon and the agent with
// the Tunnel spec mod returns (it may use the rig's PKI); the peer is the
// caller's to start.
func newTunnelRig(t *testing.T, mod func(*tunnelRig, *v1alpha1.TunnelSpec)) *tunnelRig {
	t.Helper()
	require.Root(t)
	r := &tunnelRig{gwNS: netns.New(t, "tngw"), siteNS: netns.New(t, "tnst")}
	netns.Veth(t, r.gwNS, r.siteNS, rigGWAddr+"/24", rigSiteAddr+"/24")
	r.gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	r.siteNS.AddLoopbackAddr(t, rigSiteHost+"/24")
	pki := charontest.NewPKI(t, "Tunnel Test CA")
	r.pki = pki
	server := pki.Server(t, hostname, hostname, rigGWAddr)
	r.gw = charontest.Start(t, r.gwNS, charontest.Options{Name: "gw", Userspace: true,
		Settings: func(s *swan.Settings) { s.Retransmit = rigRetransmit }})
	r.gwVICI = vici.NewClient(r.gw.VICISocket())
	t.Cleanup(func() { r.gwVICI.Close() })

	cfg, c := startAPI(t)
	r.c = c
	createGateway(t, c, pki, server, []string{rigGWAddr})
	spec := rigTunnelSpec()
	if mod != nil {
		mod(r, &spec)
	}
	createRigTunnel(t, c, pki, spec)
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: r.gw, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)
	return r
}

// rigTunnelSpec is the rig's Tunnel: PSK, the site's address, DPD after
// rigDPDDelay, one child lanNet === rigSiteLAN started at load.
func rigTunnelSpec() v1alpha1.TunnelSpec {
	return v1alpha1.TunnelSpec{
		GatewayRef: v1alpha1.GatewayReference{Name: gatewayName},
		Remote:     v1alpha1.TunnelRemote{Addresses: []string{rigSiteAddr}},
		Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "hq-psk", Key: "psk"}}},
		IKE:        v1alpha1.TunnelIKE{DPD: v1alpha1.DPDSettings{Delay: &metav1.Duration{Duration: rigDPDDelay}}},
		Children: []v1alpha1.TunnelChild{{
			Name: "lan", LocalNetworks: []v1alpha1.CIDR{lanNet}, RemoteNetworks: []v1alpha1.CIDR{rigSiteLAN},
			StartAction: "Start",
		}},
	}
}

// createRigTunnel writes the Tunnel rigTunnel with spec, its PSK Secret and
// the Secret with the CA of pki.
func createRigTunnel(t *testing.T, c client.Client, pki *charontest.PKI, spec v1alpha1.TunnelSpec) {
	t.Helper()
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "hq-psk"}, Data: map[string][]byte{"psk": []byte(rigPSK)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: rigCASecret}, Data: map[string][]byte{"ca.crt": pki.CertPEM}},
		&v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: rigTunnel}, Spec: spec},
	} {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
}

// tunnelSAs are the gateway's IKE_SAs of the Tunnel.
func (r *tunnelRig) tunnelSAs(t *testing.T) []vici.IKESA { return tunnelSAsOn(t, r.gwVICI) }

// tunnelSAsOn are the IKE_SAs of the Tunnel in the charon of s.
func tunnelSAsOn(t *testing.T, s vici.Session) []vici.IKESA {
	t.Helper()
	sas, err := vici.ListSAs(context.Background(), s)
	if err != nil {
		t.Fatalf("Listing the gateway's SAs: %v", err)
	}
	return slices.DeleteFunc(sas, func(sa vici.IKESA) bool { return sa.Name != swan.TunnelConnectionName(rigTunnel) })
}

// up reports whether the gateway has an IKE_SA of the tunnel newer than
// after (charon numbers them upwards) established with its child
// installed, and describes what it has.
func (r *tunnelRig) up(t *testing.T, after uint32) (bool, vici.IKESA, string) {
	t.Helper()
	return tunnelUpOn(t, r.gwVICI, after)
}

// tunnelUpOn is up for the charon of s.
func tunnelUpOn(t *testing.T, s vici.Session, after uint32) (bool, vici.IKESA, string) {
	t.Helper()
	sas := tunnelSAsOn(t, s)
	for _, sa := range sas {
		if sa.State != "ESTABLISHED" || sa.UniqueID <= after {
			continue
		}
		for _, ch := range sa.Children {
			if ch.Name == "lan" && ch.State == "INSTALLED" {
				return true, sa, describeSAs(sas)
			}
		}
	}
	return false, vici.IKESA{}, describeSAs(sas)
}

// waitUp waits until the tunnel is up on the gateway with an IKE_SA newer
// than after and returns that IKE_SA.
func (r *tunnelRig) waitUp(t *testing.T, after uint32, timeout time.Duration, what string) vici.IKESA {
	t.Helper()
	var sa vici.IKESA
	waitFor(t, timeout, what, func() (bool, string) {
		ok, got, detail := r.up(t, after)
		sa = got
		return ok, detail
	})
	return sa
}

func describeSAs(sas []vici.IKESA) string {
	if len(sas) == 0 {
		return "no IKE_SA of the tunnel"
	}
	var parts []string
	for _, sa := range sas {
		s := fmt.Sprintf("IKE_SA #%d %s", sa.UniqueID, sa.State)
		for _, ch := range sa.Children {
			s += fmt.Sprintf(", child %s %s %v === %v", ch.Name, ch.State, ch.LocalTS, ch.RemoteTS)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// strongSwanSite is the peer's swanctl.conf: a responder (it never
// initiates, so every recovery is the gateway's doing) for the rig's tunnel.
var strongSwanSite = strongSwanSiteConf(2, "")

// strongSwanSiteConf is strongSwanSite for IKE version (IKEv1 has no AEAD
// for IKE) with extra connection settings.
func strongSwanSiteConf(version int, extra string) string {
	ike := "aes256gcm16-prfsha256-x25519"
	if version == 1 {
		ike = "aes256-sha256-x25519"
	}
	return `connections {
  hq {
    version = ` + strconv.Itoa(version) + `
    ` + extra + `
    local_addrs = ` + rigSiteAddr + `
    remote_addrs = ` + rigGWAddr + `
    proposals = ` + ike + `
    local {
      auth = psk
      id = ` + rigSiteAddr + `
    }
    remote {
      auth = psk
      id = ` + hostname + `
    }
    children {
      lan {
        local_ts = ` + rigSiteLAN + `
        remote_ts = ` + lanNet + `
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-hq {
    id-1 = ` + hostname + `
    id-2 = ` + rigSiteAddr + `
    secret = "` + rigPSK + `"
  }
}
`
}

func loadSite(t *testing.T, site *charontest.Charon) { loadSiteConf(t, site, strongSwanSite) }

func loadSiteConf(t *testing.T, site *charontest.Charon, conf string) {
	t.Helper()
	if out, err := site.LoadAll(conf, nil); err != nil {
		t.Fatalf("Loading the site: %v\n%s", err, out)
	}
}

// pingSite sends pings from the site's LAN to the gateway's through the tunnel.
func (r *tunnelRig) pingSite(t *testing.T) {
	t.Helper()
	if out, err := r.siteNS.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", rigSiteHost, lanAddr); err != nil {
		t.Fatalf("Ping through the tunnel: %v\n%s", err, out)
	}
}

// killNamed sends SIGKILL to the processes of ns whose command is comm: a
// crash, which sends the peer nothing (SIGTERM would delete the SAs).
// They are processes the test started in its own namespace.
func killNamed(t *testing.T, ns *netns.NS, comm string) {
	t.Helper()
	b, err := osexec.Command("ip", "netns", "pids", ns.Name()).Output()
	out := string(b)
	if err != nil {
		t.Fatalf("Listing the processes of %s: %v", ns.Name(), err)
	}
	killed := 0
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", f, "comm"))
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("No %s running in %s to kill", comm, ns.Name())
	}
}

// median of durations.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

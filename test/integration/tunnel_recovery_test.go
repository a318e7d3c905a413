package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/vici"
)

// recoveryRounds is how often the crash test crashes the peer: the closing
// figure is the median of the rounds.
const recoveryRounds = 3

// TestTunnelRecoversFromPeerCrash brings a Start tunnel up against a
// strongSwan peer that only responds, then crashes the peer (SIGKILL: no
// DELETE reaches the gateway) and starts it again with its configuration,
// several times. The gateway must find the peer dead by DPD, restart the
// child (dpd_action = restart) and keep trying (keyingtries = 0) until the
// peer answers; traffic passes again each time.
func TestTunnelRecoversFromPeerCrash(t *testing.T) {
	r := newTunnelRig(t, nil)
	site := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
	loadSite(t, site)
	// The gateway initiates at load and retries until the site is loaded.
	first := r.waitUp(t, 0, recoveryBound, "the tunnel up, initiated by the gateway")
	if !first.Initiator {
		t.Fatalf("The gateway did not initiate the tunnel: %+v", first)
	}
	r.pingSite(t)

	var took []time.Duration
	prev := first.UniqueID
	for round := 1; round <= recoveryRounds; round++ {
		killNamed(t, r.siteNS, "charon-systemd")
		site.Restart(t)
		loadSite(t, site)
		back := time.Now()
		sa := r.waitUp(t, prev, recoveryBound, "the tunnel re-established after the peer crashed")
		took = append(took, time.Since(back))
		if !sa.Initiator {
			t.Fatalf("Round %d: the gateway did not initiate the new IKE_SA #%d", round, sa.UniqueID)
		}
		prev = sa.UniqueID
		r.pingSite(t)
		// The dead peer's IKE_SA is gone, not kept beside the new one.
		waitFor(t, recoveryBound, "one IKE_SA of the tunnel on the gateway", func() (bool, string) {
			sas := r.tunnelSAs(t)
			return len(sas) == 1, describeSAs(sas)
		})
	}
	log := r.gw.Log()
	if !strings.Contains(log, "restarting CHILD_SA lan") {
		t.Errorf("The gateway's log shows no child restarted after DPD (dpd_action = restart)")
	}
	t.Logf("Tunnel back after the peer returned from a crash: median %v of %v", median(took), took)
}

// TestTunnelReachesPeerUnreachableAtLoad loads a Start tunnel while nothing
// answers at the peer's address and starts the peer only after the gateway
// has given up once (charon's default keyingtries = 1 would stop there).
func TestTunnelReachesPeerUnreachableAtLoad(t *testing.T) {
	r := newTunnelRig(t, nil)
	r.gw.WaitLog(t, "peer not responding, trying again", recoveryBound)
	if ok, _, detail := r.up(t, 0); ok {
		t.Fatalf("The tunnel is up without a peer: %s", detail)
	}
	site := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
	loadSite(t, site)
	back := time.Now()
	sa := r.waitUp(t, 0, recoveryBound, "the tunnel up once the peer appeared")
	t.Logf("Tunnel up %v after the peer appeared", time.Since(back))
	if !sa.Initiator {
		t.Errorf("The gateway did not initiate the tunnel: %+v", sa)
	}
	r.pingSite(t)
}

// TestTunnelComesBackAfterPeerCloses has the peer delete the tunnel (as an
// administrator on the other side would, or a peer shutting down cleanly)
// and expects the gateway to bring it up again (close_action = start).
func TestTunnelComesBackAfterPeerCloses(t *testing.T) {
	r := newTunnelRig(t, nil)
	site := charontest.Start(t, r.siteNS, charontest.Options{Name: "site", Userspace: true})
	loadSite(t, site)
	first := r.waitUp(t, 0, recoveryBound, "the tunnel up")
	siteVICI := vici.NewClient(site.VICISocket())
	t.Cleanup(func() { siteVICI.Close() })
	// A polite close: the peer sends DELETE for the IKE_SA and its child.
	req := []string{"--terminate", "--ike", "hq", "--timeout", "10"}
	if out, err := site.Swanctl(req...); err != nil {
		t.Fatalf("The site could not close the tunnel: %v\n%s", err, out)
	}
	sa := r.waitUp(t, first.UniqueID, recoveryBound, "the tunnel up again after the peer closed it")
	r.pingSite(t)
	// The same after a clean shutdown and restart of the peer (SIGTERM
	// deletes every IKE_SA on the way out).
	site.Restart(t)
	loadSite(t, site)
	r.waitUp(t, sa.UniqueID, recoveryBound, "the tunnel up again after the peer restarted")
	r.pingSite(t)
	if sas, err := vici.ListSAs(context.Background(), siteVICI); err != nil || len(sas) != 1 {
		t.Errorf("The site holds %d IKE_SAs (%v), want 1", len(sas), err)
	}
}

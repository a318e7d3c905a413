package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	govici "github.com/strongswan/govici/vici"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

// The kernel of the test machines has no ESP: pluto negotiates IKE and
// CHILD SAs with the gateway but cannot install its half of a CHILD_SA
// ("netlink response for Add SA ...: Function not implemented"). What the
// tests can see is the negotiation on both sides, and the recovery.
//
// plutoPSKConn is pluto's side of the rig's PSK tunnel, offering one IKE
// and one ESP proposal that the gateway's default (Modern) presets hold.
const plutoPSKConn = `	ikev2=insist
	authby=secret
	left=` + rigSiteAddr + `
	leftid=` + rigSiteAddr + `
	leftsubnet=` + rigSiteLAN + `
	right=` + rigGWAddr + `
	rightid=@` + hostname + `
	rightsubnet=` + lanNet + `
	ike=aes_gcm256-sha2_256;dh31
	esp=aes_gcm256
	leftupdown=
	auto=add
`

const plutoPSKSecrets = rigSiteAddr + " @" + hostname + ` : PSK "` + rigPSK + `"` + "\n"

// Lines pluto logs. Its CHILD_SA line names the ESP proposal it chose from
// the gateway's; its SA install error is the kernel's missing ESP.
const (
	plutoResponderIKE = "responder established IKE SA"
	plutoInitiatorIKE = "initiator established IKE SA"
	plutoChildChosen  = "proposal 1:ESP=AES_GCM_C_256-DISABLED SPI="
	plutoNoESP        = "netlink response for Add SA"
)

// wantIKEProposal is what the gateway reports for the IKE_SA with pluto.
func wantIKEProposal(sa vici.IKESA) bool {
	p := sa.Proposal
	return p.Encr == "AES_GCM_16" && p.EncrKeySize == 256 && p.PRF == "PRF_HMAC_SHA2_256" && p.DHGroup == "CURVE_25519"
}

// ikeUp waits for an established IKE_SA of the tunnel newer than after.
func (r *tunnelRig) ikeUp(t *testing.T, after uint32, timeout time.Duration, what string) vici.IKESA {
	t.Helper()
	var sa vici.IKESA
	waitFor(t, timeout, what, func() (bool, string) {
		sas := r.tunnelSAs(t)
		for _, s := range sas {
			if s.State == "ESTABLISHED" && s.UniqueID > after {
				sa = s
				return true, ""
			}
		}
		return false, describeSAs(sas)
	})
	return sa
}

// TestLibreswanGatewayInitiates: the gateway brings the tunnel up to pluto
// (4.10), which chooses the gateway's IKE and ESP proposals; the CHILD_SA
// then fails in pluto's kernel. When pluto crashes, DPD finds it dead and
// the gateway drops the IKE_SA; pluto, restarted and initiating, gets a
// tunnel again. (The gateway cannot restart this IKE_SA itself: charon only
// re-establishes an IKE_SA that carries a CHILD_SA to restart, and here
// pluto's kernel refused the only one. With ESP, the strongSwan peer's
// TestTunnelRecoversFromPeerCrash is that case.)
func TestLibreswanGatewayInitiates(t *testing.T) {
	r := newTunnelRig(t, nil)
	p := startPluto(t, r.siteNS, plutoOptions{Conn: plutoPSKConn, Secrets: plutoPSKSecrets})
	sa := r.ikeUp(t, 0, recoveryBound, "the IKE_SA with pluto established")
	if !sa.Initiator || !wantIKEProposal(sa) || sa.RemoteID != rigSiteAddr || sa.LocalHost != rigGWAddr {
		t.Errorf("IKE_SA with pluto: initiator %v, proposal %+v, remote id %q, local host %q; want the gateway initiating AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519 from %s to %s",
			sa.Initiator, sa.Proposal, sa.RemoteID, sa.LocalHost, rigGWAddr, rigSiteAddr)
	}
	p.WaitLog(t, plutoResponderIKE, recoveryBound)
	p.WaitLog(t, plutoChildChosen, recoveryBound)
	p.WaitLog(t, plutoNoESP, recoveryBound)
	// pluto answered the CHILD_SA with TS_UNACCEPTABLE once its kernel
	// refused the SA it had chosen the proposal for.
	r.gw.WaitLog(t, "received TS_UNACCEPTABLE notify", recoveryBound)

	p.Kill(t)
	waitFor(t, recoveryBound, "the gateway to drop the crashed peer's IKE_SA", func() (bool, string) {
		sas := r.tunnelSAs(t)
		return len(sas) == 0, describeSAs(sas)
	})
	p.Start(t)
	p.Initiate(t)
	back := time.Now()
	again := r.ikeUp(t, sa.UniqueID, recoveryBound, "a new IKE_SA with the restarted pluto")
	t.Logf("IKE_SA with pluto back %v after pluto restarted and initiated", time.Since(back))
	if again.Initiator || !wantIKEProposal(again) {
		t.Errorf("IKE_SA from the restarted pluto: initiator %v, proposal %+v", again.Initiator, again.Proposal)
	}
}

// TestLibreswanUnreachableAtLoad: pluto is not running when the gateway
// loads the tunnel, and is started after the gateway gave up once.
func TestLibreswanUnreachableAtLoad(t *testing.T) {
	r := newTunnelRig(t, nil)
	r.gw.WaitLog(t, "peer not responding, trying again", recoveryBound)
	p := startPluto(t, r.siteNS, plutoOptions{Conn: plutoPSKConn, Secrets: plutoPSKSecrets})
	back := time.Now()
	sa := r.ikeUp(t, 0, recoveryBound, "the IKE_SA with pluto once it appeared")
	t.Logf("IKE_SA with pluto up %v after pluto started", time.Since(back))
	if !sa.Initiator || !wantIKEProposal(sa) {
		t.Errorf("IKE_SA with pluto: initiator %v, proposal %+v", sa.Initiator, sa.Proposal)
	}
	p.WaitLog(t, plutoResponderIKE, recoveryBound)
}

// TestLibreswanPeerInitiates: pluto brings the tunnel up to a gateway that
// waits (startAction None). The gateway installs its CHILD_SA with the
// expected proposal and traffic selectors; pluto cannot install its own,
// drops the IKE_SA without telling the gateway and initiates again, over
// and over. The gateway must replace each older IKE_SA (unique = replace)
// rather than keep them all.
func TestLibreswanPeerInitiates(t *testing.T) {
	r := newTunnelRig(t, func(_ *tunnelRig, s *v1alpha1.TunnelSpec) {
		s.Children[0].StartAction = "None"
		// The default delay: DPD must not clear the dropped IKE_SAs before
		// the uniqueness policy has to.
		s.IKE.DPD.Delay = &metav1.Duration{Duration: 30 * time.Second}
	})
	p := startPluto(t, r.siteNS, plutoOptions{Conn: plutoPSKConn, Secrets: plutoPSKSecrets})
	p.Initiate(t)
	var sa vici.IKESA
	waitFor(t, recoveryBound, "the tunnel pluto initiated up on the gateway", func() (bool, string) {
		ok, got, detail := r.up(t, 0)
		sa = got
		return ok, detail
	})
	if sa.Initiator || !wantIKEProposal(sa) {
		t.Errorf("IKE_SA from pluto: initiator %v, proposal %+v; want the gateway responding with AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519", sa.Initiator, sa.Proposal)
	}
	for _, ch := range sa.Children {
		if ch.Proposal.Encr != "AES_GCM_16" || ch.Proposal.EncrKeySize != 256 ||
			strings.Join(ch.LocalTS, ",") != lanNet || strings.Join(ch.RemoteTS, ",") != rigSiteLAN {
			t.Errorf("CHILD_SA from pluto: %s-%d, %v === %v; want AES_GCM_16-256, %s === %s",
				ch.Proposal.Encr, ch.Proposal.EncrKeySize, ch.LocalTS, ch.RemoteTS, lanNet, rigSiteLAN)
		}
	}
	p.WaitLog(t, plutoInitiatorIKE, recoveryBound)
	p.WaitLog(t, plutoNoESP, recoveryBound)

	// pluto retries after 5 s, then 10 s, 15 s, ...: three retries in the
	// 45 s watched. Each new IKE_SA makes charon schedule the older one's
	// deletion 10 s later (it suspects a reauthentication from the same
	// address); the DELETE then waits for an answer the restarted pluto
	// never gives, until charon's retransmissions run out.
	watch := time.Now().Add(45 * time.Second)
	worst, stale := 0, 0
	for time.Now().Before(watch) {
		n, s := r.duplicates(t)
		worst, stale = max(worst, n), max(stale, s)
		time.Sleep(500 * time.Millisecond)
	}
	retries := strings.Count(p.Log(), "initiating IKEv2 connection") - 1
	log := r.gw.Log()
	made := strings.Count(log, "] established between")
	replaced := strings.Count(log, "schedule delete of duplicate IKE_SA")
	t.Logf("pluto retried %d times; the gateway established %d IKE_SAs and replaced %d; at most %d IKE_SAs of the tunnel at once", retries, made, replaced, worst)
	if made < 3 {
		t.Fatalf("The gateway established %d IKE_SAs from pluto in 45 s; the test needs pluto to keep re-initiating", made)
	}
	// Each IKE_SA after the first arrived while its predecessor was alive
	// (DPD would only find that one dead after 30 s); charon logs the
	// replacement once per older IKE_SA still there, so perhaps more often.
	if replaced < made-1 {
		t.Errorf("The gateway replaced %d IKE_SAs of %d (unique = replace)", replaced, made)
	}
	if stale > 0 {
		t.Errorf("Up to %d replaced IKE_SAs of the tunnel were kept, not deleted, more than 15 s after a newer one replaced them", stale)
	}
}

// duplicates counts the gateway's IKE_SAs of the tunnel, and the stale
// ones among them: not being deleted (no IKE_DELETE task queued or active)
// although a newer IKE_SA replaced them more than charon's 10 s delay, plus
// a margin, ago.
func (r *tunnelRig) duplicates(t *testing.T) (all, stale int) {
	t.Helper()
	req := govici.NewMessage()
	_ = req.Set("noblock", "yes")
	_ = req.Set("ike", swan.TunnelConnectionName(rigTunnel))
	msgs, err := r.gwVICI.Stream(context.Background(), "list-sas", "list-sa", req)
	if err != nil {
		t.Fatalf("Listing the gateway's SAs: %v", err)
	}
	type entry struct {
		age      int // seconds since established
		deleting bool
	}
	var es []entry
	for _, m := range msgs {
		for _, k := range m.Keys() {
			sa, ok := m.Get(k).(*govici.Message)
			if !ok {
				continue
			}
			age, _ := strconv.Atoi(fmt.Sprint(sa.Get("established")))
			deleting := false
			for _, key := range []string{"tasks-queued", "tasks-active"} {
				if ts, ok := sa.Get(key).([]string); ok && slices.Contains(ts, "IKE_DELETE") {
					deleting = true
				}
			}
			es = append(es, entry{age: age, deleting: deleting})
		}
	}
	// Oldest first: each one was replaced when the next was established.
	slices.SortFunc(es, func(a, b entry) int { return b.age - a.age })
	for i := 0; i+1 < len(es); i++ {
		if !es[i].deleting && es[i+1].age > 15 {
			stale++
		}
	}
	return len(es), stale
}

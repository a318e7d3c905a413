package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// diagCl2 is the client namespace's second address: a second device of
// the same user, as the agent tells devices apart by their endpoint.
const diagCl2 = "192.0.2.3"

// TestSessionReplacedHalfOpenAndNoConnection: a login beyond a user's
// maxSessions ends the older device's session with an Event on the
// VPNUser naming it; a client that sends IKE_SA_INIT and then goes silent
// is a PeerUnreachable Event on the gateway once charon's half-open
// timeout deletes its IKE_SA; with every user disabled, a client reaches
// a charon without any connection, a NoConnection Event on the gateway.
func TestSessionReplacedHalfOpenAndNoConnection(t *testing.T) {
	require.Root(t)
	s, u := userObjects("dup", "dup@example.com", "pw-dup")
	u.Spec.MaxSessions = ptr.To[int32](1)
	// Ten seconds rather than charon's 30: the second IKE_AUTH of EAP still
	// comes well within it on a loaded machine.
	r := newDiagRigHalfOpen(t, 10*time.Second, s, u)
	r.clNS.AddLoopbackAddr(t, diagCl2+"/32")
	// The agent's RADIUS server, not charon, holds the user's password.
	r.ag.waitServes(t, 1)

	t.Run("session-replaced", func(t *testing.T) {
		couch := strings.Replace(charontest.ClientConf(
			r.eapClient("desk", "dup@example.com", "pw-dup", nil),
			r.eapClient("couch", "dup@example.com", "pw-dup", nil)),
			"  couch {\n", "  couch {\n    local_addrs = "+diagCl2+"\n", 1)
		if out, err := r.cl.LoadAll(couch, map[string][]byte{"x509ca/ca.pem": r.pki.CertPEM}); err != nil {
			t.Fatalf("Loading the client: %v\n%s", err, out)
		}
		defer r.end("desk", "couch")
		r.connect(t, "desk")
		vips := r.userSessions(t, "dup", diagCl)
		r.connect(t, "couch")
		ev := r.userEvent(t, v1alpha1.EventReasonSessionReplaced, "dup")
		checkEvent(t, ev, "VPNUser", "dup", "Session from "+diagCl+" port ", "IKE identity "+diagCl,
			"virtual IPs "+strings.Join(vips, ", ")+")", "ended with a DELETE", "maxSessions 1")
		if ev.Type != corev1.EventTypeNormal {
			t.Errorf("SessionReplaced Event of type %s, want Normal: the new session is wanted", ev.Type)
		}
		if strings.Contains(ev.Message, diagCl2) {
			t.Errorf("SessionReplaced names the new session %s: %s", diagCl2, ev.Message)
		}
		// The user stays connected through the new device.
		r.userSessions(t, "dup", diagCl2)
	})

	t.Run("half-open-timeout", func(t *testing.T) {
		r.load(t, nil, r.eapClient("mute", "dup@example.com", "pw-dup", nil))
		// Only IKE_SA_INIT (exchange type 34, byte 18 of the IKE header on
		// port 500) leaves the client; IKE_AUTH, on either port, does not.
		defer r.end("mute")
		r.clNS.Run(t, "nft", "add table inet mute; add chain inet mute out { type filter hook output priority 0; };"+
			" add rule inet mute out udp dport 500 @th,208,8 != 34 drop; add rule inet mute out udp dport 4500 drop")
		r.refused(t, "mute")
		r.wantEvent(t, v1alpha1.ReasonPeerUnreachable, "VPNGateway", gatewayName, "IKE_SA_INIT failed", diagCl,
			"half-open timeout", "never completed the IKE_SA", "check that the peer is up")
		r.clNS.Run(t, "nft", "delete table inet mute")
	})

	t.Run("no-connection", func(t *testing.T) {
		r.setDisabled(t, true, "dup")
		r.agentConnections(t, 0)
		r.load(t, nil, r.eapClient("none", "dup@example.com", "pw-dup", nil))
		defer r.end("none")
		r.refused(t, "none")
		r.wantEvent(t, v1alpha1.ReasonNoConnection, "VPNGateway", gatewayName, "IKE_SA_INIT failed", diagCl,
			"no connection is loaded for "+diagGW+"..."+diagCl, "the gateway serves no connection")
	})
}

// userSessions waits until the VPNUser's status lists exactly one
// session, from remote, and returns its virtual addresses.
func (r *diagRig) userSessions(t *testing.T, name, remote string) []string {
	t.Helper()
	var vips []string
	waitFor(t, 20*time.Second, "VPNUser "+name+" with its one session from "+remote, func() (bool, string) {
		u := getUser(t, r.c, name)
		if u.Status.SessionCount != 1 || len(u.Status.Sessions) != 1 || u.Status.Sessions[0].RemoteAddress != remote {
			return false, sessionsString(u)
		}
		vips = u.Status.Sessions[0].VirtualAddresses
		return len(vips) > 0, sessionsString(u)
	})
	return vips
}

// userEvent waits for the agent's Event with this reason on the VPNUser,
// of any type.
func (r *diagRig) userEvent(t *testing.T, reason, name string) corev1.Event {
	t.Helper()
	var ev corev1.Event
	waitFor(t, 30*time.Second, "the "+reason+" Event on VPNUser/"+name, func() (bool, string) {
		var l corev1.EventList
		if err := r.c.List(context.Background(), &l); err != nil {
			return false, err.Error()
		}
		for _, e := range l.Items {
			if e.Reason == reason && e.InvolvedObject.Kind == "VPNUser" && e.InvolvedObject.Name == name && e.Source.Component == "ikegate-agent" {
				ev = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events", len(l.Items))
	})
	return ev
}

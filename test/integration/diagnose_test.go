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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestEachRefusedAttemptIsExplainedWhereItsOwnerLooks connects real strongSwan
// clients that fail in different ways to a gateway charon run by the agent
// (objects in a real API server, charon's VICI log and error-notify socket)
// and checks each Event: its reason, the object it lands on, and that its
// message names both sides' values; then the gateway's recent failures,
// the users' Connected conditions, and the condition clearing once the
// user connects.
func TestEachRefusedAttemptIsExplainedWhereItsOwnerLooks(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		pod    = "vpn-gateway-0"
		gwAddr = "192.0.2.1"
		clAddr = "192.0.2.2"
	)
	gwNS := netns.New(t, "dggw")
	clNS := netns.New(t, "dgcl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", clAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Diagnose Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw, enfy := diagGateway(t, gwNS, swan.Retransmit{}, nil)
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	clVICI := vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { clVICI.Close() })

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(ctx, c, "jimp", "jimp@example.com", "abc123"); err != nil {
		t.Fatal(err)
	}
	s, ann := userObjects("ann", "ann@example.com", "pw-ann")
	ann.Spec.Disabled = true
	for _, o := range []client.Object{s, ann} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ag := startAgent(t, cfg, agentConfig{pod: pod, gw: gw, log: testr.New(t), errorNotify: enfy})
	ag.waitReady(t, 30*time.Second)
	waitServed(t, ag, "jimp")

	mk := func(conn, identity, password string, mod func(*charontest.EAPClient)) charontest.EAPClient {
		ec := charontest.EAPClient{Conn: conn, Gateway: gwAddr, RemoteID: hostname, Identity: identity, Password: password, RemoteTS: lanNet}
		if mod != nil {
			mod(&ec)
		}
		return ec
	}
	cases := []struct {
		client       charontest.EAPClient
		kind, object string
		reason       string
		// values both sides had, each in the Event's message.
		values []string
	}{
		{client: mk("wrongpw", "jimp@example.com", "wrong", nil), kind: "VPNUser", object: "jimp",
			reason: v1alpha1.ReasonAuthenticationFailed, values: []string{"jimp@example.com", clAddr, "wrong password", "check the password"}},
		{client: mk("weak", "jimp@example.com", "abc123", func(ec *charontest.EAPClient) { ec.Proposals = "3des-sha1-modp1024" }),
			kind: "VPNGateway", object: gatewayName, reason: v1alpha1.ReasonProposalMismatch,
			values: []string{"the peer offered IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "the gateway has IKE:AES_"}},
		{client: mk("stranger", "nobody@example.com", "guess", nil), kind: "VPNGateway", object: gatewayName,
			reason: v1alpha1.ReasonUnknownUser, values: []string{"nobody@example.com", "no VPNUser of this gateway has this EAP identity", "create a VPNUser"}},
		{client: mk("nets", "jimp@example.com", "abc123", func(ec *charontest.EAPClient) { ec.RemoteTS = "10.99.0.0/24" }),
			kind: "VPNUser", object: "jimp", reason: v1alpha1.ReasonTrafficSelectorMismatch,
			values: []string{"the peer offered 10.99.0.0/24", "the gateway has " + lanNet}},
		{client: mk("otherid", "jimp@example.com", "abc123", func(ec *charontest.EAPClient) { ec.RemoteID = "vpn2.example.com" }),
			kind: "VPNGateway", object: gatewayName, reason: v1alpha1.ReasonIdentityMismatch,
			values: []string{"vpn2.example.com", "set the client's remote ID to " + hostname}},
		{client: mk("disabled", "ann@example.com", "pw-ann", nil), kind: "VPNUser", object: "ann",
			reason: v1alpha1.ReasonDisabled, values: []string{"ann@example.com", "the VPNUser is disabled", "enable the VPNUser"}},
	}
	for _, tc := range cases {
		t.Run(tc.client.Conn, func(t *testing.T) {
			// One client at a time: charon picks EAP secrets by identity,
			// not by connection.
			conn, secret := tc.client.Sections()
			loadClient(t, cl, pki, []string{conn}, []string{secret})
			if _, err := initiate(ctx, clVICI, tc.client.Conn); err == nil {
				t.Fatalf("Client %s connected", tc.client.Conn)
			}
			_ = terminate(ctx, clVICI, tc.client.Conn)
			var ev corev1.Event
			waitFor(t, 20*time.Second, "the "+tc.reason+" Event", func() (bool, string) {
				evs := warningEvents(t, c)
				for _, e := range evs {
					if e.Reason == tc.reason {
						ev = e
						return true, ""
					}
				}
				return false, fmt.Sprintf("Events: %v", evs)
			})
			if ev.InvolvedObject.Kind != tc.kind || ev.InvolvedObject.Name != tc.object || ev.InvolvedObject.UID == "" {
				t.Errorf("%s Event on %s/%s (uid %q), want %s/%s", tc.reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.InvolvedObject.UID, tc.kind, tc.object)
			}
			for _, v := range tc.values {
				if !strings.Contains(ev.Message, v) {
					t.Errorf("%s Event message lacks %q: %s", tc.reason, v, ev.Message)
				}
			}
			t.Logf("%s on %s/%s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
			if tc.kind == "VPNUser" {
				waitFor(t, 10*time.Second, "Connected=False on VPNUser "+tc.object, func() (bool, string) {
					u := getUser(t, c, tc.object)
					cond := meta.FindStatusCondition(u.Status.Conditions, v1alpha1.ConditionConnected)
					return cond != nil && cond.Status == "False" && cond.Reason == tc.reason, fmt.Sprintf("conditions: %+v", u.Status.Conditions)
				})
			}
		})
	}

	waitFor(t, 30*time.Second, "every failure in the gateway's recent failures", func() (bool, string) {
		var g v1alpha1.VPNGateway
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &g); err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, a := range g.Status.Agents {
			for _, f := range a.RecentFailures {
				got[f.Reason] = f.Kind + "/" + f.Name
			}
		}
		for _, tc := range cases {
			if got[tc.reason] != tc.kind+"/"+tc.object {
				return false, fmt.Sprintf("recent failures: %v", got)
			}
		}
		return true, ""
	})

	// The same user connecting clears its condition.
	good, goodSecret := clientConf("home", gwAddr, "jimp@example.com", "abc123")
	loadClient(t, cl, pki, []string{good}, []string{goodSecret})
	if _, err := initiate(ctx, clVICI, "home"); err != nil {
		t.Fatalf("jimp could not connect: %v", err)
	}
	waitFor(t, 15*time.Second, "Connected=True on VPNUser jimp", func() (bool, string) {
		u := getUser(t, c, "jimp")
		cond := meta.FindStatusCondition(u.Status.Conditions, v1alpha1.ConditionConnected)
		return cond != nil && cond.Status == "True" && cond.Reason == v1alpha1.ReasonConnected, fmt.Sprintf("conditions: %+v", u.Status.Conditions)
	})
	if v := ag.metric(t, "ikegate_agent_negotiation_failures_total", map[string]string{"phase": "IKE_SA_INIT", "reason": v1alpha1.ReasonProposalMismatch}); v < 1 {
		t.Errorf("negotiation failures {IKE_SA_INIT, ProposalMismatch} = %v, want the mismatch counted", v)
	}
}

// warningEvents are the agent's Warning Events in the test namespace.
func warningEvents(t *testing.T, c client.Client) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	if err := c.List(context.Background(), &l, client.InNamespace(namespace)); err != nil {
		t.Fatalf("Listing Events: %v", err)
	}
	var out []corev1.Event
	for _, e := range l.Items {
		if e.Type == corev1.EventTypeWarning && e.Source.Component == "ikegate-agent" {
			out = append(out, e)
		}
	}
	return out
}

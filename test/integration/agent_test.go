package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/nftables"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestAgentWithRealClient drives a gateway charon through the agent from
// objects in a real API server and connects a real EAP-MSCHAPv2 client:
// address from the pool, ping through the tunnel, session and counters in
// the VPNUser's status; then the user is deleted (its SA must end within
// 1 s), the agent restarts under an established SA (which must survive),
// and charon restarts (its configuration must be back within 2 s).
func TestAgentWithRealClient(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		pod      = "vpn-gateway-0"
		identity = "jimp@example.com"
		password = "abc123"
		gwAddr   = "192.0.2.1"
	)

	gwNS := netns.New(t, "aggw")
	clNS := netns.New(t, "agcl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Agent Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(ctx, c, "jimp", identity, password); err != nil {
		t.Fatal(err)
	}

	table := firewall.TableName(namespace, gatewayName)
	fw, err := firewall.NewApplier(table, nftables.WithNetNSFd(gwNS.Fd()))
	if err != nil {
		t.Fatalf("Opening nftables in the gateway namespace: %v", err)
	}
	ac := agentConfig{pod: pod, gw: gw, firewall: fw, log: testr.New(t)}
	ag := startAgent(t, cfg, ac)
	ag.waitReady(t, 30*time.Second)
	ag.waitServes(t, 1)
	if keys, err := sharedKeys(ctx, gwVICI); err != nil || len(keys) != 0 {
		t.Fatalf("charon holds shared secrets %v (%v); the agent's RADIUS server checks the users", keys, err)
	}
	rec := httptest.NewRecorder()
	ag.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz = %d after the first apply, want 200", rec.Code)
	}
	if out := gwNS.Run(t, "nft", "list", "tables"); !strings.Contains(out, "inet "+table) {
		t.Errorf("Gateway namespace has no firewall table %s:\n%s", table, out)
	}

	conn, secret := clientConf("home", gwAddr, identity, password)
	badConn, badSecret := clientConf("intruder", gwAddr, "mallory@example.com", "guess")
	loadClient(t, cl, pki, []string{conn, badConn}, []string{secret, badSecret})
	// An identity the gateway has no user for is refused, and counted.
	if _, err := initiate(ctx, clVICI, "intruder"); err == nil {
		t.Fatal("An unknown user connected")
	}
	waitFor(t, 5*time.Second, "the refused login in the metrics", func() (bool, string) {
		v := ag.metric(t, "ikegate_agent_auth_failures_total", nil)
		return v == 1, "ikegate_agent_auth_failures_total = " + strconv.FormatFloat(v, 'g', -1, 64)
	})
	if err := terminate(ctx, clVICI, "intruder"); err != nil {
		t.Fatal(err)
	}
	if _, err := initiate(ctx, clVICI, "home"); err != nil {
		t.Fatalf("Client could not connect: %v\n", err)
	}
	addrs := clNS.Run(t, "ip", "-4", "-o", "addr", "show")
	m := regexp.MustCompile(`ipsec0\s+inet (10\.3\.200\.\d+)/`).FindStringSubmatch(addrs)
	if m == nil {
		t.Fatalf("No virtual IP from the pool on ipsec0:\n%s", addrs)
	}
	vip := m[1]
	ping(t, clNS, 3)

	// The session shows up in the user's status with the virtual IP and
	// counters that then grow with more traffic.
	var first v1alpha1.Session
	waitFor(t, 10*time.Second, "the session in the VPNUser's status", func() (bool, string) {
		u := getUser(t, c, "jimp")
		if len(u.Status.Sessions) != 1 || u.Status.SessionCount != 1 {
			return false, "status: " + sessionsString(u)
		}
		first = u.Status.Sessions[0]
		return first.BytesIn > 0 && first.PacketsIn >= 3, "status: " + sessionsString(u)
	})
	if first.Pod != pod || first.RemoteAddress != "192.0.2.2" || len(first.VirtualAddresses) != 1 || first.VirtualAddresses[0] != vip ||
		first.IKEProposal == "" || first.ESPProposal == "" || first.EstablishedAt.IsZero() {
		t.Errorf("Session in status = %+v; want pod %s, remote 192.0.2.2, virtual IP %s, proposals and start time", first, pod, vip)
	}
	ping(t, clNS, 5)
	waitFor(t, 10*time.Second, "the session's counters to grow", func() (bool, string) {
		u := getUser(t, c, "jimp")
		if len(u.Status.Sessions) != 1 {
			return false, sessionsString(u)
		}
		s := u.Status.Sessions[0]
		return s.BytesIn > first.BytesIn && s.BytesOut > first.BytesOut && s.PacketsIn >= first.PacketsIn+5, sessionsString(u)
	})
	// Another replica reports a session of the same user under its own
	// field owner; neither pod's writes may remove the other's.
	other := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "VPNUser",
		"metadata": map[string]any{"name": "jimp", "namespace": namespace},
		"status": map[string]any{
			"sessionCount": int64(2),
			"sessions": []any{map[string]any{
				"pod": "vpn-gateway-1", "remoteAddress": "198.51.100.77", "remotePort": int64(4500),
				"establishedAt": "2026-01-01T00:00:00Z", "bytesIn": int64(1), "bytesOut": int64(1), "packetsIn": int64(1), "packetsOut": int64(1),
			}},
		},
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(other), client.FieldOwner(agent.FieldOwnerPrefix+"vpn-gateway-1"), client.ForceOwnership); err != nil {
		t.Fatalf("Writing the other replica's session: %v", err)
	}
	var mine v1alpha1.Session
	for _, s := range getUser(t, c, "jimp").Status.Sessions {
		if s.Pod == pod {
			mine = s
		}
	}
	ping(t, clNS, 3)
	waitFor(t, 10*time.Second, "both replicas' sessions after this pod's next write", func() (bool, string) {
		u := getUser(t, c, "jimp")
		if len(u.Status.Sessions) != 2 || u.Status.SessionCount != 2 {
			return false, sessionsString(u)
		}
		for _, s := range u.Status.Sessions {
			if s.Pod == pod && s.PacketsIn > mine.PacketsIn {
				return true, ""
			}
		}
		return false, sessionsString(u)
	})
	owners := map[string]bool{}
	for _, mf := range getUser(t, c, "jimp").ManagedFields {
		if mf.Subresource == "status" {
			owners[mf.Manager] = true
		}
	}
	if !owners[agent.FieldOwnerPrefix+pod] || !owners[agent.FieldOwnerPrefix+"vpn-gateway-1"] {
		t.Errorf("Status field owners = %v, want one per pod", owners)
	}

	waitFor(t, 10*time.Second, "the gateway's agent report", func() (bool, string) {
		var g v1alpha1.VPNGateway
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &g); err != nil {
			return false, err.Error()
		}
		for _, a := range g.Status.Agents {
			// It says it applies the shards' recent changes, so the manager
			// need not write each change into the shard itself.
			if a.Pod == pod && a.AppliedGeneration == g.Generation && a.LastError == "" && a.Sessions == 1 && a.CredentialsRecent {
				return true, ""
			}
		}
		return false, "agents: " + agentsString(g.Status.Agents)
	})
	if v := ag.metric(t, "ikegate_agent_sessions", nil); v != 1 {
		t.Errorf("ikegate_agent_sessions = %v, want 1", v)
	}
	if v := ag.metric(t, "ikegate_agent_ike_sa_events_total", map[string]string{"event": "up"}); v < 1 {
		t.Errorf("ikegate_agent_ike_sa_events_total{event=up} = %v, want >= 1", v)
	}
	if v := ag.metric(t, "ikegate_agent_apply_duration_seconds", nil); v < 1 {
		t.Errorf("ikegate_agent_apply_duration_seconds has %v samples, want >= 1", v)
	}

	parent := t
	t.Run("agent restart keeps the established SA", func(t *testing.T) {
		before, err := established(ctx, gwVICI, "mobile-"+poolName)
		if err != nil || len(before) != 1 {
			t.Fatalf("Gateway SAs before the restart: %v, %v", before, err)
		}
		ag.stop(t)
		// The new agent outlives this subtest.
		ag = startAgent(parent, cfg, ac)
		ag.waitReady(t, 30*time.Second)
		// Give the new agent's session loop a few rounds to act.
		time.Sleep(2 * time.Second)
		after, err := established(ctx, gwVICI, "mobile-"+poolName)
		if err != nil || len(after) != 1 || after[0].UniqueID != before[0].UniqueID {
			t.Fatalf("IKE_SA %d did not survive the agent's restart: now %+v (%v)", before[0].UniqueID, after, err)
		}
		ping(t, clNS, 2)
	})

	t.Run("deleting the user ends its SA within 1s", func(t *testing.T) {
		if sas, err := established(ctx, clVICI, "home"); err != nil || len(sas) != 1 {
			t.Fatalf("Client SAs before the delete: %v, %v", sas, err)
		}
		u := getUser(t, c, "jimp")
		start := time.Now()
		if err := c.Delete(ctx, &u); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the client's SA to end", func() (bool, string) {
			sas, err := vici.ListSAs(ctx, clVICI)
			return err == nil && len(sas) == 0, "client still has SAs"
		})
		took := time.Since(start)
		t.Logf("User deleted -> client's IKE_SA gone: %v", took.Round(time.Millisecond))
		if v := ag.metric(t, "ikegate_agent_radius_users", nil); v != 0 {
			t.Errorf("The agent serves %v users after the delete, want 0", v)
		}
	})

	t.Run("charon restart: configuration back within 2s and the client reconnects", func(t *testing.T) {
		// The password Secret outlived the VPNUser.
		_, u := userObjects("jimp", identity, password)
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		ag.waitServes(t, 1)
		begin := time.Now()
		gw.Restart(t)
		up := time.Now()
		waitFor(t, 10*time.Second, "charon's configuration after its restart", func() (bool, string) {
			conns, err := connNames(ctx, gwVICI)
			return err == nil && slices.Contains(conns, "mobile-"+poolName), "connection missing"
		})
		back := time.Since(up)
		t.Logf("Charon restart: stop+start %v, socket up -> configuration back %v",
			up.Sub(begin).Round(time.Millisecond), back.Round(time.Millisecond))
		if err := terminate(ctx, clVICI, "home"); err != nil {
			t.Fatalf("Clearing the client's stale SA: %v", err)
		}
		if _, err := initiate(ctx, clVICI, "home"); err != nil {
			t.Fatalf("Client could not reconnect after charon's restart: %v", err)
		}
		ping(t, clNS, 2)
	})

	if strings.Contains(gw.Log(), password) || strings.Contains(cl.Log(), password) {
		t.Error("A charon logged the user's password")
	}
}

func ping(t *testing.T, ns *netns.NS, n int) {
	t.Helper()
	out, err := ns.Exec("ping", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "2", lanAddr)
	if err != nil || !strings.Contains(out, strconv.Itoa(n)+" received") {
		t.Fatalf("Ping through the tunnel: %v\n%s", err, out)
	}
}

func getUser(t *testing.T, c client.Client, name string) v1alpha1.VPNUser {
	t.Helper()
	var u v1alpha1.VPNUser
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &u); err != nil {
		t.Fatalf("Reading VPNUser %s: %v", name, err)
	}
	return u
}

func sessionsString(u v1alpha1.VPNUser) string {
	var b strings.Builder
	for _, s := range u.Status.Sessions {
		b.WriteString(s.Pod + " " + s.RemoteAddress + " in=" + strconv.Itoa(int(s.BytesIn)) + "/" + strconv.Itoa(int(s.PacketsIn)) +
			" out=" + strconv.Itoa(int(s.BytesOut)) + "/" + strconv.Itoa(int(s.PacketsOut)) + "; ")
	}
	return "count " + strconv.Itoa(int(u.Status.SessionCount)) + ": " + b.String()
}

func agentsString(as []v1alpha1.AgentStatus) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.Pod + " gen=" + strconv.Itoa(int(a.AppliedGeneration)) + " sessions=" + strconv.Itoa(int(a.Sessions)) + " recent=" + strconv.FormatBool(a.CredentialsRecent) + " err=" + a.LastError + "; ")
	}
	return b.String()
}

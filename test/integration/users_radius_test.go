package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/util/retry"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// secretWrites records every secret the agent loads into or unloads from
// charon.
type secretWrites struct {
	mu  sync.Mutex
	ops []string
}

func (w *secretWrites) onApply(res vici.Result, _ error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range res.Ops {
		if op.Ref.Kind == vici.KindSecret {
			w.ops = append(w.ops, string(op.Action)+" "+op.Ref.Name)
		}
	}
}

func (w *secretWrites) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.ops, ", ")
}

// TestUsersServedByTheAgent: real EAP-MSCHAPv2 clients log in through
// charon's eap-radius plugin and the agent's RADIUS server. Users come and
// go without a single secret loaded into charon (charon's shared keys stay
// empty), and charon's accounting reports each session to the agent; a
// disabled user's session ends and its next login, tried at once, is
// refused by the agent's server; after charon is SIGKILLed and restarted,
// a user logs in as soon as the connections are back.
func TestUsersServedByTheAgent(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const gwAddr = "192.0.2.1"
	gwNS := netns.New(t, "usgw")
	clNS := netns.New(t, "uscl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Users Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	// Accounting on: charon reports each session to the agent's server.
	// (Not the gateways' default: charon closes an IKE_SA whose Start goes
	// unanswered, which an agent restart would cause.)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true, Settings: func(s *swan.Settings) {
		s.EAPRADIUS.Accounting = true
	}})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(ctx, c, "alice", "alice@example.com", "alice-pass"); err != nil {
		t.Fatal(err)
	}
	writes := &secretWrites{}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, onApply: writes.onApply, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)
	ag.waitServes(t, 1)

	var conns, secrets []string
	for _, u := range []struct{ conn, identity, password string }{
		{"alice", "alice@example.com", "alice-pass"}, {"bob", "bob@example.com", "bob-pass"},
	} {
		conn, secret := clientConf(u.conn, gwAddr, u.identity, u.password)
		conns, secrets = append(conns, conn), append(secrets, secret)
	}
	loadClient(t, cl, pki, conns, secrets)
	noSharedKeys := func(when string) {
		t.Helper()
		if keys, err := sharedKeys(ctx, gwVICI); err != nil || len(keys) != 0 {
			t.Errorf("%s: charon holds shared keys %v (%v), want none", when, keys, err)
		}
	}
	login := func(conn string) {
		t.Helper()
		if _, err := initiate(ctx, clVICI, conn); err != nil {
			t.Fatalf("%s could not log in: %v", conn, err)
		}
	}

	login("alice")
	ping(t, clNS, 2)
	if !strings.Contains(gw.Log(), "RADIUS authentication of 'alice@example.com' successful") {
		t.Errorf("charon did not authenticate alice through RADIUS:\n%s", gw.Log())
	}
	noSharedKeys("alice logged in")
	sessions := func(n int) {
		t.Helper()
		waitFor(t, 10*time.Second, "charon's RADIUS accounting to report the sessions", func() (bool, string) {
			v := ag.metric(t, "ikegate_agent_radius_sessions", nil)
			return v == float64(n), fmt.Sprintf("ikegate_agent_radius_sessions = %v, want %d", v, n)
		})
	}
	sessions(1)

	// A user added: served by the agent, logged in, nothing loaded into
	// charon, and decided alone, without building the whole gateway.
	alone := ag.metric(t, "ikegate_agent_user_changes_total", nil)
	decidedAlone := func(what string) {
		t.Helper()
		if v := ag.metric(t, "ikegate_agent_user_changes_total", nil); v <= alone {
			t.Errorf("%s: the agent decided no user alone (ikegate_agent_user_changes_total %v); want the change of one user applied without a whole Build", what, v)
		}
		alone = ag.metric(t, "ikegate_agent_user_changes_total", nil)
	}
	if err := createUser(ctx, c, "bob", "bob@example.com", "bob-pass"); err != nil {
		t.Fatal(err)
	}
	ag.waitServes(t, 2)
	decidedAlone("bob added")
	login("bob")
	noSharedKeys("bob added")
	sessions(2)

	// Disabled: bob's session ends, and his next login, tried as soon as
	// the agent's server dropped him, is refused by that server.
	rejects := ag.metric(t, "ikegate_agent_radius_rejects_total", nil)
	// The agent writes bob's status meanwhile: read again on a conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := getUser(t, c, "bob")
		u.Spec.Disabled = true
		return c.Update(ctx, &u)
	}); err != nil {
		t.Fatal(err)
	}
	ag.waitServes(t, 1)
	decidedAlone("bob disabled")
	waitFor(t, 10*time.Second, "bob's session to end", func() (bool, string) {
		sas, err := established(ctx, clVICI, "bob")
		return err == nil && len(sas) == 0, "bob still has an IKE_SA"
	})
	sessions(1)
	if err := terminate(ctx, clVICI, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := initiate(ctx, clVICI, "bob"); err == nil {
		t.Fatal("A disabled user logged in")
	}
	if v := ag.metric(t, "ikegate_agent_radius_rejects_total", nil); v != rejects+1 {
		t.Errorf("The agent's RADIUS server refused %v logins since the disable, want 1", v-rejects)
	}
	if !strings.Contains(gw.Log(), "RADIUS authentication of 'bob@example.com' failed") {
		t.Errorf("charon did not see bob refused by RADIUS:\n%s", gw.Log())
	}
	if err := terminate(ctx, clVICI, "bob"); err != nil {
		t.Fatal(err)
	}

	// charon is killed: a restarted charon gets the connections back and
	// alice logs in at once; nothing per user is loaded.
	if err := terminate(ctx, clVICI, "alice"); err != nil {
		t.Fatal(err)
	}
	const restores = "ikegate_agent_charon_restores_total"
	restored := ag.metric(t, restores, nil)
	gw.KillAndRestart(t)
	up := time.Now()
	waitFor(t, 30*time.Second, "the connections after charon's restart", func() (bool, string) {
		names, err := connNames(ctx, gwVICI)
		return err == nil && len(names) > 0, "no connection"
	})
	loaded := time.Since(up)
	login("alice")
	// Only users changed since the last whole apply: charon got that
	// apply's configuration back without the gateway being built again.
	waitFor(t, 5*time.Second, "the agent to count the restore", func() (bool, string) {
		v := ag.metric(t, restores, nil)
		return v == restored+1, fmt.Sprintf("%s went from %v to %v, want one more", restores, restored, v)
	})
	t.Logf("charon SIGKILLed and restarted: connections back %v, alice logged in %v after its socket",
		loaded.Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	ping(t, clNS, 2)
	noSharedKeys("charon restarted")
	if w := writes.String(); w != "" {
		t.Errorf("The agent loaded or unloaded secrets in charon: %s", w)
	}
	if strings.Contains(gw.Log(), "alice-pass") || strings.Contains(gw.Log(), "bob-pass") {
		t.Error("charon logged a password")
	}
}

package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/swan"
)

// The recovery bounds, and what the tests assert: a loaded 2-core
// CI machine runs the manager, the API server, two charons and the agent on
// the same cores as seven other engineers' tests, and a test that fails
// there for scheduling alone would be ignored. Each asserted bound is about
// three times the worst figure measured here over repeated runs; the
// benchmarks print the figures themselves against the bounds.
const (
	// charonRestoreBound: after a SIGKILLed charon's socket is back, the
	// full inventory equals the model within 2 s. Measured: median 0.42 s,
	// worst 0.93 s; asserted: 3 × 2 s.
	charonRestoreBound  = 2 * time.Second
	charonRestoreAssert = 3 * charonRestoreBound
)

// recoveryUsers is the number of users the recovery tests load.
const recoveryUsers = 1000

// loadedRig is a recovery rig whose agent has loaded every user (see
// waitLoaded).
func loadedRig(t testing.TB, users int) (*recoveryRig, *runningAgent, swan.Model) {
	t.Helper()
	r := newRecoveryRig(t, users)
	ag := r.startAgent(t, "vpn-gateway-0", nil)
	ag.waitReady(t, 2*time.Minute)
	return r, ag, r.waitLoaded(t, users, ag)
}

// waitLoaded waits until the agent serves every user and the tunnel, and
// charon holds exactly the model it saved, and returns that model. Users are no item of
// charon's: the agent's RADIUS server holds them, and the state file keeps
// them with the model. ag, when not nil, is an agent of the test's process,
// whose gauge must count them too; an agent process is judged by its file.
func (r *recoveryRig) waitLoaded(t testing.TB, users int, ag *runningAgent) swan.Model {
	t.Helper()
	var m swan.Model
	waitFor(t, 5*time.Minute, fmt.Sprintf("charon to hold the model and the agent to serve %d users", users), func() (bool, string) {
		saved, err := agent.LoadSaved(r.stateFile)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			return false, err.Error()
		}
		m = saved.Model
		if n := len(saved.Users); n != users {
			time.Sleep(100 * time.Millisecond)
			return false, fmt.Sprintf("the agent saved %d users", n)
		}
		// The tunnel's key reaches the agent through its own credentials
		// shard, which on a loaded machine can come after every user's.
		if !slices.ContainsFunc(m.Connections, func(c swan.Connection) bool { return c.Name == "tunnel-"+recTunnel }) {
			time.Sleep(100 * time.Millisecond)
			return false, "the agent saved no connection for the tunnel " + recTunnel
		}
		if ag != nil {
			if v := ag.metric(t, "ikegate_agent_radius_users", nil); v != float64(users) {
				return false, fmt.Sprintf("ikegate_agent_radius_users = %v", v)
			}
		}
		gap := r.inventoryGap(t.Context(), m)
		return gap == "", gap
	})
	return m
}

// modelItems is how many items charon holds for m, about one write each.
func modelItems(m swan.Model) int {
	return len(m.Connections) + len(m.Pools) + len(m.Secrets) + len(m.Keys) + len(m.Certs) + len(m.Authorities)
}

// measureCharonKill SIGKILLs the loaded gateway's charon rounds times and
// returns, per round, how long after the new charon's socket accepted
// connections its inventory equalled the model again (sorted).
func measureCharonKill(t testing.TB, rounds int) []time.Duration {
	r, ag, m := loadedRig(t, recoveryUsers)
	var took []time.Duration
	for round := range rounds {
		up := r.killCharon(t)
		back := r.waitInventory(t, m, time.Minute, fmt.Sprintf("round %d: charon to hold the model again after SIGKILL", round))
		took = append(took, back.Sub(up))
		ag.waitReady(t, time.Minute)
		// A settled gateway for the next round.
		time.Sleep(time.Second)
	}
	slices.Sort(took)
	return took
}

// TestCharonKillRestoresInventory SIGKILLs charon with 1,000 users, a pool
// and a tunnel loaded: every connection, pool, secret, key, certificate and
// authority of the model is back, and nothing else, within the 2 s
// (asserted: charonRestoreAssert) of charon's socket returning.
func TestCharonKillRestoresInventory(t *testing.T) {
	took := measureCharonKill(t, 3)
	t.Logf("Inventory back after charon's SIGKILL, %d users: median %v, worst %v (bound %v)", recoveryUsers, median(took), took[len(took)-1], charonRestoreBound)
	for i, d := range took {
		if d > charonRestoreAssert {
			t.Errorf("Sample %d: the inventory took %v to return, over the asserted %v", i, d, charonRestoreAssert)
		}
	}
}

// BenchmarkCharonKillRecovery prints the charon-SIGKILL figure over five
// rounds; it measures once, whatever b.N.
func BenchmarkCharonKillRecovery(b *testing.B) {
	took := measureCharonKill(b, 5)
	fmt.Printf("Charon SIGKILL, %d users, pool and tunnel: inventory equal to the model after median %v, worst %v of %v (issue's bound %v)\n",
		recoveryUsers, median(took), took[len(took)-1], took, charonRestoreBound)
	b.ReportMetric(float64(median(took).Milliseconds()), "restore-median-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "restore-worst-ms")
}

// TestRestartsWithoutTheAPIServerServeTheLastConfiguration cuts the agent
// off the API server, then restarts charon (the running agent reloads it
// from its informers' memory), restarts the agent with a charon that lost
// everything too (the new agent cannot list anything and serves the
// configuration it saved in the pod's volume), and restarts charon once
// more before the API server answers again.
func TestRestartsWithoutTheAPIServerServeTheLastConfiguration(t *testing.T) {
	r, ag, m := loadedRig(t, 100)
	// A change of single users reaches the state file (through its
	// journal): a new user, and a revoked one whom an agent restarted
	// offline must not serve.
	if err := createUser(t.Context(), r.c, "journaled", "journaled@example.com", "pw-journaled"); err != nil {
		t.Fatal(err)
	}
	_, revoked := userObjects("u-3", "", "")
	if err := r.c.Delete(t.Context(), revoked); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the state file to hold the new user and not the revoked one", func() (bool, string) {
		saved, err := agent.LoadSaved(r.stateFile)
		if err != nil {
			return false, err.Error()
		}
		_, added := saved.Users["journaled@example.com"]
		_, kept := saved.Users["u-3@example.com"]
		return added && !kept && len(saved.Users) == 100, fmt.Sprintf("%d users saved, the new one %v, the revoked one %v", len(saved.Users), added, kept)
	})
	r.proxy.cut()

	r.killCharon(t)
	r.waitInventory(t, m, time.Minute, "charon to hold the last configuration again, from the running agent's memory")
	ag.waitReady(t, time.Minute)

	ag.stop(t)
	r.killCharon(t)
	offline := r.startAgent(t, "vpn-gateway-0", nil)
	r.waitInventory(t, m, time.Minute, "charon to hold the saved configuration, loaded by an agent that never reached the API server")
	offline.waitReady(t, time.Minute)
	offline.waitServes(t, 100)

	r.killCharon(t)
	r.waitInventory(t, m, time.Minute, "charon to hold the saved configuration again after another restart")
	offline.waitReady(t, time.Minute)

	// The revoked user is refused.
	conn, secret := clientConf("u-3", recGWAddr, "u-3@example.com", "pw-u-3")
	loadClient(t, r.cl, r.pki, []string{conn}, []string{secret})
	if _, err := initiate(t.Context(), r.clVICI, "u-3"); err == nil {
		t.Fatal("u-3, revoked before the API server was cut off, logged in through the agent serving its saved users")
	}
	// The saved users log in: the new agent's RADIUS server checks them,
	// and the restarted charon re-read the servers file that names it.
	if _, ok := r.connectClients(t, []int{7})["u-7@example.com"]; !ok {
		t.Fatal("u-7 did not log in through the agent serving its saved users")
	}
	if n := offline.metric(t, "ikegate_agent_radius_accepts_total", nil); n < 1 {
		t.Errorf("ikegate_agent_radius_accepts_total = %v after a login, want at least 1", n)
	}

	// The API server is back: the agent's informers sync and it serves
	// what the API says again, a user created meanwhile included.
	served := offline.metric(t, "ikegate_agent_radius_users", nil)
	if err := createUser(t.Context(), r.c, "late", "late@example.com", "pw-late"); err != nil {
		t.Fatal(err)
	}
	r.proxy.resume(t)
	waitFor(t, time.Minute, "the user created while the agent was cut off to be served", func() (bool, string) {
		v := offline.metric(t, "ikegate_agent_radius_users", nil)
		return v == served+1, fmt.Sprintf("the agent serves %v users, want %v", v, served+1)
	})
	// The model is saved after the apply that loads it: read it each time.
	waitFor(t, time.Minute, "charon to hold the model saved once the API server answered", func() (bool, string) {
		m, _, err := agent.LoadSavedConfig(r.stateFile)
		if err != nil {
			return false, err.Error()
		}
		gap := r.inventoryGap(t.Context(), m)
		return gap == "", gap
	})
}

// TestAgentKilledMidApplyKeepsSessions SIGKILLs agent processes: the first
// with everything loaded and clients connected, the second halfway
// through its first apply (it reloads every item it cannot vouch for).
// The third converges on the model, and every client keeps its IKE_SA.
// The model holds no user (the agent's RADIUS server does), so an apply is
// a handful of writes: a second agent that finished before its kill is
// replaced by another, up to midApplyTries of them.
func TestAgentKilledMidApplyKeepsSessions(t *testing.T) {
	r := newRecoveryRig(t, recoveryUsers)
	bin := buildAgent(t)
	run := func() *agentProcess {
		return startAgentProcess(t, bin, "vpn-gateway-0", "--kubeconfig", r.kubeconfig, "--vici-socket", r.gw.VICISocket(),
			"--health-addr", freeAddr(t), "--metrics-addr", "", "--firewall=false", "--certificate-secret", certSecret,
			"--state-file", r.stateFile, "--radius-dir", r.gw.RADIUSDir(), "--radius-netns", r.gwNS.Path(),
			"--zap-log-level", "debug")
	}
	first := run()
	m := r.waitLoaded(t, recoveryUsers, nil)
	before := r.connectClients(t, []int{0, 1, 2, 3, 4})
	if len(before) != 5 {
		t.Fatalf("%d clients connected, want 5: %v", len(before), before)
	}
	first.kill(t)

	const applied = `"msg":"Applied"`
	const midApplyTries = 10
	items, mid := modelItems(m), false
	for try := 0; try < midApplyTries && !mid; try++ {
		second := run()
		waitFor(t, 2*time.Minute, "the second agent to start its first apply", func() (bool, string) {
			n := second.count(applied)
			return n >= 1, fmt.Sprintf("%d writes", n)
		})
		second.kill(t)
		n := second.count(applied)
		mid = n < items
		t.Logf("Killed a second agent after %d of its %d writes", n, items)
	}
	if !mid {
		t.Fatalf("No second agent of %d was killed in the middle of its apply", midApplyTries)
	}

	run()
	r.waitInventory(t, m, 2*time.Minute, "charon to hold the model again")
	if changed := sessionsChanged(before, r.sessions(t)); len(changed) > 0 {
		t.Errorf("Sessions dropped or replaced across the agent's crashes: %v", changed)
	}
}

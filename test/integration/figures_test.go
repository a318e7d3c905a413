package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// figureSpec says what to measure.
type figureSpec struct {
	// sizes are the numbers of users already loaded, ascending.
	sizes []int
	// samples of the agent's user-ready latency per size, and of the naive
	// full reload.
	samples, naiveSamples int
	// naiveMax is the largest size the naive gateway is loaded with: a
	// full reload of every user's NTLM secret grows quadratically (charon
	// searches its list of shared keys on every load-shared), 7.5 s at
	// 10,000 users, hours at 100,000.
	naiveMax int
	// connects per gateway at each size.
	connects int
	// gap separates a sample from the removal of the one before it, so
	// that each measures one change on a settled gateway rather than the
	// manager's and the agent's work for the removal too.
	gap time.Duration
}

type figureRow struct {
	users int
	agent []time.Duration // sorted
	naive []time.Duration // sorted
	// write is the time the API writes themselves took (Secret, then
	// VPNUser).
	write []time.Duration // sorted
	// credentials is when the manager's credentials Secret with the new
	// user's NT hash reached a watch of the test's.
	credentials []time.Duration // sorted
	// details are the samples' parts, in the order they ran.
	details            []sampleDetail
	agentSyncAfterBulk time.Duration
	// afterBulkWritten is the part of agentSyncAfterBulk after the test's
	// last API write of the bulk.
	afterBulkWritten time.Duration
	// settledAfterBulk is when, after the test's last API write of the
	// bulk, the manager had every user's Valid and ProfileReady written
	// (the samples start then).
	settledAfterBulk time.Duration
	// connectAgent and connectNaive are the client's connect times
	// (IKE_SA, EAP-MSCHAPv2, CHILD_SA) at this size; connectNaive is empty
	// above naiveMax.
	connectAgent, connectNaive []time.Duration // sorted
}

type figureResult struct {
	rows []figureRow
	// serving and restored are how long after a charon restart (its socket
	// back) the agent had the connections loaded again, and a client's
	// first login succeeded, at the largest size.
	serving, restored time.Duration
}

// servedAt polls the agent's RADIUS users gauge until it reads n and
// returns when it did: the moment the agent's server would check a login
// of the user that made it n. It polls every millisecond, well below the
// latencies measured.
func servedAt(t testing.TB, ag *runningAgent, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ag.metric(t, "ikegate_agent_radius_users", nil) == float64(n) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("The agent did not serve %d users within %v", n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// withNTLMSecrets is the model of res as charon held it before the agent
// served the users: each user's NT hash as a charon NTLM secret, for the
// gateway loaded the naive way. Without the agent's server no Class names
// the users' groups: the connections require none (one pool group only).
func withNTLMSecrets(res swan.Result) swan.Model {
	m := res.Model
	m.Secrets = slices.Clone(m.Secrets)
	for _, u := range res.Users {
		m.Secrets = append(m.Secrets, swan.Secret{Name: "ntlm-" + u.Name, Type: "NTLM", Owners: []string{u.Identity}, Data: u.NTHash[:]})
	}
	for i := range m.Connections {
		for j := range m.Connections[i].Remote {
			m.Connections[i].Remote[j].Method = "eap-mschapv2"
			m.Connections[i].Remote[j].Groups = nil
		}
	}
	return m
}

// measureFigures sets up an agent-driven gateway charon and a second one
// loaded the naive way (swanctl --load-all of the whole rendered
// configuration), each in its own namespace, plus a client namespace wired
// to both, and measures spec.
func measureFigures(t testing.TB, spec figureSpec) figureResult {
	require.Root(t)
	ctx := context.Background()
	const (
		agentAddr = "192.0.2.1"
		naiveAddr = "198.51.100.1"
	)
	agNS, nvNS, clNS := netns.New(t, "fgag"), netns.New(t, "fgnv"), netns.New(t, "fgcl")
	netns.Veth(t, agNS, clNS, agentAddr+"/24", "192.0.2.2/24")
	netns.Veth(t, nvNS, clNS, naiveAddr+"/24", "198.51.100.2/24")
	// charon routes the LAN to a client through an address of its own in it.
	agNS.AddLoopbackAddr(t, lanAddr+"/24")
	nvNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Figures CA")
	server := pki.Server(t, hostname, hostname, agentAddr, naiveAddr)
	quiet := map[string]int{"default": 1}
	agGW := charontest.Start(t, agNS, charontest.Options{Name: "agent-gw", Userspace: true, LogLevels: quiet})
	nvGW := charontest.Start(t, nvNS, charontest.Options{Name: "naive-gw", Userspace: true, LogLevels: quiet})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "client", Userspace: true, Client: true, LogLevels: quiet})
	agVICI, clVICI := vici.NewClient(agGW.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { agVICI.Close(); clVICI.Close() })

	// The manager runs too (startAPI): a user's NT hash reaches the agent
	// only through the credentials Secrets it writes, so it is on the path
	// being measured.
	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, nil)
	shards := watchShards(t, cfg)
	gw, pool := seedObjects(t, c)
	// The first user: the pool serves nobody without one.
	createUsers(t, c, "u", 0, 1)
	// With a state file, as in a pod: each change of users is saved too,
	// into memory as a pod's emptyDir keeps it, not onto the disk that
	// etcd syncs its log to.
	ag := startAgent(t, cfg, agentConfig{pod: v1alpha1.GatewayPodName(gatewayName, 0), gw: agGW, log: logr.Discard(),
		stateFile: filepath.Join(memoryDir(t), "agent-state.json")})
	ag.waitReady(t, 60*time.Second)

	// naiveConf renders what a full reload of n users plus extra loads.
	naiveConf := func(n int, extra string) (string, map[string][]byte) {
		in := swan.Resources{
			Gateway: gw, Pools: []v1alpha1.MobilePool{pool},
			Secrets:       map[string]map[string][]byte{},
			ServerCertPEM: server.CertPEM, ServerKeyPEM: server.KeyPEM, CAPEM: pki.CertPEM, Now: time.Now(),
		}
		add := func(name string) {
			s, u := userObjects(name, name+"@example.com", "pw-"+name)
			in.Users = append(in.Users, *u)
			in.Secrets[s.Name] = s.Data
		}
		for i := range n {
			add(fmt.Sprintf("u-%d", i))
		}
		if extra != "" {
			add(extra)
		}
		res := swan.Build(in)
		if len(res.Problems) > 0 {
			t.Fatalf("Building the naive configuration: %v", res.Problems)
		}
		m := withNTLMSecrets(res)
		return swan.Render(m, swan.RenderOptions{ShowSecrets: true}), swan.Files(m)
	}

	conf := func(conn, addr string) (string, string) { return clientConf(conn, addr, "u-0@example.com", "pw-u-0") }
	ac, as := conf("agent", agentAddr)
	nc, ns := conf("naive", naiveAddr)
	loadClient(t, cl, pki, []string{ac, nc}, []string{as, ns})

	var res figureResult
	loaded := 1
	for _, n := range spec.sizes {
		row := figureRow{users: n}
		bulk := time.Now()
		createUsers(t, c, "u", loaded, n-loaded)
		written := time.Now()
		loaded = n
		served := servedAt(t, ag, n, 15*time.Minute*time.Duration(max(1, n/10000)))
		row.agentSyncAfterBulk, row.afterBulkWritten = served.Sub(bulk), served.Sub(written)
		waitSettled(t, c, n)
		row.settledAfterBulk = time.Since(written)

		sampleUserReady(t, cfg, c, ag, shards, spec, n, &row)
		if keys, err := sharedKeys(ctx, agVICI); err != nil || len(keys) != 0 {
			t.Fatalf("charon holds %d shared secrets (%v); the agent serves the users", len(keys), err)
		}

		naive := n <= spec.naiveMax
		if naive {
			conf, files := naiveConf(n, "")
			if out, err := nvGW.LoadAll(conf, files); err != nil {
				t.Fatalf("Loading %d users with swanctl: %v\n%s", n, err, out)
			}
			for i := range spec.naiveSamples {
				conf, files := naiveConf(n, fmt.Sprintf("naive-%d", i))
				start := time.Now()
				if out, err := nvGW.LoadAll(conf, files); err != nil {
					t.Fatalf("Reloading %d+1 users with swanctl: %v\n%s", n, err, out)
				}
				row.naive = append(row.naive, time.Since(start))
			}
			slices.Sort(row.naive)
		}
		row.connectAgent, row.connectNaive = measureConnects(t, clVICI, spec.connects, naive)
		res.rows = append(res.rows, row)
		t.Logf("%d users: agent p50 %v p99 %v; swanctl --load-all median %v; agent took %v to load the bulk",
			n, percentile(row.agent, 0.5), percentile(row.agent, 0.99), percentile(row.naive, 0.5), row.agentSyncAfterBulk.Round(time.Millisecond))
	}

	// charon restarts; a client dials as soon as the connections are back
	// and must get in: there is nothing per user to reload.
	agGW.Restart(t)
	up := time.Now()
	waitFor(t, time.Minute, "the connections after charon's restart", func() (bool, string) {
		conns, err := connNames(ctx, agVICI)
		return err == nil && slices.Contains(conns, "mobile-"+poolName), "connection missing"
	})
	res.serving = time.Since(up)
	if _, err := initiate(ctx, clVICI, "agent"); err != nil {
		t.Fatalf("The first login after charon's restart failed: %v", err)
	}
	res.restored = time.Since(up)
	if err := terminate(ctx, clVICI, "agent"); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestUserReadyFigures runs the figures at a small scale so that `make test`
// exercises the code path; BenchmarkUserReadyFigures has the real sizes.
func TestUserReadyFigures(t *testing.T) {
	res := measureFigures(t, figureSpec{sizes: []int{10, 100}, samples: 10, naiveSamples: 2, naiveMax: 100, connects: 3, gap: 300 * time.Millisecond})
	t.Log(res.table())
	// The figures themselves are the benchmark's to report; here every
	// sample must have reached charon through the credentials Secrets,
	// and charon's restart must have brought its configuration back.
	for _, row := range res.rows {
		if len(row.agent) != 10 || len(row.credentials) != 10 {
			t.Errorf("%d users: %d samples reached charon and %d credentials Secrets were seen, want 10 each", row.users, len(row.agent), len(row.credentials))
		}
	}
	if res.serving == 0 || res.restored == 0 {
		t.Errorf("After charon's restart: connections back at %v, first login at %v; want both", res.serving, res.restored)
	}
	// The slowest samples' CPU columns read the control plane this test
	// started, which has used seconds by now.
	if p := findControlPlane().cpu(); p.apiServer == 0 || p.etcd == 0 {
		t.Errorf("The CPU time of this test's API server and etcd reads %v and %v; want both found", p.apiServer, p.etcd)
	}
	t.Log(slowestSamples(res.rows, 3))
	held := measureHeld(t, figureSpec{sizes: []int{10, 100}, samples: 5, gap: 300 * time.Millisecond})
	t.Log(heldTable(held))
	for _, row := range held {
		if len(row.agent) != 5 || len(row.credentials) != 5 {
			t.Errorf("%d users, charon faked: %d samples reached the agent's apply and %d credentials Secrets were seen, want 5 each", row.users, len(row.agent), len(row.credentials))
		}
	}
}

// BenchmarkUserReadyFigures prints the figures tables through a real
// charon at 10, 10,000 and 100,000 users (`make bench`; IKEGATE_BENCH_USERS,
// comma-separated, overrides the sizes), the naive full reload up to
// 10,000. It measures once, whatever b.N. 300 samples per size make p99
// the 297th of them, not one stray write: with 100 (p99 the second
// largest) the 10-user p99 swung from 21 to 28 ms between two runs, and
// the ratio of the goal with it; the tables show the largest too.
// 100 connects per size too: with 20, the connect p50 at 100,000 users
// swung from 0.92 to 1.21 times the 10-user one between two runs, too
// wide for a goal of 1.1.
// Goals (issue 18): p99 under 100 ms at the largest size and at most 1.5
// times the smallest size's; connects at the largest size within 1.1 times
// the smallest's; the first login after a charon restart within 1 s of its
// socket returning.
func BenchmarkUserReadyFigures(b *testing.B) {
	sizes := gen.UserCounts(b, 10, 10000, 100000)
	res := measureFigures(b, figureSpec{sizes: sizes, samples: 300, naiveSamples: 3, naiveMax: 10000, connects: 100, gap: time.Second})
	// Straight to stdout: the testing package cuts a benchmark's log short.
	fmt.Println(res.table())
	fmt.Println(slowestSamples(res.rows, 5))
	for _, row := range res.rows {
		b.ReportMetric(float64(percentile(row.agent, 0.99).Microseconds())/1000, fmt.Sprintf("p99-ms@%d", row.users))
		b.ReportMetric(float64(percentile(row.connectAgent, 0.5).Microseconds())/1000, fmt.Sprintf("connect-p50-ms@%d", row.users))
	}
	b.ReportMetric(float64(res.serving.Microseconds())/1000, "restart-serving-ms")
	b.ReportMetric(float64(res.restored.Microseconds())/1000, "restart-first-login-ms")
	first, last := res.rows[0], res.rows[len(res.rows)-1]
	if p99 := percentile(last.agent, 0.99); p99 >= 100*time.Millisecond || heldRatio(first, last) > 1.5 {
		b.Errorf("User-ready p99 at %d users is %s, %.2f times the %s at %d users; want under 100 ms and at most 1.5 times",
			last.users, p99, heldRatio(first, last), percentile(first.agent, 0.99), first.users)
	}
	if r := float64(percentile(last.connectAgent, 0.5)) / float64(max(1, percentile(first.connectAgent, 0.5))); r > 1.1 {
		b.Errorf("Connect p50 at %d users is %.2f times the one at %d users; want at most 1.1", last.users, r, first.users)
	}
	if res.restored > time.Second {
		b.Errorf("The first login after charon's restart with %d users took %v after its socket returned; want within 1 s", last.users, res.restored)
	}
}

// BenchmarkUserReadyHeldFigures prints the user-ready latency up to the
// agent holding the user, charon faked, at 10, 10,000 and 100,000 users
// (IKEGATE_BENCH_USERS overrides), with the same goals for p99.
func BenchmarkUserReadyHeldFigures(b *testing.B) {
	sizes := gen.UserCounts(b, 10, 10000, 100000)
	held := measureHeld(b, figureSpec{sizes: sizes, samples: 100, gap: time.Second})
	fmt.Println(heldTable(held))
	for _, row := range held {
		b.ReportMetric(float64(percentile(row.agent, 0.99).Microseconds())/1000, fmt.Sprintf("held-p99-ms@%d", row.users))
	}
	first, last := held[0], held[len(held)-1]
	if p99 := percentile(last.agent, 0.99); p99 >= 100*time.Millisecond || heldRatio(first, last) > 1.5 {
		b.Errorf("Up to the agent holding the user, p99 at %d users is %s, %.2f times the %s at %d users; want under 100 ms and at most 1.5 times",
			last.users, p99, heldRatio(first, last), percentile(first.agent, 0.99), first.users)
	}
}

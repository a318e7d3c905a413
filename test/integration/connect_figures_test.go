package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	govici "github.com/strongswan/govici/vici"
	"k8s.io/client-go/rest"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// goalConnectRatio is the issue's: connects per second through the agent's
// RADIUS server at least 0.9 times those with charon's own NTLM secrets.
const goalConnectRatio = 0.9

// connectPath is one gateway the same users connect to.
type connectPath struct {
	name string
	// conns is the prefix of the client's connections to it.
	conns string
	addr  string
	lat   []time.Duration // sorted after measuring
	busy  time.Duration
	n     int
	// cpu is what each process spent during the path's bursts, writes
	// the API server's write requests meanwhile by resource.
	cpu    cpuSpent
	writes map[string]float64
}

func (p *connectPath) cps() float64 { return float64(p.n) / p.busy.Seconds() }

// connectRig is an agent-driven gateway charon (users checked by the
// agent's RADIUS server), two gateway charons that hold the same users as
// NTLM secrets (loaded with swanctl), and a client wired to all three. One
// NTLM gateway is watched as the agent watches its charon, and as it
// watched a gateway that held NTLM secrets: charon's events and its log
// stream, each line through the diagnosis correlator. That is the
// comparison of issue 18; the other, unwatched, shows what the watch
// costs. (charon's vici plugin sends every line of level 1 or less to a
// "log" subscriber, vici_logger.c get_level, each through its job queue and
// the socket's writer.)
type connectRig struct {
	agent, ntlm, bare *connectPath
	cl                *charontest.Charon
	users             int
	cpu               *cpuWatch
	api               *rest.Config
}

func newConnectRig(t testing.TB, users, parallel int) *connectRig {
	require.Root(t)
	const (
		agentAddr = "192.0.2.1"
		ntlmAddr  = "198.51.100.1"
		bareAddr  = "203.0.113.1"
	)
	agNS, ntNS, baNS, clNS := netns.New(t, "cfag"), netns.New(t, "cfnt"), netns.New(t, "cfba"), netns.New(t, "cfcl")
	netns.Veth(t, agNS, clNS, agentAddr+"/24", "192.0.2.2/24")
	netns.Veth(t, ntNS, clNS, ntlmAddr+"/24", "198.51.100.2/24")
	netns.Veth(t, baNS, clNS, bareAddr+"/24", "203.0.113.2/24")
	for _, ns := range []*netns.NS{agNS, ntNS, baNS} {
		ns.AddLoopbackAddr(t, lanAddr+"/24")
	}
	pki := charontest.NewPKI(t, "Connect Figures CA")
	server := pki.Server(t, hostname, hostname, agentAddr, ntlmAddr, bareAddr)
	quiet := map[string]int{"default": 1}
	agGW := charontest.Start(t, agNS, charontest.Options{Name: "agent-gw", Userspace: true, LogLevels: quiet})
	ntGW := charontest.Start(t, ntNS, charontest.Options{Name: "ntlm-gw", Userspace: true, LogLevels: quiet})
	baGW := charontest.Start(t, baNS, charontest.Options{Name: "bare-gw", Userspace: true, LogLevels: quiet})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "client", Userspace: true, Client: true, LogLevels: quiet})

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, nil)
	createUsers(t, c, "u", 0, users)
	ag := startAgent(t, cfg, agentConfig{pod: v1alpha1.GatewayPodName(gatewayName, 0), gw: agGW, log: logr.Discard()})
	ag.waitReady(t, 60*time.Second)
	ag.waitServes(t, users)

	// The NTLM gateway: what Build makes of the same objects, each user's
	// NT hash as a charon secret instead of the agent's.
	gw, pool := seedObjects(t, c)
	in := swan.Resources{Gateway: gw, Pools: []v1alpha1.MobilePool{pool}, Secrets: map[string]map[string][]byte{},
		ServerCertPEM: server.CertPEM, ServerKeyPEM: server.KeyPEM, CAPEM: pki.CertPEM, Now: time.Now()}
	for i := range users {
		name := fmt.Sprintf("u-%d", i)
		s, u := userObjects(name, name+"@example.com", "pw-"+name)
		in.Users = append(in.Users, *u)
		in.Secrets[s.Name] = s.Data
	}
	res := swan.Build(in)
	if len(res.Problems) > 0 {
		t.Fatalf("Building the NTLM gateways: %v", res.Problems)
	}
	m := withNTLMSecrets(res)
	for _, gw := range []*charontest.Charon{ntGW, baGW} {
		if out, err := gw.LoadAll(swan.Render(m, swan.RenderOptions{ShowSecrets: true}), swan.Files(m)); err != nil {
			t.Fatalf("Loading an NTLM gateway: %v\n%s", err, out)
		}
	}
	watchLikeAnAgent(t, ntGW)

	r := &connectRig{
		agent: &connectPath{name: "agent's RADIUS server", conns: "agent", addr: agentAddr},
		ntlm:  &connectPath{name: "charon's NTLM secrets, watched", conns: "ntlm", addr: ntlmAddr},
		bare:  &connectPath{name: "charon's NTLM secrets, unwatched", conns: "bare", addr: bareAddr},
		cl:    cl, users: users,
	}
	for _, p := range r.paths() {
		p.cpu, p.writes = cpuSpent{}, map[string]float64{}
	}
	r.api = cfg
	r.cpu = newCPUWatch(map[string]int{
		cpuLabelGateway + r.agent.conns: agGW.PID(), cpuLabelGateway + r.ntlm.conns: ntGW.PID(),
		cpuLabelGateway + r.bare.conns: baGW.PID(), cpuLabelClient: cl.PID(), cpuLabelSelf: os.Getpid(),
	}, map[string]string{"kube-apiserver": cpuLabelAPI, "etcd": cpuLabelAPI})
	var conns, secrets []string
	for _, p := range r.paths() {
		for i := range parallel {
			conn, secret := clientConf(p.conn(i), p.addr, fmt.Sprintf("u-%d@example.com", i), fmt.Sprintf("pw-u-%d", i))
			conns = append(conns, conn)
			if p == r.agent {
				secrets = append(secrets, secret)
			}
		}
	}
	loadClient(t, cl, pki, conns, secrets)
	return r
}

// watchLikeAnAgent does to gw what the agent's session loop does to its
// charon, short of writing status: it follows charon's events and log
// until the test ends, each log line through a diagnosis correlator, and
// lists the SAs once after each burst of SA events.
func watchLikeAnAgent(t testing.TB, gw *charontest.Charon) {
	s := vici.NewClient(gw.VICISocket())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	events := vici.Watch(ctx, s, vici.WatchOptions{Log: true})
	go func() {
		defer close(done)
		c := diagnose.NewCorrelator(diagnose.Options{})
		soon := time.NewTimer(time.Hour)
		defer soon.Stop()
		pending := false
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				if l := ev.Log; l != nil {
					c.Observe(diagnose.LogEvent{Time: ev.Time, Group: l.Group, Level: l.Level, Thread: l.Thread, IKESA: l.IKEUniqueID, IKEName: l.IKEName, Msg: l.Message})
				} else if !pending && (ev.Kind == vici.EventIKEUpDown || ev.Kind == vici.EventChildUpDown) {
					pending = true
					soon.Reset(100 * time.Millisecond) // the agent's sessionRefreshDelay
				}
			case <-soon.C:
				pending = false
				_, _ = vici.ListSAs(ctx, s)
			}
		}
	}()
}

// The processes whose CPU the rig reads.
const (
	cpuLabelGateway = "gateway charon of "
	cpuLabelClient  = "client charon"
	cpuLabelSelf    = "test process"
	cpuLabelAPI     = "kube-apiserver and etcd"
)

func (r *connectRig) paths() []*connectPath { return []*connectPath{r.agent, r.ntlm, r.bare} }

// conn is the client's connection of user i to the path's gateway.
func (p *connectPath) conn(i int) string { return fmt.Sprintf("%s%d", p.conns, i) }

// connectAndLeave connects (IKE_SA, EAP, CHILD_SA), then disconnects and
// waits for the gateway's answer, so that the next connect starts from a
// gateway that holds no SA of the user.
func connectAndLeave(ctx context.Context, s vici.Session, conn string) (time.Duration, error) {
	d, err := initiate(ctx, s, conn)
	if err != nil {
		return d, err
	}
	req := govici.NewMessage()
	_ = req.Set("ike", conn)
	_ = req.Set("timeout", "5000")
	if _, err := s.Call(ctx, "terminate", req); err != nil {
		return d, fmt.Errorf("terminating %s: %w", conn, err)
	}
	return d, nil
}

// measure runs rounds of one connect per path, then bursts of parallel
// clients connecting perClient times each, the paths taking turns so that
// a load change on the machine hits both alike.
func (r *connectRig) measure(t testing.TB, rounds, parallel, perClient, bursts int) {
	ctx := context.Background()
	sessions := make([]vici.Session, parallel)
	for i := range sessions {
		sessions[i] = vici.NewClient(r.cl.VICISocket())
	}
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := range rounds {
		paths := r.paths()
		// Each gateway goes first in turn.
		k := i % len(paths)
		paths = append(paths[k:], paths[:k]...)
		for _, p := range paths {
			d, err := connectAndLeave(ctx, sessions[0], p.conn(0))
			if err != nil {
				t.Fatalf("Through the %s: %v", p.name, err)
			}
			p.lat = append(p.lat, d)
		}
	}
	for range bursts {
		for _, p := range r.paths() {
			var (
				wg   sync.WaitGroup
				errs = make([]error, parallel)
			)
			// The API server's metrics first: rendering them costs it CPU.
			writesBefore := apiWrites(t, r.api)
			before := r.cpu.sample()
			start := time.Now()
			for i, s := range sessions {
				wg.Go(func() {
					for range perClient {
						if _, err := connectAndLeave(ctx, s, p.conn(i)); err != nil {
							errs[i] = err
							return
						}
					}
				})
			}
			wg.Wait()
			p.busy += time.Since(start)
			p.cpu.add(before, r.cpu.sample())
			for k, v := range apiWrites(t, r.api) {
				p.writes[k] += v - writesBefore[k]
			}
			for _, err := range errs {
				if err != nil {
					t.Fatalf("Through the %s: %v", p.name, err)
				}
			}
			p.n += parallel * perClient
		}
	}
	for _, p := range r.paths() {
		slices.Sort(p.lat)
	}
}

func (r *connectRig) ratio() float64 { return r.agent.cps() / r.ntlm.cps() }

func (r *connectRig) table() string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(&b, "\nConnect (IKE_SA + EAP-MSCHAPv2 + CHILD_SA, client side), %d users, one run\n", r.users)
	fmt.Fprintf(&b, "| users checked by | p50 | p99 | connects/s |\n|---|---|---|---|\n")
	for _, p := range r.paths() {
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f |\n", p.name, ms(percentile(p.lat, 0.5)), ms(percentile(p.lat, 0.99)), p.cps())
	}
	fmt.Fprintf(&b, "\nCPU per connect in the bursts (ms; /proc, 10 ms ticks over all of a path's bursts)\n")
	fmt.Fprintf(&b, "| users checked by | gateway charon | client charon | test process (agent, watcher) | kube-apiserver + etcd | all |\n|---|---|---|---|---|---|\n")
	for _, p := range r.paths() {
		per := func(label string) string { return fmt.Sprintf("%.2f", p.cpu.perConnect(label, p.n)) }
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", p.name, per(cpuLabelGateway+p.conns), per(cpuLabelClient),
			per(cpuLabelSelf), per(cpuLabelAPI), per(""))
	}
	for _, p := range r.paths() {
		var parts []string
		for k, v := range p.writes {
			if v > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, v/float64(p.n)))
			}
		}
		slices.Sort(parts)
		fmt.Fprintf(&b, "API writes per connect during the bursts of the %s: %s\n", p.name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "connects/s through the agent over NTLM (watched): %.3f (goal >= %.1f); over NTLM unwatched: %.3f\n",
		r.ratio(), goalConnectRatio, r.agent.cps()/r.bare.cps())
	return b.String()
}

// TestConnectFiguresThroughTheAgent runs the measurement small: every
// connect through both gateways succeeds and each has its samples.
func TestConnectFiguresThroughTheAgent(t *testing.T) {
	r := newConnectRig(t, 10, 2)
	r.measure(t, 3, 2, 2, 1)
	for _, p := range r.paths() {
		if len(p.lat) != 3 || p.n != 4 {
			t.Errorf("%s: %d latency samples, %d connects in bursts; want 3 and 4", p.name, len(p.lat), p.n)
		}
	}
	t.Log(r.table())
}

// BenchmarkConnectFiguresThroughTheAgent prints connect latency and
// connects per second of 10 users through the agent-driven gateway and
// through those holding charon's own NTLM secrets, in the same run, and
// fails below the goal (`make bench`, about two minutes). It
// measures once, whatever b.N; 15 bursts of 30 connects per gateway keep
// a busy machine's swings from deciding the ratio.
func BenchmarkConnectFiguresThroughTheAgent(b *testing.B) {
	r := newConnectRig(b, 10, 3)
	r.measure(b, 100, 3, 10, 15)
	// Straight to stdout: the testing package cuts a benchmark's log short.
	fmt.Println(r.table())
	for _, p := range r.paths() {
		key := p.conns
		b.ReportMetric(float64(percentile(p.lat, 0.5).Microseconds())/1000, "p50-ms:"+key)
		b.ReportMetric(float64(percentile(p.lat, 0.99).Microseconds())/1000, "p99-ms:"+key)
		b.ReportMetric(p.cps(), "connects/s:"+key)
	}
	if r.ratio() < goalConnectRatio {
		b.Errorf("Connects/s through the agent are %.3f times those with NTLM secrets, goal %.1f", r.ratio(), goalConnectRatio)
	}
}

package integration

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	govici "github.com/strongswan/govici/vici"
	"k8s.io/client-go/rest"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// floodRate and floodDuration are the issue's: a client retrying a failing
// login 100 times a second for 60 s.
const (
	floodRate     = 100
	floodDuration = 60 * time.Second
	// floodSettle is how long writes are still counted after the flood:
	// the agent flushes the gateway's recent failures on a 10 s cadence.
	floodSettle = 15 * time.Second
)

// writeCounter counts the API writes (anything but GET) a client sends,
// by the kind of object written.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			w.mu.Lock()
			w.counts[writeKind(req.URL.Path)]++
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// writeKind names a write by its path: "events", "vpnusers/NAME/status",
// "vpngateways/NAME/status", ...
func writeKind(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			rest := parts[i+2:]
			if rest[0] == "events" {
				return "events"
			}
			return strings.Join(rest, "/")
		}
	}
	return path
}

// take returns the counts so far and starts again from zero.
func (w *writeCounter) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.counts
	w.counts = map[string]int{}
	return out
}

// floodFigures is one run: attempts made, the agent's writes during and
// after the flood, and the measured user's connect times.
type floodFigures struct {
	duration time.Duration
	// attempts are the logins the flood client started, fails those the
	// agent diagnosed (AuthenticationFailed): charon drops the attempts
	// beyond an address's half-open limit before they reach EAP.
	attempts, fails int64
	writes, quiet   map[string]int
	baseline, flood []time.Duration
	// baselineFailed and floodFailed are ann's connects that failed.
	baselineFailed, floodFailed int
}

// floodAddrs is how many addresses the flood comes from: the one
// client by default. charon lets one address hold 5 half-open IKE_SAs
// (block_threshold) and eap-mschapv2 holds a refused login (and the
// worker thread handling it) for 2 s, so one address gets about 2.5
// guesses a second through; many addresses (-flood-addrs=64) reach 100 a
// second and occupy every one of charon's threads.
var floodAddrs = flag.Int("flood-addrs", 1, "addresses the login flood of BenchmarkLoginFloodWritesAndConnects comes from")

// floodTime is the 60 s unless -test.benchtime was given as a
// duration, for a shorter run.
func floodTime() time.Duration {
	d := floodDuration
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.benchtime" {
			if v, err := time.ParseDuration(f.Value.String()); err == nil {
				d = v
			}
		}
	})
	return d
}

// BenchmarkLoginFloodWritesAndConnects: one client retries a wrong password
// floodRate times a second (jimp, from 192.0.2.2) while another user (ann,
// from another address) connects and disconnects in a loop. It reports the
// agent's API writes (Events and status patches) during the flood and the
// connect latency of the other user with and without the flood. It
// measures once, whatever b.N: `go test -run '^$' -bench LoginFlood
// ./test/integration` (60 s; -benchtime=10s for a shorter flood).
func BenchmarkLoginFloodWritesAndConnects(b *testing.B) {
	require.Root(b)
	fig := measureFlood(b, floodTime())
	fmt.Println(fig.table())
	b.ReportMetric(float64(fig.attempts)/fig.duration.Seconds(), "attempts/s")
	b.ReportMetric(float64(fig.fails)/fig.duration.Seconds(), "refused/s")
	b.ReportMetric(float64(sum(fig.writes)), "api-writes")
	b.ReportMetric(float64(fig.writes["events"]), "event-writes")
	b.ReportMetric(ms(percentile(fig.baseline, 0.5)), "connect-p50-ms")
	b.ReportMetric(ms(percentile(fig.flood, 0.5)), "connect-flood-p50-ms")
	b.ReportMetric(ms(percentile(fig.baseline, 0.99)), "connect-p99-ms")
	b.ReportMetric(ms(percentile(fig.flood, 0.99)), "connect-flood-p99-ms")
}

func measureFlood(b *testing.B, d time.Duration) floodFigures {
	ctx := context.Background()
	gwNS, flNS, usNS := netns.New(b, "bfgw"), netns.New(b, "bffl"), netns.New(b, "bfus")
	_, flIf := netns.Veth(b, gwNS, flNS, diagGW+"/24", diagCl+"/24")
	netns.Veth(b, gwNS, usNS, "198.51.100.1/24", "198.51.100.2/24")
	usNS.AddRoute(b, "default", "via", "198.51.100.1")
	gwNS.AddLoopbackAddr(b, lanAddr+"/24")
	pki := charontest.NewPKI(b, "Flood CA")
	server := pki.Server(b, hostname, hostname, diagGW)
	// charon's default levels, as a gateway pod logs.
	quiet := map[string]int{"default": 1}
	gw, enfy := diagGateway(b, gwNS, swan.Retransmit{}, quiet)
	// A refused login is never retransmitted for long: a worker must not
	// hang on an IKE_SA_INIT the gateway dropped (block_threshold).
	short := func(s *swan.Settings) { s.Retransmit = swan.Retransmit{Tries: 1, Timeout: time.Second, Base: 1} }
	fl := charontest.Start(b, flNS, charontest.Options{Name: "flood", Userspace: true, Client: true, LogLevels: quiet, Settings: short})
	us := charontest.Start(b, usNS, charontest.Options{Name: "user", Userspace: true, Client: true, LogLevels: quiet})

	cfg, c := startAPI(b)
	createGateway(b, c, pki, server, []string{diagGW})
	for _, u := range []string{"jimp", "ann"} {
		if err := createUser(ctx, c, u, u+"@example.com", "pw-"+u); err != nil {
			b.Fatal(err)
		}
	}
	counter := &writeCounter{counts: map[string]int{}}
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.WrapTransport = counter.wrap
	ag := startAgent(b, agentCfg, agentConfig{pod: "vpn-gateway-0", gw: gw, log: logr.Discard(), errorNotify: enfy})
	ag.waitReady(b, 30*time.Second)
	ag.waitServes(b, 2)

	// The flood comes from *floodAddrs addresses, one connection each.
	var flConns, flSecrets, names []string
	for i := range *floodAddrs {
		addr := fmt.Sprintf("192.0.2.%d", 100+i)
		flNS.Run(b, "ip", "addr", "add", addr+"/24", "dev", flIf)
		name := fmt.Sprintf("flood%d", i)
		conn, secret := clientConf(name, diagGW, "jimp@example.com", "a wrong guess")
		flConns = append(flConns, strings.Replace(conn, "    remote_addrs = ", "    local_addrs = "+addr+"\n    remote_addrs = ", 1))
		if i == 0 {
			flSecrets = append(flSecrets, secret)
		}
		names = append(names, name)
	}
	loadClient(b, fl, pki, flConns, flSecrets)
	flVICI := vici.NewClient(fl.VICISocket())
	b.Cleanup(func() { flVICI.Close() })
	usConn, usSecret := clientConf("ann", diagGW, "ann@example.com", "pw-ann")
	loadClient(b, us, pki, []string{usConn}, []string{usSecret})
	usVICI := vici.NewClient(us.VICISocket())
	b.Cleanup(func() { usVICI.Close() })

	// connects measures ann's connects (IKE_SA, EAP, CHILD_SA) until stop
	// or n of them; it runs beside the benchmark's goroutine, so it counts
	// failures instead of failing.
	connects := func(stop <-chan struct{}, n int) (out []time.Duration, failed int) {
		for i := 0; n == 0 || i < n; i++ {
			select {
			case <-stop:
				return out, failed
			default:
			}
			if took, err := initiate(ctx, usVICI, "ann"); err != nil {
				failed++
			} else {
				out = append(out, took)
			}
			_ = terminate(ctx, usVICI, "ann")
			time.Sleep(100 * time.Millisecond)
		}
		return out, failed
	}
	fig := floodFigures{duration: d}
	counter.take()
	fig.baseline, fig.baselineFailed = connects(nil, 100)
	fig.quiet = counter.take()

	b.ResetTimer()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		fig.flood, fig.floodFailed = connects(stop, 0)
	}()
	refusedBefore := ag.metric(b, "ikegate_agent_negotiation_failures_total", map[string]string{"reason": v1alpha1.ReasonAuthenticationFailed})
	started, err := flood(flVICI, names, d)
	close(stop)
	fig.attempts = started
	if err != nil {
		b.Errorf("Flooding: %v", err)
	}
	<-done
	time.Sleep(floodSettle)
	fig.writes = counter.take()
	fig.fails = int64(ag.metric(b, "ikegate_agent_negotiation_failures_total", map[string]string{"reason": v1alpha1.ReasonAuthenticationFailed}) - refusedBefore)
	b.StopTimer()
	slices.Sort(fig.baseline)
	slices.Sort(fig.flood)
	return fig
}

// flood starts floodRate logins a second from the flood client for d,
// round robin over its connections, without waiting for each (a refused
// login takes 2 s). It returns how many it started.
func flood(s *vici.Client, conns []string, d time.Duration) (started int64, err error) {
	ctx := context.Background()
	tick := time.NewTicker(time.Second / floodRate)
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-end:
			return started, nil
		case <-tick.C:
			req := govici.NewMessage()
			conn := conns[started%int64(len(conns))]
			_ = req.Set("child", conn)
			_ = req.Set("ike", conn)
			_ = req.Set("timeout", "-1")
			if _, err := s.Call(ctx, "initiate", req); err != nil {
				return started, fmt.Errorf("initiating %s: %w", conn, err)
			}
			started++
		}
	}
}

func (f floodFigures) table() string {
	var bld strings.Builder
	fmt.Fprintf(&bld, "login flood from %d address(es): %d logins with a wrong password started in %v (%.0f/s); %d reached EAP and were diagnosed as AuthenticationFailed (%.1f/s)\n",
		*floodAddrs, f.attempts, f.duration, float64(f.attempts)/f.duration.Seconds(), f.fails, float64(f.fails)/f.duration.Seconds())
	fmt.Fprintf(&bld, "| API writes by the agent | during the flood and %v after | 100 connects of ann without flood |\n|---|---|---|\n", floodSettle)
	keys := map[string]bool{}
	for k := range f.writes {
		keys[k] = true
	}
	for k := range f.quiet {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		fmt.Fprintf(&bld, "| %s | %d | %d |\n", k, f.writes[k], f.quiet[k])
	}
	fmt.Fprintf(&bld, "| total | %d | %d |\n\n", sum(f.writes), sum(f.quiet))
	fmt.Fprintf(&bld, "| ann's connect | samples | failed | p50 | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, row := range []struct {
		name   string
		d      []time.Duration
		failed int
	}{{"without flood", f.baseline, f.baselineFailed}, {"during flood", f.flood, f.floodFailed}} {
		fmt.Fprintf(&bld, "| %s | %d | %d | %.1f ms | %.1f ms | %.1f ms |\n", row.name, len(row.d), row.failed,
			ms(percentile(row.d, 0.5)), ms(percentile(row.d, 0.99)), ms(percentile(row.d, 1)))
	}
	return bld.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

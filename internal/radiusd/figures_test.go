package radiusd_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/vici"
)

// The goals for the connect figures.
const (
	goalLatencyRatio    = 1.1 // RADIUS at 100,000 users over RADIUS at 10
	goalThroughputRatio = 0.9 // RADIUS connects/s over NTLM's, 10 users
)

// connectSpec says what to measure.
type connectSpec struct {
	// large is the bigger user set; the small one is 10 users.
	large int
	// rounds of one sequential connect per mode, interleaved so that a
	// load change on the machine hits every mode alike.
	rounds int
	// parallel clients connect and disconnect perClient times each per
	// burst, bursts rounds of them per mode, for connects per second. All
	// come from one address, and charon answers at most 5 half-open
	// IKE_SAs per address (block_threshold): keep parallel below that.
	parallel, perClient, bursts int
}

// mode is one way of authenticating the same clients.
type mode struct {
	name  string
	gw    string          // the gateway address whose connection is used
	users *radiusd.Map    // the server's users while it runs; nil for NTLM
	lat   []time.Duration // sorted after measuring
	cps   float64
}

type connectResult struct{ modes []*mode }

const smallUsers = 10

func userName(i int) string     { return fmt.Sprintf("user%06d", i) }
func userPassword(i int) string { return fmt.Sprintf("pass-%06d", i) }

// userMap holds users 0..n-1.
func userMap(n int) *radiusd.Map {
	m := &radiusd.Map{}
	for i := range n {
		m.Set(userName(i), radiusd.User{NTHash: ntHash(userPassword(i))})
	}
	return m
}

// measureConnects runs the same client identities (the first parallel of
// the 10 users) through charon's NTLM secrets and through the server with
// 10 and with spec.large users in its map, on one pair of charons.
func measureConnects(tb testing.TB, spec connectSpec) connectResult {
	tb.Helper()
	ntlm := map[string][16]byte{}
	for i := range smallUsers {
		ntlm[userName(i)] = ntHash(userPassword(i))
	}
	small, large := userMap(smallUsers), userMap(spec.large)
	b := newBed(tb, small, ntlm)
	modes := []*mode{
		{name: "NTLM secrets, 10 users", gw: ntlmGW},
		{name: "RADIUS, 10 users", gw: radiusGW, users: small},
		{name: fmt.Sprintf("RADIUS, %d users", spec.large), gw: radiusGW, users: large},
	}
	var clients []charontest.EAPClient
	for _, m := range modes[:2] {
		for i := range spec.parallel {
			clients = append(clients, client(connName(m, i), m.gw, userName(i), userPassword(i)))
		}
	}
	b.loadClients(tb, clients...)
	sessions := make([]vici.Session, spec.parallel)
	for i := range sessions {
		sessions[i] = vici.NewClient(b.cl.VICISocket())
	}
	tb.Cleanup(func() {
		for _, s := range sessions {
			s.Close()
		}
	})
	use := func(m *mode) {
		if m.users != nil {
			b.users.p.Store(m.users)
		}
	}
	ctx := context.Background()
	for range spec.rounds {
		for _, m := range modes {
			use(m)
			d, err := connectOnce(ctx, sessions[0], connName(m, 0))
			if err != nil {
				tb.Fatalf("%s: %v\nServer:\n%s", m.name, err, b.logs)
			}
			m.lat = append(m.lat, d)
		}
	}
	busy := make([]time.Duration, len(modes))
	for range spec.bursts {
		for i, m := range modes {
			use(m)
			d, err := burst(ctx, sessions, m, spec.perClient)
			if err != nil {
				tb.Fatalf("%s: %v\nServer:\n%s", m.name, err, b.logs)
			}
			busy[i] += d
		}
	}
	for i, m := range modes {
		slices.Sort(m.lat)
		m.cps = float64(spec.bursts*spec.parallel*spec.perClient) / busy[i].Seconds()
	}
	return connectResult{modes: modes}
}

// connName is the client connection of mode m for client i; the large
// user set reuses the connections of the small one (same identities).
func connName(m *mode, i int) string {
	if m.gw == ntlmGW {
		return fmt.Sprintf("ntlm%d", i)
	}
	return fmt.Sprintf("rad%d", i)
}

// connectOnce connects (IKE_SA, EAP, CHILD_SA: the initiate call as the
// client sees it) and disconnects again.
func connectOnce(ctx context.Context, s vici.Session, conn string) (time.Duration, error) {
	d, err := initiate(ctx, s, conn)
	if err != nil {
		return d, err
	}
	return d, terminate(ctx, s, conn)
}

// burst has every session connect and disconnect n times at once and
// returns the wall time.
func burst(ctx context.Context, sessions []vici.Session, m *mode, n int) (time.Duration, error) {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(sessions))
	)
	start := time.Now()
	for i, s := range sessions {
		wg.Go(func() {
			for range n {
				if _, err := connectOnce(ctx, s, connName(m, i)); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}

func median(sorted []time.Duration) time.Duration { return sorted[len(sorted)/2] }

func p90(sorted []time.Duration) time.Duration { return sorted[(len(sorted)*9)/10] }

func (r connectResult) latencyRatio() float64 {
	return float64(median(r.modes[2].lat)) / float64(median(r.modes[1].lat))
}

func (r connectResult) throughputRatio() float64 { return r.modes[1].cps / r.modes[0].cps }

func (r connectResult) table() string {
	var s strings.Builder
	fmt.Fprintf(&s, "| connect (IKE_SA + EAP + CHILD_SA, client side) | median | p90 | connects/s |\n|---|---|---|---|\n")
	for _, m := range r.modes {
		fmt.Fprintf(&s, "| %s | %v | %v | %.1f |\n", m.name, median(m.lat).Round(10*time.Microsecond), p90(m.lat).Round(10*time.Microsecond), m.cps)
	}
	fmt.Fprintf(&s, "\nlatency at %s over 10 users: %.3f (goal <= %.1f)\n", strings.TrimPrefix(r.modes[2].name, "RADIUS, "), r.latencyRatio(), goalLatencyRatio)
	fmt.Fprintf(&s, "connects/s through RADIUS over NTLM at 10 users: %.3f (goal >= %.1f)\n", r.throughputRatio(), goalThroughputRatio)
	return s.String()
}

// TestConnectFigures runs the measurement small: every connect of every
// mode succeeds and each mode has its samples.
func TestConnectFigures(t *testing.T) {
	res := measureConnects(t, connectSpec{large: 1000, rounds: 3, parallel: 2, perClient: 2, bursts: 1})
	for _, m := range res.modes {
		if len(m.lat) != 3 || m.cps <= 0 {
			t.Errorf("%s: %d latency samples, %.1f connects/s", m.name, len(m.lat), m.cps)
		}
	}
	t.Logf("\n%s", res.table())
}

// BenchmarkConnectFigures prints connect latency through the server at 10
// and 100,000 users and connects per second against charon's own NTLM
// secrets (about a minute; `make bench`). It measures once, whatever b.N.
func BenchmarkConnectFigures(b *testing.B) {
	res := measureConnects(b, connectSpec{large: 100000, rounds: 150, parallel: 3, perClient: 10, bursts: 15})
	// Straight to stdout: the testing package cuts a benchmark's log short.
	fmt.Println(res.table())
	for _, m := range res.modes {
		key := strings.NewReplacer(" ", "", ",", "-").Replace(m.name)
		b.ReportMetric(float64(median(m.lat).Microseconds())/1000, "ms/connect:"+key)
		b.ReportMetric(m.cps, "connects/s:"+key)
	}
	if r := res.latencyRatio(); r > goalLatencyRatio {
		b.Errorf("Connect latency at 100,000 users is %.3f times the 10-user figure, goal %.1f", r, goalLatencyRatio)
	}
	if r := res.throughputRatio(); r < goalThroughputRatio {
		b.Errorf("Connects/s through RADIUS are %.3f times NTLM's, goal %.1f", r, goalThroughputRatio)
	}
}

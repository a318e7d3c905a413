package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// BenchmarkManagerUserChange measures what one new user costs the manager
// of a settled gateway with 10, 10,000 and 100,000 users (IKEGATE_BENCH_USERS
// overrides): the time from the test's write of the user (after its
// Secret) to its Valid condition written and to its profile Secret
// written, and the manager's CPU per change (this process's CPU time
// while the samples ran, less the rate of the settled manager measured
// right after them). 40 samples one second apart, each on a settled
// gateway. Goal (issue 18): the cost of a change
// does not grow with the users; the table prints each size's figures
// against the smallest's.
//
//	go test -run '^$' -bench ManagerUserChange -benchtime 1x ./controllers/
//
// IKEGATE_BENCH_CPUPROFILES=DIR writes a CPU profile of each size's samples
// (change-N.pprof).
func BenchmarkManagerUserChange(b *testing.B) {
	sizes := gen.UserCounts(b, 10, 10000, 100000)
	var rows []changeRow
	for _, users := range sizes {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			r := measureUserChange(b, users, 40)
			rows = append(rows, r)
			b.ReportMetric(float64(percentile(r.valid, 0.99).Microseconds())/1000, "valid-p99-ms")
			b.ReportMetric(float64(percentile(r.profile, 0.99).Microseconds())/1000, "profile-p99-ms")
			b.ReportMetric(float64(r.cpu.Microseconds())/1000, "cpu-ms/change")
		})
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "users\tValid written p50\tp99\tprofile written p50\tp99\tmanager CPU per change\tagainst the smallest\tgross per sample\tidle (CPU s/s)\t\n")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%.2fx\t%s\t%.3f\t\n", r.users,
			ms(percentile(r.valid, 0.5)), ms(percentile(r.valid, 0.99)), ms(percentile(r.profile, 0.5)), ms(percentile(r.profile, 0.99)),
			ms(r.cpu), float64(r.cpu)/float64(max(1, rows[0].cpu)), ms(r.gross), r.idle)
	}
	_ = w.Flush()
}

type changeRow struct {
	users          int
	valid, profile []time.Duration // sorted
	// cpu is the CPU per change above the idle rate (CPU seconds per
	// second) of the settled manager; gross is all of it, gaps included.
	cpu, gross time.Duration
	idle       float64
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func measureUserChange(b *testing.B, users, samples int) changeRow {
	s := testScheme(b)
	cfg, c, _ := testenv.Start(b, testenv.WithScheme(s))
	const ns = "scale"
	seedScale(b, c, ns, users)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := successes("members")
	mgr, stop, err := startScaleManager(ctx, cfg, s, CacheOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	if _, err := untilDelivered(ctx, mgr, base, time.Now(), users); err != nil {
		b.Fatal(err)
	}
	settle(ctx)
	seen := watchProbes(b, ctx, mgr.GetCache())

	row := changeRow{users: users}
	stopProfile := cpuProfile(b, fmt.Sprintf("change-%d.pprof", users))
	from, fromCPU := time.Now(), cpuTime()
	for i := range samples {
		name := fmt.Sprintf("probe-%03d", i)
		sec := gen.Secret(ns, name, map[string]string{gen.PasswordKey: "probe-" + name})
		if err := c.Create(ctx, sec); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := c.Create(ctx, gen.User(ns, name, v1alpha1.Identity(name+"@example.com"))); err != nil {
			b.Fatal(err)
		}
		valid, profile := seen.wait(b, name, time.Minute)
		row.valid = append(row.valid, valid.Sub(t0))
		row.profile = append(row.profile, profile.Sub(t0))
		time.Sleep(time.Second)
	}
	elapsed, used := time.Since(from), cpuTime()-fromCPU
	stopProfile()
	// The idle rate as the samples left the manager: settled, with every
	// probe user in its caches.
	settle(ctx)
	idleFrom, idleCPU := time.Now(), cpuTime()
	time.Sleep(10 * time.Second)
	row.idle = float64(cpuTime()-idleCPU) / float64(time.Since(idleFrom))
	row.gross = used / time.Duration(samples)
	row.cpu = max(0, time.Duration((float64(used)-row.idle*float64(elapsed))/float64(samples)))
	slices.Sort(row.valid)
	slices.Sort(row.profile)
	return row
}

// cpuProfile writes a CPU profile of the samples into the directory
// IKEGATE_BENCH_CPUPROFILES names, for `go tool pprof`.
func cpuProfile(b *testing.B, name string) (stop func()) {
	dir := os.Getenv("IKEGATE_BENCH_CPUPROFILES")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

// cpuTime is the CPU this process used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probes records when each probe user's Valid condition and its profile
// Secret first reached the manager's cache.
type probes struct {
	mu             sync.Mutex
	valid, profile map[string]time.Time
}

func watchProbes(b *testing.B, ctx context.Context, c cache.Cache) *probes {
	p := &probes{valid: map[string]time.Time{}, profile: map[string]time.Time{}}
	note := func(m map[string]time.Time, name string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := m[name]; !ok {
			m[name] = time.Now()
		}
	}
	users, err := c.GetInformer(ctx, &v1alpha1.VPNUser{})
	if err != nil {
		b.Fatal(err)
	}
	onUser := func(o any) {
		if u, ok := o.(*v1alpha1.VPNUser); ok && findCond(u.Status.Conditions, v1alpha1.ConditionValid) != nil {
			note(p.valid, u.Name)
		}
	}
	secrets, err := c.GetInformer(ctx, secretMetadata())
	if err != nil {
		b.Fatal(err)
	}
	onSecret := func(o any) {
		if m, ok := o.(*metav1.PartialObjectMetadata); ok {
			if owner := metav1.GetControllerOf(m); owner != nil && m.Name == profileSecretName(owner.Name) {
				note(p.profile, owner.Name)
			}
		}
	}
	for _, h := range []struct {
		inf cache.Informer
		fn  func(any)
	}{{users, onUser}, {secrets, onSecret}} {
		fn := h.fn
		if _, err := h.inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, o any) { fn(o) }}); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

func (p *probes) wait(b *testing.B, name string, timeout time.Duration) (valid, profile time.Time) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		v, okV := p.valid[name]
		pr, okP := p.profile[name]
		p.mu.Unlock()
		if okV && okP {
			return v, pr
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("user %s: Valid and profile not both written within %s", name, timeout)
	return
}

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleDetail is one user-ready sample's parts, kept so that the table
// can show where its slowest samples spent their time.
type sampleDetail struct {
	// at is the sample's start since the size's first sample.
	at time.Duration
	// ready, write and credentials are as in figureRow; credentials is 0
	// when the test's watch did not see the shard.
	ready, write, credentials time.Duration
	// gcs are this process's garbage collections during the sample (the
	// manager and the agent run in it).
	gcs uint64
}

// gcCycles is the number of garbage collections this process completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// slowestSamples prints the n slowest samples of each row with their parts.
func slowestSamples(rows []figureRow, n int) string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(&b, "\nSlowest user-ready samples (at: since the size's first sample; GCs: this process's during the sample)\n")
	fmt.Fprintf(&b, "%-13s %-10s %-11s %-11s %-13s %s\n", "users loaded", "at", "ready", "writes", "credentials", "GCs")
	for _, row := range rows {
		d := slices.Clone(row.details)
		slices.SortFunc(d, func(a, b sampleDetail) int { return int(b.ready - a.ready) })
		for _, s := range d[:min(n, len(d))] {
			fmt.Fprintf(&b, "%-13d %-10s %-11s %-11s %-13s %d\n", row.users, s.at.Round(100*time.Millisecond), ms(s.ready), ms(s.write), ms(s.credentials), s.gcs)
		}
	}
	return b.String()
}

// samplesProfile writes a CPU profile of this process while a size's
// samples run into the directory IKEGATE_BENCH_CPUPROFILES names
// (user-ready-N.pprof), for `go tool pprof`; without it, nothing.
func samplesProfile(t testing.TB, users int) (stop func()) {
	dir := os.Getenv("IKEGATE_BENCH_CPUPROFILES")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("user-ready-%d.pprof", users)))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

// memoryDir is a directory on tmpfs (/dev/shm), removed when the test
// ends: a pod's memory-backed emptyDir.
func memoryDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "ikegate-figures-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

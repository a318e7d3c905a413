package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
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
	// plane is the CPU the API server and etcd used during the sample.
	plane planeCPU
}

// planeCPU is CPU time used by the kube-apiserver and the etcd this
// process started.
type planeCPU struct{ apiServer, etcd time.Duration }

func (p planeCPU) sub(q planeCPU) planeCPU {
	return planeCPU{p.apiServer - q.apiServer, p.etcd - q.etcd}
}

// controlPlane is the kube-apiserver and the etcd this process started,
// by pid; 0 for one not found. They keep their pids for the test's life,
// so the samples find them once and read two stat files each.
type controlPlane struct{ apiServer, etcd int }

// findControlPlane looks through /proc for this process's children named
// kube-apiserver and etcd.
func findControlPlane() controlPlane {
	var p controlPlane
	dirs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		name, f, ok := procStat(pid)
		if !ok || f[1] != self {
			continue
		}
		switch name {
		case "kube-apiserver":
			p.apiServer = pid
		case "etcd":
			p.etcd = pid
		}
	}
	return p
}

// cpu reads the CPU time (user and system, all threads) each has used so
// far, in the kernel's 10 ms ticks; zero for one not found. It tells a
// slow sample the API server spent it working (a collection of its heap,
// a consistency check) from one the manager or the agent did.
func (p controlPlane) cpu() planeCPU {
	return planeCPU{procCPU(p.apiServer), procCPU(p.etcd)}
}

func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	_, f, ok := procStat(pid)
	if !ok {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procStat reads /proc/<pid>/stat: the command, and the fields after it
// (state, ppid, ...; utime is f[11], stime f[12]).
func procStat(pid int) (name string, f []string, ok bool) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", nil, false
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", nil, false
	}
	f = strings.Fields(string(stat[end+1:]))
	return string(stat[open+1 : end]), f, len(f) >= 13
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
	fmt.Fprintf(&b, "\nSlowest user-ready samples (at: since the size's first sample; GCs: this process's during the sample; CPU: used during the sample, 10 ms steps)\n")
	fmt.Fprintf(&b, "%-13s %-10s %-11s %-11s %-13s %-5s %-16s %s\n", "users loaded", "at", "ready", "writes", "credentials", "GCs", "API server CPU", "etcd CPU")
	for _, row := range rows {
		d := slices.Clone(row.details)
		slices.SortFunc(d, func(a, b sampleDetail) int { return int(b.ready - a.ready) })
		for _, s := range d[:min(n, len(d))] {
			fmt.Fprintf(&b, "%-13d %-10s %-11s %-11s %-13s %-5d %-16s %s\n", row.users, s.at.Round(100*time.Millisecond), ms(s.ready), ms(s.write), ms(s.credentials), s.gcs,
				ms(s.plane.apiServer), ms(s.plane.etcd))
		}
		var api, etcd []time.Duration
		for _, s := range row.details {
			api, etcd = append(api, s.plane.apiServer), append(etcd, s.plane.etcd)
		}
		slices.Sort(api)
		slices.Sort(etcd)
		fmt.Fprintf(&b, "%-13d CPU per sample, p50 / p99: API server %s / %s, etcd %s / %s\n", row.users,
			ms(percentile(api, 0.5)), ms(percentile(api, 0.99)), ms(percentile(etcd, 0.5)), ms(percentile(etcd, 0.99)))
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

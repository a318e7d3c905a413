package integration

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// every Linux architecture the project builds for).
const clockTick = 10 * time.Millisecond

// cpuWatch reads the CPU time (user and system, all threads) of a fixed
// set of processes, each under a label: where the work of a measurement
// goes, to the 10 ms /proc resolves.
type cpuWatch struct {
	labels []string
	pids   map[string][]int
}

// newCPUWatch watches pids by label, and every child of this process
// whose command name is one of byComm's keys under its value (envtest's
// kube-apiserver and etcd).
func newCPUWatch(pids map[string]int, byComm map[string]string) *cpuWatch {
	w := &cpuWatch{pids: map[string][]int{}}
	for label, pid := range pids {
		w.add(label, pid)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		label, ok := byComm[strings.TrimSpace(string(comm))]
		if ok && parentOf(pid) == os.Getpid() {
			w.add(label, pid)
		}
	}
	slices.Sort(w.labels)
	return w
}

func (w *cpuWatch) add(label string, pid int) {
	if _, ok := w.pids[label]; !ok {
		w.labels = append(w.labels, label)
	}
	w.pids[label] = append(w.pids[label], pid)
}

// sample is each label's CPU time so far.
func (w *cpuWatch) sample() map[string]time.Duration {
	s := make(map[string]time.Duration, len(w.labels))
	for label, pids := range w.pids {
		for _, pid := range pids {
			s[label] += processCPU(pid)
		}
	}
	return s
}

// parentOf is pid's parent process, or 0.
func parentOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// statFields are the fields of /proc/<pid>/stat after the command name
// (which may hold spaces and parentheses: they count from the last ')'),
// the state first; nil when pid is gone.
func statFields(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// processCPU is utime+stime of pid, or 0 when it is gone.
func processCPU(pid int) time.Duration {
	// utime and stime are fields 14 and 15, the 12th and 13th after the
	// command name.
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * clockTick
}

// cpuSpent accumulates the CPU each label spent between pairs of samples.
type cpuSpent map[string]time.Duration

func (c cpuSpent) add(before, after map[string]time.Duration) {
	for label, t := range after {
		c[label] += t - before[label]
	}
}

// perConnect is label's CPU in milliseconds per connect of n; the empty
// label sums every process the watch reads, other paths' gateways too.
func (c cpuSpent) perConnect(label string, n int) float64 {
	if n == 0 {
		return 0
	}
	var t time.Duration
	for l, d := range c {
		if label == "" || l == label {
			t += d
		}
	}
	return float64(t.Microseconds()) / 1000 / float64(n)
}

// apiWrites counts the API server's write requests by resource (and
// subresource), read off its own apiserver_request_total.
func apiWrites(t testing.TB, cfg *rest.Config) map[string]float64 {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/metrics")
	if err != nil {
		t.Fatalf("Reading the API server's metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	label := func(line, name string) string {
		_, rest, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		switch label(line, "verb") {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
		default:
			continue
		}
		key := label(line, "verb") + " " + label(line, "resource")
		if sub := label(line, "subresource"); sub != "" {
			key += "/" + sub
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		out[key] += v
	}
	return out
}

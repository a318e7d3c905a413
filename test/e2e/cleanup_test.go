package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/demorun"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// The demo is stopped once the gateway's charon has its configuration: by
// then etcd, kube-apiserver, a charon and both namespaces exist.
const charonLoaded = "==> The agent loaded the gateway's configuration over VICI"

// startDemoUntilCharon starts the demo and waits until everything it
// should clean up exists.
func startDemoUntilCharon(t *testing.T, base string) (*demoProcess, leftovers) {
	t.Helper()
	d := startDemo(t, base)
	d.waitFor(t, charonLoaded)
	left := d.leftovers(t)
	left.requireRunning(t)
	return d, left
}

func TestDemoStoppedThroughAClosedPipeLeavesNothing(t *testing.T) {
	require.Root(t)
	d, left := startDemoUntilCharon(t, stateBase(t))
	// What `make demo | tee demo.log` and Ctrl-C do: tee dies first.
	d.closeStdout()
	d.signal(t, syscall.SIGINT)
	d.requireStoppedByItself(t, syscall.SIGINT)
	left.requireGone(t)
}

func TestAKilledDemoIsClearedByTheNextRun(t *testing.T) {
	require.Root(t)
	base := stateBase(t)
	first, left := startDemoUntilCharon(t, base)
	first.signal(t, syscall.SIGKILL)
	if err := first.wait(t); err == nil {
		t.Fatal("the demo exited normally after SIGKILL")
	}
	poll.Eventually(t, "the killed demo's processes die with it", 30*time.Second, func() error {
		return noProcesses(left.dir)
	})
	// Namespaces and files cannot die with a process: the next run's job.
	for _, ns := range left.netns {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			t.Fatalf("netns %s of the killed demo: %v; the next run has nothing to clear", ns, err)
		}
	}

	next := startDemo(t, base)
	next.waitFor(t, "==> Removed what an earlier run that was killed left behind")
	left.requireGone(t)
	nextLeft := next.leftovers(t)
	next.closeStdout()
	next.signal(t, syscall.SIGTERM)
	next.requireStoppedByItself(t, syscall.SIGTERM)
	nextLeft.requireGone(t)
}

// stateBase is a base for the demo's runs of its own, so that the test
// never sweeps a demo someone runs meanwhile. It is short: charon's VICI
// socket path, deep inside, must fit in sun_path.
func stateBase(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "ikd")
	must(t, err)
	// After a failure, what the demos left is swept as the next run would.
	t.Cleanup(func() {
		if _, err := demorun.Sweep(base); err != nil {
			t.Errorf("Sweeping after the demos: %v", err)
		}
		_ = os.RemoveAll(base)
	})
	return base
}

// demoProcess is the demo (this test binary running TestEndToEnd as `make
// demo` does) with its stdout on a pipe the test reads and can close.
type demoProcess struct {
	base   string
	cmd    *exec.Cmd
	stdout *os.File
	lines  chan string
	done   chan error
	stderr string
}

func startDemo(t *testing.T, base string) *demoProcess {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	d := &demoProcess{base: base, stdout: r, lines: make(chan string, 100), done: make(chan error, 1)}
	d.stderr = filepath.Join(t.TempDir(), "stderr")
	stderr, err := os.Create(d.stderr)
	must(t, err)
	defer stderr.Close()
	d.cmd = exec.Command(os.Args[0], "-test.run=^TestEndToEnd$", "-test.count=1", "-test.timeout=0")
	d.cmd.Env = append(os.Environ(), "IKEGATE_DEMO=1", demorun.BaseEnv+"="+base)
	d.cmd.Stdout, d.cmd.Stderr = w, stderr
	// A test that dies takes its demo along (the sweep is then someone else's).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, d.cmd.Start())
	w.Close()
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		d.done <- nil
		r.Close()
		if t.Failed() {
			out, _ := os.ReadFile(d.stderr)
			t.Logf("The stderr of demo %d:\n%s", d.cmd.Process.Pid, out)
		}
	})
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			d.lines <- s.Text()
		}
		close(d.lines)
	}()
	return d
}

// waitFor reads the narration until a line starts with prefix.
func (d *demoProcess) waitFor(t *testing.T, prefix string) {
	t.Helper()
	var seen []string
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				t.Fatalf("the demo's stdout ended before %q:\n%s", prefix, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if strings.HasPrefix(line, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from the demo after 5m:\n%s", prefix, strings.Join(seen, "\n"))
		}
	}
}

func (d *demoProcess) closeStdout() { d.stdout.Close() }

func (d *demoProcess) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	must(t, d.cmd.Process.Signal(s))
}

func (d *demoProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the demo did not exit within 2m of its signal")
		return nil
	}
}

// requireStoppedByItself checks that the demo exited through its handler
// for s (status 128+s), not by that signal or by SIGPIPE.
func (d *demoProcess) requireStoppedByItself(t *testing.T, s syscall.Signal) {
	t.Helper()
	err := d.wait(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+int(s) {
		t.Fatalf("the demo ended with %v, want exit status %d from its own %v handler", err, 128+int(s), s)
	}
}

// leftovers is what a run has made that must not outlive it.
type leftovers struct {
	dir   string
	netns []string
}

func (d *demoProcess) leftovers(t *testing.T) leftovers {
	t.Helper()
	dir := demorun.Dir(d.base, d.cmd.Process.Pid)
	names, err := demorun.Namespaces(dir)
	must(t, err)
	return leftovers{dir: dir, netns: names}
}

// requireRunning checks that the run has what the test wants to see
// removed: the control plane, a charon, two namespaces, its directory.
func (l leftovers) requireRunning(t *testing.T) {
	t.Helper()
	procs, err := demorun.Processes(l.dir)
	must(t, err)
	var names []string
	for _, p := range procs {
		names = append(names, p.Command)
	}
	for _, want := range []string{"etcd", "kube-apiserver", "charon-systemd"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among the demo's processes %v", want, procs)
		}
	}
	if len(l.netns) != 2 {
		t.Errorf("the demo recorded network namespaces %v, want the gateway's and the client's", l.netns)
	}
	if _, err := os.Stat(l.dir); err != nil {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func (l leftovers) requireGone(t *testing.T) {
	t.Helper()
	if err := noProcesses(l.dir); err != nil {
		t.Error(err)
	}
	for _, ns := range l.netns {
		if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("netns %s is left (%v)", ns, err)
		}
	}
	if _, err := os.Stat(l.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s is left (%v)", l.dir, err)
	}
}

func noProcesses(dir string) error {
	procs, err := demorun.Processes(dir)
	if err != nil {
		return err
	}
	if len(procs) > 0 {
		return fmt.Errorf("processes of the demo left: %v", procs)
	}
	return nil
}

package demorun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ikegate/ikegate/internal/testutil/require"
)

var fakeRuns int

// fakeRun lays out a run directory as Begin does for a process that is pid
// and started at stamp, with a namespace and a process of its own. The
// namespace is made without netns.New, whose cleanup would fail on one
// that Sweep removed; it is removed at the end if Sweep did not.
func fakeRun(t *testing.T, base string, pid int, stamp string) (dir string, ns string, proc *exec.Cmd) {
	t.Helper()
	dir = Dir(base, pid)
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %s\n", pid, stamp), 0o600); err != nil {
		t.Fatal(err)
	}
	fakeRuns++
	ns = fmt.Sprintf("drun%d-%d", os.Getpid(), fakeRuns)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	if err := os.WriteFile(filepath.Join(dir, netnsFile), []byte(ns+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proc = exec.Command("sleep", "300")
	proc.Env = append(os.Environ(), Marker+"="+dir)
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = proc.Wait(); close(done) }()
	t.Cleanup(func() { _ = proc.Process.Kill(); <-done })
	return dir, ns, proc
}

func TestSweepRemovesOnlyRunsWhoseOwnerIsGone(t *testing.T) {
	require.Root(t)
	base := t.TempDir()
	ours, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A pid that cannot exist (above pid_max), and our own pid with another
	// start time: a pid recycled since its run died.
	deadDir, deadNS, deadProc := fakeRun(t, base, 1<<30, "1")
	recycledDir, _, _ := fakeRun(t, base, os.Getpid(), ours+"0")
	liveDir, liveNS, liveProc := fakeRun(t, filepath.Join(base, "live"), os.Getpid(), ours)

	removed, err := Sweep(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{deadDir, recycledDir} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of a dead run is left (%v)", gone, err)
		}
	}
	if _, err := os.Stat("/run/netns/" + deadNS); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s of a dead run is left (%v)", deadNS, err)
	}
	if procs, _ := Processes(deadDir); len(procs) != 0 {
		t.Errorf("processes of a dead run are left: %v", procs)
	}
	want := fmt.Sprintf("process %d (sleep)", deadProc.Process.Pid)
	if !slices.Contains(removed, want) || !slices.Contains(removed, "network namespace "+deadNS) || !slices.Contains(removed, "directory "+deadDir) {
		t.Errorf("Sweep reported %q, want the process, namespace and directory of the dead run", removed)
	}

	// The live run lives in a base of its own above; Sweep of that base keeps it.
	if _, err := Sweep(filepath.Join(base, "live")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("the live run's directory: %v", err)
	}
	if _, err := os.Stat("/run/netns/" + liveNS); err != nil {
		t.Errorf("the live run's netns: %v", err)
	}
	if procs, _ := Processes(liveDir); len(procs) != 1 || procs[0].PID != liveProc.Process.Pid {
		t.Errorf("the live run's processes %v, want its sleep %d", procs, liveProc.Process.Pid)
	}
}

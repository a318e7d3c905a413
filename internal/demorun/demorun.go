// Package demorun keeps what one run of the demo (or the end-to-end test)
// makes findable, so that it can be removed however the run ends: by its own
// cleanup, by a signal in the middle of a step, or, after the run was killed,
// by the next run.
//
// A run owns one directory, BASE/<pid>. It holds an owner stamp (pid and
// start time, so a recycled pid is not taken for the owner), the names of the
// network namespaces the run made, and tmp/, which becomes the run's TMPDIR:
// etcd's data, the API server's certificates, every t.TempDir() and the
// charons' directories land there, so removing the directory removes them
// all. The run's processes are found by an environment variable that every
// child inherits (Marker=directory) rather than by recorded pids: a child
// forked a moment before the owner died is found too, and a pid recycled by
// an unrelated process is not.
package demorun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Marker is the environment variable naming the run directory in every
// process of a run.
const Marker = "IKEGATE_DEMO_RUN"

// BaseEnv overrides DefaultBase, e.g. for a test that runs the demo without
// touching the runs of a demo someone else has open.
const BaseEnv = "IKEGATE_DEMO_STATE"

// DefaultBase is under /run: a tmpfs that a reboot empties, so a run killed
// with the machine leaves nothing either.
const DefaultBase = "/run/ikegate-demo"

const (
	ownerFile = "owner"
	netnsFile = "netns"
	tmpDir    = "tmp"
	// killTimeout bounds the wait for SIGKILLed processes to vanish; the
	// kernel needs milliseconds, a loaded machine some more.
	killTimeout = 10 * time.Second
)

// Base is the directory that holds the runs' directories.
func Base() string {
	if b := os.Getenv(BaseEnv); b != "" {
		return b
	}
	return DefaultBase
}

// Run is the current process's run.
type Run struct {
	dir string
	// env holds the variables Begin changed and their values before, for
	// Remove to restore: later tests in the same process need a TMPDIR.
	env map[string]*string

	// mu makes Netns's create-and-record one step for Remove.
	mu sync.Mutex
}

// Begin removes what earlier runs under base whose owner is dead left
// behind, then makes this process's run directory, points TMPDIR into it
// and sets Marker for every process started from now on. It returns what it
// removed, one line per item, for the narration.
func Begin(base string) (*Run, []string, error) {
	removed, sweepErr := Sweep(base)
	dir := Dir(base, os.Getpid())
	// A directory of our own pid is a dead run's whose owner stamp Sweep
	// could not read; it is ours now.
	if err := os.RemoveAll(dir); err != nil {
		return nil, removed, err
	}
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o700); err != nil {
		return nil, removed, err
	}
	stamp, err := startTime(os.Getpid())
	if err != nil {
		return nil, removed, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), stamp)), 0o600); err != nil {
		return nil, removed, err
	}
	r := &Run{dir: dir, env: map[string]*string{}}
	for k, v := range map[string]string{"TMPDIR": filepath.Join(dir, tmpDir), Marker: dir} {
		if old, ok := os.LookupEnv(k); ok {
			r.env[k] = &old
		} else {
			r.env[k] = nil
		}
		if err := os.Setenv(k, v); err != nil {
			return nil, removed, err
		}
	}
	return r, removed, sweepErr
}

// Dir is the directory of the run of process pid under base.
func Dir(base string, pid int) string { return filepath.Join(base, strconv.Itoa(pid)) }

// Namespaces lists the network namespaces recorded in the run directory dir.
func Namespaces(dir string) ([]string, error) {
	names, err := os.ReadFile(filepath.Join(dir, netnsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return strings.Fields(string(names)), err
}

// Netns records the network namespace create makes. The record and the
// creation are one step for Remove and RemoveAndExit: a signal never finds a
// namespace made but not yet recorded.
func Netns[T interface{ Name() string }](r *Run, create func() T) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	ns := create()
	f, err := os.OpenFile(filepath.Join(r.dir, netnsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(f, ns.Name())
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		// The namespace's own cleanup still runs; only a crash would leak it.
		fmt.Fprintf(os.Stderr, "demorun: recording netns %s: %v\n", ns.Name(), err)
	}
	return ns
}

// Remove kills the run's processes, deletes its network namespaces and
// removes its directory, returning what it removed, and gives TMPDIR and
// Marker their values from before Begin. It is idempotent.
func (r *Run) Remove() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range r.env {
		if v == nil {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, *v)
		}
	}
	return remove(r.dir)
}

// RemoveAndExit is Remove for a signal handler: the rest of the process
// keeps running meanwhile, so Remove's lock is held until the process exits
// and Netns makes nothing after the sweep. report sees what was removed.
func (r *Run) RemoveAndExit(code int, report func([]string, error)) {
	r.mu.Lock()
	report(remove(r.dir))
	// A child forked while the sweep read /proc still showed this
	// process's environment from before Begin, without the marker, and
	// execs with it afterwards: look once more before going.
	time.Sleep(lateChildren)
	if killed, err := killMarked(r.dir); len(killed) > 0 || err != nil {
		report(killed, err)
	}
	// What the rest of the process wrote meanwhile (a component reacting to
	// its peers being killed) goes too.
	if err := removeAll(r.dir); err != nil {
		report(nil, err)
	}
	os.Exit(code)
}

// lateChildren is how long RemoveAndExit waits for children that were
// being started during its sweep to show themselves.
const lateChildren = 200 * time.Millisecond

// Sweep removes the runs under base whose owner is no longer alive.
func Sweep(base string) ([]string, error) {
	entries, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if !e.IsDir() || ownerAlive(dir) {
			continue
		}
		items, err := remove(dir)
		done = append(done, items...)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing run %s: %w", dir, err))
		}
	}
	return done, errors.Join(errs...)
}

// ownerAlive reports whether the process that made dir still runs: the pid
// in its stamp exists and started when the stamp says.
func ownerAlive(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		// A run is stamped right after its directory is made; a stamp still
		// missing a minute later belongs to a run that died in between.
		if fi, serr := os.Stat(dir); serr == nil && time.Since(fi.ModTime()) < time.Minute {
			return true
		}
		return false
	}
	var pid int
	var stamp string
	if _, err := fmt.Sscan(string(data), &pid, &stamp); err != nil {
		return false
	}
	now, err := startTime(pid)
	return err == nil && now == stamp
}

// remove takes a run apart in the order that lets each step succeed:
// processes first (they hold the namespaces and files open), then
// namespaces, then the directory.
func remove(dir string) ([]string, error) {
	var done []string
	var errs []error
	killed, err := killMarked(dir)
	done = append(done, killed...)
	errs = append(errs, err)

	names, err := Namespaces(dir)
	errs = append(errs, err)
	for _, name := range names {
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			continue // removed by the run's own cleanup
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, "network namespace "+name)
	}

	if _, err := os.Stat(dir); err == nil {
		if err := removeAll(dir); err != nil {
			errs = append(errs, err)
		} else {
			done = append(done, "directory "+dir)
		}
	}
	return done, errors.Join(errs...)
}

// deleteNetns kills what still runs inside the namespace (a process that
// lost the marker would keep it alive) and deletes it.
func deleteNetns(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// removeAll retries because the owner, when Remove runs from its signal
// handler, may still be writing into the directory.
func removeAll(dir string) error {
	var err error
	for range 5 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

package demorun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one live process of a run.
type Process struct {
	PID     int
	Command string
}

// Processes lists the live processes whose environment marks them as dir's
// run (not the calling process). Zombies have no environment left and are
// not listed: they hold nothing.
func Processes(dir string) ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	want := []byte(Marker + "=" + dir + "\x00")
	var found []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			continue
		}
		found = append(found, Process{PID: pid, Command: command(pid)})
	}
	return found, nil
}

// command is the process's argv[0] base name, for the narration.
func command(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(argv0))
}

// killMarked SIGKILLs dir's processes and waits until none is left.
func killMarked(dir string) ([]string, error) {
	var done []string
	killed := map[int]bool{}
	deadline := time.Now().Add(killTimeout)
	for {
		procs, err := Processes(dir)
		if err != nil {
			return done, err
		}
		if len(procs) == 0 {
			return done, nil
		}
		if time.Now().After(deadline) {
			return done, fmt.Errorf("%d processes of run %s survived SIGKILL: %v", len(procs), dir, procs)
		}
		for _, p := range procs {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil && !killed[p.PID] {
				killed[p.PID] = true
				done = append(done, fmt.Sprintf("process %d (%s)", p.PID, p.Command))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot. With the pid it names one process for good.
func startTime(pid int) (string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return "", errors.New("short /proc stat")
	}
	return fields[19], nil
}

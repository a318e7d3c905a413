// Package netns provides test helpers that build small topologies of Linux
// network namespaces: create a namespace, wire two of them with a veth pair,
// run commands or Go code inside one, and tear everything down on t.Cleanup.
//
// The helpers shell out to iproute2 (`ip netns add`, `ip link`, `ip addr`) for
// setup because that is what an engineer reproducing a failure types by hand;
// Go code that must run inside a namespace uses (*NS).Do, which switches a
// locked OS thread with github.com/vishvananda/netns.
//
// The kernels these tests run on have no dummy interfaces: put extra "LAN"
// addresses on lo (AddLoopbackAddr) or use a veth pair.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// maxNameLen keeps namespace names usable as interface names too (IFNAMSIZ-1),
// so a caller may name a link after its namespace.
const maxNameLen = 15

var counter atomic.Uint32

// NS is a named network namespace owned by one test.
type NS struct {
	name   string
	handle vnetns.NsHandle

	mu    sync.Mutex
	procs []*exec.Cmd
}

// New creates a network namespace whose name starts with prefix and is unique
// per process (prefix + pid + counter, at most 15 characters), brings its
// loopback up, and deletes it (killing processes started through Start) when
// the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	// Network namespaces, veth pairs and nftables need CAP_NET_ADMIN and
	// CAP_SYS_ADMIN.
	require.Root(t)
	pid := os.Getpid()
	var name string
	for attempt := 0; ; attempt++ {
		name = uniqueName(prefix, pid, counter.Add(1))
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		if err == nil {
			break
		}
		// A namespace left over by a crashed run with a recycled pid: take the next number.
		if attempt < 20 && bytes.Contains(out, []byte("exists")) {
			continue
		}
		t.Fatalf("Creating netns %s: %v: %s", name, err, out)
	}
	ns := &NS{name: name, handle: -1}
	t.Cleanup(func() {
		if err := ns.destroy(); err != nil {
			t.Errorf("Removing netns %s: %v", name, err)
		}
	})
	h, err := vnetns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatalf("Opening netns %s: %v", name, err)
	}
	ns.handle = h
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func uniqueName(prefix string, pid int, n uint32) string {
	suffix := fmt.Sprintf("%d-%d", pid, n)
	if room := maxNameLen - len(suffix); len(prefix) > room {
		if room < 1 {
			// pid+counter alone fill the budget; keep the low digits which differ most.
			suffix = suffix[len(suffix)-(maxNameLen-1):]
			room = 1
		}
		prefix = prefix[:room]
	}
	return prefix + suffix
}

// Name is the namespace's name as `ip netns` knows it.
func (ns *NS) Name() string { return ns.name }

// Path is the bind-mounted namespace file, /run/netns/NAME.
func (ns *NS) Path() string { return "/run/netns/" + ns.name }

// Fd is an open file descriptor of the namespace, valid until the test ends
// (for example for nftables.WithNetNSFd or netlink.NewHandleAt).
func (ns *NS) Fd() int { return int(ns.handle) }

// Handle is the namespace as a vishvananda/netns handle, valid until the test ends.
func (ns *NS) Handle() vnetns.NsHandle { return ns.handle }

// Command returns an exec.Cmd that runs args inside the namespace.
func (ns *NS) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// Exec runs args inside the namespace and returns their combined output.
func (ns *NS) Exec(args ...string) (string, error) {
	out, err := ns.Command(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in netns %s: %w: %s", strings.Join(args, " "), ns.name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Run runs args inside the namespace and fails the test if they fail.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start starts args inside the namespace in the background; the process (and
// its process group) is killed when the test ends, before the namespace is removed.
func (ns *NS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("Starting %s in netns %s: %v", strings.Join(args, " "), ns.name, err)
	}
	ns.mu.Lock()
	ns.procs = append(ns.procs, cmd)
	ns.mu.Unlock()
	return cmd
}

// Do runs fn with the calling goroutine's OS thread switched into the
// namespace and switches back afterwards. Sockets created inside fn stay in
// the namespace after Do returns, so a listener opened in fn may be served
// from any goroutine. Goroutines started inside fn do not inherit the
// namespace.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current netns: %w", err)
	}
	defer orig.Close()
	if err := vnetns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", ns.name, err)
	}
	fnErr := fn()
	if err := vnetns.Set(orig); err != nil {
		// Leave the thread locked: the runtime then kills it when the goroutine
		// ends instead of handing a thread in the wrong namespace to others.
		return errors.Join(fnErr, fmt.Errorf("returning from netns %s: %w", ns.name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// MustDo is Do that fails the test on error.
func (ns *NS) MustDo(t testing.TB, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// AddLoopbackAddr adds cidr (e.g. "10.3.0.1/24") to lo: a stand-in for a LAN
// network on kernels without dummy interfaces.
func (ns *NS) AddLoopbackAddr(t testing.TB, cidr string) {
	t.Helper()
	ns.Run(t, "ip", "addr", "add", cidr, "dev", "lo")
}

// AddRoute adds a route, e.g. AddRoute(t, "10.3.0.0/24", "via", "10.99.0.1").
func (ns *NS) AddRoute(t testing.TB, dst string, args ...string) {
	t.Helper()
	ns.Run(t, append([]string{"ip", "route", "add", dst}, args...)...)
}

// EnableForwarding turns on IPv4 and IPv6 forwarding inside the namespace.
func (ns *NS) EnableForwarding(t testing.TB) {
	t.Helper()
	ns.Run(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
}

// Veth links a and b with a veth pair named after the peer namespace's
// counter (short, unique inside each namespace), assigns addrA/addrB (CIDR
// notation, empty for none) and brings both ends up. It returns the interface
// names in a and b.
func Veth(t testing.TB, a, b *NS, addrA, addrB string) (ifA, ifB string) {
	t.Helper()
	n := counter.Add(1)
	ifA, ifB = fmt.Sprintf("veth%da", n), fmt.Sprintf("veth%db", n)
	VethNamed(t, a, ifA, b, ifB, addrA, addrB)
	return ifA, ifB
}

// VethNamed is Veth with chosen interface names (at most 15 characters), for
// example to stand in for a TUN device a ruleset matches by name.
func VethNamed(t testing.TB, a *NS, ifA string, b *NS, ifB string, addrA, addrB string) {
	t.Helper()
	if len(ifA) > maxNameLen || len(ifB) > maxNameLen {
		t.Fatalf("Interface names %q/%q longer than %d characters", ifA, ifB, maxNameLen)
	}
	// Created directly inside a so the names never collide in the caller's namespace.
	a.Run(t, "ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
	for _, end := range []struct {
		ns   *NS
		dev  string
		addr string
	}{{a, ifA, addrA}, {b, ifB, addrB}} {
		if end.addr != "" {
			end.ns.Run(t, "ip", "addr", "add", end.addr, "dev", end.dev)
		}
		end.ns.Run(t, "ip", "link", "set", end.dev, "up")
	}
}

func (ns *NS) destroy() error {
	var errs []error
	ns.mu.Lock()
	procs := ns.procs
	ns.procs = nil
	ns.mu.Unlock()
	for _, cmd := range procs {
		if cmd.Process == nil {
			continue
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			errs = append(errs, fmt.Errorf("process %d did not exit", cmd.Process.Pid))
		}
	}
	// Anything still running inside (e.g. started by a test with its own exec)
	// would keep the namespace alive; `ip netns pids` finds it.
	if out, err := exec.Command("ip", "netns", "pids", ns.name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid != os.Getpid() && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if ns.handle >= 0 {
		_ = ns.handle.Close()
		ns.handle = -1
	}
	if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ip netns del: %w: %s", err, bytes.TrimSpace(out)))
	}
	return errors.Join(errs...)
}

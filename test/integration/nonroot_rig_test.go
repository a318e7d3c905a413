package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// What the gateway pod's manifest asks of the container runtime
// (controllers.podSpec): the pod's fsGroup, charon's primary group as
// well, and the agent's user.
const (
	podGroup  = 65532
	agentUser = 65532
)

// Capability bits (linux/capability.h).
const (
	capChown          = 1 << 0
	capDACOverride    = 1 << 1
	capDACReadSearch  = 1 << 2
	capNetBindService = 1 << 10
	capNetAdmin       = 1 << 12
)

// podDirs are the files of a gateway pod as the kubelet lays them out: a
// directory only the pod's group may enter, the shared emptyDir (root,
// the pod's group, setgid, no access for others) and the agent's
// kubeconfig, readable by the group.
type podDirs struct {
	root string
	run  string
}

func newPodDirs(t *testing.T) podDirs {
	t.Helper()
	// Under /tmp, not t.TempDir(): every directory above must be searchable
	// by the agent's user, and the sockets' paths must fit in sun_path.
	root, err := os.MkdirTemp("/tmp", "ikg-pod-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	d := podDirs{root: root, run: filepath.Join(root, "run")}
	if err := os.Mkdir(d.run, 0o700); err != nil {
		t.Fatal(err)
	}
	d.own(t, root, 0o750)
	// The kubelet makes an fsGroup emptyDir 2777; 2770 shows the group
	// alone is what lets the two containers in.
	d.own(t, d.run, 0o2770)
	return d
}

// own gives path to root and the pod's group with mode (setgid included).
func (d podDirs) own(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	perm := mode.Perm()
	if mode&0o2000 != 0 {
		perm |= os.ModeSetgid
	}
	if err := os.Chown(path, 0, podGroup); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// file writes a copy of src into the pod's directory with mode, group-owned.
func (d podDirs) file(t *testing.T, src, name string, mode os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(d.root, name)
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	d.own(t, dst, mode)
	return dst
}

// charonExec starts charon as the charon container runs: root, primary and
// supplementary group the pod's, only NET_ADMIN and NET_BIND_SERVICE in
// its bounding set (so neither CAP_CHOWN nor CAP_DAC_OVERRIDE), no new
// privileges. A change of credentials clears the parent-death signal the
// harness sets, so setpriv sets it again.
func charonExec() []string {
	g := strconv.Itoa(podGroup)
	return []string{"setpriv", "--regid", g, "--groups", g, "--inh-caps=-all",
		"--bounding-set=-all,+net_admin,+net_bind_service", "--no-new-privs", "--pdeathsig", "SIGKILL"}
}

// agentCommand runs bin inside ns as runc runs a non-root container whose
// securityContext adds NET_ADMIN: NET_ADMIN alone in the bounding set,
// kept in the permitted set across setuid (keep-caps), no inheritable or
// ambient capability (runtimes set none since CVE-2022-24769), no new
// privileges; then exec. Only a file capability on bin can make NET_ADMIN
// effective after that exec.
func agentCommand(ns *netns.NS, bin string, args ...string) *exec.Cmd {
	return ns.Command(append(append(agentCreds("net_admin"), bin), args...)...)
}

// agentCreds is the setpriv command that runs a program as the agent's
// container whose securityContext adds caps (e.g. "net_admin").
func agentCreds(caps ...string) []string {
	u, g := strconv.Itoa(agentUser), strconv.Itoa(podGroup)
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + c
	}
	return []string{"setpriv", "--reuid", u, "--regid", g, "--groups", g,
		"--inh-caps=-all", "--bounding-set=" + bounding, "--no-new-privs", "--pdeathsig", "SIGKILL"}
}

// procStatus is what /proc/PID/status says of a process's credentials.
type procStatus struct {
	uid, gid               int
	groups                 string
	capEff, capPrm, capBnd uint64
	noNewPrivs             bool
}

// execStatus waits until pid runs exe (the exec chain ip, setpriv, exe is
// done) and returns its credentials.
func execStatus(t *testing.T, pid int, exe string) procStatus {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("pid %d to run %s", pid, exe), func() (bool, string) {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && got == exe, fmt.Sprintf("runs %q (%v)", got, err)
	})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var s procStatus
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 && k != "Groups" {
			continue
		}
		hex := func() uint64 { n, _ := strconv.ParseUint(f[0], 16, 64); return n }
		switch k {
		case "Uid":
			s.uid, _ = strconv.Atoi(f[1]) // effective
		case "Gid":
			s.gid, _ = strconv.Atoi(f[1])
		case "Groups":
			s.groups = strings.Join(f, " ")
		case "CapEff":
			s.capEff = hex()
		case "CapPrm":
			s.capPrm = hex()
		case "CapBnd":
			s.capBnd = hex()
		case "NoNewPrivs":
			s.noNewPrivs = f[0] == "1"
		}
	}
	return s
}

// forwardAPI makes the API server at host (envtest's, on this namespace's
// loopback) reachable at the same address on ns's loopback, where the
// agent runs: the kubeconfig and its certificate stay valid unchanged.
func forwardAPI(t *testing.T, ns *netns.NS, host string) {
	t.Helper()
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		t.Fatalf("API server address %q: %v", host, err)
	}
	addr := u.Host
	var l net.Listener
	ns.MustDo(t, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				// A goroutine not inside ns.Do dials from the test's namespace.
				out, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
}

// nsGet is get for an address on ns's loopback.
func nsGet(ns *netns.NS, url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			d := net.Dialer{}
			if doErr := ns.Do(func() error { conn, err = d.DialContext(ctx, network, addr); return err }); doErr != nil && err == nil {
				err = doErr
			}
			return conn, err
		},
		DisableKeepAlives: true,
	}}
	return getWith(c, url)
}

// fileOwner is the mode (setgid included), owner and group of path.
func fileOwner(path string) (mode uint32, uid, gid int, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, 0, err
	}
	return st.Mode & 0o7777, int(st.Uid), int(st.Gid), nil
}

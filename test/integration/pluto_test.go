package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// libreswanVersion is the Debian libreswan hack/libreswan.sh unpacks.
const libreswanVersion = "4.10"

// libreswanDir is where hack/libreswan.sh unpacked libreswan: pluto, whack
// and addconn under usr/libexec/ipsec, certutil and pk12util under usr/bin,
// the libraries Debian's strongSwan machine lacks under usr/lib.
func libreswanDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LIBRESWAN_DIR")
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "ikegate", "libreswan-"+libreswanVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		require.SkipOrFail(t, "libreswan %s is not unpacked in %s (make libreswan, or hack/libreswan.sh)", libreswanVersion, dir)
	}
	return dir
}

// pluto is one libreswan IKE daemon in a test namespace, with its own
// configuration, secrets, NSS database, control socket and log. pluto looks
// for addconn under the compiled-in /usr/libexec/ipsec, so it runs in a
// mount namespace of its own where the unpacked usr/libexec covers the
// host's; nothing outside that namespace sees the change.
type pluto struct {
	ns   *netns.NS
	lib  string
	dir  string
	conn string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// plutoOptions configure a pluto peer.
type plutoOptions struct {
	// Conn is the body of the one connection, "hq", in ipsec.conf syntax.
	Conn string
	// Secrets is ipsec.secrets.
	Secrets string
	// CACert (PEM) is imported into the NSS database as a trusted CA.
	CACert []byte
	// PKCS12 is imported into the NSS database (empty password) when set.
	PKCS12 []byte
}

// startPluto writes pluto's files, starts it in ns and adds the connection.
// pluto is stopped, and its log printed if the test failed, when the test ends.
func startPluto(t *testing.T, ns *netns.NS, opts plutoOptions) *pluto {
	t.Helper()
	lib := libreswanDir(t)
	// The control socket's path must fit in sun_path: not under t.TempDir().
	dir, err := os.MkdirTemp("/tmp", "pluto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &pluto{ns: ns, lib: lib, dir: dir, conn: "hq"}
	for _, d := range []string{"nss", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := "config setup\n\tlogfile=" + p.logPath() + "\n\nconn hq\n" + opts.Conn
	for name, data := range map[string]string{"ipsec.conf": conf, "ipsec.secrets": opts.Secrets} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.tool("usr/bin/certutil", "-N", "-d", "sql:"+p.nssDir(), "--empty-password"); err != nil {
		t.Fatalf("Creating pluto's NSS database: %v\n%s", err, out)
	}
	if len(opts.CACert) > 0 {
		f := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(f, opts.CACert, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := p.tool("usr/bin/certutil", "-A", "-d", "sql:"+p.nssDir(), "-n", "ca", "-t", "CT,,", "-a", "-i", f); err != nil {
			t.Fatalf("Importing pluto's CA: %v\n%s", err, out)
		}
	}
	if len(opts.PKCS12) > 0 {
		f := filepath.Join(dir, "peer.p12")
		if err := os.WriteFile(f, opts.PKCS12, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := p.tool("usr/bin/pk12util", "-i", f, "-d", "sql:"+p.nssDir(), "-W", ""); err != nil {
			t.Fatalf("Importing pluto's certificate: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("Log of pluto (%s):\n%s", p.logPath(), p.Log())
		}
	})
	p.Start(t)
	return p
}

func (p *pluto) nssDir() string  { return filepath.Join(p.dir, "nss") }
func (p *pluto) ctlPath() string { return filepath.Join(p.dir, "run", "pluto.ctl") }
func (p *pluto) logPath() string { return filepath.Join(p.dir, "pluto.log") }
func (p *pluto) libPath() string { return filepath.Join(p.lib, "usr", "lib", "x86_64-linux-gnu") }

// tool runs one of the unpacked programs on the host side (NSS tools).
func (p *pluto) tool(rel string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(p.lib, rel), args...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+p.libPath())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start starts pluto (again, after Kill) with its files as they are and
// loads the connection. Whatever pluto knew of SAs is gone, as after a crash.
func (p *pluto) Start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatal("pluto is already running")
	}
	// A killed pluto leaves its pid file, which a new one refuses to overwrite.
	for _, f := range []string{"pluto.pid", "pluto.ctl"} {
		if err := os.Remove(filepath.Join(p.dir, "run", f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf("mount --bind %q /usr/libexec && exec /usr/libexec/ipsec/pluto --nofork"+
		" --rundir %q --dumpdir %q --nssdir %q --ipsecdir %q --secretsfile %q --logfile %q --no-dnssec",
		filepath.Join(p.lib, "usr", "libexec"), filepath.Join(p.dir, "run"), filepath.Join(p.dir, "run"),
		p.nssDir(), p.dir, filepath.Join(p.dir, "ipsec.secrets"), p.logPath())
	cmd := p.ns.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+p.libPath())
	out, err := os.OpenFile(filepath.Join(p.dir, "pluto.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("Starting pluto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", p.ctlPath()); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("pluto exited during start:\n%s\n%s", p.Log(), readFile(filepath.Join(p.dir, "pluto.out")))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pluto's control socket not ready after 15s:\n%s", p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"usr/libexec/ipsec/whack", "--ctlsocket", p.ctlPath(), "--listen"},
		{"usr/libexec/ipsec/addconn", "--ctlsocket", p.ctlPath(), "--config", filepath.Join(p.dir, "ipsec.conf"), "--autoall"},
		{"usr/libexec/ipsec/whack", "--ctlsocket", p.ctlPath(), "--rereadsecrets"},
	} {
		if out, err := p.exec(args...); err != nil {
			t.Fatalf("pluto: %s: %v\n%s", args[0], err, out)
		}
	}
}

// exec runs an unpacked program inside pluto's network namespace.
func (p *pluto) exec(args ...string) (string, error) {
	cmd := p.ns.Command(append([]string{filepath.Join(p.lib, args[0])}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+p.libPath())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Initiate has pluto bring the connection up, without waiting for it.
func (p *pluto) Initiate(t *testing.T) {
	t.Helper()
	if out, err := p.exec("usr/libexec/ipsec/whack", "--ctlsocket", p.ctlPath(), "--initiate", "--asynchronous", "--name", p.conn); err != nil {
		t.Fatalf("pluto: initiating: %v\n%s", err, out)
	}
}

// Kill ends pluto with SIGKILL, as a crash would: it tells the peer nothing.
func (p *pluto) Kill(t *testing.T) {
	t.Helper()
	if !p.kill() {
		t.Fatal("pluto survived SIGKILL")
	}
}

func (p *pluto) kill() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return true
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		return false
	}
	p.cmd, p.done = nil, nil
	return true
}

// Log is pluto's log so far.
func (p *pluto) Log() string { return readFile(p.logPath()) }

// WaitLog waits until pluto's log holds substr.
func (p *pluto) WaitLog(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "pluto to log "+substr, func() (bool, string) {
		return strings.Contains(p.Log(), substr), "not yet"
	})
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Package charontest starts real strongSwan charon daemons inside test network
// namespaces: each with its own strongswan.conf (rendered by internal/swan),
// VICI socket, swanctl directory and flushed file log, stopped when the test
// ends. Tests drive them with swanctl (Swanctl, LoadAll) or over VICI
// (VICISocket), and read their logs (Log, WaitLog).
package charontest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// Binary is the daemon started by Start: charon-systemd logs to the journal
// by default and has no pid file, so several can run side by side.
const Binary = "/usr/sbin/charon-systemd"

// Timeouts; charon is up in well under a second on an idle machine, the
// margins cover a loaded CI host.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
)

// maxSocketPath is sun_path's size minus its terminating NUL.
const maxSocketPath = 107

// swanctlSubdirs are the credential directories swanctl --load-all reads.
var swanctlSubdirs = []string{
	"x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl",
	"pubkey", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
}

// swanctlNoise matches swanctl's complaints about plugins in its compiled-in
// list that the distribution does not ship; they say nothing about the load.
var swanctlNoise = regexp.MustCompile(`(?m)^plugin '[^']+': failed to load - .*\n?`)

// Options select how a charon is configured.
type Options struct {
	// Name labels the charon in its directory and in failure messages.
	Name string
	// Userspace loads kernel-libipsec: ESP runs in charon over the TUN device
	// ipsec0, for kernels (like the test machines') without ESP in XFRM.
	Userspace bool
	// Client configures a road-warrior client: resolve is not loaded, so a
	// received DNS server never rewrites the host's /etc/resolv.conf.
	Client bool
	// LogLevels maps "default" or a subsystem (swan.Subsystems) to a level;
	// nil means default 1 with ike, cfg, chd and knl at 2, an empty map
	// charon's own defaults.
	LogLevels map[string]int
	// Settings, when set, adjusts the rendered settings before they are
	// written, e.g. IKE_SA table sizes or retransmission timeouts under
	// test. Keep the VICI socket and log file: the harness relies on them.
	Settings func(*swan.Settings)
	// RunDir, when set, holds the VICI socket and the RADIUS directory
	// instead of the charon's own directory: the volume a gateway pod's
	// charon shares with its agent. The test makes it, with the owner,
	// group and mode the kubelet would give it; the RADIUS directory is
	// left for the agent to make, as in the pod.
	RunDir string
	// Exec, when set, is the command charon-systemd is started under (it
	// must end by executing its last argument, charon), e.g. setpriv
	// limiting charon's capabilities and groups to a container's.
	Exec []string
}

// Charon is one running (or stopped) charon daemon.
type Charon struct {
	ns   *netns.NS
	opts Options
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start writes the configuration of a charon into its own directory and
// starts it inside ns, returning once its VICI socket accepts connections.
// The daemon is stopped, and on failure its log is printed, when the test ends.
func Start(t testing.TB, ns *netns.NS, opts Options) *Charon {
	t.Helper()
	require.Root(t)
	if opts.Name == "" {
		opts.Name = "charon"
	}
	c := &Charon{ns: ns, opts: opts, dir: shortDir(t, opts.Name)}
	// swanctl reports every missing credential directory as a failure.
	for _, sub := range swanctlSubdirs {
		d := filepath.Join(c.SwanctlDir(), sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("Creating %s: %v", d, err)
		}
	}
	if opts.RunDir == "" {
		if err := os.MkdirAll(c.RADIUSDir(), 0o700); err != nil {
			t.Fatalf("Creating %s: %v", c.RADIUSDir(), err)
		}
	}
	c.writeConf(t)
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("Stopping charon %s: %v", opts.Name, err)
		}
		if t.Failed() {
			c.reportFailure(t, opts.Name)
		}
	})
	if err := c.start(); err != nil {
		t.Fatalf("Starting charon %s in netns %s: %v\nLog:\n%s", opts.Name, ns.Name(), err, c.Log())
	}
	return c
}

// writeConf renders the charon's strongswan.conf from its options.
func (c *Charon) writeConf(t testing.TB) {
	t.Helper()
	settings := c.settings()
	if c.opts.Settings != nil {
		c.opts.Settings(&settings)
	}
	if err := settings.Validate(); err != nil {
		t.Fatalf("Settings of charon %s: %v", c.opts.Name, err)
	}
	conf := swan.RenderStrongswanConf(settings)
	if err := os.WriteFile(c.confPath(), []byte(conf), 0o644); err != nil {
		t.Fatalf("Writing strongswan.conf: %v", err)
	}
}

// SetLogLevels changes the running charon's log levels (Options.LogLevels)
// as a changed strongswan.conf would: it rewrites the file and has charon
// re-read its settings, which reopens its loggers. Later lines of the log
// follow the new levels.
func (c *Charon) SetLogLevels(t testing.TB, levels map[string]int) {
	t.Helper()
	c.opts.LogLevels = levels
	c.writeConf(t)
	if out, err := c.Swanctl("--reload-settings"); err != nil {
		t.Fatalf("Reloading the settings of charon %s: %v\n%s", c.opts.Name, err, out)
	}
}

// shortDir returns a directory for one charon whose VICI socket path fits
// in sun_path: under t.TempDir() when that is short enough, else under /tmp.
func shortDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if len(dir)+len("/charon.vici") <= maxSocketPath {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatalf("Creating %s: %v", dir, err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("/tmp", "ct-")
	if err != nil {
		t.Fatalf("Creating a charon directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (c *Charon) settings() swan.Settings {
	levels := c.opts.LogLevels
	if levels == nil {
		levels = map[string]int{"default": 1, "ike": 2, "cfg": 2, "chd": 2, "knl": 2}
	}
	var radius *swan.EAPRADIUS
	if !c.opts.Client {
		// A gateway's users log in through the RADIUS server its agent
		// (or ServeUsers) writes into RADIUSDir, as in a gateway pod.
		radius = &swan.EAPRADIUS{ServersInclude: c.RADIUSDir() + "/*.conf", ClassGroup: true}
	}
	return swan.Settings{
		EAPRADIUS:          radius,
		VICISocket:         "unix://" + c.VICISocket(),
		UserspaceDataPlane: c.opts.Userspace,
		Client:             c.opts.Client,
		// ha and tpm need peers or hardware a test has not got; forecast
		// would forward broadcasts between test namespaces.
		DisablePlugins: []string{"forecast", "ha", "tpm"},
		Log: swan.Logging{
			Levels: levels,
			// append: charon reopens its log on reload-settings (each RADIUS
			// servers change), and would truncate it otherwise.
			File: &swan.FileLog{Path: c.LogPath(), FlushLine: true, TimeFormat: "%T", Append: true},
		},
	}
}

// PID is the process id of the running charon: a restarted charon has a
// new one. (VICI's "since" is recomputed from the uptime on every call and
// can move by a second, so it cannot tell a restart.)
func (c *Charon) PID() int { return c.cmd.Process.Pid }

// VICISocket is the path of the charon's VICI unix socket.
func (c *Charon) VICISocket() string { return filepath.Join(c.runDir(), "charon.vici") }

// runDir is where the charon's VICI socket and RADIUS directory are.
func (c *Charon) runDir() string {
	if c.opts.RunDir != "" {
		return c.opts.RunDir
	}
	return c.dir
}

// Dir is the charon's directory: strongswan.conf, charon.log, swanctl/.
func (c *Charon) Dir() string { return c.dir }

// SwanctlDir is the swanctl directory LoadAll writes into (swanctl.conf,
// x509/, x509ca/, private/, ...).
func (c *Charon) SwanctlDir() string { return filepath.Join(c.dir, "swanctl") }

// LogPath is the charon's log file, for people to read along.
func (c *Charon) LogPath() string { return filepath.Join(c.dir, "charon.log") }

// NS is the namespace the charon runs in.
func (c *Charon) NS() *netns.NS { return c.ns }

func (c *Charon) confPath() string { return filepath.Join(c.dir, "strongswan.conf") }
func (c *Charon) outPath() string  { return filepath.Join(c.dir, "charon.out") }

func (c *Charon) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("already running")
	}
	// A socket left by a killed charon would pass the readiness check below.
	if err := os.Remove(c.VICISocket()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := os.OpenFile(c.outPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := c.ns.Command(append(slices.Clone(c.opts.Exec), Binary)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+c.confPath())
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group so that stopping reaches anything charon spawned
	// (updown scripts); Pdeathsig so a crashed test binary leaves no daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.cmd, c.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			c.cmd, c.done = nil, nil
			return fmt.Errorf("exited during start: %v", cmd.ProcessState)
		default:
		}
		if conn, err := net.Dial("unix", c.VICISocket()); err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			killAndWait(cmd, done)
			c.cmd, c.done = nil, nil
			return fmt.Errorf("VICI socket %s not ready after %v", c.VICISocket(), startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Charon) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		// charon is gone; reap what it may have left in its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return nil
	case <-time.After(stopTimeout):
	}
	if !killAndWait(cmd, done) {
		return fmt.Errorf("pid %d survived SIGKILL", cmd.Process.Pid)
	}
	return fmt.Errorf("did not exit within %v of SIGTERM; killed", stopTimeout)
}

func killAndWait(cmd *exec.Cmd, done <-chan struct{}) bool {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
		return true
	case <-time.After(stopTimeout):
		return false
	}
}

// Stop stops the charon (SIGTERM, SIGKILL after a timeout) and waits for it
// to exit. Stopping a stopped charon does nothing.
func (c *Charon) Stop() error { return c.stop() }

// Restart stops the charon and starts it again with the same configuration,
// as a pod restart would; the previous run's log is kept as charon.log.1.
// Everything loaded over VICI is gone afterwards.
func (c *Charon) Restart(t testing.TB) {
	t.Helper()
	if err := c.stop(); err != nil {
		t.Fatalf("Stopping charon %s: %v", c.opts.Name, err)
	}
	if err := os.Rename(c.LogPath(), c.LogPath()+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("Restarting charon %s: %v\nLog:\n%s", c.opts.Name, err, c.Log())
	}
}

// KillAndRestart ends the charon with SIGKILL, as a crash or an OOM kill
// would (no cleanup, no DELETEs to peers), and starts it again with the
// same configuration; the previous run's log is kept as charon.log.1.
func (c *Charon) KillAndRestart(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
	if cmd != nil && !killAndWait(cmd, done) {
		t.Fatalf("charon %s survived SIGKILL", c.opts.Name)
	}
	if err := os.Rename(c.LogPath(), c.LogPath()+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("Restarting charon %s: %v\nLog:\n%s", c.opts.Name, err, c.Log())
	}
}

// Running reports whether the charon process is alive.
func (c *Charon) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Swanctl runs swanctl with args against this charon inside its namespace,
// in the swanctl directory, and returns the combined output without
// swanctl's own plugin-loading noise.
func (c *Charon) Swanctl(args ...string) (string, error) {
	args = append(append([]string{"swanctl"}, args...), "--uri", "unix://"+c.VICISocket())
	cmd := c.ns.Command(args...)
	cmd.Dir = c.SwanctlDir()
	// Relative credential paths (x509/, private/, ...) resolve against this directory.
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+c.SwanctlDir())
	b, err := cmd.CombinedOutput()
	out := swanctlNoise.ReplaceAllString(string(b), "")
	if err != nil {
		return out, fmt.Errorf("swanctl %s on charon %s: %w: %s", strings.Join(args[1:], " "), c.opts.Name, err, strings.TrimSpace(out))
	}
	return out, nil
}

// LoadAll writes conf as swanctl.conf and files (paths relative to the
// swanctl directory, e.g. "x509/gw.pem", "x509ca/ca.pem", "private/gw.key")
// and runs swanctl --load-all. It fails if swanctl fails or reports that
// anything failed to load.
func (c *Charon) LoadAll(conf string, files map[string][]byte) (string, error) {
	for name, data := range files {
		p := filepath.Join(c.SwanctlDir(), filepath.Clean("/"+name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return "", err
		}
	}
	file := filepath.Join(c.SwanctlDir(), "swanctl.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		return "", err
	}
	out, err := c.Swanctl("--load-all", "--noprompt", "--file", file)
	if err != nil {
		return out, err
	}
	if strings.Contains(strings.ToLower(out), "failed") {
		return out, fmt.Errorf("swanctl --load-all on charon %s reported failures:\n%s", c.opts.Name, out)
	}
	return out, nil
}

// Log returns the charon's log file so far ("" if there is none yet).
func (c *Charon) Log() string {
	b, _ := os.ReadFile(c.LogPath())
	return string(b)
}

// WaitLog waits until the current run's log contains substr and fails the
// test if it does not within timeout.
func (c *Charon) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.Log(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("Charon %s did not log %q within %v", c.opts.Name, substr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failureLogLines is how much of a charon's log a failed test prints. A
// whole log runs to thousands of lines, and printed after the test's own
// failure message it pushes that message out of the part of the output a
// CI summary shows; the whole log is kept in a file instead.
const failureLogLines = 120

// reportFailure prints the end of the charon's log and output and keeps
// the whole log where the test's temporary directory will not remove it.
func (c *Charon) reportFailure(t testing.TB, name string) {
	log := c.Log()
	kept := filepath.Join(os.TempDir(), "ikegate-failed-tests", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name+".log")
	if err := os.MkdirAll(filepath.Dir(kept), 0o755); err == nil && os.WriteFile(kept, []byte(log), 0o644) == nil {
		t.Logf("Whole log of charon %s kept in %s", name, kept)
	}
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if n := len(lines) - failureLogLines; n > 0 {
		lines = append([]string{fmt.Sprintf("[%d earlier lines]", n)}, lines[n:]...)
	}
	t.Logf("End of the log of charon %s (%s):\n%s", name, c.LogPath(), strings.Join(lines, "\n"))
	if out, _ := os.ReadFile(c.outPath()); len(bytes.TrimSpace(out)) > 0 {
		t.Logf("Output of charon %s:\n%s", name, out)
	}
}

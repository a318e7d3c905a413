package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestAgentBinary runs cmd/agent as a process the way the gateway pod does
// (flags and environment, a kubeconfig instead of the in-cluster account)
// and checks its endpoints, its firewall table in the gateway's namespace,
// that a restart keeps the table and that stopping for good removes it.
func TestAgentBinary(t *testing.T) {
	require.Root(t)
	require.Commands(t, "go", "nft")
	bin := buildAgent(t)

	const gwAddr = "192.0.2.1"
	gwNS := netns.New(t, "bngw")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Binary Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	gwVICI := vici.NewClient(gw.VICISocket())
	t.Cleanup(func() { gwVICI.Close() })

	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(agent.Scheme()))
	startManager(t, cfg)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(context.Background(), c, "jimp", "jimp@example.com", "abc123"); err != nil {
		t.Fatal(err)
	}
	table := firewall.TableName(namespace, gatewayName)
	run := func() (stop func() string) {
		// The addresses the manager gives a host-network agent.
		health, metrics := hostNetworkAddr(t), hostNetworkAddr(t)
		cmd := exec.Command(bin,
			"--kubeconfig", kubeconfig,
			"--vici-socket", gw.VICISocket(),
			"--health-addr", health,
			"--metrics-addr", metrics,
			"--certificate-secret", certSecret,
			"--firewall-netns", gwNS.Path(),
			"--state-file", filepath.Join(t.TempDir(), "agent-state.json"),
			"--radius-dir", gw.RADIUSDir(),
			"--radius-netns", gwNS.Path(),
		)
		cmd.Env = append(os.Environ(), "POD_NAME=vpn-gateway-0", "POD_NAMESPACE="+namespace, "GATEWAY_NAME="+gatewayName)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		stopped := false
		t.Cleanup(func() {
			if !stopped {
				// SIGQUIT first: a Go program prints its goroutines on it.
				_ = cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
			}
			if t.Failed() {
				t.Logf("Agent output:\n%s", out)
			}
			if strings.Contains(out.String(), "abc123") {
				t.Error("The agent logged a password")
			}
		})

		waitFor(t, 20*time.Second, "/readyz to answer 200", func() (bool, string) {
			code, body := get("http://" + health + "/readyz")
			return code == http.StatusOK, body
		})
		// Ready means serving the gateway's connections; a user whose hash
		// the manager has not yet written to its shard follows within the
		// agent's next apply, in the agent's RADIUS server.
		waitFor(t, 10*time.Second, "the agent to serve the user", func() (bool, string) {
			_, body := get("http://" + metrics + "/metrics")
			return strings.Contains(body, "ikegate_agent_radius_users 1"), "ikegate_agent_radius_users is not 1"
		})
		if keys, err := sharedKeys(context.Background(), gwVICI); err != nil || len(keys) != 0 {
			t.Errorf("charon holds shared secrets %v (%v), want none", keys, err)
		}
		_, body := get("http://" + metrics + "/metrics")
		for _, want := range []string{"ikegate_agent_apply_duration_seconds_count", "ikegate_agent_last_apply_error 0", "ikegate_firewall_counters_read_error"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if tables := gwNS.Run(t, "nft", "list", "tables"); !strings.Contains(tables, table) {
			t.Errorf("No table %s in the gateway's namespace:\n%s", table, tables)
		}
		notServedBeyondLoopback(t, health, metrics)
		return func() string {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				stopped = true
				if err != nil {
					t.Errorf("Agent exited with %v after SIGTERM", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Agent did not exit within 20s of SIGTERM")
			}
			return gwNS.Run(t, "nft", "list", "tables")
		}
	}

	// A restart (the gateway still wants this pod) keeps the table, so the
	// pools stay filtered until the next agent adopts it.
	stop := run()
	if tables := stop(); !strings.Contains(tables, table) {
		t.Errorf("Table %s removed by a restart:\n%s", table, tables)
	}
	// Stopping for good (the gateway is gone) removes it.
	stop = run()
	gwObj := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: gatewayName}}
	if err := c.Delete(context.Background(), gwObj); err != nil {
		t.Fatal(err)
	}
	if tables := stop(); strings.Contains(tables, table) {
		t.Errorf("Table %s still there after the gateway was deleted and its agent stopped:\n%s", table, tables)
	}
}

func get(url string) (int, string) { return getWith(http.DefaultClient, url) }

// getWith is the status and body of a GET of url through c.
func getWith(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostNetworkAddr is v1alpha1.AgentListenAddr of a host-network agent, with
// a port nothing listens on.
func hostNetworkAddr(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return v1alpha1.AgentListenAddr(true, n)
}

// notServedBeyondLoopback checks that nothing answers on the ports of addrs
// at any other address of this network namespace (the node's, for an agent
// on the host network).
func notServedBeyondLoopback(t *testing.T, addrs ...string) {
	t.Helper()
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, a := range ifAddrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLoopback() {
			continue
		}
		for _, addr := range addrs {
			_, port, _ := net.SplitHostPort(addr)
			tried++
			if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IP.String(), port), time.Second); err == nil {
				conn.Close()
				t.Errorf("The agent's endpoint %s also answers on %s", addr, ip.IP)
			}
		}
	}
	if tried == 0 {
		t.Fatal("This network namespace has no address but loopback to try")
	}
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

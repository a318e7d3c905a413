package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestAgentRunsAsNonRoot runs a gateway pod's two containers the way a
// container runtime runs the securityContexts of controllers.podSpec:
// charon as root held to NET_ADMIN and NET_BIND_SERVICE, the agent as uid
// 65532 with NET_ADMIN only in its bounding and permitted sets, both in the
// pod's group, sharing a setgid directory. The agent's binary carries
// cap_net_admin+ep, as in its image: it programs its nftables table, talks
// to charon's sockets through the group, and charon reads the agent's
// RADIUS servers file through the group, so a real client logs in with
// EAP-MSCHAPv2. The same binary without the file capability is refused by
// nftables.
func TestAgentRunsAsNonRoot(t *testing.T) {
	require.Root(t)
	require.Commands(t, "go", "nft", "setpriv", "setcap")
	ctx := context.Background()
	const gwAddr = "192.0.2.1"

	pod := newPodDirs(t)
	built := buildAgent(t)
	withCap, noCap := pod.file(t, built, "agent", 0o755), pod.file(t, built, "agent-nocap", 0o755)
	// What build/agent.Dockerfile does to the image's binary.
	if out, err := exec.Command("setcap", "cap_net_admin+ep", withCap).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v: %s", err, out)
	}

	gwNS, clNS := netns.New(t, "nrgw"), netns.New(t, "nrcl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Non-root Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	errorNotify := filepath.Join(pod.run, "charon.enfy")
	gw := charontest.Start(t, gwNS, charontest.Options{
		Name: "gw", Userspace: true, RunDir: pod.run, Exec: charonExec(),
		Settings: func(s *swan.Settings) { s.ErrorNotifySocket = "unix://" + errorNotify },
	})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })
	checkCharonConfined(t, gw)

	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(agent.Scheme()))
	startManager(t, cfg)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := createUser(ctx, c, "jimp", "jimp@example.com", "abc123"); err != nil {
		t.Fatal(err)
	}
	forwardAPI(t, gwNS, cfg.Host)
	kc := pod.file(t, kubeconfig, "kubeconfig", 0o640)
	table := firewall.TableName(namespace, gatewayName)
	run := func(bin string) (p *agentProcess, readyz, metrics string) {
		// On the loopback of gwNS, where the agent runs.
		health, metricsAddr := freeAddr(t), freeAddr(t)
		p = startAgentCommand(t, agentCommand(gwNS, bin,
			"--kubeconfig", kc,
			"--vici-socket", gw.VICISocket(),
			"--error-notify-socket", errorNotify,
			"--health-addr", health,
			"--metrics-addr", metricsAddr,
			"--certificate-secret", certSecret,
			"--state-file", filepath.Join(pod.run, "agent-state.json"),
			"--radius-dir", gw.RADIUSDir(),
		), "vpn-gateway-0")
		return p, "http://" + health + "/readyz", "http://" + metricsAddr + "/metrics"
	}

	// The negative control: without the file capability the agent's exec
	// ends with an empty permitted set, and nftables refuses it.
	p, readyz, _ := run(noCap)
	st := execStatus(t, p.cmd.Process.Pid, noCap)
	t.Logf("Agent without the file capability: %s", st)
	if st.uid != agentUser || st.capEff != 0 || st.capPrm != 0 {
		t.Errorf("Agent without the file capability: %s, want uid %d and no capability", st, agentUser)
	}
	refused := regexp.MustCompile(`applying the firewall: [^"]*operation not permitted`)
	waitFor(t, 30*time.Second, "nftables to refuse the agent without the file capability", func() (bool, string) {
		return refused.MatchString(p.out.String()), "its log does not say " + refused.String()
	})
	if code, _ := nsGet(gwNS, readyz); code == http.StatusOK {
		t.Error("The agent without the file capability is ready")
	}
	if tables := gwNS.Run(t, "nft", "list", "tables"); strings.Contains(tables, table) {
		t.Errorf("The agent without the file capability made table %s:\n%s", table, tables)
	}
	p.kill(t)
	// A pod that does not add NET_ADMIN cannot start the agent's image at
	// all: the kernel refuses to exec a binary whose file capability it
	// cannot grant in full.
	creds := agentCreds()
	if out, err := exec.Command(creds[0], append(creds[1:], withCap, "--help")...).CombinedOutput(); err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Errorf("Without NET_ADMIN in the bounding set, exec of the agent gave %v:\n%s", err, out)
	}

	// The agent as its image runs it.
	p, readyz, metrics := run(withCap)
	st = execStatus(t, p.cmd.Process.Pid, withCap)
	t.Logf("Agent with cap_net_admin+ep: %s", st)
	if st.uid != agentUser || st.gid != podGroup || st.capEff != capNetAdmin || st.capPrm != capNetAdmin || st.capBnd != capNetAdmin || !st.noNewPrivs {
		t.Errorf("Agent with the file capability: %s, want uid %d gid %d, NET_ADMIN (%#x) alone effective, permitted and bounding, no_new_privs",
			st, agentUser, podGroup, capNetAdmin)
	}
	waitFor(t, 30*time.Second, "the non-root agent to be ready", func() (bool, string) {
		code, body := nsGet(gwNS, readyz)
		return code == http.StatusOK, body
	})
	if conns, err := connNames(ctx, gwVICI); err != nil || !slices.Contains(conns, swan.MobileConnectionName(poolName)) {
		t.Errorf("charon holds connections %v (%v), want the pool's %s", conns, err, swan.MobileConnectionName(poolName))
	}
	if tables := gwNS.Run(t, "nft", "list", "tables"); !strings.Contains(tables, table) {
		t.Errorf("No table %s in the gateway's namespace:\n%s", table, tables)
	}
	// The agent's binary runs in secure mode (AT_SECURE, not dumpable) for
	// its file capability; its process metrics read /proc/self all the same.
	_, body := nsGet(gwNS, metrics)
	for _, want := range []string{"ikegate_agent_last_apply_error 0", "process_open_fds "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	waitFor(t, 10*time.Second, "charon to re-read the agent's RADIUS servers", func() (bool, string) {
		return p.count("charon re-read its RADIUS servers") > 0, "the agent has not said so"
	})
	checkSharedFiles(t, pod, gw)

	// charon can check the user only through the agent's RADIUS server,
	// whose port and secret it read from the group-readable file.
	conn, secret := clientConf("home", gwAddr, "jimp@example.com", "abc123")
	loadClient(t, cl, pki, []string{conn}, []string{secret})
	if _, err := initiate(ctx, clVICI, "home"); err != nil {
		t.Fatalf("The client could not log in through the non-root agent: %v", err)
	}
	if addrs := clNS.Run(t, "ip", "-4", "-o", "addr", "show"); !regexp.MustCompile(`ipsec0\s+inet 10\.3\.200\.\d+/`).MatchString(addrs) {
		t.Errorf("No virtual IP from %s on the client's ipsec0:\n%s", poolNet, addrs)
	}
	if keys, err := sharedKeys(ctx, gwVICI); err != nil || len(keys) != 0 {
		t.Errorf("charon holds shared secrets %v (%v), want none: the agent checks the users", keys, err)
	}
	if strings.Contains(p.out.String(), "abc123") {
		t.Error("The agent logged a password")
	}
}

// checkCharonConfined checks that charon runs as the charon container
// does: root, the pod's group, and neither CAP_CHOWN (it would give its
// sockets to root's group) nor a capability that bypasses file modes.
func checkCharonConfined(t *testing.T, gw *charontest.Charon) {
	t.Helper()
	st := execStatus(t, gw.PID(), charontest.Binary)
	t.Logf("charon: %s", st)
	if st.uid != 0 || st.gid != podGroup || st.capBnd != capNetAdmin|capNetBindService ||
		st.capEff&(capChown|capDACOverride|capDACReadSearch) != 0 || !st.noNewPrivs {
		t.Errorf("charon runs with %s, want uid 0 gid %d, bounding set NET_ADMIN and NET_BIND_SERVICE, no_new_privs", st, podGroup)
	}
}

// checkSharedFiles checks the modes and owners of what the two containers
// share: what charon reads of the agent's is the group's to read, the
// agent's saved state (NT hashes) its own alone, charon's sockets the
// group's.
func checkSharedFiles(t *testing.T, pod podDirs, gw *charontest.Charon) {
	t.Helper()
	for _, f := range []struct {
		path     string
		mode     uint32
		uid, gid int
	}{
		{gw.VICISocket(), 0o770, 0, podGroup},
		{gw.RADIUSDir(), 0o2750, agentUser, podGroup},
		{filepath.Join(gw.RADIUSDir(), "servers.conf"), 0o640, agentUser, podGroup},
		{filepath.Join(pod.run, "agent-state.json"), 0o600, agentUser, podGroup},
	} {
		mode, uid, gid, err := fileOwner(f.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if mode != f.mode || uid != f.uid || gid != f.gid {
			t.Errorf("%s: mode %#o uid %d gid %d, want %#o %d %d", f.path, mode, uid, gid, f.mode, f.uid, f.gid)
		}
	}
}

func (s procStatus) String() string {
	return fmt.Sprintf("uid %d gid %d groups [%s] CapEff %#x CapPrm %#x CapBnd %#x NoNewPrivs %v",
		s.uid, s.gid, s.groups, s.capEff, s.capPrm, s.capBnd, s.noNewPrivs)
}

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// The recovery rig's addresses: the gateway and one client charon that
// holds every connected user's connection.
const (
	recGWAddr     = "192.0.2.1"
	recClientAddr = "192.0.2.2"
	// recTunnel is the rig's Tunnel; its peer never answers, so it stays
	// loaded and connecting, which is all the inventory needs.
	recTunnel = "hq"
)

// recoveryRig is a gateway charon with users, a pool and a tunnel loaded
// by an agent, a client charon, and the API server behind a proxy that a
// test can cut to make it unreachable.
type recoveryRig struct {
	gwNS, clNS     *netns.NS
	gw, cl         *charontest.Charon
	gwVICI, clVICI *vici.Client
	pki            *charontest.PKI
	c              client.Client
	// cfg reaches the API server through proxy.
	cfg       *rest.Config
	proxyless *rest.Config
	proxy     *tcpProxy
	// kubeconfig reaches the API server directly, for agent processes.
	kubeconfig string
	// stateFile is where the rig's agents keep their configuration.
	stateFile string
}

func newRecoveryRig(t testing.TB, users int) *recoveryRig {
	t.Helper()
	require.Root(t)
	r := &recoveryRig{gwNS: netns.New(t, "rcgw"), clNS: netns.New(t, "rccl")}
	netns.Veth(t, r.gwNS, r.clNS, recGWAddr+"/24", recClientAddr+"/24")
	r.gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	r.pki = charontest.NewPKI(t, "Recovery Test CA")
	server := r.pki.Server(t, hostname, hostname, recGWAddr)
	quiet := map[string]int{"default": 1}
	r.gw = charontest.Start(t, r.gwNS, charontest.Options{Name: "gw", Userspace: true, LogLevels: quiet})
	r.cl = charontest.Start(t, r.clNS, charontest.Options{Name: "client", Userspace: true, Client: true, LogLevels: quiet})
	r.gwVICI, r.clVICI = vici.NewClient(r.gw.VICISocket()), vici.NewClient(r.cl.VICISocket())
	t.Cleanup(func() { r.gwVICI.Close(); r.clVICI.Close() })

	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(agent.Scheme()))
	startManager(t, cfg)
	r.c, r.kubeconfig = c, kubeconfig
	api, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	r.proxy = newTCPProxy(t, api.Host)
	r.proxyless = cfg
	r.cfg = rest.CopyConfig(cfg)
	r.cfg.Host = "https://" + r.proxy.addr
	r.stateFile = filepath.Join(t.TempDir(), "agent-state.json")

	createGateway(t, c, r.pki, server, []string{recGWAddr})
	psk := gen.Secret(namespace, recTunnel+"-psk", map[string]string{gen.PSKKey: "a tunnel key long enough for PSK rules"})
	for _, o := range []client.Object{psk, gen.Tunnel(namespace, recTunnel)} {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
	createUsers(t, c, "u", 0, users)
	return r
}

// startAgent runs an agent of the rig's gateway in the test's process;
// onUsers, when set, is its Options.OnUsers.
func (r *recoveryRig) startAgent(t testing.TB, pod string, onUsers func(radiusd.Users)) *runningAgent {
	t.Helper()
	return startAgent(t, r.cfg, agentConfig{pod: pod, gw: r.gw, stateFile: r.stateFile,
		offlineAfter: time.Second, onUsers: onUsers, log: logr.Discard()})
}

// killCharon SIGKILLs the gateway's charon (nothing is unloaded, no DELETE
// is sent) and starts it again; it returns when the new charon's socket
// accepts connections.
func (r *recoveryRig) killCharon(t testing.TB) time.Time {
	t.Helper()
	if err := syscall.Kill(r.gw.PID(), syscall.SIGKILL); err != nil {
		t.Fatalf("Killing charon: %v", err)
	}
	r.gw.Restart(t)
	return time.Now()
}

// inventoryGap describes how charon's inventory differs from what model m
// says, "" when it holds exactly that.
func (r *recoveryRig) inventoryGap(ctx context.Context, m swan.Model) string {
	inv, err := vici.ReadInventory(ctx, r.gwVICI)
	if err != nil {
		return err.Error()
	}
	want, err := modelInventory(m)
	if err != nil {
		return err.Error()
	}
	var gaps []string
	cmp := func(what string, want, got []string) {
		want, got = slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))
		if slices.Equal(want, got) {
			return
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(got, s) })
		extra := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return slices.Contains(want, s) })
		gaps = append(gaps, fmt.Sprintf("%s: %d of %d missing (%s), %d extra (%s)", what, len(missing), len(want), head(missing), len(extra), head(extra)))
	}
	var pools, certs []string
	for _, p := range inv.Pools {
		pools = append(pools, p.Name)
	}
	for _, c := range inv.Certs {
		certs = append(certs, c.Fingerprint)
	}
	cmp("connections", want.Conns, inv.Conns)
	cmp("pools", poolNames(want.Pools), pools)
	cmp("secrets", want.Shared, inv.Shared)
	cmp("keys", want.Keys, inv.Keys)
	cmp("certificates", certFingerprints(want.Certs), certs)
	cmp("authorities", want.Authorities, inv.Authorities)
	return strings.Join(gaps, "; ")
}

// waitInventory polls until charon holds exactly m and returns when that
// was first seen.
func (r *recoveryRig) waitInventory(t testing.TB, m swan.Model, timeout time.Duration, what string) time.Time {
	t.Helper()
	waitFor(t, timeout, what, func() (bool, string) {
		gap := r.inventoryGap(context.Background(), m)
		return gap == "", gap
	})
	return time.Now()
}

// modelInventory is the inventory charon reports when it holds m: names,
// the ids of the keys and the fingerprints of the certificates.
func modelInventory(m swan.Model) (vici.Inventory, error) {
	var inv vici.Inventory
	for _, c := range m.Connections {
		inv.Conns = append(inv.Conns, c.Name)
	}
	for _, p := range m.Pools {
		inv.Pools = append(inv.Pools, vici.PoolState{Name: p.Name})
	}
	for _, s := range m.Secrets {
		inv.Shared = append(inv.Shared, s.Name)
	}
	for _, k := range m.Keys {
		id, err := vici.KeyID(k.PEM)
		if err != nil {
			return inv, fmt.Errorf("key %s: %w", k.Name, err)
		}
		inv.Keys = append(inv.Keys, id)
	}
	for _, c := range m.Certs {
		b, _ := pem.Decode(c.PEM)
		if b == nil {
			return inv, fmt.Errorf("certificate %s is no PEM", c.Name)
		}
		sum := sha256.Sum256(b.Bytes)
		inv.Certs = append(inv.Certs, vici.CertState{Fingerprint: hex.EncodeToString(sum[:])})
	}
	for _, a := range m.Authorities {
		inv.Authorities = append(inv.Authorities, a.Name)
	}
	return inv, nil
}

func poolNames(pools []vici.PoolState) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		out[i] = p.Name
	}
	return out
}

func certFingerprints(certs []vici.CertState) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = c.Fingerprint
	}
	return out
}

func head(s []string) string {
	if len(s) > 3 {
		return strings.Join(s[:3], ", ") + ", ..."
	}
	return strings.Join(s, ", ")
}

// connectClients loads one client connection per user u-<i> for i in ids
// into the client charon and brings each up; it returns each connection's
// IKE_SA unique id on the gateway, by identity.
func (r *recoveryRig) connectClients(t testing.TB, ids []int) map[string]uint32 {
	t.Helper()
	ctx := context.Background()
	var conns, secrets []string
	for _, i := range ids {
		name := fmt.Sprintf("u-%d", i)
		conn, secret := clientConf(name, recGWAddr, name+"@example.com", "pw-"+name)
		conns, secrets = append(conns, conn), append(secrets, secret)
	}
	loadClient(t, r.cl, r.pki, conns, secrets)
	for _, i := range ids {
		if _, err := initiate(ctx, r.clVICI, fmt.Sprintf("u-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return r.sessions(t)
}

// sessions maps the identity of every established client IKE_SA on the
// gateway to its unique id.
func (r *recoveryRig) sessions(t testing.TB) map[string]uint32 {
	t.Helper()
	sas, err := established(context.Background(), r.gwVICI, swan.MobileConnectionName(poolName))
	if err != nil {
		t.Fatalf("Listing the gateway's SAs: %v", err)
	}
	out := map[string]uint32{}
	for _, sa := range sas {
		out[sa.Identity()] = sa.UniqueID
	}
	return out
}

// sessionsChanged lists the sessions of before that are gone or replaced
// (another unique id) in after.
func sessionsChanged(before, after map[string]uint32) []string {
	var out []string
	for id, uid := range before {
		if got, ok := after[id]; !ok || got != uid {
			out = append(out, fmt.Sprintf("%s #%d -> #%d", id, uid, got))
		}
	}
	slices.Sort(out)
	return out
}

// tcpProxy forwards connections to the API server until cut, so that a
// test can make the API server unreachable for an agent and bring it back
// at the same address.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	l            net.Listener
	conns        map[net.Conn]bool
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns[in], p.conns[out] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection: the API server
// is unreachable (connection refused) until resume.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// resume listens at the same address again.
func (p *tcpProxy) resume(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("Listening at %s again: %v", p.addr, err)
	}
	p.serve(l)
}

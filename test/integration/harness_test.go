// Package integration runs the gateway agent against real processes: the
// kube-apiserver and etcd of envtest, charon daemons in network namespaces
// (a gateway with the userspace ESP data plane and EAP-MSCHAPv2 clients), and
// the nftables of the gateway's namespace. Everything needs root.
package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	govici "github.com/strongswan/govici/vici"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/controllers"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/vici"
)

// The scenario is the seed's: gateway vpn.example.com, pool 10.3.200.0/24,
// LAN 10.3.0.0/24 whose first address sits on the gateway's loopback.
const (
	namespace   = "vpn"
	gatewayName = "vpn"
	poolName    = "staff"
	certSecret  = "vpn-tls"
	hostname    = "vpn.example.com"
	lanAddr     = "10.3.0.1"
	lanNet      = "10.3.0.0/24"
	poolNet     = "10.3.200.0/24"
)

func init() {
	// The agent's informers log through controller-runtime's global logger.
	ctrllog.SetLogger(logr.Discard())
}

// startAPI starts envtest with the project's CRDs, and the manager: it
// derives the credentials Secrets, the only Secrets besides its certificate
// that the agent reads.
func startAPI(t testing.TB) (*rest.Config, client.Client) {
	t.Helper()
	cfg, c, _ := testenv.Start(t, testenv.WithScheme(agent.Scheme()))
	startManager(t, cfg)
	return cfg, c
}

// startManager runs the controller manager in the test's process, as
// cmd/manager does. Nothing runs cert-manager or pods here: the manager's
// gateway workload stays unavailable, and the agents are the tests'.
func startManager(t testing.TB, cfg *rest.Config) {
	t.Helper()
	skipNameValidation := true
	s := testenv.DefaultScheme()
	for _, add := range []func(*kruntime.Scheme) error{v1alpha1.AddToScheme, cmv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 s,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logr.Discard(),
		// Each test runs a manager of its own in the one process.
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		cancel()
		t.Fatalf("Creating the manager: %v", err)
	}
	// The scenarios' gateways run on the host network of the test's nodes.
	if err := controllers.Setup(ctx, mgr, controllers.Options{Policy: controllers.Policy{HostNetwork: true, NamespaceIssuers: true}}); err != nil {
		cancel()
		t.Fatalf("Setting the manager up: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Manager: %v", err)
		}
	})
}

// createGateway writes the namespace, the gateway's certificate Secret (what
// cert-manager would write), the VPNGateway (changed by mods) and its MobilePool.
func createGateway(t testing.TB, c client.Client, pki *charontest.PKI, server charontest.Leaf, addrs []string, mods ...func(*v1alpha1.VPNGateway)) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		gen.TLSSecret(namespace, certSecret, server.CertPEM, server.KeyPEM, pki.CertPEM),
		gen.Gateway(namespace, gatewayName, append([]func(*v1alpha1.VPNGateway){gen.WithAddresses(ipAddresses(addrs)...), gen.Userspace}, mods...)...),
		gen.Pool(namespace, poolName, poolNet, gen.SplitTunnel(lanNet), gen.Allowing(lanNet)),
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func ipAddresses(in []string) []v1alpha1.IPAddress {
	out := make([]v1alpha1.IPAddress, len(in))
	for i, a := range in {
		out[i] = v1alpha1.IPAddress(a)
	}
	return out
}

// userObjects are a VPNUser and the Secret holding its password.
func userObjects(name, identity, password string) (*corev1.Secret, *v1alpha1.VPNUser) {
	s := gen.Secret(namespace, name+"-password", map[string]string{gen.PasswordKey: password})
	return s, gen.User(namespace, name, v1alpha1.Identity(identity), gen.WithPassword(s.Name, gen.PasswordKey))
}

// createUser writes a user's Secret, then the VPNUser.
func createUser(ctx context.Context, c client.Client, name, identity, password string) error {
	s, u := userObjects(name, identity, password)
	if err := c.Create(ctx, s); err != nil {
		return fmt.Errorf("creating Secret %s: %w", s.Name, err)
	}
	if err := c.Create(ctx, u); err != nil {
		return fmt.Errorf("creating VPNUser %s: %w", u.Name, err)
	}
	return nil
}

// createUsers creates users first..first+n-1 named prefix-<i> with a few
// writers in parallel.
func createUsers(t testing.TB, c client.Client, prefix string, first, n int) {
	t.Helper()
	ctx := context.Background()
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("%s-%d", prefix, i)
				if err := createUser(ctx, c, name, name+"@example.com", "pw-"+name); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := first; i < first+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Creating users: %v", err)
	}
}

// runningAgent is an agent running in a goroutine of the test, as it would
// in its container: its own informers, its own VICI connection.
type runningAgent struct {
	*agent.Agent
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

type agentConfig struct {
	pod string
	// nodeAddress is what the agent reports as its node's address.
	nodeAddress string
	// gw is the gateway charon: the agent talks to its VICI socket, writes
	// its RADIUS servers and serves its users' logins on its namespace's
	// loopback, as in a gateway pod.
	gw          *charontest.Charon
	tunnelLease agent.LeaseTiming
	// session, when set, replaces the VICI session to gw's socket.
	session  vici.Session
	firewall agent.Firewall
	onApply  func(vici.Result, error)
	// onUsers is Options.OnUsers.
	onUsers func(radiusd.Users)
	log     logr.Logger
	// errorNotify is charon's error-notify socket; "" reads the log alone.
	errorNotify string
	// stateFile keeps the last applied configuration (Options.StateFile);
	// offlineAfter is how long the agent waits for the API server before
	// serving it.
	stateFile    string
	offlineAfter time.Duration
}

func startAgent(t testing.TB, cfg *rest.Config, ac agentConfig) *runningAgent {
	t.Helper()
	reg := prometheus.NewRegistry()
	// Without a gateway charon (a fake session), the agent's RADIUS server
	// listens on a free loopback port of the test's own namespace.
	session, radiusDir, radiusAddr := ac.session, t.TempDir(), "127.0.0.1:0"
	var radiusConn net.PacketConn
	if ac.gw != nil {
		radiusDir, radiusAddr = ac.gw.RADIUSDir(), agent.DefaultRADIUSAddr
		radiusConn = ac.gw.ListenUDP(t, agent.DefaultRADIUSAddr)
		if session == nil {
			session = vici.NewClient(ac.gw.VICISocket())
		}
	}
	a, err := agent.NewForConfig(cfg, agent.Options{
		Namespace:         namespace,
		Gateway:           gatewayName,
		Pod:               ac.pod,
		NodeAddress:       ac.nodeAddress,
		TunnelLease:       ac.tunnelLease,
		CertificateSecret: certSecret,
		VICI:              session,
		RADIUSDir:         radiusDir,
		RADIUSAddr:        radiusAddr,
		RADIUSConn:        radiusConn,
		Firewall:          ac.firewall,
		Registerer:        reg,
		SAInterval:        500 * time.Millisecond,
		CounterInterval:   time.Second,
		OnApply:           ac.onApply,
		OnUsers:           ac.onUsers,
		ErrorNotifySocket: ac.errorNotify,
		StateFile:         ac.stateFile,
		OfflineAfter:      ac.offlineAfter,
	})
	if err != nil {
		t.Fatalf("Creating agent: %v", err)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), ac.log))
	r := &runningAgent{Agent: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the agent and waits for it; stopping twice is fine.
func (r *runningAgent) stop(t testing.TB) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Agent ended with: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Agent did not stop within 15s")
		}
	})
}

func (r *runningAgent) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "agent ready", func() (bool, string) { return r.Ready(), "not ready" })
}

// waitServes waits until the agent's RADIUS server holds n users.
func (r *runningAgent) waitServes(t testing.TB, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("the agent to serve %d users", n), func() (bool, string) {
		v := r.metric(t, "ikegate_agent_radius_users", nil)
		return v == float64(n), fmt.Sprintf("ikegate_agent_radius_users = %v", v)
	})
}

// metric returns the value of a counter or gauge (summed over series whose
// labels include want), or the sample count of a histogram.
func (r *runningAgent) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := r.reg.Gather()
	if err != nil {
		t.Fatalf("Gathering metrics: %v", err)
	}
	var v float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, val := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == val {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return v
}

// waitFor polls cond every 10ms until it holds or timeout passes: the
// figures are measured through it, so its interval is their resolution.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	poll.Eventually(t, what, timeout, func() error {
		if ok, detail := cond(); !ok {
			return errors.New(detail)
		}
		return nil
	}, poll.Every(10*time.Millisecond))
}

// sharedKeys lists the ids of the shared secrets charon holds.
func sharedKeys(ctx context.Context, s vici.Session) ([]string, error) {
	resp, err := s.Call(ctx, "get-shared", govici.NewMessage())
	if err != nil {
		return nil, err
	}
	keys, _ := resp.Get("keys").([]string)
	return keys, nil
}

func holdsSecret(ctx context.Context, s vici.Session, id string) bool {
	keys, err := sharedKeys(ctx, s)
	return err == nil && slices.Contains(keys, id)
}

// connNames lists the connections charon holds.
func connNames(ctx context.Context, s vici.Session) ([]string, error) {
	resp, err := s.Call(ctx, "get-conns", govici.NewMessage())
	if err != nil {
		return nil, err
	}
	names, _ := resp.Get("conns").([]string)
	return names, nil
}

// established returns the client's established IKE_SAs of connection conn.
func established(ctx context.Context, s vici.Session, conn string) ([]vici.IKESA, error) {
	sas, err := vici.ListSAs(ctx, s)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(sas, func(sa vici.IKESA) bool { return sa.Name != conn || sa.State != "ESTABLISHED" }), nil
}

// clientConf is a road-warrior client connection named conn to the gateway
// at addr, authenticating as identity with EAP-MSCHAPv2.
func clientConf(conn, addr, identity, password string) (connSection, secretSection string) {
	return charontest.EAPClient{Conn: conn, Gateway: addr, RemoteID: hostname, Identity: identity, Password: password, RemoteTS: lanNet}.Sections()
}

func loadClient(t testing.TB, cl *charontest.Charon, pki *charontest.PKI, conns, secrets []string) {
	t.Helper()
	conf := "connections {\n" + strings.Join(conns, "") + "}\nsecrets {\n" + strings.Join(secrets, "") + "}\n"
	if out, err := cl.LoadAll(conf, map[string][]byte{"x509ca/ca.pem": pki.CertPEM}); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
}

// initiate brings up the client's connection (IKE_SA, EAP, CHILD_SA) over
// VICI and returns how long charon took.
func initiate(ctx context.Context, s vici.Session, conn string) (time.Duration, error) {
	req := govici.NewMessage()
	_ = req.Set("child", conn)
	_ = req.Set("ike", conn)
	_ = req.Set("timeout", "20000")
	start := time.Now()
	resp, err := s.Call(ctx, "initiate", req)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("initiating %s: %w", conn, err)
	}
	if resp.Get("success") != "yes" {
		return d, fmt.Errorf("initiating %s: %v", conn, resp.Get("errmsg"))
	}
	return d, nil
}

// terminate ends the client's IKE_SAs of conn without waiting for the peer.
func terminate(ctx context.Context, s vici.Session, conn string) error {
	req := govici.NewMessage()
	_ = req.Set("ike", conn)
	_ = req.Set("force", "yes")
	_ = req.Set("timeout", "-1")
	resp, err := s.Call(ctx, "terminate", req)
	if err != nil && (resp == nil || resp.Get("matches") != "0") {
		return err
	}
	return nil
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

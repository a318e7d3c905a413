// Package e2e plays the whole product on one machine: a real control plane
// (kube-apiserver and etcd), cert-manager's real controllers, the ikegate
// manager, and a gateway "pod" made of a real charon and the ikegate agent in a
// network namespace that stands for the gateway node. A strongSwan client in
// another namespace connects as jimp@example.com and pings the LAN through the
// tunnel. The same test is `make demo` (IKEGATE_DEMO=1), which narrates each
// step and leaves everything running until Ctrl-C unless DEMO_ONESHOT=1.
package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/controllers"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/demorun"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/kube"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// The seed scenario's names and addresses (examples/pfsense-mobile).
const (
	namespace   = "vpn"
	gatewayName = "vpn"
	userName    = "jimp"
	identity    = "jimp@example.com"
	password    = "abc123"
	hostname    = "vpn.example.com"
	wanAddress  = "198.51.100.10"
	clientAddr  = "198.51.100.2"
	lanAddress  = "10.3.0.1"
	poolCIDR    = "10.3.200.0/24"
)

var demo = os.Getenv("IKEGATE_DEMO") == "1"

// say narrates a step: in the demo on stdout, in tests through the log.
func say(t *testing.T, format string, args ...any) {
	t.Helper()
	if demo {
		fmt.Printf("==> "+format+"\n", args...)
		return
	}
	t.Logf(format, args...)
}

func TestEndToEnd(t *testing.T) {
	require.Root(t)
	start := time.Now()
	sigs := catchSignals(t)
	run := beginRun(t)
	interrupted := stopOnSignal(t, run, sigs)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The components' own logs would bury the story; failures carry their causes.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	klog.SetLogger(logr.Discard())

	say(t, "Starting a local control plane (kube-apiserver + etcd) with the ikegate and cert-manager CRDs")
	s := scheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	say(t, "The API server is up; its kubeconfig is %s", kubeconfig)
	say(t, "Starting cert-manager's controllers")
	certmanagertest.Start(t, kubeconfig)
	say(t, "Starting the ikegate manager")
	logDir := t.TempDir()
	managerLog, managerLogPath := fileLogger(t, logDir, "manager.log")
	managerMetricsAddr := freeLocalAddr(t)
	startManager(t, ctx, cfg, s, managerMetricsAddr, managerLog)
	managerMetrics := "http://" + managerMetricsAddr + "/metrics"
	say(t, "The manager serves its metrics on %s and logs to %s", managerMetrics, managerLogPath)

	// The node the gateway runs on, so the node selector of the example matches.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gateway-node", Labels: map[string]string{"ikegate.io/gateway": "true"}}}
	must(t, c.Create(ctx, node))

	say(t, "Applying examples/pfsense-mobile (dataplane set to Userspace: this kernel has no ESP)")
	applyExample(t, ctx, c)

	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: gatewayName}}
	kube.Eventually(t, "the gateway's certificate is issued", 90*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		return condition(gw.Status.Conditions, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue)
	})
	serverSecret := &corev1.Secret{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gw.Status.CertificateSecretName}, serverSecret))
	cert := parseCert(t, serverSecret.Data["tls.crt"])
	say(t, "cert-manager issued the server certificate: CN=%s DNS=%v IP=%v", cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses)
	if cert.Subject.CommonName != hostname || len(cert.DNSNames) != 1 || cert.DNSNames[0] != hostname ||
		len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != wanAddress {
		t.Fatalf("server certificate: CN=%q DNS=%v IP=%v, want CN and DNS %s, IP %s", cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses, hostname, wanAddress)
	}
	caBundle := &corev1.ConfigMap{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gw.Status.CAConfigMapName}, caBundle))
	caPEM := []byte(caBundle.Data["ca.crt"])
	if len(caPEM) == 0 {
		t.Fatalf("ConfigMap %s has no ca.crt", caBundle.Name)
	}

	sts := &appsv1.StatefulSet{}
	kube.Eventually(t, "the gateway StatefulSet exists", 30*time.Second, func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName + "-gateway"}, sts)
	})
	pod := sts.Name + "-0"

	// The gateway node and the client, joined by a link; the LAN address sits
	// on the gateway's loopback.
	gwNS := demorun.Netns(run, func() *netns.NS { return netns.New(t, "e2egw") })
	clNS := demorun.Netns(run, func() *netns.NS { return netns.New(t, "e2ecl") })
	netns.Veth(t, gwNS, clNS, wanAddress+"/24", clientAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddress+"/24")
	say(t, "The manager made StatefulSet %s; a network namespace %s plays its pod %s: charon and the agent (as ServiceAccount %s-agent). "+
		"kubectl get pods shows none, because no kubelet runs here", sts.Name, gwNS.Name(), pod, gatewayName)

	var errorNotify string
	gwCharon := charontest.Start(t, gwNS, charontest.Options{Name: "gateway", Userspace: true, Settings: withErrorNotify(&errorNotify)})
	say(t, "The gateway's charon logs to %s", gwCharon.LogPath())
	fwFD := gwNS.Fd()
	fw, err := firewall.NewApplier(firewall.TableName(namespace, gatewayName), nftables.WithNetNSFd(fwFD))
	must(t, err)
	// The agent acts as the ServiceAccount the manager made for it, so the
	// Role it got is what it really has.
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + gatewayName + "-agent",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	// The API server really authorizes it: nothing outside its namespace.
	asAgent, err := client.New(agentCfg, client.Options{Scheme: s})
	must(t, err)
	if err := asAgent.List(ctx, &corev1.SecretList{}, client.InNamespace("default")); !apierrors.IsForbidden(err) {
		t.Fatalf("the agent's ServiceAccount listing Secrets of another namespace: %v, want Forbidden", err)
	}
	agentReg := prometheus.NewRegistry()
	agentLog, agentLogPath := fileLogger(t, logDir, "agent.log")
	a, err := agent.NewForConfig(agentCfg, agent.Options{
		Namespace: namespace,
		Gateway:   gatewayName,
		Pod:       pod,
		VICI:      vici.NewClient(gwCharon.VICISocket()),
		Firewall:  fw,
		// As in the pod: the agent's RADIUS server on charon's loopback
		// checks the users' passwords, its servers file in charon's
		// RADIUS directory.
		RADIUSDir:  gwCharon.RADIUSDir(),
		RADIUSConn: gwCharon.ListenUDP(t, agent.DefaultRADIUSAddr),
		// Traffic-only changes reach status every 30 s by default; the story
		// wants to see the ping's packets sooner.
		CounterInterval:   time.Second,
		ErrorNotifySocket: errorNotify,
		Registerer:        agentReg,
	})
	must(t, err)
	agentMetrics := serveMetrics(t, agentReg)
	say(t, "The agent serves its metrics on %s and logs to %s", agentMetrics, agentLogPath)
	agentCtx, stopAgent := context.WithCancel(logr.NewContext(ctx, agentLog))
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(agentCtx) }()
	t.Cleanup(func() {
		stopAgent()
		<-agentDone
	})
	kube.Eventually(t, "the agent applied the configuration to charon", 30*time.Second, func() error {
		if !a.Ready() {
			return errors.New("agent not ready")
		}
		return nil
	})
	conns, err := gwCharon.Swanctl("--list-conns")
	must(t, err)
	say(t, "The agent loaded the gateway's configuration over VICI:\n%s", indent(conns))

	// Play the StatefulSet controller and kubelet: the pod is ready once its
	// agent is (the pod's readiness probe is the agent's /readyz).
	markReady(t, ctx, c, sts)

	kube.Eventually(t, "the gateway turns Ready", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		return condition(gw.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue)
	})
	say(t, "VPNGateway %s is Ready", gw.Name)

	say(t, "Connecting a strongSwan client as %s from another namespace", identity)
	cl := charontest.Start(t, clNS, charontest.Options{Name: "client", Userspace: true, Client: true})
	out, err := cl.LoadAll(clientConf(), map[string][]byte{"x509ca/ca.pem": caPEM})
	if err != nil {
		t.Fatalf("loading the client configuration: %v\n%s", err, out)
	}
	connectStart := time.Now()
	out, err = cl.Swanctl("--initiate", "--child", "home", "--timeout", "20")
	if err != nil {
		t.Fatalf("client could not connect: %v\n%s\nclient log:\n%s", err, out, cl.Log())
	}
	connectTime := time.Since(connectStart)
	log := cl.Log()
	for _, want := range []string{
		`received end entity cert "CN=` + hostname + `"`,
		`authentication of '` + hostname + `' with`,
		`IKE_SA home[1] established`,
	} {
		if !strings.Contains(log, want) {
			t.Fatalf("client log lacks %q:\n%s", want, log)
		}
	}
	say(t, "The client verified the gateway's certificate (CN=%s, SAN %s) and established the tunnel in %s", hostname, hostname, connectTime.Round(time.Millisecond))

	vip := virtualIP(t, clNS)
	if !netip.MustParsePrefix(poolCIDR).Contains(vip) {
		t.Fatalf("client's virtual IP %s is not from %s", vip, poolCIDR)
	}
	say(t, "The client got %s from the pool %s", vip, poolCIDR)
	requireMetric(t, "the agent's metrics", agentMetrics, "ikegate_agent_sessions 1")
	requireMetric(t, "the manager's metrics", managerMetrics, `controller_runtime_reconcile_total{controller="vpngateway"`)
	requireLogged(t, "the manager", managerLogPath)
	requireLogged(t, "the agent", agentLogPath)

	ping, err := clNS.Exec("ping", "-c", "3", "-W", "2", lanAddress)
	if err != nil {
		t.Fatalf("ping %s through the tunnel: %v\n%s", lanAddress, err, ping)
	}
	say(t, "ping %s through the tunnel:\n%s", lanAddress, indent(lastLines(ping, 2)))

	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: userName}}
	kube.Eventually(t, "the VPNUser shows the session with traffic", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(user), user); err != nil {
			return err
		}
		if user.Status.SessionCount != 1 || len(user.Status.Sessions) != 1 {
			return fmt.Errorf("sessions %d", user.Status.SessionCount)
		}
		s := user.Status.Sessions[0]
		if s.PacketsIn < 3 || s.BytesIn == 0 {
			return fmt.Errorf("session counters in: %d packets, %d bytes", s.PacketsIn, s.BytesIn)
		}
		if len(s.VirtualAddresses) != 1 || s.VirtualAddresses[0] != vip.String() {
			return fmt.Errorf("session virtual IPs %v, want %s", s.VirtualAddresses, vip)
		}
		return nil
	})
	sess := user.Status.Sessions[0]
	say(t, "VPNUser %s reports the session: from %s:%d, virtual IP %v, %d packets / %d bytes in, IKE %s",
		user.Name, sess.RemoteAddress, sess.RemotePort, sess.VirtualAddresses, sess.PacketsIn, sess.BytesIn, sess.IKEProposal)

	kube.Eventually(t, "the gateway counts the session", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		if gw.Status.Sessions != 1 {
			return fmt.Errorf("gateway sessions %d", gw.Status.Sessions)
		}
		return nil
	})
	pool := &v1alpha1.MobilePool{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "staff"}}
	kube.Eventually(t, "the pool and the user turn Ready", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pool), pool); err != nil {
			return err
		}
		if err := condition(pool.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue); err != nil {
			return fmt.Errorf("MobilePool %s: %w", pool.Name, err)
		}
		if pool.Status.Leased != 1 {
			return fmt.Errorf("MobilePool %s: %d addresses leased", pool.Name, pool.Status.Leased)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(user), user); err != nil {
			return err
		}
		if err := condition(user.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue); err != nil {
			return fmt.Errorf("VPNUser %s: %w", user.Name, err)
		}
		return nil
	})
	requireCalmStart(t, ctx, c)
	table := kubectlGet(t, kubeconfig)
	say(t, "kubectl -n %s get vpngateways,mobilepools,vpnusers\n%s", namespace, indent(table))
	if !regexp.MustCompile(`(?m)^vpnuser\.ikegate\.io/jimp\s+jimp@example\.com\s+1\s+True`).MatchString(table) {
		t.Fatalf("kubectl get does not show jimp with one session and Ready:\n%s", table)
	}
	if !regexp.MustCompile(`(?m)^mobilepool\.ikegate\.io/staff\s+vpn\s+10\.3\.200\.0/24\s+1\s+True`).MatchString(table) {
		t.Fatalf("kubectl get does not show the pool Ready with one lease:\n%s", table)
	}
	if !regexp.MustCompile(`(?m)^vpngateway\.ikegate\.io/vpn\s+True\s+vpn\.example\.com\s+1`).MatchString(table) {
		t.Fatalf("kubectl get does not show the gateway Ready with one session:\n%s", table)
	}
	showDiagnosis(t, ctx, c, cl, caPEM, kubeconfig)
	showProfiles(t, ctx, c, user, password)
	say(t, "Everything works (%s from start)", time.Since(start).Round(100*time.Millisecond))

	if demo && os.Getenv("DEMO_ONESHOT") != "1" {
		waitForInterrupt(kubeconfig, interrupted)
	}
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := testenv.DefaultScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, cmv1.AddToScheme} {
		must(t, add(s))
	}
	return s
}

// startManager runs the manager until the test ends, its metrics on
// metricsAddr ("0": none) over plain HTTP, its logs to log.
func startManager(t *testing.T, ctx context.Context, cfg *rest.Config, s *runtime.Scheme, metricsAddr string, log logr.Logger) {
	t.Helper()
	mctx, cancel := context.WithCancel(ctx)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 s,
		Cache:                  controllers.CacheOptions(),
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr, SecureServing: false},
		HealthProbeBindAddress: "0",
		// TestEndToEnd and TestNoSecretInAnyOutput each run a manager in
		// the one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	must(t, err)
	// The examples' gateways run on the host network.
	must(t, controllers.Setup(mctx, mgr, controllers.Options{Policy: controllers.Policy{HostNetwork: true, NamespaceIssuers: true}}))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// applyExample creates the objects of examples/pfsense-mobile, with the
// gateway's data plane set to Userspace and the gateway changed by mods.
func applyExample(t *testing.T, ctx context.Context, c client.Client, mods ...func(gw *unstructured.Unstructured)) {
	t.Helper()
	root, err := testenv.RepoRoot()
	must(t, err)
	files, err := filepath.Glob(filepath.Join(root, "examples", "pfsense-mobile", "*.yaml"))
	must(t, err)
	objs := kube.DecodeFiles(t, files...)
	for _, u := range objs {
		if u.GetKind() == "VPNGateway" {
			must(t, unstructured.SetNestedField(u.Object, string(v1alpha1.DataplaneUserspace), "spec", "dataplane"))
			for _, mod := range mods {
				mod(u)
			}
		}
	}
	// The namespace first: everything else lives in it.
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			must(t, c.Create(ctx, u))
		}
	}
	for _, u := range objs {
		if u.GetKind() != "Namespace" {
			if err := c.Create(ctx, u); err != nil {
				t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// markReady plays the StatefulSet controller and the kubelet for a cluster
// without them: every replica is running and ready.
func markReady(t *testing.T, ctx context.Context, c client.Client, sts *appsv1.StatefulSet) {
	t.Helper()
	must(t, c.Get(ctx, client.ObjectKeyFromObject(sts), sts))
	n := int32(1)
	if sts.Spec.Replicas != nil {
		n = *sts.Spec.Replicas
	}
	sts.Status.ObservedGeneration = sts.Generation
	sts.Status.Replicas = n
	sts.Status.ReadyReplicas = n
	sts.Status.AvailableReplicas = n
	sts.Status.CurrentReplicas = n
	sts.Status.UpdatedReplicas = n
	must(t, c.Status().Update(ctx, sts))
}

func clientConf() string {
	return charontest.ClientConf(charontest.EAPClient{
		Conn: "home", Gateway: wanAddress, RemoteID: hostname,
		Identity: identity, Password: password, RemoteTS: "10.3.0.0/24",
	})
}

// virtualIP is the client's address from the pool, as installed by charon.
func virtualIP(t *testing.T, ns *netns.NS) netip.Addr {
	t.Helper()
	out, err := ns.Exec("ip", "-4", "-o", "addr", "show")
	must(t, err)
	pool := netip.MustParsePrefix(poolCIDR)
	for _, f := range strings.Fields(out) {
		p, err := netip.ParsePrefix(f)
		if err == nil && pool.Contains(p.Addr()) {
			return p.Addr()
		}
	}
	t.Fatalf("no address from %s in the client namespace:\n%s", poolCIDR, out)
	return netip.Addr{}
}

func kubectlGet(t *testing.T, kubeconfig string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	must(t, err)
	kubectl := filepath.Join(root, "bin", "k8s", "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "get", "vpngateways,mobilepools,vpnusers").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}
	return string(out)
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM certificate in the server Secret")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	must(t, err)
	return cert
}

func condition(conds []metav1.Condition, typ string, want metav1.ConditionStatus) error {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return fmt.Errorf("no %s condition", typ)
	}
	if c.Status != want {
		return fmt.Errorf("%s=%s (%s): %s", typ, c.Status, c.Reason, c.Message)
	}
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

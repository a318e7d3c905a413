package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/controllers"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/kube"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// The scan's own secrets, besides the example's password.
const (
	wrongPassword = "not-jimps-pw-4711"
	tunnelPSK     = "branch-psk-0f9e8d7c6b5a"
	radiusSecret  = "radius-secret-1a2b3c4d"
)

// lockedBuffer is a log sink the manager's and the agent's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runLogs holds what the manager and the agents of this package's tests
// log, at every level. controller-runtime keeps the first logger it is
// given for good, so it is given this one before any test runs (and
// TestEndToEnd's, which would discard them, does not take).
var (
	runLogs   = &lockedBuffer{}
	runLogger = zap.New(zap.WriteTo(runLogs), zap.Level(zapcore.Level(-5)))
)

func TestMain(m *testing.M) {
	if demo {
		// The demo runs for as long as one looks at it: keep nothing.
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	} else {
		ctrl.SetLogger(runLogger)
	}
	os.Exit(m.Run())
}

// TestNoSecretInAnyOutput runs the seed scenario with a PSK tunnel and a
// RADIUS gateway besides, a login with the password and one with a wrong
// one, then reads everything the run produced (the manager's and the
// agent's logs at debug level, every Event, status and ConfigMap, and the
// manager's and the agent's metrics) and looks for every password, NT
// hash, PSK, RADIUS secret and private key of the run in it. charon logs
// with exactly the levels the manager renders into the gateway's
// strongswan.conf: first at the default logging, then, after the gateway
// asks for Diagnostic everywhere (without the opt-in to decrypted
// payloads), at those, with both logins again.
func TestNoSecretInAnyOutput(t *testing.T) {
	require.Root(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logFrom := runLogs.Len()
	klog.SetLogger(runLogger)

	s := scheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	startManager(t, ctx, cfg, s, "0", ctrl.Log)
	must(t, c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gateway-node", Labels: map[string]string{"ikegate.io/gateway": "true"}}}))
	applyExample(t, ctx, c, defaultLogging)
	for _, o := range []client.Object{
		gen.Secret(namespace, "branch-psk", map[string]string{gen.PSKKey: tunnelPSK}),
		gen.Tunnel(namespace, "branch"),
		gen.Secret(namespace, "radius", map[string]string{"secret": radiusSecret}),
		gen.Gateway(namespace, "radius", gen.WithAddresses("198.51.100.11"), gen.WithRADIUS(gen.RADIUSServer("aaa", "10.3.0.5", "radius", "secret"))),
	} {
		must(t, c.Create(ctx, o))
	}

	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: gatewayName}}
	kube.Eventually(t, "the gateway's certificate is issued", 90*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		return condition(gw.Status.Conditions, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue)
	})
	caBundle := &corev1.ConfigMap{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gw.Status.CAConfigMapName}, caBundle))

	gwNS := netns.New(t, "scangw")
	clNS := netns.New(t, "scancl")
	netns.Veth(t, gwNS, clNS, wanAddress+"/24", clientAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddress+"/24")
	var errorNotify string
	defaultConf, defaultLevels := renderedLevels(t, ctx, c, "")
	gwCharon := charontest.Start(t, gwNS, charontest.Options{Name: "gateway", Userspace: true, LogLevels: defaultLevels, Settings: withErrorNotify(&errorNotify)})
	agentReg := prometheus.NewRegistry()
	runAgent(t, ctx, cfg, gwNS, gwCharon, errorNotify, agentReg)

	sts := &appsv1.StatefulSet{}
	kube.Eventually(t, "the gateway StatefulSet exists", 30*time.Second, func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName + "-gateway"}, sts)
	})
	markReady(t, ctx, c, sts)
	kube.Eventually(t, "the gateway turns Ready", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		return condition(gw.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue)
	})

	// A login with a wrong password (the gateway checks it and says no),
	// then the right one.
	cl := charontest.Start(t, clNS, charontest.Options{Name: "client", Userspace: true, Client: true})
	login := func(pw string) error {
		// Whatever this client had up ends first.
		_, _ = cl.Swanctl("--terminate", "--ike", "home", "--force", "--timeout", "5")
		conf := charontest.ClientConf(charontest.EAPClient{Conn: "home", Gateway: wanAddress, RemoteID: hostname, Identity: identity, Password: pw, RemoteTS: "10.3.0.0/24"})
		if out, err := cl.LoadAll(conf, map[string][]byte{"x509ca/ca.pem": []byte(caBundle.Data["ca.crt"])}); err != nil {
			t.Fatalf("Loading the client: %v\n%s", err, out)
		}
		out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "20")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	logins := func(levels string) {
		t.Helper()
		if err := login(wrongPassword); err == nil {
			t.Fatalf("A wrong password logged in, charon at %s", levels)
		}
		if err := login(password); err != nil {
			t.Fatalf("Logging in, charon at %s: %v", levels, err)
		}
	}
	logins("the default levels")
	kube.Eventually(t, "the gateway counts the session", 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		if gw.Status.Sessions != 1 {
			return fmt.Errorf("gateway sessions %d", gw.Status.Sessions)
		}
		return nil
	})

	defaultLog := gwCharon.Log()
	setLogging(t, ctx, c, diagnosticLogging())
	_, diagnosticLevels := renderedLevels(t, ctx, c, defaultConf)
	t.Logf("charon's levels: default logging %v, Diagnostic %v", defaultLevels, diagnosticLevels)
	gwCharon.SetLogLevels(t, diagnosticLevels)
	logins("Diagnostic")
	diagnosticLog := strings.TrimPrefix(gwCharon.Log(), defaultLog)

	const defaultLogs, diagnosticLogs = "gateway charon log at the default levels", "gateway charon log at Diagnostic (no opt-in)"
	secrets := runSecrets(t, ctx, c)
	outputs := map[string]string{
		"manager and agent logs": runLogs.String()[logFrom:],
		defaultLogs:              defaultLog,
		diagnosticLogs:           diagnosticLog,
		"events":                 listJSON(t, ctx, c, &eventsv1.EventList{}, &corev1.EventList{}),
		"statuses":               statusesJSON(t, ctx, c),
		"ConfigMaps":             listJSON(t, ctx, c, &corev1.ConfigMapList{}),
		"manager metrics":        metricsText(t, crmetrics.Registry, controllers.NewStatusCollector(c)),
		"agent metrics":          metricsText(t, agentReg),
	}
	// The scan must see what it looks for: the user's identity is in the
	// logs, the statuses carry the session.
	for _, p := range []struct{ what, want string }{
		{"manager and agent logs", identity}, {"statuses", identity},
		{defaultLogs, identity}, {diagnosticLogs, identity},
		// A level-2 line of charon's manager subsystem: it took the new levels.
		{diagnosticLogs, "checkout IKEv2 SA by message"},
	} {
		if !strings.Contains(outputs[p.what], p.want) {
			t.Errorf("%s do not mention %q: the scan reads the wrong thing", p.what, p.want)
		}
	}
	// ...and recognises what it looks for where it belongs: the NT hash in
	// the agent's credentials Secrets, each key in its own Secret's PEM.
	secretsJSON := listJSON(t, ctx, c, &corev1.SecretList{})
	if !strings.Contains(secretsJSON, secrets[4].forms[2].text) {
		t.Error("The credentials Secrets do not hold the NT hash the scan looks for")
	}
	var keys corev1.SecretList
	must(t, c.List(ctx, &keys))
	for _, sec := range secrets[6:] {
		found := false
		for _, k := range keys.Items {
			found = found || strings.Contains(string(k.Data[corev1.TLSPrivateKeyKey]), sec.forms[0].text)
		}
		if !found {
			t.Errorf("No Secret's PEM holds the part of %s the scan looks for", sec.name)
		}
	}
	for where, text := range outputs {
		for _, sec := range secrets {
			for _, form := range sec.forms {
				if i := strings.Index(text, form.text); i >= 0 {
					// The secret itself is not printed: where and which is enough.
					t.Errorf("%s contains %s (%s) at byte %d of %d", where, sec.name, form.name, i, len(text))
				}
			}
		}
	}
}

package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// freeradiusConf is Debian's FreeRADIUS configuration, installed by
// hack/install-strongswan.sh; each test runs a copy of it.
const freeradiusConf = "/etc/freeradius/3.0"

// TestEAPRADIUSWithFreeRADIUS runs an EAPRADIUS gateway against a real
// FreeRADIUS in a namespace of its own: the agent writes the RADIUS server
// with its shared secret from the API for charon, an EAP-MSCHAPv2 client
// whose password only FreeRADIUS knows connects and pings through the
// tunnel, and accounting reaches the server. A wrong shared secret in the
// Secret leaves the established session up but makes new connects fail
// (FreeRADIUS drops the requests as signed with another secret, charon
// gives up on them and fails the client's EAP); fixing the Secret makes
// them work again, with the same charon all along. No shared secret reaches
// the agent's log, the gateway's status or charon's log.
func TestEAPRADIUSWithFreeRADIUS(t *testing.T) {
	require.Root(t)
	if _, err := exec.LookPath("freeradius"); err != nil {
		t.Fatalf("FreeRADIUS is not installed (hack/install-strongswan.sh installs it): %v", err)
	}
	ctx := context.Background()
	const (
		pod        = "vpn-gateway-0"
		identity   = "jimp"
		password   = "abc123"
		gwAddr     = "192.0.2.1"
		gwRADIUS   = "198.51.100.1"
		radiusAddr = "198.51.100.2"
		radSecret  = "radius-shared"
		nasID      = "vpn.example.com"
		// charon's settings parser would end a bare value at '}' or '#';
		// the servers file quotes it.
		radiusShare = `Rad "sec}#ret 1`
		wrongShare  = "not-the-shared-secret"
	)
	start := time.Now()

	gwNS := netns.New(t, "rdgw")
	clNS := netns.New(t, "rdcl")
	radNS := netns.New(t, "rdrs")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	netns.Veth(t, gwNS, radNS, gwRADIUS+"/24", radiusAddr+"/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	rad := startFreeRADIUS(t, radNS, gwRADIUS, radiusShare, identity, password)

	pki := charontest.NewPKI(t, "RADIUS Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	radiusDir := filepath.Join(t.TempDir(), "radius")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true, Settings: func(s *swan.Settings) {
		// What the manager renders for this gateway, with the pod's
		// shared directory replaced by the test's.
		s.EAPRADIUS = &swan.EAPRADIUS{Accounting: true, ServersInclude: radiusDir + "/*.conf"}
	}})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })
	pid := gw.PID()

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	if err := c.Create(ctx, gen.Secret(namespace, radSecret, map[string]string{"secret": radiusShare})); err != nil {
		t.Fatal(err)
	}
	var gwObj v1alpha1.VPNGateway
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &gwObj); err != nil {
		t.Fatal(err)
	}
	gwObj.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPRADIUS, RADIUS: &v1alpha1.RADIUSSettings{
		Accounting:    true,
		NASIdentifier: nasID,
		Servers: []v1alpha1.RADIUSServer{{
			Name: "freeradius", Address: radiusAddr, AuthPort: 1812, AccountingPort: 1813,
			SecretRef: v1alpha1.SecretKeyReference{Name: radSecret, Key: "secret"},
		}},
	}}
	if err := c.Update(ctx, &gwObj); err != nil {
		t.Fatalf("Making the gateway an EAPRADIUS gateway: %v", err)
	}

	logs := &syncBuffer{}
	startRADIUSAgent(t, cfg, pod, gw.VICISocket(), radiusDir, logs)
	// charon has read a secret when the servers file holds it and charon
	// re-read the file naming the server since the change was made. The
	// manager writes the RADIUS secret into the credentials a moment after
	// the gateway, so the agent's first reload may come before it, with no
	// server; counting every reload raced with that.
	serversFile := filepath.Join(radiusDir, "servers.conf")
	reloads := func() int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "charon re-read its RADIUS servers") && strings.Contains(l, "freeradius") {
				n++
			}
		}
		return n
	}
	readSecret := func(what string, before int, holds, lacks string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			b, _ := os.ReadFile(serversFile)
			in := strings.Contains(string(b), holds) && (lacks == "" || !strings.Contains(string(b), lacks))
			return in && reloads() > before, logs.String()
		})
	}
	readSecret("charon re-reading the RADIUS servers", 0, "sec}#ret", "")
	st, err := os.Stat(serversFile)
	if err != nil {
		t.Fatal(err)
	}
	// Group-readable: charon, without DAC_OVERRIDE, reads it through the
	// pod's shared group; nobody else may.
	if st.Mode().Perm() != 0o640 {
		t.Errorf("Servers file mode %v, want 0640", st.Mode().Perm())
	}
	setup := time.Since(start)

	conn, secret := clientConf("home", gwAddr, identity, password)
	loadClient(t, cl, pki, []string{conn}, []string{secret})
	took, err := initiate(ctx, clVICI, "home")
	if err != nil {
		t.Fatalf("Client could not connect through FreeRADIUS: %v\nFreeRADIUS:\n%s", err, rad.tail())
	}
	ping(t, clNS, 3)
	t.Logf("Setup %v; connect through FreeRADIUS %v", setup.Round(time.Millisecond), took.Round(time.Millisecond))
	if !strings.Contains(rad.log(), "Sent Access-Accept") {
		t.Errorf("FreeRADIUS accepted no Access-Request:\n%s", rad.tail())
	}
	waitFor(t, 10*time.Second, "an Accounting-Start for the session", func() (bool, string) {
		l := rad.log()
		return regexp.MustCompile(`(?s)Acct-Status-Type = Start.*User-Name = "jimp"|User-Name = "jimp".*Acct-Status-Type = Start`).MatchString(l) &&
			strings.Contains(l, `NAS-Identifier = "`+nasID+`"`), "no Accounting-Start naming jimp and " + nasID
	})

	// A wrong shared secret: FreeRADIUS drops what charon signs with it.
	// Re-reading the settings leaves the established session alone.
	before := reloads()
	setRADIUSSecret(t, c, radSecret, wrongShare)
	readSecret("charon re-reading the wrong secret", before, wrongShare, "sec}#ret")
	if sas, err := established(ctx, clVICI, "home"); err != nil || len(sas) != 1 {
		t.Fatalf("The session did not survive charon re-reading its settings: %v %v", sas, err)
	}
	ping(t, clNS, 3)
	if err := terminate(ctx, clVICI, "home"); err != nil {
		t.Fatal(err)
	}
	wrongAt := time.Now()
	failed := make(chan error, 1)
	go func() {
		_, err := initiate(ctx, clVICI, "home")
		failed <- err
	}()
	waitFor(t, 25*time.Second, "FreeRADIUS refusing the wrong shared secret", func() (bool, string) {
		return strings.Contains(rad.log(), "Shared secret is incorrect"), rad.tail()
	})
	// charon uses one socket per server by default: the Accounting-Stop of
	// the session just ended, signed with the wrong secret too, holds it for
	// its own four attempts (about 14 s) before the Access-Request's turn.
	waitFor(t, 45*time.Second, "charon giving up on the RADIUS server", func() (bool, string) {
		return strings.Contains(gw.Log(), "RADIUS Access-Request timed out"), gw.Log()
	})
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("The client connected while the gateway had a wrong RADIUS shared secret")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("The failed initiate did not return")
	}
	wrongFor := time.Since(wrongAt)
	if err := terminate(ctx, clVICI, "home"); err != nil {
		t.Fatal(err)
	}

	// Fixed: connects work again, the same charon all along.
	before = reloads()
	setRADIUSSecret(t, c, radSecret, radiusShare)
	readSecret("charon re-reading the fixed secret", before, "sec}#ret", wrongShare)
	if took, err = initiate(ctx, clVICI, "home"); err != nil {
		t.Fatalf("Client could not connect after the secret was fixed: %v\nFreeRADIUS:\n%s", err, rad.tail())
	}
	ping(t, clNS, 3)
	if got := gw.PID(); got != pid {
		t.Errorf("The gateway's charon restarted (process %d, was %d)", got, pid)
	}
	t.Logf("Wrong secret refused after %v; reconnect after the fix %v", wrongFor.Round(time.Millisecond), took.Round(time.Millisecond))

	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &gwObj); err != nil {
		t.Fatal(err)
	}
	status, _ := json.Marshal(gwObj.Status)
	for _, s := range []string{radiusShare, wrongShare, `sec}#ret`, base64.StdEncoding.EncodeToString([]byte(radiusShare))} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("The agent logged a RADIUS shared secret")
		}
		if strings.Contains(string(status), s) {
			t.Errorf("The gateway's status holds a RADIUS shared secret: %s", status)
		}
		if strings.Contains(gw.Log(), s) {
			t.Errorf("The gateway's charon logged a RADIUS shared secret")
		}
	}
}

// startRADIUSAgent runs an agent that writes RADIUS servers into dir, its
// log (every level) into logs.
func startRADIUSAgent(t *testing.T, cfg *rest.Config, pod, socket, dir string, logs *syncBuffer) {
	t.Helper()
	a, err := agent.NewForConfig(cfg, agent.Options{
		Namespace: namespace, Gateway: gatewayName, Pod: pod, CertificateSecret: certSecret,
		VICI: vici.NewClient(socket), Registerer: prometheus.NewRegistry(), RADIUSDir: dir,
		SAInterval: 500 * time.Millisecond, CounterInterval: time.Second,
	})
	if err != nil {
		t.Fatalf("Creating agent: %v", err)
	}
	// Debug level and more, short of client-go's dumps of response bodies
	// (level 8), which hold Secrets' data as the API server sends it.
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 5})
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Agent ended with: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Agent did not stop within 15s")
		}
		if t.Failed() {
			t.Logf("Agent log:\n%s", logs.String())
		}
	})
}

func setRADIUSSecret(t *testing.T, c client.Client, name, value string) {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"secret": []byte(value)}
	if err := c.Update(context.Background(), &s); err != nil {
		t.Fatalf("Updating Secret %s: %v", name, err)
	}
}

// freeRADIUS is a FreeRADIUS daemon in debug mode (every packet and its
// attributes on stdout) started by startFreeRADIUS.
type freeRADIUS struct {
	out string
}

func (r *freeRADIUS) log() string {
	b, _ := os.ReadFile(r.out)
	return string(b)
}

// tail is the end of the log, for failure messages.
func (r *freeRADIUS) tail() string {
	l := r.log()
	if len(l) > 6000 {
		l = "..." + l[len(l)-6000:]
	}
	return l
}

// startFreeRADIUS runs FreeRADIUS in ns with a copy of Debian's
// configuration: one client (the gateway at nas, with the shared secret)
// and one user with a cleartext password (so that MSCHAPv2 can be
// checked). It returns once the server answers.
func startFreeRADIUS(t *testing.T, ns *netns.NS, nas, shared, user, password string) *freeRADIUS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "freeradius")
	if out, err := exec.Command("cp", "-a", freeradiusConf, dir).CombinedOutput(); err != nil {
		t.Fatalf("Copying %s: %v\n%s", freeradiusConf, err, out)
	}
	for _, d := range []string{"run", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	edit := func(name string, fn func(string) string) {
		t.Helper()
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fn(string(b))), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// Run as the test's user with state in the copy, not in the system's
	// directories.
	edit("radiusd.conf", func(s string) string {
		s = regexp.MustCompile(`(?m)^(\s*)(user|group) = .*$`).ReplaceAllString(s, "$1# $2 dropped by the test")
		s = regexp.MustCompile(`(?m)^run_dir = .*$`).ReplaceAllString(s, "run_dir = "+filepath.Join(dir, "run"))
		return regexp.MustCompile(`(?m)^logdir = .*$`).ReplaceAllString(s, "logdir = "+filepath.Join(dir, "log"))
	})
	if err := os.WriteFile(filepath.Join(dir, "clients.conf"), []byte(fmt.Sprintf(
		"client gateway {\n\tipaddr = %s\n\tsecret = %s\n}\n", nas, freeradiusString(shared))), 0o640); err != nil {
		t.Fatal(err)
	}
	edit("mods-config/files/authorize", func(s string) string {
		return fmt.Sprintf("%s Cleartext-Password := %s\n", user, freeradiusString(password)) + s
	})

	r := &freeRADIUS{out: filepath.Join(dir, "out.log")}
	// -X: foreground, one thread, every packet with its attributes on stdout.
	ns.Start(t, "sh", "-c", `exec freeradius -X -d "$0" >"$1" 2>&1`, dir, r.out)
	poll.Eventually(t, "FreeRADIUS to start", 20*time.Second, func() error {
		if !strings.Contains(r.log(), "Ready to process requests") {
			return fmt.Errorf("not ready:\n%s", r.tail())
		}
		return nil
	}, poll.Every(50*time.Millisecond))
	return r
}

// freeradiusString quotes s for FreeRADIUS's configuration files, which
// take \" for a quote but keep the backslash of \\: no value used here has one.
func freeradiusString(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// syncBuffer is a log sink the agent writes from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

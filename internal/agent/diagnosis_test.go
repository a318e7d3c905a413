package agent

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// countingWriter counts the agent's API writes: Events go to the fake
// client, status applies to the recorder.
type countingWriter struct {
	*statusRecorder
	mu              sync.Mutex
	creates, events int
}

func (w *countingWriter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.mu.Lock()
	w.creates++
	w.mu.Unlock()
	return w.statusRecorder.Create(ctx, obj, opts...)
}

func (w *countingWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	w.mu.Lock()
	w.events++
	w.mu.Unlock()
	return w.statusRecorder.Patch(ctx, obj, p, opts...)
}

// writes is every API write so far.
func (w *countingWriter) writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statusRecorder.mu.Lock()
	defer w.statusRecorder.mu.Unlock()
	return w.creates + w.events + len(w.statusRecorder.applies)
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// diagFixture is an agent that applied its gateway once and is fed log
// events by the test itself, on a clock of the test's: no loops run.
type diagFixture struct {
	agent  *Agent
	diag   *diagnosis
	reader client.Client
	writer *countingWriter
	clock  *fakeClock
	fake   *vicitest.Fake
	reg    *prometheus.Registry
}

func newDiagFixture(t testing.TB, users ...*v1alpha1.VPNUser) *diagFixture {
	t.Helper()
	pki := charontest.NewPKI(t, "Unit CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com")
	gw := &v1alpha1.VPNGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testGW, Generation: 1, UID: "gw-uid"},
		Spec:       v1alpha1.VPNGatewaySpec{Hostnames: []v1alpha1.Hostname{"vpn.example.com"}},
	}
	objs := []client.Object{gw,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "vpn-tls"},
			Data:       map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": pki.CertPEM},
		},
		&v1alpha1.MobilePool{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "staff"},
			Spec: v1alpha1.MobilePoolSpec{
				GatewayRef:    v1alpha1.GatewayReference{Name: testGW},
				Addresses:     v1alpha1.PoolAddresses{IPv4: "10.3.200.0/24"},
				LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
			},
		},
	}
	var userObjs []v1alpha1.VPNUser
	passwords := map[string]*corev1.Secret{}
	for _, u := range users {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: u.Name}, Data: map[string][]byte{"password": []byte("pw")}}
		objs = append(objs, u, s)
		userObjs = append(userObjs, *u)
		passwords[s.Name] = s
	}
	for i, data := range credentials.Split(credentialsData(gw, userObjs, passwords)) {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: credentials.ShardName(testGW, i)}, Data: data})
	}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).Build()
	w := &countingWriter{statusRecorder: &statusRecorder{Client: reader}}
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	f := vicitest.NewFake()
	reg := prometheus.NewRegistry()
	a, err := New(Options{
		Namespace: testNS, Gateway: testGW, Pod: testPod, CertificateSecret: "vpn-tls",
		VICI: f, Reader: reader, Writer: w, Now: clock.Now, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sync(context.Background()); err != nil {
		t.Fatalf("Applying the gateway: %v", err)
	}
	return &diagFixture{agent: a, diag: newDiagnosis(a), reader: reader, writer: w, clock: clock, fake: f, reg: reg}
}

func vpnUser(name string, mods ...func(*v1alpha1.VPNUser)) *v1alpha1.VPNUser {
	u, _ := user(name)
	u.UID = types.UID("uid-" + u.Name)
	for _, m := range mods {
		m(u)
	}
	return u
}

// replay feeds a log charon printed (internal/diagnose/testdata) as the
// VICI log stream would carry it, its IKE_SA ids moved by base and on
// connection conn.
func (fx *diagFixture) replay(t testing.TB, name string, base uint32, conn string) {
	t.Helper()
	fx.replayWith(t, name, base, conn, nil)
}

// replayWith is replay with the messages rewritten by r.
func (fx *diagFixture) replayWith(t testing.TB, name string, base uint32, conn string, r *strings.Replacer) {
	t.Helper()
	for _, l := range readLog(t, name) {
		e := vici.LogEntry{Group: l.Group, Level: 1, Thread: l.Thread, IKEName: l.IKEName, Message: l.Msg}
		if r != nil {
			e.Message = r.Replace(e.Message)
		}
		if l.IKESA != 0 {
			e.IKEUniqueID = base + l.IKESA
		}
		if e.IKEName != "" && e.IKEName != "(unnamed)" {
			e.IKEName = conn
		}
		fx.diag.log(context.Background(), &e)
	}
}

var logCache sync.Map

func readLog(t testing.TB, name string) []diagnose.LogEvent {
	if v, ok := logCache.Load(name); ok {
		return v.([]diagnose.LogEvent)
	}
	f, err := os.Open(filepath.Join("..", "diagnose", "testdata", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []diagnose.LogEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev, ok := diagnose.ParseLine(sc.Text())
		// A restart line would reset the correlator between attempts.
		if ok && !strings.HasPrefix(ev.Msg, "loaded plugins") {
			out = append(out, ev)
		}
	}
	logCache.Store(name, out)
	return out
}

func (fx *diagFixture) warningEvents(t testing.TB) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	if err := fx.reader.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// condition is the Connected condition last applied to kind/name.
func (fx *diagFixture) condition(kind, name string) map[string]any {
	var last map[string]any
	for _, ap := range fx.writer.take(kind) {
		if ap.name != name || ap.owner != v1alpha1.AgentFieldOwner(testPod)+"/diagnosis" {
			continue
		}
		conds, _ := ap.status["conditions"].([]any)
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == v1alpha1.ConditionConnected {
				last = m
			}
		}
	}
	return last
}

func TestFailuresLandOnTheObjectWhoseOwnerCanFixThem(t *testing.T) {
	for _, tc := range []struct {
		name, log      string
		users          []*v1alpha1.VPNUser
		kind, object   string
		reason         string
		inMessage      []string
		memberHasState bool
	}{
		{name: "wrong password", log: "wrong-password", users: []*v1alpha1.VPNUser{vpnUser("jimp")},
			kind: "VPNUser", object: "jimp", reason: diagnose.ReasonAuthenticationFailed,
			inMessage: []string{"jimp@example.com", "192.0.2.2", "check the password"}, memberHasState: true},
		{name: "disabled user", log: "wrong-password", users: []*v1alpha1.VPNUser{vpnUser("ann"), vpnUser("jimp", func(u *v1alpha1.VPNUser) { u.Spec.Disabled = true })},
			kind: "VPNUser", object: "jimp", reason: diagnose.ReasonDisabled,
			inMessage: []string{"jimp@example.com", "the VPNUser is disabled", "enable the VPNUser"}, memberHasState: true},
		{name: "expired user", log: "wrong-password", users: []*v1alpha1.VPNUser{vpnUser("ann"), vpnUser("jimp", func(u *v1alpha1.VPNUser) {
			u.Spec.ExpiresAt = &metav1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		})},
			kind: "VPNUser", object: "jimp", reason: diagnose.ReasonExpired,
			inMessage: []string{"jimp@example.com", "the VPNUser has expired", "extend expiresAt"}, memberHasState: true},
		{name: "a user whose password the pod does not hold yet", log: "unknown-identity", users: []*v1alpha1.VPNUser{vpnUser("jimp"), vpnUser("nobody")},
			kind: "VPNUser", object: "nobody", reason: diagnose.ReasonCredentialsPending,
			inMessage: []string{"nobody@example.com", "the VPNUser nobody exists, but this gateway pod holds no password for it yet", "passwordSecretRef"}, memberHasState: true},
		{name: "unknown identity", log: "unknown-identity", users: []*v1alpha1.VPNUser{vpnUser("jimp")},
			kind: "VPNGateway", object: testGW, reason: diagnose.ReasonUnknownUser,
			inMessage: []string{"nobody@example.com", "create a VPNUser"}},
		{name: "proposal mismatch", log: "ike-3des-sha1-modp1024", users: []*v1alpha1.VPNUser{vpnUser("jimp")},
			kind: "VPNGateway", object: testGW, reason: diagnose.ReasonProposalMismatch,
			inMessage: []string{"IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "the gateway has IKE:"}},
		{name: "traffic selectors", log: "ts-not-routed", users: []*v1alpha1.VPNUser{vpnUser("jimp")},
			kind: "VPNUser", object: "jimp", reason: diagnose.ReasonTrafficSelectorMismatch,
			inMessage: []string{"the gateway has 10.3.0.0/24", "the peer offered"}, memberHasState: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newDiagFixture(t, tc.users...)
			fx.writer.take("VPNGateway")
			fx.replay(t, tc.log, 0, fx.poolConnection(t))
			evs := fx.warningEvents(t)
			if len(evs) != 1 {
				t.Fatalf("Events = %+v, want one", evs)
			}
			ev := evs[0]
			if ev.InvolvedObject.Kind != tc.kind || ev.InvolvedObject.Name != tc.object || ev.Reason != tc.reason || ev.Type != corev1.EventTypeWarning {
				t.Errorf("Event on %s/%s reason %s type %s, want %s/%s reason %s Warning",
					ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Type, tc.kind, tc.object, tc.reason)
			}
			if ev.InvolvedObject.UID == "" {
				t.Errorf("Event's object has no UID: kubectl describe would not show it")
			}
			t.Logf("%s on %s/%s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
			for _, s := range tc.inMessage {
				if !strings.Contains(ev.Message, s) {
					t.Errorf("Event message %q lacks %q", ev.Message, s)
				}
			}
			if n := len(fx.writer.take("VPNGateway")); n != 1 {
				t.Errorf("Gateway status written %d times, want 1", n)
			}
			var cond map[string]any
			if tc.kind != "VPNGateway" {
				cond = fx.condition(tc.kind, tc.object)
			}
			if tc.memberHasState != (cond != nil) {
				t.Errorf("Connected condition on %s/%s = %v, want one: %v", tc.kind, tc.object, cond, tc.memberHasState)
			} else if cond != nil && (cond["status"] != "False" || cond["reason"] != tc.reason) {
				t.Errorf("Connected condition = %v, want False with reason %s", cond, tc.reason)
			}
			rf := fx.agent.report.RecentFailures
			if len(rf) != 1 || rf[0].Reason != tc.reason || rf[0].Kind != tc.kind || rf[0].Name != tc.object || rf[0].Count != 1 {
				t.Errorf("recentFailures = %+v, want one %s on %s/%s", rf, tc.reason, tc.kind, tc.object)
			}
			if v := testutil.ToFloat64(fx.agent.metrics.failures.WithLabelValues(rf[0].Phase, tc.reason)); v != 1 {
				t.Errorf("negotiation failures {%s,%s} = %v, want 1", rf[0].Phase, tc.reason, v)
			}
		})
	}
}

// poolConnection is the charon connection of the fixture's only pool.
func (fx *diagFixture) poolConnection(t testing.TB) string {
	fx.agent.mu.Lock()
	defer fx.agent.mu.Unlock()
	for conn := range fx.agent.diag.routes {
		return conn
	}
	t.Fatal("The gateway has no connection")
	return ""
}

func TestConnectedConditionClearsWhenTheUserConnects(t *testing.T) {
	fx := newDiagFixture(t, vpnUser("jimp"))
	fx.replay(t, "wrong-password", 0, fx.poolConnection(t))
	if c := fx.condition("VPNUser", "jimp"); c == nil || c["status"] != "False" {
		t.Fatalf("Connected after a wrong password = %v, want False", c)
	}
	fx.fake.AddSA(clientSA("jimp@example.com"))
	fx.agent.refreshSessions(context.Background())
	if c := fx.condition("VPNUser", "jimp"); c == nil || c["status"] != "True" || c["reason"] != v1alpha1.ReasonConnected {
		t.Fatalf("Connected once the user has a session = %v, want True/%s", c, v1alpha1.ReasonConnected)
	}
	fx.agent.refreshSessions(context.Background())
	if c := fx.condition("VPNUser", "jimp"); c != nil {
		t.Errorf("Connected written again without a change: %v", c)
	}
}

func TestDuplicateLoginIsAnEventOnTheUser(t *testing.T) {
	fx := newDiagFixture(t, vpnUser("jimp"))
	fx.replay(t, "duplicate-login", 0, fx.poolConnection(t))
	evs := fx.warningEvents(t)
	if len(evs) != 1 || evs[0].Reason != diagnose.ReasonDuplicateLogin || evs[0].InvolvedObject.Name != "jimp" {
		t.Fatalf("Events = %+v, want one DuplicateLogin on VPNUser jimp", evs)
	}
	if c := fx.condition("VPNUser", "jimp"); c != nil {
		t.Errorf("A replaced session set Connected = %v; the user is connected", c)
	}
}

func TestEndingADisabledOrExpiredUsersSessionIsAnEvent(t *testing.T) {
	for _, tc := range []struct {
		reason string
		change func(u *v1alpha1.VPNUser, now time.Time)
	}{
		{diagnose.ReasonDisabled, func(u *v1alpha1.VPNUser, _ time.Time) { u.Spec.Disabled = true }},
		{diagnose.ReasonExpired, func(u *v1alpha1.VPNUser, now time.Time) { u.Spec.ExpiresAt = &metav1.Time{Time: now.Add(-time.Minute)} }},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			ctx := context.Background()
			fx := newDiagFixture(t, vpnUser("ann"), vpnUser("jimp"))
			fx.fake.AddSA(clientSA("jimp@example.com"))
			var u v1alpha1.VPNUser
			if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "jimp"}, &u); err != nil {
				t.Fatal(err)
			}
			tc.change(&u, fx.clock.Now())
			if err := fx.reader.Update(ctx, &u); err != nil {
				t.Fatal(err)
			}
			if err := fx.agent.sync(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(fx.fake.SAs()); n != 0 {
				t.Fatalf("%d SAs left, want the user's ended", n)
			}
			evs := fx.warningEvents(t)
			if len(evs) != 1 || evs[0].Reason != tc.reason || evs[0].InvolvedObject.Name != "jimp" ||
				!strings.Contains(evs[0].Message, "ended the session of jimp@example.com from 203.0.113.9") {
				t.Fatalf("Events = %+v, want one %s on VPNUser jimp naming the session", evs, tc.reason)
			}
		})
	}
}

// A Tunnel's peer is known by its connection once charon selected one, and
// by its address before (an IKE_SA_INIT that failed); its traffic
// selectors are both sides' networks.
func TestTunnelFailuresLandOnTheTunnel(t *testing.T) {
	in := swan.Resources{
		Gateway: v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testGW, UID: "gw"},
			Spec: v1alpha1.VPNGatewaySpec{Hostnames: []v1alpha1.Hostname{"vpn.example.com"}}},
		Tunnels: []v1alpha1.Tunnel{{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "hq", UID: "hq-uid"},
			Spec: v1alpha1.TunnelSpec{
				GatewayRef: v1alpha1.GatewayReference{Name: testGW},
				Remote:     v1alpha1.TunnelRemote{Addresses: []string{"198.51.100.20"}},
				Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "hq-psk", Key: "psk"}}},
				Children: []v1alpha1.TunnelChild{{Name: "lan", LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
					RemoteNetworks: []v1alpha1.CIDR{"10.9.0.0/24"}, StartAction: "None"}},
			},
		}},
		Secrets: map[string]map[string][]byte{"hq-psk": {"psk": []byte("a-long-enough-pre-shared-key-0123456789")}},
	}
	res := swan.Build(in)
	if len(res.Tunnels) != 1 {
		t.Fatalf("Build accepted no tunnel: %v", res.Problems)
	}
	ix := newDiagIndex(&in, &res)
	conn := res.Tunnels[0].Connection
	for _, f := range []diagnose.Failure{
		{Connection: conn, Reason: diagnose.ReasonPSKMismatch, Remote: "198.51.100.20"},
		{Reason: diagnose.ReasonProposalMismatch, Remote: "198.51.100.20"},
	} {
		if m := ix.target(f); m.kind != "Tunnel" || m.name != "hq" || m.uid != "hq-uid" {
			t.Errorf("%s from %s (connection %q) lands on %+v, want Tunnel hq", f.Reason, f.Remote, f.Connection, m)
		}
	}
	if m := ix.target(diagnose.Failure{Reason: diagnose.ReasonProposalMismatch, Remote: "192.0.2.99"}); !m.isGateway() {
		t.Errorf("A failure of an unknown peer lands on %+v, want the gateway", m)
	}
	f := ix.complete(diagnose.Failure{Connection: conn, Reason: diagnose.ReasonTrafficSelectorMismatch})
	if len(f.Configured) != 1 || f.Configured[0] != "10.3.0.0/24 === 10.9.0.0/24" {
		t.Errorf("The tunnel's side of a traffic selector mismatch = %v, want 10.3.0.0/24 === 10.9.0.0/24", f.Configured)
	}
}

// TestRADIUSRefusalsToldApart: charon logs only that the agent's RADIUS
// server refused a login; the agent tells an identity it does not serve
// (unknown, or a user without a usable password) from a served user's
// wrong password, and a disabled user from both.
func TestRADIUSRefusalsToldApart(t *testing.T) {
	in := swan.Resources{
		Gateway: *gen.Gateway(testNS, gen.GatewayName),
		Pools:   []v1alpha1.MobilePool{*gen.Pool(testNS, "staff", "10.3.200.0/24")},
		Users: []v1alpha1.VPNUser{
			*gen.User(testNS, "alice", "alice@example.com"),
			*gen.User(testNS, "nopass", "nopass@example.com"),
			*gen.User(testNS, "off", "off@example.com", func(u *v1alpha1.VPNUser) { u.Spec.Disabled = true }),
		},
		Secrets: map[string]map[string][]byte{"alice": {gen.PasswordKey: []byte("pw")}},
		Now:     time.Now(),
	}
	res := swan.Build(in)
	ix := newDiagIndex(&in, &res)
	for id, want := range map[string]string{
		"alice@example.com":  "",
		"nopass@example.com": diagnose.ReasonUnknownUser,
		"nobody@example.com": diagnose.ReasonUnknownUser,
		"off@example.com":    diagnose.ReasonDisabled,
	} {
		if got := ix.userState(id); got != want {
			t.Errorf("userState(%s) = %q, want %q", id, got, want)
		}
	}
}

// TestACertificateThatDoesNotVerifyNamesTheTrustedCAs: the log names the
// peer's certificate only; the Failure gets the CAs the connection trusts
// for it, and none when it was the peer that refused this side's.
func TestACertificateThatDoesNotVerifyNamesTheTrustedCAs(t *testing.T) {
	pki := charontest.NewPKI(t, "Client CA")
	res := &swan.Result{Model: swan.Model{
		Certs:       []swan.Cert{{Name: "client-ca", Type: "x509ca", PEM: pki.CertPEM}},
		Connections: []swan.Connection{{Name: "mobile", Remote: []swan.Auth{{Method: "pubkey", CACerts: []string{"client-ca"}}}}},
	}}
	ix := newDiagIndex(&swan.Resources{}, res)
	theirs := ix.complete(diagnose.Failure{Connection: "mobile", Reason: diagnose.ReasonCertificateInvalid, PeerCertificate: true})
	if want := []string{"trusted CA CN=Client CA"}; !slices.Equal(theirs.Configured, want) {
		t.Errorf("Configured = %q, want %q", theirs.Configured, want)
	}
	if !strings.Contains(failureMessage(theirs), "the gateway has trusted CA CN=Client CA") {
		t.Errorf("Message %q does not name the trusted CA", failureMessage(theirs))
	}
	ours := ix.complete(diagnose.Failure{Connection: "mobile", Reason: diagnose.ReasonCertificateInvalid})
	if len(ours.Configured) != 0 {
		t.Errorf("Configured = %q for a refusal of the gateway's own certificate, want none", ours.Configured)
	}
}

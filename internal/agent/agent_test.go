package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

const (
	testNS  = "vpn"
	testGW  = "vpn"
	testPod = "vpn-gw-0"
)

// statusRecorder is a client whose status writes are recorded instead of
// sent: the fake client has no server-side apply.
type statusRecorder struct {
	client.Client
	mu      sync.Mutex
	applies []recordedApply
}

type recordedApply struct {
	kind, name, owner string
	status            map[string]any
}

func (r *statusRecorder) Status() client.SubResourceWriter { return recorderWriter{r} }

func (r *statusRecorder) take(kind string) []recordedApply {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out, rest []recordedApply
	for _, a := range r.applies {
		if a.kind == kind {
			out = append(out, a)
		} else {
			rest = append(rest, a)
		}
	}
	r.applies = rest
	return out
}

type recorderWriter struct{ r *statusRecorder }

var errNotApply = errors.New("the agent writes status with server-side apply only")

func (w recorderWriter) Create(context.Context, client.Object, client.Object, ...client.SubResourceCreateOption) error {
	return errNotApply
}
func (w recorderWriter) Update(context.Context, client.Object, ...client.SubResourceUpdateOption) error {
	return errNotApply
}
func (w recorderWriter) Patch(context.Context, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
	return errNotApply
}
func (w recorderWriter) Apply(_ context.Context, obj kruntime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	var o client.SubResourceApplyOptions
	o.ApplyOpts(opts)
	u, ok := obj.(interface{ UnstructuredContent() map[string]any })
	if !ok {
		return errors.New("not an unstructured apply configuration")
	}
	content := u.UnstructuredContent()
	uo := unstructured.Unstructured{Object: content}
	status, _ := content["status"].(map[string]any)
	if o.Force == nil || !*o.Force {
		return errors.New("status must be applied with force: the fields are this pod's alone")
	}
	w.r.mu.Lock()
	w.r.applies = append(w.r.applies, recordedApply{kind: uo.GetKind(), name: uo.GetName(), owner: o.FieldManager, status: status})
	w.r.mu.Unlock()
	return nil
}

type fixture struct {
	fake   *vicitest.Fake
	reader client.Client
	writer *statusRecorder
	agent  *Agent
	cancel context.CancelFunc
	done   chan struct{}
}

func user(name string) (*v1alpha1.VPNUser, *corev1.Secret) {
	return gen.User(testNS, name, v1alpha1.Identity(name+"@example.com")),
		gen.Secret(testNS, name, map[string]string{gen.PasswordKey: "pw-" + name})
}

func newFixture(t *testing.T, f *vicitest.Fake, users ...string) *fixture {
	t.Helper()
	return newFixtureWith(t, f, nil, users...)
}

func newFixtureWith(t *testing.T, f *vicitest.Fake, fw Firewall, users ...string) *fixture {
	t.Helper()
	pki := charontest.NewPKI(t, "Unit CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com")
	objs := []client.Object{
		gen.Gateway(testNS, testGW, func(gw *v1alpha1.VPNGateway) { gw.Generation = 3 }),
		gen.TLSSecret(testNS, "vpn-tls", leaf.CertPEM, leaf.KeyPEM, pki.CertPEM),
		gen.Pool(testNS, "staff", "10.3.200.0/24", gen.SplitTunnel("10.3.0.0/24")),
	}
	// The manager derives the credentials Secrets from the users' Secrets;
	// the agent reads only those.
	var userObjs []v1alpha1.VPNUser
	passwords := map[string]*corev1.Secret{}
	for _, n := range users {
		u, s := user(n)
		objs = append(objs, u, s)
		userObjs = append(userObjs, *u)
		passwords[s.Name] = s
	}
	shards := credentials.Split(credentialsData(objs[0].(*v1alpha1.VPNGateway), userObjs, passwords))
	for i, data := range shards {
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: credentials.ShardName(testGW, i)},
			Data:       data,
		})
	}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).Build()
	w := &statusRecorder{Client: reader}
	a, err := New(Options{
		Namespace: testNS, Gateway: testGW, Pod: testPod, CertificateSecret: "vpn-tls",
		VICI: f, Reader: reader, Writer: w, Firewall: fw,
		Debounce: 5 * time.Millisecond, SAInterval: 50 * time.Millisecond, CounterInterval: time.Hour,
		MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.NewWithOptions(t, testr.Options{Verbosity: 1})))
	fx := &fixture{fake: f, reader: reader, writer: w, agent: a, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(fx.done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-fx.done })
	return fx
}

// eventually waits for cond of the agent against the fake charon, which
// answers at once: it polls finely so the many waits stay short.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, what, 5*time.Second, poll.Holds(cond), poll.Every(5*time.Millisecond))
}

func clientSA(identity string) vici.IKESA {
	return vici.IKESA{
		Name: "mobile-staff", State: "ESTABLISHED", RemoteHost: "203.0.113.9", RemotePort: 4500,
		RemoteID: "203.0.113.9", RemoteEAPID: identity, RemoteVIPs: []string{"10.3.200.1"},
		Established: 30 * time.Second,
		Children: []vici.ChildSA{{Name: "staff", State: "INSTALLED", BytesIn: 100, PacketsIn: 2,
			Proposal: vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 256}}},
	}
}

func TestStartKeepsSessionsOfExistingUsersAndEndsOrphans(t *testing.T) {
	f := vicitest.NewFake()
	keep := f.AddSA(clientSA("alice@example.com"))
	// A user deleted while the agent was away still has a session.
	f.AddSA(clientSA("mallory@example.com"))
	fx := newFixture(t, f, "alice")
	eventually(t, "ready", fx.agent.Ready)
	eventually(t, "mallory's session to end", func() bool { return len(f.SAs()) == 1 })
	if sas := f.SAs(); sas[0].UniqueID != keep {
		t.Fatalf("Left SA %d, want alice's %d", sas[0].UniqueID, keep)
	}
	if !serves(fx.agent, "alice@example.com") {
		t.Fatal("alice is not served")
	}
}

func TestDeletingAUserTouchesOnlyThatUser(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice", "bob")
	eventually(t, "ready", fx.agent.Ready)
	aliceSA := f.AddSA(clientSA("alice@example.com"))
	bobSA := f.AddSA(clientSA("bob@example.com"))
	f.ResetCalls()

	u, _ := user("bob")
	if err := fx.reader.Delete(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "bob's session to end", func() bool { return len(f.SAs()) == 1 })
	if f.SAs()[0].UniqueID != aliceSA {
		t.Fatalf("Ended the wrong session: left %+v", f.SAs())
	}
	var writes []string
	for _, c := range f.Writes() {
		writes = append(writes, c.String())
	}
	// charon holds no user secret: the delete is a map update and the
	// end of bob's session.
	want := []string{"terminate " + strconv.Itoa(int(bobSA))}
	if !slices.Equal(writes, want) {
		t.Errorf("Writes = %q, want %q", writes, want)
	}
	if !serves(fx.agent, "alice@example.com") || serves(fx.agent, "bob@example.com") {
		t.Error("Users served after the delete: want alice only")
	}
}

func TestDisablingAUserEndsItsSession(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice")
	eventually(t, "ready", fx.agent.Ready)
	f.AddSA(clientSA("alice@example.com"))
	var u v1alpha1.VPNUser
	ctx := context.Background()
	if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "alice"}, &u); err != nil {
		t.Fatal(err)
	}
	u.Spec.Disabled = true
	if err := fx.reader.Update(ctx, &u); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "the session to end", func() bool { return len(f.SAs()) == 0 })
	if serves(fx.agent, "alice@example.com") {
		t.Error("A disabled user is still served")
	}
}

func TestCharonRestartReloadsEverything(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice")
	eventually(t, "ready", fx.agent.Ready)
	f.Restart()
	eventually(t, "the configuration back", func() bool {
		return f.Conn("mobile-staff") != nil && f.Pool("staff-ipv4") != nil
	})
}

func TestNotReadyUntilCharonTakesTheConfiguration(t *testing.T) {
	f := vicitest.NewFake()
	f.SetDown(true)
	fx := newFixture(t, f, "alice")
	time.Sleep(100 * time.Millisecond)
	rec := httptest.NewRecorder()
	fx.agent.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || fx.agent.Ready() {
		t.Fatalf("/readyz = %d while charon is down, want 503", rec.Code)
	}
	reps := fx.writer.take("VPNGateway")
	if len(reps) == 0 {
		t.Fatal("No agent report while charon is down")
	}
	last := reps[len(reps)-1]
	entry := last.status["agents"].([]any)[0].(map[string]any)
	if entry["lastError"] == nil || entry["appliedGeneration"] != nil || last.owner != FieldOwnerPrefix+testPod {
		t.Errorf("Report while down = %v by %s; want an error, no applied generation, owner %s", entry, last.owner, FieldOwnerPrefix+testPod)
	}
	f.SetDown(false)
	eventually(t, "ready after charon came up", fx.agent.Ready)
	rec = httptest.NewRecorder()
	fx.agent.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz = %d after the first apply, want 200", rec.Code)
	}
	eventually(t, "a report of generation 3 without error", func() bool {
		for _, r := range fx.writer.take("VPNGateway") {
			e := r.status["agents"].([]any)[0].(map[string]any)
			if e["appliedGeneration"] == int64(3) && e["lastError"] == nil {
				return true
			}
		}
		return false
	})
}

func TestSessionsAreWrittenOncePerChange(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice", "bob")
	eventually(t, "ready", fx.agent.Ready)
	f.AddSA(clientSA("alice@example.com"))
	var got []recordedApply
	eventually(t, "alice's session in status", func() bool {
		got = append(got, fx.writer.take("VPNUser")...)
		return len(got) > 0
	})
	// Several more SA polls with nothing changed but counters (whose
	// interval is an hour here) write nothing more.
	time.Sleep(300 * time.Millisecond)
	got = append(got, fx.writer.take("VPNUser")...)
	if len(got) != 1 || got[0].name != "alice" || got[0].owner != FieldOwnerPrefix+testPod {
		t.Fatalf("Status writes = %+v, want one for alice by %s", got, FieldOwnerPrefix+testPod)
	}
	sessions := got[0].status["sessions"].([]any)
	s := sessions[0].(map[string]any)
	if s["pod"] != testPod || s["remoteAddress"] != "203.0.113.9" || s["bytesIn"] != int64(100) || got[0].status["sessionCount"] != int64(1) {
		t.Errorf("Session written = %v", got[0].status)
	}
	// The session ends: the pod's entries are withdrawn.
	f.Restart() // drops every SA
	eventually(t, "the session withdrawn", func() bool {
		for _, r := range fx.writer.take("VPNUser") {
			if r.name == "alice" && r.status["sessions"] == nil && r.status["sessionCount"] == nil {
				return true
			}
		}
		return false
	})
}

func TestChangingAPoolLeavesOtherPoolsUsersAlone(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice", "bob")
	ctx := context.Background()
	// bob moves to a pool of his own, selected by label.
	var bob v1alpha1.VPNUser
	if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "bob"}, &bob); err != nil {
		t.Fatal(err)
	}
	bob.Labels = map[string]string{"team": "contractors"}
	if err := fx.reader.Update(ctx, &bob); err != nil {
		t.Fatal(err)
	}
	contractors := gen.Pool(testNS, "contractors", "10.3.201.0/24",
		gen.SplitTunnel("10.3.1.0/24"), gen.Selecting(map[string]string{"team": "contractors"}))
	if err := fx.reader.Create(ctx, contractors); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "the connection of bob's pool", func() bool {
		return f.Conn("mobile-contractors") != nil && f.Pool("contractors-ipv4") != nil && serves(fx.agent, "alice@example.com") && serves(fx.agent, "bob@example.com")
	})
	bobSA := clientSA("bob@example.com")
	bobSA.Name = "mobile-contractors"
	f.AddSA(bobSA)
	f.ResetCalls()

	var staff v1alpha1.MobilePool
	if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "staff"}, &staff); err != nil {
		t.Fatal(err)
	}
	staff.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.53"}}
	if err := fx.reader.Update(ctx, &staff); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "the staff pool reloaded", func() bool { return len(f.Writes()) > 0 })
	time.Sleep(50 * time.Millisecond)
	for _, w := range f.Writes() {
		if name := w.Name(); name != "staff-ipv4" {
			t.Errorf("Changing the staff pool sent %s", w)
		}
	}
	if len(f.SAs()) != 1 {
		t.Errorf("bob's session ended when another pool changed")
	}
}

// fakeFirewall records what the agent asks of the firewall.
type fakeFirewall struct {
	mu      sync.Mutex
	applied []string
	deletes int
}

func (f *fakeFirewall) Table() string { return "ikegate-vpn-vpn" }
func (f *fakeFirewall) Apply(rs *firewall.Ruleset) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var pools []string
	for _, c := range rs.Chains {
		pools = append(pools, c.Name)
	}
	f.applied = append(f.applied, strings.Join(pools, ","))
	return true, nil
}
func (f *fakeFirewall) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	return nil
}
func (f *fakeFirewall) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied), f.deletes
}

func TestFirewallFollowsTheGateway(t *testing.T) {
	f := vicitest.NewFake()
	fw := &fakeFirewall{}
	fx := newFixtureWith(t, f, fw, "alice")
	eventually(t, "ready", fx.agent.Ready)
	if applied, _ := fw.counts(); applied == 0 {
		t.Fatal("Firewall not programmed")
	}
	if !strings.Contains(fw.applied[0], "pool-staff") {
		t.Errorf("Firewall chains %s lack the staff pool's", fw.applied[0])
	}
	ctx := context.Background()
	var gw v1alpha1.VPNGateway
	if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: testGW}, &gw); err != nil {
		t.Fatal(err)
	}
	off := false
	gw.Spec.Firewall.Enabled = &off
	if err := fx.reader.Update(ctx, &gw); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "the table removed", func() bool { _, d := fw.counts(); return d == 1 })
	fx.agent.Trigger()
	time.Sleep(50 * time.Millisecond)
	if _, d := fw.counts(); d != 1 {
		t.Errorf("Table deleted %d times, want once", d)
	}
}

func TestAuthFailuresCountOncePerIKESA(t *testing.T) {
	a := newAuthFailures()
	lines := []vici.LogEntry{
		{IKEUniqueID: 7, Message: "EAP method EAP_MSCHAPV2 failed for peer 192.0.2.2"},
		{IKEUniqueID: 7, Message: "authentication of '192.0.2.2' with EAP failed"}, // same failure
		{IKEUniqueID: 8, Message: "constraint check failed: identity 'x' required"},
		{IKEUniqueID: 10, Message: "no EAP key found for hosts 'vpn.example.com' - 'mallory@example.com'"},
		{IKEUniqueID: 10, Message: "EAP-MS-CHAPv2 verification failed, retry (1)"},
		{IKEUniqueID: 11, Message: "EAP-MS-CHAPv2 verification failed, retry (1)"},
		{IKEUniqueID: 12, Message: "received AUTHENTICATION_FAILED notify"},
		{IKEUniqueID: 9, Message: "IKE_SA mobile-staff[9] established"},
		{IKEUniqueID: 13, Message: "sending RADIUS Access-Request to server 'agent'"},
	}
	n := 0
	for i := range lines {
		if a.seen(&lines[i]) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("Counted %d failures, want 5", n)
	}
}

func TestExpiredUserIsCutOffWithoutAnAPIChange(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice", "bob")
	ctx := context.Background()
	var u v1alpha1.VPNUser
	if err := fx.reader.Get(ctx, client.ObjectKey{Namespace: testNS, Name: "bob"}, &u); err != nil {
		t.Fatal(err)
	}
	// Whole seconds: that is all the API keeps of a time.
	at := metav1.NewTime(time.Now().Add(2 * time.Second).Truncate(time.Second))
	u.Spec.ExpiresAt = &at
	if err := fx.reader.Update(ctx, &u); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "bob served", func() bool { return serves(fx.agent, "bob@example.com") })
	f.AddSA(clientSA("bob@example.com"))
	f.AddSA(clientSA("alice@example.com"))
	eventually(t, "bob cut off at expiry", func() bool { return !serves(fx.agent, "bob@example.com") && len(f.SAs()) == 1 })
	if time.Now().Before(at.Time) {
		t.Errorf("bob was cut off before his expiry")
	}
}

// TestCharonHoldsNoUserSecrets: the users' NT hashes stay in the agent,
// before and after a charon restart; charon gets connections and pools.
func TestCharonHoldsNoUserSecrets(t *testing.T) {
	f := vicitest.NewFake()
	fx := newFixture(t, f, "alice", "bob")
	eventually(t, "ready", fx.agent.Ready)
	for _, restart := range []bool{false, true} {
		if restart {
			f.ResetCalls()
			f.Restart()
			eventually(t, "the configuration back", func() bool { return f.Conn("mobile-staff") != nil })
		}
		for _, w := range f.Writes() {
			if w.Command == "load-shared" {
				t.Errorf("restart=%v: the agent loaded secret %s into charon", restart, w.Name())
			}
		}
		if !serves(fx.agent, "alice@example.com") || !serves(fx.agent, "bob@example.com") {
			t.Errorf("restart=%v: alice and bob are not both served", restart)
		}
	}
}

// serves reports whether the agent's RADIUS server would check a login of
// identity (holds its NT hash).
func serves(a *Agent, identity string) bool {
	_, ok := a.users.NTHash(identity)
	return ok
}

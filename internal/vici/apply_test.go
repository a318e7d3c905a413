package vici_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// testPKI is shared by the tests of this file: generating keys is the
// slowest part of building a model.
type testCreds struct {
	caPEM, gwPEM, gwKey, gw2Key []byte
	otherCAPEM                  []byte
}

var creds = func() func(t *testing.T) testCreds {
	var c *testCreds
	return func(t *testing.T) testCreds {
		if c == nil {
			pki := charontest.NewPKI(t, "Test CA")
			gw := pki.Server(t, "vpn.example.com", "vpn.example.com")
			gw2 := pki.Server(t, "vpn.example.com", "vpn.example.com")
			other := charontest.NewPKI(t, "Other CA")
			c = &testCreds{caPEM: pki.CertPEM, gwPEM: gw.CertPEM, gwKey: gw.KeyPEM, gw2Key: gw2.KeyPEM, otherCAPEM: other.CertPEM}
		}
		return *c
	}
}()

func ntlm(user string) swan.Secret {
	return swan.Secret{
		Name:   "ntlm-" + user,
		Type:   "NTLM",
		Owners: []string{user + "@example.com"},
		Data:   []byte("\x01\x02secret-of-" + user),
	}
}

// mobileConn is a road-warrior responder like the agent builds for a pool.
func mobileConn(name string, pools ...string) swan.Connection {
	return swan.Connection{
		Name:          name,
		Version:       2,
		Proposals:     []string{"aes256gcm16-prfsha256-x25519"},
		Pools:         pools,
		Mobike:        true,
		DPDDelay:      30 * time.Second,
		Fragmentation: "yes",
		SendCert:      "always",
		Unique:        "never",
		RekeyTime:     4 * time.Hour,
		Local:         []swan.Auth{{Method: "pubkey", ID: "vpn.example.com", Certs: []string{"gw"}}},
		Remote:        []swan.Auth{{Method: "eap-mschapv2", EAPID: "%any"}},
		Children: []swan.Child{{
			Name:         name,
			LocalTS:      []string{"10.3.0.0/24"},
			ESPProposals: []string{"aes256gcm16"},
			LifeTime:     time.Hour,
		}},
	}
}

func pool(name, addrs string, dns ...string) swan.Pool {
	p := swan.Pool{Name: name, Addrs: addrs}
	if len(dns) > 0 {
		p.Attributes = []swan.Attribute{{Key: "dns", Values: dns}}
	}
	return p
}

func testModel(t *testing.T, users ...string) swan.Model {
	c := creds(t)
	m := swan.Model{
		Connections: []swan.Connection{mobileConn("mobile", "mobile4"), mobileConn("staff", "staff4")},
		Pools:       []swan.Pool{pool("mobile4", "10.3.200.0/24", "10.3.0.1"), pool("staff4", "10.3.201.0/24", "10.3.0.1")},
		Certs: []swan.Cert{
			{Name: "ca", Type: "x509ca", PEM: c.caPEM},
			{Name: "gw", Type: "x509", PEM: c.gwPEM},
		},
		Keys:        []swan.PrivateKey{{Name: "gw", Type: "ecdsa", PEM: c.gwKey}},
		Authorities: []swan.Authority{{Name: "ca", CACert: "ca", CRLURIs: []string{"http://crl.example.com/ca.crl"}}},
	}
	for _, u := range users {
		m.Secrets = append(m.Secrets, ntlm(u))
	}
	return m
}

func apply(t *testing.T, a *vici.Applier, m swan.Model) vici.Result {
	t.Helper()
	res, err := a.Apply(context.Background(), m)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func writes(f *vicitest.Fake) []string {
	var out []string
	for _, c := range f.Writes() {
		out = append(out, c.String())
	}
	return out
}

func TestApplyOrdersCredentialsPoolsConnections(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	res := apply(t, a, testModel(t, "alice", "bob"))

	want := []string{
		"load-cert", "load-cert", // ca, gw
		"load-key",
		"load-authority ca",
		"load-shared ntlm-alice", "load-shared ntlm-bob",
		"load-pool mobile4", "load-pool staff4",
		"load-conn mobile", "load-conn staff",
	}
	if diff := cmp.Diff(want, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
	if !res.Synced || len(res.Ops) != len(want) {
		t.Errorf("Result = synced %v, %d writes; want synced, %d", res.Synced, len(res.Ops), len(want))
	}
	if f.CertCount() != 2 || f.KeyCount() != 1 {
		t.Errorf("Fake holds %d certs and %d keys, want 2 and 1", f.CertCount(), f.KeyCount())
	}
}

func TestApplySameModelTwiceWritesNothing(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	m := testModel(t, "alice", "bob", "carol")
	apply(t, a, m)
	f.ResetCalls()

	res := apply(t, a, testModel(t, "alice", "bob", "carol"))
	if w := writes(f); len(w) != 0 || len(res.Ops) != 0 {
		t.Errorf("Second apply wrote %v", w)
	}
	if res.Synced {
		t.Error("Second apply re-read the inventory although the connection did not change")
	}
	// Nothing was read either: the applier trusts what it loaded on this connection.
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("Second apply sent %v", calls)
	}
}

func TestChangingOneSecretTouchesOnlyThatSecret(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	m := testModel(t, "alice", "bob", "carol")
	apply(t, a, m)
	f.ResetCalls()

	m = testModel(t, "alice", "bob", "carol")
	m.Secrets[1].Data = []byte("new NT hash of bob")
	apply(t, a, m)
	if diff := cmp.Diff([]string{"load-shared ntlm-bob"}, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
	if got := vici.Str(f.Shared("ntlm-bob"), "data"); got != "new NT hash of bob" {
		t.Errorf("Fake holds bob's old secret")
	}
}

func TestAddingAndRemovingUsers(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice", "bob"))
	f.ResetCalls()

	apply(t, a, testModel(t, "alice", "carol"))
	want := []string{"load-shared ntlm-carol", "unload-shared ntlm-bob"}
	if diff := cmp.Diff(want, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
	if f.Shared("ntlm-bob") != nil {
		t.Error("bob's secret is still loaded")
	}
}

func TestChangingAPoolLeavesOtherPoolsAndConnectionsAlone(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice"))
	f.ResetCalls()

	m := testModel(t, "alice")
	m.Pools[1] = pool("staff4", "10.3.201.0/24", "10.3.0.53")
	apply(t, a, m)
	if diff := cmp.Diff([]string{"load-pool staff4"}, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
}

func TestRemovalOrder(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice"))
	f.ResetCalls()

	// staff goes away with its pool; mobile moves from mobile4 to mobile5,
	// and mobile4 goes away: each connection must stop using a pool before
	// the pool is unloaded.
	m := testModel(t, "alice")
	m.Connections = []swan.Connection{mobileConn("mobile", "mobile5")}
	m.Pools = []swan.Pool{pool("mobile5", "10.3.202.0/24")}
	apply(t, a, m)
	want := []string{
		"load-pool mobile5",
		"load-conn mobile",
		"unload-conn staff",
		"unload-pool mobile4", "unload-pool staff4",
	}
	if diff := cmp.Diff(want, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
}

func TestFreshApplierConvergesWithoutUnloading(t *testing.T) {
	f := vicitest.NewFake()
	apply(t, vici.NewApplier(f), testModel(t, "alice", "bob"))
	f.ResetCalls()

	// A restarted agent: charon still holds everything. Certificates and
	// keys are recognisable by content; secrets, pools, authorities and
	// connections are reloaded once because charon cannot show their content.
	a := vici.NewApplier(f)
	res := apply(t, a, testModel(t, "alice", "bob"))
	if !res.Synced {
		t.Error("First apply of a new applier did not read the inventory")
	}
	want := []string{
		"load-authority ca",
		"load-shared ntlm-alice", "load-shared ntlm-bob",
		"load-pool mobile4", "load-pool staff4",
		"load-conn mobile", "load-conn staff",
	}
	if diff := cmp.Diff(want, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
	f.ResetCalls()
	apply(t, a, testModel(t, "alice", "bob"))
	if w := writes(f); len(w) != 0 {
		t.Errorf("Apply after convergence wrote %v", w)
	}
}

func TestFreshApplierUnloadsWhatTheModelDropped(t *testing.T) {
	f := vicitest.NewFake()
	apply(t, vici.NewApplier(f), testModel(t, "alice", "bob"))
	f.ResetCalls()

	m := testModel(t, "alice")
	m.Connections, m.Pools = m.Connections[:1], m.Pools[:1]
	m.Keys = nil
	apply(t, vici.NewApplier(f), m)
	got := writes(f)
	for _, w := range []string{"unload-conn staff", "unload-pool staff4", "unload-shared ntlm-bob", "unload-key"} {
		if !contains(got, w) {
			t.Errorf("Writes %v lack %q", got, w)
		}
	}
	for _, w := range got {
		if strings.HasPrefix(w, "unload-") && (strings.Contains(w, "alice") || strings.HasSuffix(w, " mobile") || strings.HasSuffix(w, "mobile4")) {
			t.Errorf("Unloaded %q which the model still has", w)
		}
	}
}

func contains(l []string, prefix string) bool {
	for _, s := range l {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestCharonRestartReloadsEverything(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	m := testModel(t, "alice")
	first := apply(t, a, m)
	f.Restart()
	f.ResetCalls()

	res := apply(t, a, m)
	if !res.Synced {
		t.Error("Apply after a restart did not re-read the inventory")
	}
	if len(res.Ops) != len(first.Ops) {
		t.Errorf("Apply after a restart made %d writes, want %d (everything): %v", len(res.Ops), len(first.Ops), writes(f))
	}
	if f.Conn("mobile") == nil || f.Shared("ntlm-alice") == nil || f.Pool("mobile4") == nil {
		t.Error("Fake does not hold the model after the re-apply")
	}
}

func TestCharonDownReturnsUnavailable(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	f.SetDown(true)
	if _, err := a.Apply(context.Background(), testModel(t, "alice")); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("Apply with charon down: err = %v, want charon unavailable", err)
	}
	f.SetDown(false)
	res := apply(t, a, testModel(t, "alice"))
	if !res.Synced || f.Shared("ntlm-alice") == nil {
		t.Error("Apply after charon came back did not load the model")
	}
}

func TestChangedKeyIsLoadedBeforeTheOldOneGoes(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t))
	f.ResetCalls()

	m := testModel(t)
	m.Keys[0].PEM = creds(t).gw2Key
	apply(t, a, m)
	got := writes(f)
	if len(got) != 2 || got[0] != "load-key" || !strings.HasPrefix(got[1], "unload-key") {
		t.Errorf("Writes = %v, want load-key then unload-key", got)
	}
	if f.KeyCount() != 1 {
		t.Errorf("Fake holds %d keys, want 1", f.KeyCount())
	}
}

// tunnelModel is testModel for alice with a certificate tunnel whose peers'
// chains must end in the CA caPEM.
func tunnelModel(t *testing.T, caPEM []byte) swan.Model {
	m := testModel(t, "alice")
	m.Certs = append(m.Certs, swan.Cert{Name: "tunnel-ca", Type: "x509ca", PEM: caPEM})
	tun := mobileConn("tunnel")
	tun.Remote = []swan.Auth{{Method: "pubkey", ID: "peer.example.com", CACerts: []string{"tunnel-ca"}}}
	m.Connections = append(m.Connections, tun)
	return m
}

func TestChangingOneCATouchesOnlyIt(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, tunnelModel(t, creds(t).otherCAPEM))
	for _, tc := range []struct {
		name string
		m    swan.Model
		want []string
	}{
		{"tunnel CA rotated", tunnelModel(t, charontest.NewPKI(t, "Rotated CA").CertPEM), []string{"load-cert", "load-conn tunnel"}},
		{"tunnel and its CA removed", testModel(t, "alice"), []string{"unload-conn tunnel"}},
		{"CA of the authority rotated", func() swan.Model {
			m := testModel(t, "alice")
			m.Certs[0].PEM = charontest.NewPKI(t, "Rotated root").CertPEM
			return m
		}(), []string{"load-cert", "load-authority ca"}},
	} {
		f.ResetCalls()
		apply(t, a, tc.m)
		if diff := cmp.Diff(tc.want, writes(f)); diff != "" {
			t.Errorf("%s: writes (-want +got):\n%s", tc.name, diff)
		}
		f.ResetCalls()
		if apply(t, a, tc.m); len(writes(f)) != 0 {
			t.Errorf("%s: the next Apply wrote %v", tc.name, writes(f))
		}
	}
}

func TestRemovingACANobodyNamesWritesNothing(t *testing.T) {
	f := vicitest.NewFake()
	m := testModel(t, "alice")
	m.Certs = append(m.Certs, swan.Cert{Name: "old-ca", Type: "x509ca", PEM: creds(t).otherCAPEM})
	first := vici.NewApplier(f)
	apply(t, first, m)

	// A restarted agent finds the certificates by content and must not
	// write more.
	for name, a := range map[string]*vici.Applier{"same agent": first, "restarted agent": vici.NewApplier(f)} {
		apply(t, a, m)
		f.ResetCalls()
		apply(t, a, testModel(t, "alice"))
		if w := writes(f); len(w) != 0 {
			t.Errorf("%s: removing a CA no connection names wrote %v", name, w)
		}
	}
}

func TestRenewedServerCertificateReloadsOnlyItsUsers(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice"))
	f.ResetCalls()

	// cert-manager renewed the gateway's certificate: no trust changes, so
	// the users' secrets stay as they are.
	pki := charontest.NewPKI(t, "Test CA 2")
	m := testModel(t, "alice")
	m.Certs[1].PEM = pki.Server(t, "vpn.example.com", "vpn.example.com").CertPEM
	apply(t, a, m)
	want := []string{"load-cert", "load-conn mobile", "load-conn staff"}
	if diff := cmp.Diff(want, writes(f)); diff != "" {
		t.Errorf("Writes (-want +got):\n%s", diff)
	}
}

func TestRefusedItemIsNamedAndRetried(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	f.FailOn("load-shared", "ntlm-bob", "parsing failed")
	m := testModel(t, "alice", "bob", "carol")
	_, err := a.Apply(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "load secret ntlm-bob") || !strings.Contains(err.Error(), "parsing failed") {
		t.Fatalf("Apply error = %v, want one naming bob's secret and charon's message", err)
	}
	if strings.Contains(err.Error(), "secret-of-bob") {
		t.Fatal("Error contains the secret")
	}
	if f.Shared("ntlm-alice") == nil || f.Shared("ntlm-carol") == nil || f.Conn("mobile") == nil {
		t.Error("One refused secret kept the others or the connections from loading")
	}

	f.FailOn("load-shared", "ntlm-bob", "")
	f.ResetCalls()
	apply(t, a, m)
	if diff := cmp.Diff([]string{"load-shared ntlm-bob"}, writes(f)); diff != "" {
		t.Errorf("Retry writes (-want +got):\n%s", diff)
	}
}

func TestUntranslatableItemIsNeitherLoadedNorUnloaded(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice"))
	f.ResetCalls()

	m := testModel(t, "alice")
	m.Connections[1].Local[0].Certs = []string{"missing"}
	_, err := a.Apply(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), `connection staff`) || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("Apply error = %v, want one naming the connection and the certificate", err)
	}
	if w := writes(f); len(w) != 0 {
		t.Errorf("Writes = %v, want none (staff must stay as it was)", w)
	}
}

func TestPoolWithLeasesCannotBeUnloaded(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice"))
	f.SetPoolOnline("staff4", 3)

	m := testModel(t, "alice")
	m.Connections, m.Pools = m.Connections[:1], m.Pools[:1]
	_, err := a.Apply(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "unload pool staff4") || !strings.Contains(err.Error(), "online leases") {
		t.Fatalf("Apply error = %v, want the pool's online leases named", err)
	}
	if f.Conn("staff") != nil {
		t.Error("The connection of the pool was not unloaded")
	}
	f.SetPoolOnline("staff4", 0)
	f.ResetCalls()
	apply(t, a, m)
	if diff := cmp.Diff([]string{"unload-pool staff4"}, writes(f)); diff != "" {
		t.Errorf("Retry writes (-want +got):\n%s", diff)
	}
}

func TestDuplicateNamesAreRefused(t *testing.T) {
	m := testModel(t, "alice", "alice")
	_, err := vici.NewApplier(vicitest.NewFake()).Apply(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "secret ntlm-alice: defined twice") {
		t.Fatalf("Apply error = %v, want duplicate secret reported", err)
	}
}

func BenchmarkPlanOneMoreUser(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := vicitest.NewFake()
			a := vici.NewApplier(f)
			users := make([]string, n)
			for i := range users {
				users[i] = fmt.Sprintf("user%05d", i)
			}
			m := swan.Model{}
			for _, u := range users {
				m.Secrets = append(m.Secrets, ntlm(u))
			}
			if _, err := a.Apply(context.Background(), m); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Secrets = append(m.Secrets[:n], ntlm(fmt.Sprintf("extra%d", i)))
				if _, err := a.Apply(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

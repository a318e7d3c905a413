package swan_test

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/radiusd"
	. "github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

// -update is shared with settings_test.go: whichever file registers it first wins.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files from the current output")
	}
}

func updating() bool { return flag.Lookup("update").Value.String() == "true" }

// testNow is the Build clock of every test: expiry must not depend on the day.
var testNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

const testNS = "vpn"

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: testNS} }

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func newGateway(mods ...func(*v1alpha1.VPNGateway)) v1alpha1.VPNGateway {
	gw := v1alpha1.VPNGateway{
		ObjectMeta: meta("vpn"),
		Spec: v1alpha1.VPNGatewaySpec{
			Hostnames: []v1alpha1.Hostname{"vpn.example.com"},
			Addresses: []v1alpha1.IPAddress{"198.51.100.10"},
		},
	}
	for _, m := range mods {
		m(&gw)
	}
	return gw
}

func newPool(name, ipv4 string, mods ...func(*v1alpha1.MobilePool)) v1alpha1.MobilePool {
	p := v1alpha1.MobilePool{
		ObjectMeta: meta(name),
		Spec: v1alpha1.MobilePoolSpec{
			GatewayRef:    v1alpha1.GatewayReference{Name: "vpn"},
			Addresses:     v1alpha1.PoolAddresses{IPv4: v1alpha1.CIDR(ipv4)},
			LocalNetworks: []v1alpha1.CIDR{"10.3.0.0/24"},
		},
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func selecting(team string) func(*v1alpha1.MobilePool) {
	return func(p *v1alpha1.MobilePool) {
		p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}
	}
}

func newUser(name, identity string, mods ...func(*v1alpha1.VPNUser)) v1alpha1.VPNUser {
	u := v1alpha1.VPNUser{
		ObjectMeta: meta(name),
		Spec: v1alpha1.VPNUserSpec{
			GatewayRef:        v1alpha1.GatewayReference{Name: "vpn"},
			Identity:          v1alpha1.Identity(identity),
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: name, Key: "password"},
		},
	}
	for _, m := range mods {
		m(&u)
	}
	return u
}

func inTeam(team string) func(*v1alpha1.VPNUser) {
	return func(u *v1alpha1.VPNUser) { u.Labels = map[string]string{"team": team} }
}

// password is the test password of a user, derived from its name.
func password(user string) string { return "pw-" + user }

// withUsers adds users and their password Secrets.
func withUsers(in *Resources, users ...v1alpha1.VPNUser) {
	if in.Secrets == nil {
		in.Secrets = map[string]map[string][]byte{}
	}
	for _, u := range users {
		in.Users = append(in.Users, u)
		if r := u.Spec.PasswordSecretRef; r != nil {
			in.Secrets[r.Name] = map[string][]byte{r.Key: []byte(password(u.Name))}
		}
	}
}

func newTunnel(name string, mods ...func(*v1alpha1.Tunnel)) v1alpha1.Tunnel {
	t := v1alpha1.Tunnel{
		ObjectMeta: meta(name),
		Spec: v1alpha1.TunnelSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "vpn"},
			Remote:     v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.20"}, Identity: "branch.example.net"},
			Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: name + "-psk", Key: "psk"}}},
			Children: []v1alpha1.TunnelChild{{
				Name:           "lan",
				LocalNetworks:  []v1alpha1.CIDR{"10.3.0.0/24"},
				RemoteNetworks: []v1alpha1.CIDR{"10.20.0.0/16"},
			}},
		},
	}
	for _, m := range mods {
		m(&t)
	}
	return t
}

// testPKI is the certificate material of every test gateway. File contents
// never enter swanctl.conf, so goldens do not depend on it.
type testPKI struct {
	ca, peerCA, clientCA *charontest.PKI
	server               charontest.Leaf
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{
		ca:       charontest.NewPKI(t, "ikegate test CA"),
		peerCA:   charontest.NewPKI(t, "branch CA"),
		clientCA: charontest.NewPKI(t, "client CA"),
	}
	p.server = p.ca.Server(t, "vpn.example.com", "vpn.example.com", "198.51.100.10")
	return p
}

func (p *testPKI) apply(in *Resources) {
	in.ServerCertPEM = p.server.CertPEM
	in.ServerKeyPEM = p.server.KeyPEM
	in.CAPEM = p.ca.CertPEM
	if in.Secrets == nil {
		in.Secrets = map[string]map[string][]byte{}
	}
	in.Secrets["client-ca"] = map[string][]byte{"ca.crt": p.clientCA.CertPEM}
	in.Secrets["branch-ca"] = map[string][]byte{"ca.crt": p.peerCA.CertPEM}
}

// loadExample reads a directory of example manifests.
func loadExample(t testing.TB, dir string) Resources {
	t.Helper()
	var all Manifests
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("No manifests in %s: %v", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeManifests(r, f)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		all.Append(m)
	}
	in, err := all.Resources("", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// checkGolden compares got with testdata/<test name>.golden, or writes it with -update.
func checkGolden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+".golden")
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("Rendered configuration differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, a, b)
		}
	}
	return "texts differ in line endings"
}

// charonHost is one charon shared by the subtests of a test: swanctl
// --load-all replaces its whole configuration each time.
type charonHost struct {
	c *charontest.Charon
}

// startCharonHost starts a charon if the test may use namespaces; without
// root it returns nil and acceptance checks skip (or fail in CI).
func startCharonHost(t *testing.T) *charonHost {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	ns := netns.New(t, "swan")
	return &charonHost{c: charontest.Start(t, ns, charontest.Options{Name: "swan"})}
}

var (
	reConnLine  = regexp.MustCompile(`(?m)^([^\s:][^:]*): IKEv[12]`)
	reChildLine = regexp.MustCompile(`(?m)^  ([^\s:][^:]*): (TUNNEL|TRANSPORT|PASS|DROP)`)
	rePoolLine  = regexp.MustCompile(`(?m)^(\S+)\s+(\S+)\s+(\d+) / (\d+) / (\d+)\s*$`)
)

// accepts loads m into the shared charon and checks that charon took every
// connection, child, pool, secret, certificate and key of it.
func (h *charonHost) accepts(t *testing.T, m Model) {
	t.Helper()
	if h == nil {
		require.Root(t)
		t.Fatal("No charon although running as root")
	}
	// Credentials of the previous subtest must not be loaded with this one.
	for _, d := range []string{DirX509, DirX509CA, DirPrivate} {
		dir := filepath.Join(h.c.SwanctlDir(), d)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := Render(m, RenderOptions{ShowSecrets: true})
	out, err := h.c.LoadAll(conf, Files(m))
	if err != nil {
		t.Fatalf("charon refused the configuration: %v\n%s\n--- swanctl.conf ---\n%s", err, out, conf)
	}
	for _, want := range []string{
		fmt.Sprintf("successfully loaded %d connections", len(m.Connections)),
		fmt.Sprintf("successfully loaded %d pools", len(m.Pools)),
	} {
		if len(m.Connections) == 0 && strings.Contains(want, "connections") || len(m.Pools) == 0 && strings.Contains(want, "pools") {
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("swanctl did not report %q:\n%s", want, out)
		}
	}
	for _, s := range m.Secrets {
		want := fmt.Sprintf("loaded %s secret '%s'", strings.ToLower(s.Type), SecretSection(s))
		if !strings.Contains(out, want) {
			t.Errorf("swanctl did not report %q", want)
		}
	}
	if got, want := strings.Count(out, "loaded certificate from"), len(Files(m))-countKeys(m); got != want {
		t.Errorf("charon loaded %d certificates, want %d:\n%s", got, want, out)
	}
	if got, want := strings.Count(out, "loaded private key from")+strings.Count(out, "loaded ecdsa key from")+strings.Count(out, "loaded rsa key from"), countKeys(m); got != want {
		t.Errorf("charon loaded %d private keys, want %d:\n%s", got, want, out)
	}

	list, err := h.c.Swanctl("--list-conns")
	if err != nil {
		t.Fatal(err)
	}
	var gotConns, wantConns []string
	for _, mm := range reConnLine.FindAllStringSubmatch(list, -1) {
		gotConns = append(gotConns, mm[1])
	}
	var gotChildren, wantChildren []string
	for _, mm := range reChildLine.FindAllStringSubmatch(list, -1) {
		gotChildren = append(gotChildren, mm[1])
	}
	for _, c := range m.Connections {
		wantConns = append(wantConns, SectionName(c.Name))
		for _, ch := range c.Children {
			wantChildren = append(wantChildren, SectionName(ch.Name))
		}
	}
	slices.Sort(gotConns)
	slices.Sort(gotChildren)
	slices.Sort(wantChildren)
	if !slices.Equal(gotConns, wantConns) {
		t.Errorf("swanctl --list-conns shows connections %v, want %v", gotConns, wantConns)
	}
	if !slices.Equal(gotChildren, wantChildren) {
		t.Errorf("swanctl --list-conns shows children %v, want %v", gotChildren, wantChildren)
	}

	pools, err := h.c.Swanctl("--list-pools")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, mm := range rePoolLine.FindAllStringSubmatch(pools, -1) {
		got[mm[1]] = [2]string{mm[2], mm[5]}
	}
	if len(got) != len(m.Pools) {
		t.Errorf("swanctl --list-pools shows %d pools, want %d:\n%s", len(got), len(m.Pools), pools)
	}
	for _, p := range m.Pools {
		base, size := poolBaseSize(t, p.Addrs)
		if g, ok := got[SectionName(p.Name)]; !ok || g[0] != base || g[1] != size {
			t.Errorf("swanctl --list-pools shows pool %s as %v, want base %s size %s:\n%s", p.Name, g, base, size, pools)
		}
	}
}

func countKeys(m Model) int {
	n := 0
	for _, k := range m.Keys {
		if len(k.PEM) > 0 {
			n++
		}
	}
	return n
}

// poolBaseSize is what swanctl --list-pools prints for a pool. For a CIDR: the
// network address as base, and a size without the network and the last
// (broadcast) address, for both families.
func poolBaseSize(t *testing.T, cidr string) (string, string) {
	t.Helper()
	if from, to, ok := strings.Cut(cidr, "-"); ok {
		// A range holds both of its ends.
		a, err1 := netip.ParseAddr(from)
		b, err2 := netip.ParseAddr(to)
		if err1 != nil || err2 != nil {
			t.Fatalf("Pool range %q: %v %v", cidr, err1, err2)
		}
		n := uint64(1)
		for x := a; x != b; x = x.Next() {
			n++
		}
		return a.String(), strconv.FormatUint(n, 10)
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("Pool %q is not a CIDR: %v", cidr, err)
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	// charon's memory pools hold at most 2^31 addresses.
	size := uint64(1)<<min(hostBits, 31) - 2
	return p.Addr().String(), strconv.FormatUint(size, 10)
}

// loadGateway makes gw hold what Build decided, as a gateway pod would:
// the model loaded over swanctl and the users served by a RADIUS server
// like the agent's (with AgentRADIUS; nil otherwise). The returned Map
// changes the users under it.
func loadGateway(t *testing.T, gw *charontest.Charon, res Result) *radiusd.Map {
	t.Helper()
	if out, err := gw.LoadAll(Render(res.Model, RenderOptions{ShowSecrets: true}), Files(res.Model)); err != nil {
		t.Fatalf("Loading the gateway: %v\n%s", err, out)
	}
	if !res.AgentRADIUS {
		return nil
	}
	return gw.ServeUsers(t, res.Users)
}

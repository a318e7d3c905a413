package swan_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // the oracle of MS-CHAPv2's NT hash

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

func created(h int) metav1.Time {
	return metav1.NewTime(time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC))
}

// TestOlderPoolKeepsServing: of two overlapping pools the older one serves,
// whatever the names; a newer pool never displaces a working one.
func TestOlderPoolKeepsServing(t *testing.T) {
	old := newPool("zeta", "10.3.200.0/24")
	old.CreationTimestamp = created(1)
	young := newPool("alpha", "10.3.200.0/23", selecting("x"))
	young.CreationTimestamp = created(2)
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{young, old}}
	withUsers(&in, newUser("alice", "alice@example.com"), newUser("xavier", "x@example.com", inTeam("x")))
	res := Build(in)
	if _, ok := res.Pool("zeta"); !ok {
		t.Fatalf("The older pool zeta is not served: %v", res.Problems)
	}
	if _, ok := res.Pool("alpha"); ok {
		t.Fatal("The newer overlapping pool alpha is served")
	}
	ps := problemsOf(res, KindMobilePool, "alpha")
	if len(ps) != 1 || ps[0].Reason != v1alpha1.ReasonPoolOverlap {
		t.Fatalf("alpha's problems %v, want one PoolOverlap", ps)
	}
	want := []RefusedRange{{Kind: KindMobilePool, Name: "alpha", Prefix: netip.MustParsePrefix("10.3.200.0/23")}}
	if !slices.Equal(res.Refused, want) {
		t.Errorf("Refused = %v, want %v", res.Refused, want)
	}
	// The other way round, alpha serves and zeta is refused.
	in.Pools[0].CreationTimestamp, in.Pools[1].CreationTimestamp = created(1), created(2)
	res = Build(in)
	if _, ok := res.Pool("alpha"); !ok {
		t.Fatalf("alpha, now older, is not served: %v", res.Problems)
	}
	if ps := problemsOf(res, KindMobilePool, "zeta"); len(ps) != 1 || ps[0].Reason != v1alpha1.ReasonPoolOverlap {
		t.Errorf("zeta's problems %v, want one PoolOverlap", ps)
	}
}

// TestTunnelAndPoolOverlap: a Tunnel whose remote networks hold an older
// pool's addresses is refused, and so is a pool inside an older tunnel's.
func TestTunnelAndPoolOverlap(t *testing.T) {
	pool := newPool("staff", "10.3.200.0/24")
	pool.CreationTimestamp = created(1)
	tn := newTunnel("site", func(tn *v1alpha1.Tunnel) {
		tn.Spec.Children[0].RemoteNetworks = []v1alpha1.CIDR{"10.3.0.0/16"}
		tn.Spec.Children[0].LocalNetworks = []v1alpha1.CIDR{"10.9.0.0/24"}
	})
	tn.CreationTimestamp = created(2)
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{pool}, Tunnels: []v1alpha1.Tunnel{tn}}
	withUsers(&in, newUser("alice", "alice@example.com"))
	in.Secrets["site-psk"] = map[string][]byte{"psk": []byte("a long pre-shared key")}
	res := Build(in)
	if len(res.Tunnels) != 0 || len(res.Pools) != 1 {
		t.Fatalf("Tunnels %v, pools %v: want the pool only (problems %v)", res.Tunnels, res.Pools, res.Problems)
	}
	if ps := problemsOf(res, KindTunnel, "site"); len(ps) != 1 || ps[0].Reason != v1alpha1.ReasonPoolOverlap {
		t.Errorf("site's problems %v, want one PoolOverlap", ps)
	}
	in.Tunnels[0].CreationTimestamp = created(0)
	res = Build(in)
	if len(res.Tunnels) != 1 || len(res.Pools) != 0 {
		t.Fatalf("Tunnels %v, pools %v: want the older tunnel only (problems %v)", res.Tunnels, res.Pools, res.Problems)
	}
	got := res.Tunnels[0]
	if got.Connection != TunnelConnectionName("site") || len(got.Children) != 1 ||
		!slices.Equal(got.Children[0].RemoteNetworks, []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16")}) {
		t.Errorf("Accepted tunnel %+v", got)
	}
}

// TestResultUsers: the users that may hold sessions, with the connection
// each ends up on, and none that is disabled.
func TestResultUsers(t *testing.T) {
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{
		newPool("staff", "10.3.200.0/24"), newPool("sales", "10.3.210.0/24", selecting("sales")),
	}}
	withUsers(&in, newUser("alice", "alice@example.com"), newUser("sam", "sam@example.com", inTeam("sales"), func(u *v1alpha1.VPNUser) { u.Spec.MaxSessions = ptr.To[int32](1) }),
		newUser("off", "off@example.com", func(u *v1alpha1.VPNUser) { u.Spec.Disabled = true }))
	res := Build(in)
	want := []AcceptedUser{
		{Name: "alice", Identity: "alice@example.com", Method: "eap-radius", Connection: MobileConnectionName("staff"), MaxSessions: v1alpha1.DefaultMaxSessionsPerUser, NTHash: testNTHash(in, "alice"), Group: GroupClass("staff", "")},
		{Name: "sam", Identity: "sam@example.com", Method: "eap-radius", Connection: MobileConnectionName("sales"), MaxSessions: 1, NTHash: testNTHash(in, "sam"), Group: GroupClass("sales", "")},
	}
	if !res.LocalUsers || !res.AgentRADIUS || !slices.Equal(res.Users, want) {
		t.Errorf("Users = %+v (local %v)\nwant %+v", res.Users, res.LocalUsers, want)
	}
	for _, u := range res.Users {
		if !slices.ContainsFunc(res.Model.Connections, func(c Connection) bool { return c.Name == u.Connection }) {
			t.Errorf("User %s's connection %s is not in the model", u.Name, u.Connection)
		}
	}
}

func problemsOf(res Result, kind, name string) []Problem {
	var out []Problem
	for _, p := range res.Problems {
		if p.Kind == kind && p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// testNTHash is the NT hash of user's password in in, computed here as
// RFC 2759 defines it: MD4 over the UTF-16LE password.
func testNTHash(in Resources, user string) [16]byte {
	h := md4.New()
	for _, c := range utf16.Encode([]rune(string(in.Secrets[user]["password"]))) {
		h.Write([]byte{byte(c), byte(c >> 8)})
	}
	return [16]byte(h.Sum(nil))
}

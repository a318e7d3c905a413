package swan_test

import (
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

func TestSliceOwnersAreBalanced(t *testing.T) {
	for n := 1; n <= Slices; n++ {
		counts := make([]int, n)
		for _, o := range SliceOwners(n) {
			if o < 0 || o >= n {
				t.Fatalf("%d replicas: slice owned by %d", n, o)
			}
			counts[o]++
		}
		if hi, lo := slices.Max(counts), slices.Min(counts); hi-lo > 1 {
			t.Errorf("%d replicas own %v slices: differ by more than one", n, counts)
		}
	}
}

func TestScalingMovesSlicesOnlyToOrFromTheReplicaThatComesOrGoes(t *testing.T) {
	for n := 1; n < Slices; n++ {
		before, after := SliceOwners(n), SliceOwners(n+1)
		for i := range Slices {
			if before[i] != after[i] && after[i] != n {
				t.Errorf("%d -> %d replicas: slice %d moved from %d to %d, which was there before", n, n+1, i, before[i], after[i])
			}
		}
	}
}

func TestSlicesCoverThePoolOnce(t *testing.T) {
	for _, c := range []struct {
		cidr string
		bits int // of each slice
	}{{"10.3.200.0/24", 28}, {"10.8.0.0/27", 31}, {"10.0.0.0/8", 12}, {"fd00:1::/64", 101}} {
		p := netip.MustParsePrefix(c.cidr)
		next := p.Addr()
		for i := range Slices {
			s := Slice(p, i)
			if s.Addr() != next || s.Bits() != c.bits {
				t.Fatalf("%s: slice %d = %s; want %s/%d", c.cidr, i, s, next, c.bits)
			}
			next = lastOf(s).Next()
			for _, a := range []netip.Addr{s.Addr(), lastOf(s)} {
				if j, ok := SliceOf(p, a); !ok || j != i {
					t.Errorf("%s: SliceOf(%s) = %d, %v; want %d", c.cidr, a, j, ok, i)
				}
			}
		}
	}
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// replicaPools builds the seed's pool for each replica of a gateway with
// n replicas and returns each replica's charon pool ranges.
func replicaPools(t *testing.T, n int, mods ...func(*Resources)) [][]string {
	t.Helper()
	var out [][]string
	for r := range n {
		in := Resources{Gateway: newGateway(), Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}, Replica: Replica{Ordinal: r, Count: n}}
		withUsers(&in, newUser("jimp", "jimp@example.com"))
		for _, m := range mods {
			m(&in)
		}
		res := Build(in)
		if len(res.Problems) > 0 {
			t.Fatalf("replica %d: %v", r, res.Problems)
		}
		var ranges []string
		for _, p := range res.Model.Pools {
			ranges = append(ranges, p.Addrs)
		}
		out = append(out, ranges)
	}
	return out
}

// addrs expands charon ranges "a-b" into addresses.
func addrs(t *testing.T, ranges []string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, r := range ranges {
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			t.Fatalf("pool %q is no range", r)
		}
		for a := netip.MustParseAddr(lo); !netip.MustParseAddr(hi).Less(a); a = a.Next() {
			out = append(out, a)
		}
	}
	return out
}

func TestReplicasServeDisjointSlicesThatTogetherAreThePool(t *testing.T) {
	whole := addrs(t, replicaPools(t, 1)[0])
	for _, n := range []int{2, 3, 16} {
		seen := map[netip.Addr]int{}
		for r, ranges := range replicaPools(t, n) {
			for _, a := range addrs(t, ranges) {
				if o, dup := seen[a]; dup {
					t.Fatalf("%d replicas: %s served by replicas %d and %d", n, a, o, r)
				}
				seen[a] = r
			}
		}
		if len(seen) != len(whole) {
			t.Errorf("%d replicas serve %d addresses, one replica %d", n, len(seen), len(whole))
		}
	}
}

func TestAWithheldSliceIsNotServedAndTheOthersKeepTheirPools(t *testing.T) {
	in := Resources{Gateway: newGateway(), Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}, Replica: Replica{Ordinal: 1, Count: 2}}
	withUsers(&in, newUser("jimp", "jimp@example.com"))
	all := Build(in).Model.Pools
	owned := in.Replica.Owned()
	in.Replica.Withheld = owned[:1]
	some := Build(in).Model.Pools
	if len(some) != len(all)-1 {
		t.Fatalf("withholding one slice left %d of %d pools", len(some), len(all))
	}
	for _, p := range some {
		if !slices.ContainsFunc(all, func(q Pool) bool { return reflect.DeepEqual(p, q) }) {
			t.Errorf("pool %+v changed when another slice was withheld", p)
		}
		if strings.HasSuffix(p.Name, "-s"+strconv.Itoa(owned[0])) {
			t.Errorf("withheld slice %d still served as %s", owned[0], p.Name)
		}
	}
}

func TestStaticAddressesAreHolesInTheirSliceAndServedByEveryReplica(t *testing.T) {
	static := func(in *Resources) {
		withUsers(in, newUser("boss", "boss@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.200.7" }))
	}
	for r, ranges := range replicaPools(t, 2, static) {
		n := 0
		for _, a := range addrs(t, ranges) {
			if a == netip.MustParseAddr("10.3.200.7") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("replica %d serves 10.3.200.7 %d times, want once (its static pool): %v", r, n, ranges)
		}
	}
}

func TestAPoolTooSmallToSplitIsRefused(t *testing.T) {
	in := Resources{Gateway: newGateway(), Pools: []v1alpha1.MobilePool{newPool("tiny", "10.3.200.0/28")}, Replica: Replica{Ordinal: 0, Count: 2}}
	withUsers(&in, newUser("jimp", "jimp@example.com"))
	res := Build(in)
	if len(res.Pools) != 0 || !slices.ContainsFunc(res.Problems, func(p Problem) bool {
		return p.Kind == KindMobilePool && p.Reason == v1alpha1.ReasonInvalidSpec && strings.Contains(p.Message, "/27")
	}) {
		t.Errorf("pools %v, problems %v; want the pool refused as InvalidSpec naming /27", res.Pools, res.Problems)
	}
	in.Replica = Replica{}
	if res := Build(in); len(res.Problems) != 0 {
		t.Errorf("one replica: problems = %v; the pool needs no split", res.Problems)
	}
}

func TestAcceptedPoolNamesTheReplicasSlices(t *testing.T) {
	in := Resources{Gateway: newGateway(), Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}, Replica: Replica{Ordinal: 1, Count: 2}}
	withUsers(&in, newUser("jimp", "jimp@example.com"))
	p, ok := func() (*AcceptedPool, bool) { res := Build(in); return res.Pool("staff") }()
	if !ok {
		t.Fatal("pool not accepted")
	}
	want := ReplicaPrefixes(netip.MustParsePrefix("10.3.200.0/24"), in.Replica)
	if !slices.Equal(p.Served, want) || len(want) != Slices/2 {
		t.Errorf("Served = %v, want the replica's %d slices %v", p.Served, Slices/2, want)
	}
}

func TestATunnelOfSplitReplicasLeavesFromTheHoldersOwnAddress(t *testing.T) {
	in := Resources{Gateway: newGateway(func(gw *v1alpha1.VPNGateway) { gw.Spec.Addresses = append(gw.Spec.Addresses, "198.51.100.11") }),
		Tunnels: []v1alpha1.Tunnel{newTunnel("hq")}}
	in.Secrets = map[string]map[string][]byte{"hq-psk": {"psk": []byte("a tunnel key long enough")}}
	local := func(r Replica) []string {
		in.Replica = r
		res := Build(in)
		for _, c := range res.Model.Connections {
			if c.Name == TunnelConnectionName("hq") {
				return c.LocalAddrs
			}
		}
		t.Fatalf("no tunnel connection: %v", res.Problems)
		return nil
	}
	if got := local(Replica{}); !slices.Equal(got, []string{"198.51.100.10", "198.51.100.11"}) {
		t.Errorf("one replica: local addresses %v, want the gateway's", got)
	}
	if got := local(Replica{Ordinal: 1, Count: 2}); len(got) != 0 {
		t.Errorf("replica 1 of 2: local addresses %v, want none (the route's source)", got)
	}
}

func TestAStaticAddressBelongsToTheOwnerOfItsSlice(t *testing.T) {
	p := netip.MustParsePrefix("10.3.200.0/24")
	tests := []struct {
		addr         string
		count, owner int
	}{
		{"10.3.200.5", 2, 0},   // slice 0
		{"10.3.200.200", 2, 1}, // slice 12
		{"10.3.200.200", 1, 0}, // one replica serves everything
		{"10.3.200.100", 3, 2}, // slice 6: replica 2's of three
	}
	for _, tt := range tests {
		if got := OwnerOf(p, netip.MustParseAddr(tt.addr), tt.count); got != tt.owner {
			t.Errorf("OwnerOf(%s, %d replicas) = %d, want %d", tt.addr, tt.count, got, tt.owner)
		}
	}
	if got := OwnerOf(netip.MustParsePrefix("10.3.200.0/28"), netip.MustParseAddr("10.3.200.9"), 2); got != 0 {
		t.Errorf("a pool too small to split belongs to replica %d, want 0", got)
	}
}

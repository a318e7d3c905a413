package swan

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// How the replicas of a gateway share its pools.
//
// Every pool's served range (servedRange's prefix: the pool, or its first
// 2^31 addresses) is cut into Slices equal sub-prefixes, and every slice
// belongs to exactly one replica, so no two replicas hand out one address
// and the LAN can route a slice to the node of its replica.
//
// SliceOwners decides which replica owns which slice. It is a pure
// function of the replica count, built up one replica at a time: with one
// replica it owns everything; replica n joins by taking, one at a time, the
// highest slice of the replica that owns the most (the lowest ordinal among
// equals) until no replica owns more than one slice more than it. So:
//   - the split is balanced: owners differ by at most one slice;
//   - scaling from n to n+1 replicas moves slices only to the new replica,
//     and scaling back from n+1 to n (a StatefulSet removes the highest
//     ordinal) moves only the removed replica's slices, back to where they
//     were: no replica that stays loses a slice on a scale-down, and none
//     gains one from another that stays on a scale-up;
//   - a client reconnecting to the replica it was on gets its address back
//     (charon remembers it per identity) unless its slice went to a new
//     replica.
//
// A slice that moves to a new replica on a scale-up may still hold leases
// of connected clients on its previous owner, which keeps them (charon
// does not unload a pool that holds leases). The new owner therefore
// withholds such a slice (Replica.Withheld, from the previous owner's
// report) until those clients have left, so no address is ever handed out
// twice.
const Slices = 16

// sliceBits is log2(Slices): how much longer a slice's prefix is than its pool's.
const sliceBits = 4

// minSplitHostBits is the smallest pool that can be split: each slice must
// hold at least two addresses, so that the first and the last slice, which
// lose the network and the last address, still serve one.
const minSplitHostBits = sliceBits + 1

// Replica says which gateway pod Build configures. A Count of 0 or 1 means
// the pod serves every address of every pool, unless its Ordinal is not
// below Count (a pod being scaled away): then it owns no slice.
type Replica struct {
	// Ordinal is the pod's StatefulSet ordinal, Count the gateway's replicas.
	Ordinal, Count int
	// Withheld are slices the replica owns but does not serve yet, because
	// another current replica still holds leases in them (see Slices).
	Withheld []int
}

// Split reports whether the pools are divided between replicas.
func (r Replica) Split() bool { return r.Count > 1 || (r.Count == 1 && r.Ordinal >= 1) }

// SliceOwners returns the ordinal that owns each slice when count replicas
// run; count is clamped to [1, Slices].
func SliceOwners(count int) [Slices]int {
	var owners [Slices]int
	count = min(max(count, 1), Slices)
	held := make([][]int, count)
	for i := range Slices {
		held[0] = append(held[0], i)
	}
	for n := 1; n < count; n++ {
		for {
			donor := 0
			for r := 1; r < n; r++ {
				if len(held[r]) > len(held[donor]) {
					donor = r
				}
			}
			if len(held[donor])-len(held[n]) <= 1 {
				break
			}
			last := len(held[donor]) - 1
			held[n] = append(held[n], held[donor][last])
			held[donor] = held[donor][:last]
			slices.Sort(held[n])
		}
	}
	for r, ss := range held {
		for _, s := range ss {
			owners[s] = r
		}
	}
	return owners
}

// Owned are the slices the replica owns, ascending; all of them when the
// pools are not split.
func (r Replica) Owned() []int {
	owners := SliceOwners(r.Count)
	var out []int
	for i, o := range owners {
		if !r.Split() || o == r.Ordinal {
			out = append(out, i)
		}
	}
	return out
}

// served are the slices the replica hands addresses out of: owned and not withheld.
func (r Replica) served() []int {
	return slices.DeleteFunc(r.Owned(), func(i int) bool { return slices.Contains(r.Withheld, i) })
}

// splitPrefix is the prefix whose slices a pool of p is cut into: the
// prefix servedRange hands out of.
func splitPrefix(p netip.Prefix) netip.Prefix {
	if host := p.Addr().BitLen() - p.Bits(); host > poolLimitBits {
		return netip.PrefixFrom(p.Addr(), p.Addr().BitLen()-poolLimitBits)
	}
	return p
}

// Slice is the i-th slice of a pool of p. Pools too small to split (see
// CanSplit) have none.
func Slice(p netip.Prefix, i int) netip.Prefix {
	sp := splitPrefix(p.Masked())
	host := sp.Addr().BitLen() - sp.Bits() - sliceBits
	b := sp.Addr().AsSlice()
	// The slice index goes into the sliceBits bits after the pool's prefix.
	for bit := range sliceBits {
		if i&(1<<(sliceBits-1-bit)) != 0 {
			pos := sp.Bits() + bit
			b[pos/8] |= 0x80 >> (pos % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, a.BitLen()-host)
}

// SliceOf is the index of the slice of a pool of p that holds a, if any.
func SliceOf(p netip.Prefix, a netip.Addr) (int, bool) {
	sp := splitPrefix(p.Masked())
	if !sp.Contains(a) || sp.Addr().BitLen()-sp.Bits() < minSplitHostBits {
		return 0, false
	}
	b := a.AsSlice()
	i := 0
	for bit := range sliceBits {
		pos := sp.Bits() + bit
		i <<= 1
		if b[pos/8]&(0x80>>(pos%8)) != 0 {
			i |= 1
		}
	}
	return i, true
}

// CanSplit reports whether a pool of p is large enough to be divided
// between replicas.
func CanSplit(p netip.Prefix) bool {
	sp := splitPrefix(p)
	return sp.Addr().BitLen()-sp.Bits() >= minSplitHostBits
}

// ReplicaPrefixes are the slices of p that the replica owns, ascending;
// p itself when the pools are not split.
func ReplicaPrefixes(p netip.Prefix, r Replica) []netip.Prefix {
	if !r.Split() || !CanSplit(p) {
		return []netip.Prefix{p.Masked()}
	}
	var out []netip.Prefix
	for _, i := range r.Owned() {
		out = append(out, Slice(p, i))
	}
	return out
}

// checkSplit reports a pool too small to be divided between the gateway's replicas.
func (b *builder) checkSplit(p *v1alpha1.MobilePool, addrs []netip.Prefix) bool {
	if !b.in.Replica.Split() {
		return true
	}
	for _, a := range addrs {
		if !CanSplit(a) {
			b.problem(v1alpha1.ReasonInvalidSpec, KindMobilePool, p.Name,
				"addresses %s are too few to split between %d replicas: each of the %d slices needs at least 2 addresses (a /%d or larger)",
				a, b.in.Replica.Count, Slices, a.Addr().BitLen()-minSplitHostBits)
			return false
		}
	}
	return true
}

// addrRange is one charon pool of a MobilePool's addresses: its name and a
// range "first-last".
type addrRange struct{ name, addrs string }

// dynamicPools are the charon pools a replica serves of the pool prefix p
// (charon pool name base) without the static addresses holes (sorted).
// Unsplit, they are what earlier versions rendered: one range named base,
// or ranges named after themselves around the holes. Split, every served
// slice is a pool of its own named after its index, so that a slice
// withheld or moved is loaded or unloaded alone and the others keep their
// leases.
func (b *builder) dynamicPools(base string, p netip.Prefix, holes []netip.Addr) []addrRange {
	r := b.in.Replica
	if !r.Split() {
		first, last := servedRange(p)
		return namedRanges(base, first, last, holes, len(holes) == 0)
	}
	first, last := servedRange(p)
	var out []addrRange
	for _, i := range r.served() {
		s := Slice(p, i)
		lo, hi := s.Addr(), lastAddr(s)
		if lo.Less(first) {
			lo = first
		}
		if last.Less(hi) {
			hi = last
		}
		var in []netip.Addr
		for _, h := range holes {
			if s.Contains(h) {
				in = append(in, h)
			}
		}
		out = append(out, namedRanges(modelName(base+"-s", strconv.Itoa(i), ""), lo, hi, in, len(in) == 0)...)
	}
	return out
}

// namedRanges are the ranges of [first, last] around holes. keepName names
// the only range base; otherwise each is named after its range, since
// charon replaces a pool only while nobody holds a lease from it, so a
// range that changes with a new static address becomes a new pool and the
// old one drains.
func namedRanges(base string, first, last netip.Addr, holes []netip.Addr, keepName bool) []addrRange {
	if keepName {
		return []addrRange{{base, first.String() + "-" + last.String()}}
	}
	var out []addrRange
	for _, r := range rangesAround(first, last, holes) {
		out = append(out, addrRange{modelName(base+"-", strings.ReplaceAll(r, ":", "_"), ""), r})
	}
	return out
}

// String names a replica in messages.
func (r Replica) String() string { return fmt.Sprintf("replica %d of %d", r.Ordinal, r.Count) }

// served are the slices of the pool prefixes addrs that the replica owns.
func (b *builder) served(addrs []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		out = append(out, ReplicaPrefixes(a, b.in.Replica)...)
	}
	return out
}

// OwnerOf is the ordinal of the replica, of count, that owns the slice of
// the pool prefix p holding a: the replica the LAN routes a to on a
// Routed return path. A pool that is not split (one replica, or too small)
// belongs to replica 0.
func OwnerOf(p netip.Prefix, a netip.Addr, count int) int {
	if count <= 1 || !CanSplit(p) {
		return 0
	}
	s, ok := SliceOf(p, a)
	if !ok {
		return 0
	}
	return SliceOwners(count)[s]
}

// Package firewall models the host firewall of one VPN gateway as an nftables
// ruleset and applies it through netlink (github.com/google/nftables).
//
// Each gateway owns exactly one table of family inet, so removing a gateway's
// firewall is one table delete and gateways sharing a node never touch each
// other's rules. Build turns a plain Config into a Ruleset, a pure and
// deterministic value; RenderNft prints it the way `nft list table` does (for
// humans and golden files); Applier makes the kernel match it.
//
// Every base chain uses policy accept: the gateway may run with host
// networking next to other workloads, so the table only decides about VPN
// traffic (pool sources, tunnel networks) and leaves the rest of the node alone.
// An accept verdict here does not override a drop in another table.
package firewall

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// DataPlane selects how decrypted traffic enters the gateway's forwarding path.
type DataPlane string

const (
	// DataPlaneKernel: ESP is handled by the kernel's XFRM stack; decrypted
	// packets carry a secpath, matched with `meta ipsec exists`.
	DataPlaneKernel DataPlane = "Kernel"
	// DataPlaneUserspace: charon's kernel-libipsec plugin handles ESP and
	// hands decrypted packets to the kernel through a TUN device, matched by name.
	DataPlaneUserspace DataPlane = "Userspace"
)

// DefaultTunDevice is the TUN device strongSwan's kernel-libipsec plugin creates.
const DefaultTunDevice = "ipsec0"

// DefaultMSS is the TCP MSS that SYNs of IPv4 connections through a tunnel are
// clamped to; IPv6 SYNs get DefaultMSS-20 (their header is 20 bytes longer).
//
// It is the largest MSS that fits every ESP encapsulation the gateway may
// negotiate over a 1500-byte path, including NAT traversal and an IPv6 outer
// header. Worst case: outer IPv6 header 40, UDP encapsulation 8, ESP header
// (SPI + sequence) 8, AES-CBC IV 16, ICV 32 (HMAC-SHA2-512-256):
//
//	1500 - 40 - 8 - 8 - 16 - 32 = 1396 bytes left for the encrypted part,
//	which CBC pads to a 16-byte multiple: 1392, of which the ESP trailer
//	(pad length + next header) takes 2 -> inner packet <= 1390,
//	minus inner IPv4 (20) and TCP (20) headers -> MSS 1350
//	(inner IPv6: 1390 - 40 - 20 = 1330 = DefaultMSS - 20).
//
// The commonly quoted 1360 only holds for an IPv4 outer header (the same sum
// with 20 instead of 40 gives 1366). AES-GCM (IV 8, ICV 16, 4-byte padding)
// would allow about 1398 over IPv4, close to the 1400 pfSense suggests as a
// starting point, but a clamp must cover the worst proposal a peer can pick.
// TCP options are not counted: senders subtract them from the MSS themselves.
const DefaultMSS = 1350

// ipv6MSSDelta is how much smaller the MSS of an IPv6 SYN is than an IPv4 one
// for the same path MTU.
const ipv6MSSDelta = 20

// Protocol of an allow rule.
type Protocol string

const (
	ProtocolAny  Protocol = "Any"
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolICMP Protocol = "ICMP" // ICMP for IPv4 destinations, ICMPv6 for IPv6
)

// PortRange is an inclusive destination port range; From == To is one port.
type PortRange struct {
	From, To uint16
}

func (p PortRange) String() string {
	if p.From == p.To {
		return fmt.Sprint(p.From)
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// AllowRule lets pool traffic through to a destination.
type AllowRule struct {
	// Destination network; the zero Prefix means any destination of the pool
	// address's family.
	Destination netip.Prefix
	// Protocol; empty means Any.
	Protocol Protocol
	// Ports restricts TCP or UDP destination ports; empty means all.
	Ports []PortRange
}

// Pool is a mobile client address pool.
type Pool struct {
	Name string
	// CIDRs are the virtual address ranges handed to clients (IPv4 and/or IPv6).
	CIDRs []netip.Prefix
	// Allow lists what clients may reach; everything else from the pool is
	// dropped and counted.
	Allow []AllowRule
	// Masquerade rewrites the source of pool traffic to the gateway's address
	// on the way out, for LANs that have no route back to the pool.
	Masquerade bool
	// LocalNetworks limits masquerading to these destinations; empty means
	// every destination outside VPN networks (full tunnel egress).
	LocalNetworks []netip.Prefix
}

// Tunnel is a site-to-site connection.
type Tunnel struct {
	Name string
	// Children are its CHILD_SAs. Traffic passes between the local and
	// remote networks of one child, never across children, so a tunnel
	// has at most 2 x the sum over children of |local| x |remote| forward
	// rules: with the API's limit of 1024 pairs per Tunnel, 2,048; and one
	// drop for each of its remote networks, after every accept.
	Children []TunnelChild
}

// TunnelChild is one CHILD_SA of a tunnel.
type TunnelChild struct {
	LocalNetworks  []netip.Prefix
	RemoteNetworks []netip.Prefix
}

// RemoteNetworks are the remote networks of all of the tunnel's children,
// sorted and without duplicates.
func (t Tunnel) RemoteNetworks() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range t.Children {
		out = append(out, c.RemoteNetworks...)
	}
	return compactPrefixes(out)
}

// pairs are the (local, remote) network pairs of the tunnel's children of
// one family, sorted and without duplicates.
func (t Tunnel) pairs() [][2]netip.Prefix {
	var out [][2]netip.Prefix
	for _, c := range t.Children {
		for _, l := range c.LocalNetworks {
			for _, r := range c.RemoteNetworks {
				if familyOf(l) == familyOf(r) {
					out = append(out, [2]netip.Prefix{l, r})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]netip.Prefix) int { return cmp.Or(comparePrefix(a[0], b[0]), comparePrefix(a[1], b[1])) })
	return slices.Compact(out)
}

// Refused is a network whose traffic no accepted pool or tunnel owns: what
// arrives from it through IPsec is dropped and counted.
type Refused struct {
	// Owner names the refused object, e.g. "pool/wide" or "tunnel/hq".
	Owner  string
	Prefix netip.Prefix
}

// Config is everything the firewall of one gateway depends on. It is plain
// data so that the API types map onto it without this package importing them.
type Config struct {
	// Table is the nftables table name; see TableName.
	Table string
	// GatewayAddresses receive IKE (UDP 500, 4500) and ESP. Empty means any
	// local address.
	GatewayAddresses []netip.Addr
	// DataPlane defaults to Kernel.
	DataPlane DataPlane
	// TunDevice is the Userspace data plane's TUN device; default DefaultTunDevice.
	TunDevice string
	// MSS is the clamp value for IPv4 SYNs (IPv6 gets 20 less); 0 means DefaultMSS.
	MSS uint16
	// DisableMSSClamp turns clamping off, for paths known to carry jumbo frames.
	DisableMSSClamp bool
	Pools           []Pool
	Tunnels         []Tunnel
	// Refused are dropped after every accepted pool's and tunnel's rules.
	Refused []Refused
}

// maxTableName keeps table names readable in `nft list tables` and well
// below the kernel limit.
const maxTableName = 27

// TableName is the table of the gateway namespace/name:
// "ikegate-<namespace>-<name>", or, when longer than 27 characters, a
// truncated form ending in a hash of the full name so it stays unique.
func TableName(namespace, name string) string {
	full := "ikegate-" + namespace + "-" + name
	if len(full) <= maxTableName {
		return full
	}
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	h := hex.EncodeToString(sum[:])[:8]
	return strings.TrimRight(full[:maxTableName-len(h)-1], "-") + "-" + h
}

// Family of a rule's addresses.
type Family uint8

const (
	FamilyAny Family = iota
	FamilyIPv4
	FamilyIPv6
)

func familyOf(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// L4 is a transport protocol matched by a rule.
type L4 uint8

const (
	L4Any L4 = iota
	L4TCP
	L4UDP
	L4ICMP
	L4ICMPv6
	L4ESP
)

// Verdict is what a rule does with a matching packet.
type Verdict uint8

const (
	// VerdictNone: the rule only counts or mangles (see Rule.SetMSS).
	VerdictNone Verdict = iota
	VerdictAccept
	VerdictDrop
	VerdictJump
	VerdictMasquerade
)

// Rule is one nftables rule. Matches are ANDed and always emitted in field
// order, so a Rule maps to exactly one expression list and one line of text.
type Rule struct {
	// ID is stable across builds of the same Config and unique in the ruleset;
	// it is stored in the rule's comment so Apply can tell what is installed.
	ID string

	Family   Family // set whenever addresses or ICMP are matched
	IPsecIn  bool   // meta ipsec exists: arrived through a kernel IPsec SA
	IIFName  string
	OIFName  string
	SAddr    netip.Prefix
	DAddr    netip.Prefix
	L4       L4
	DPorts   PortRange // zero: any port
	TCPSyn   bool      // SYN set, RST clear (SYN and SYN/ACK)
	CtState  CtState
	MSSAbove uint16 // tcp option maxseg size > MSSAbove

	// Counter adds an anonymous counter; NamedCounter references a counter
	// object of the table instead (it survives rule changes).
	Counter      bool
	NamedCounter string

	SetMSS  uint16 // tcp option maxseg size set SetMSS
	Verdict Verdict
	Jump    string // target chain of VerdictJump
}

// CtState is a bit set of conntrack states (values as the kernel's).
type CtState uint32

const (
	CtStateInvalid     CtState = 1
	CtStateEstablished CtState = 2
	CtStateRelated     CtState = 4
)

// Hook of a base chain.
type Hook string

const (
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookPostrouting Hook = "postrouting"
)

// Base makes a chain a base chain attached to a netfilter hook.
type Base struct {
	Type     string // "filter" or "nat"
	Hook     Hook
	Priority int32
	// Policy is always accept; see the package documentation.
}

// Chain is a named list of rules; Base is nil for chains reached by jump.
type Chain struct {
	Name  string
	Base  *Base
	Rules []Rule
}

// Ruleset is the complete content of one gateway's table.
type Ruleset struct {
	Table string
	// Counters are named counter objects, sorted.
	Counters []string
	// Chains in creation order: jump targets before the chains jumping to them.
	Chains []Chain
}

// Chain names. Pool chains are "pool-<name>".
const (
	ChainInput       = "input"
	ChainForward     = "forward"
	ChainMSS         = "mss-clamp"
	ChainPostrouting = "postrouting"
)

// Priorities as nft names them.
const (
	priorityMangle = -150
	priorityFilter = 0
	prioritySrcNAT = 100
)

// maxCommentID leaves room in nft's 128-byte comment for the "#digest" suffix.
const maxCommentID = 100

// Build turns cfg into the ruleset of its table. Equal configs give equal
// rulesets; pools and tunnels are ordered by name.
func Build(cfg Config) (*Ruleset, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	dp := cfg.DataPlane
	if dp == "" {
		dp = DataPlaneKernel
	}
	tun := cmp.Or(cfg.TunDevice, DefaultTunDevice)
	b := &builder{dp: dp, tun: tun}

	pools := slices.Clone(cfg.Pools)
	slices.SortFunc(pools, func(a, b Pool) int { return strings.Compare(a.Name, b.Name) })
	tunnels := slices.Clone(cfg.Tunnels)
	slices.SortFunc(tunnels, func(a, b Tunnel) int { return strings.Compare(a.Name, b.Name) })

	rs := &Ruleset{Table: cfg.Table}

	// Pool chains first: a jump needs its target to exist.
	for _, p := range pools {
		rs.Counters = append(rs.Counters, PoolDropCounter(p.Name))
		rs.Chains = append(rs.Chains, b.poolChain(p))
	}
	if len(cfg.Refused) > 0 {
		rs.Counters = append(rs.Counters, CounterRefused)
	}
	for _, t := range tunnels {
		if len(t.Children) > 0 {
			rs.Counters = append(rs.Counters, TunnelDropCounter(t.Name))
		}
	}
	slices.Sort(rs.Counters)

	rs.Chains = append(rs.Chains, b.inputChain(cfg.GatewayAddresses))
	if !cfg.DisableMSSClamp {
		mss := cfg.MSS
		if mss == 0 {
			mss = DefaultMSS
		}
		rs.Chains = append(rs.Chains, b.mssChain(mss, pools, tunnels))
	}
	rs.Chains = append(rs.Chains, b.forwardChain(pools, tunnels, refusedRanges(cfg.Refused)))
	if slices.ContainsFunc(pools, func(p Pool) bool { return p.Masquerade }) {
		rs.Chains = append(rs.Chains, b.natChain(pools, tunnels))
	}

	seen := map[string]bool{}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if seen[r.ID] {
				return nil, fmt.Errorf("internal error: duplicate rule id %q", r.ID)
			}
			seen[r.ID] = true
		}
	}
	return rs, nil
}

// Comment is what Apply stores in the rule's comment: its ID and a digest of
// its content, so a changed rule with an unchanged ID is noticed too.
func (r Rule) Comment() string {
	id := r.ID
	if len(id) > maxCommentID {
		s := sha256.Sum256([]byte(id))
		id = id[:maxCommentID-9] + "~" + hex.EncodeToString(s[:4])
	}
	s := sha256.Sum256([]byte(r.ID + "\x00" + r.text()))
	return id + "#" + hex.EncodeToString(s[:4])
}

// ruleIDFromComment reverses Comment as far as Counters needs it.
func ruleIDFromComment(c string) (id string, ok bool) {
	i := strings.LastIndexByte(c, '#')
	if i < 0 {
		return "", false
	}
	return c[:i], true
}

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
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ikegate/ikegate/internal/names"
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

// maxObjectName bounds the chain and counter names made from pool names.
// The kernel takes 255 bytes (NFT_NAME_MAXLEN 256 with its NUL, in
// linux/netfilter/nf_tables.h since Linux 4.16; 32 before), and pool names
// run to 253; 63 keeps `nft list` readable and keeps the names of pools
// whose chain fitted before as they were.
const maxObjectName = 63

// objectHashSep ends the kept part of a shortened chain or counter name:
// pool names never hold it (validName), and nft's syntax accepts it in a
// bare name, so RenderNft stays valid input for `nft -f`.
const objectHashSep = '_'

// PoolChain is the chain holding the allow rules of pool.
func PoolChain(pool string) string { return names.Fit("pool-"+pool, maxObjectName, objectHashSep) }

// PoolDropCounter is the named counter of packets from pool that no allow rule accepted.
func PoolDropCounter(pool string) string {
	return names.Fit("pool-"+pool+"-dropped", maxObjectName, objectHashSep)
}

// TunnelDropCounter is the named counter of packets from a tunnel's remote
// networks that no child's pair accepted.
func TunnelDropCounter(tunnel string) string {
	return names.Fit("tunnel-"+tunnel+"-dropped", maxObjectName, objectHashSep)
}

// TunnelDropRuleID is the ID of the rule dropping what else comes from one
// of a tunnel's remote networks.
func TunnelDropRuleID(tunnel string, remote netip.Prefix) string {
	return "tunnel/" + tunnel + "/drop/" + remote.String()
}

// TunnelOfDropRule returns the tunnel whose drop rule has id.
func TunnelOfDropRule(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "tunnel/")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "/drop/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// PoolDropRuleID is the ID of the rule dropping everything else from pool.
func PoolDropRuleID(pool string) string { return "pool/" + pool + "/drop" }

// PoolOfDropRule returns the pool whose drop rule has id.
func PoolOfDropRule(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "pool/")
	if !ok {
		return "", false
	}
	pool, ok := strings.CutSuffix(rest, "/drop")
	if !ok || pool == "" || strings.Contains(pool, "/") {
		return "", false
	}
	return pool, true
}

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

func validate(cfg Config) error {
	var errs []error
	if cfg.Table == "" {
		errs = append(errs, errors.New("table name is empty"))
	}
	switch cfg.DataPlane {
	case "", DataPlaneKernel, DataPlaneUserspace:
	default:
		errs = append(errs, fmt.Errorf("unknown data plane %q", cfg.DataPlane))
	}
	if len(cfg.TunDevice) > 15 {
		errs = append(errs, fmt.Errorf("TUN device name %q longer than 15 characters", cfg.TunDevice))
	}
	if cfg.MSS != 0 && (cfg.MSS < 536+ipv6MSSDelta || cfg.MSS > 9000) {
		errs = append(errs, fmt.Errorf("MSS %d out of range [%d, 9000]", cfg.MSS, 536+ipv6MSSDelta))
	}
	for _, a := range cfg.GatewayAddresses {
		if !a.IsValid() {
			errs = append(errs, errors.New("invalid gateway address"))
		}
	}
	names := map[string]bool{}
	for _, p := range cfg.Pools {
		if err := validName(p.Name); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", p.Name, err))
		}
		if names["pool/"+p.Name] {
			errs = append(errs, fmt.Errorf("pool %q defined twice", p.Name))
		}
		names["pool/"+p.Name] = true
		if len(p.CIDRs) == 0 {
			errs = append(errs, fmt.Errorf("pool %q has no address range", p.Name))
		}
		errs = append(errs, validPrefixes("pool "+p.Name, p.CIDRs)...)
		errs = append(errs, validPrefixes("pool "+p.Name+" local networks", p.LocalNetworks)...)
		for i, a := range p.Allow {
			if a.Destination != (netip.Prefix{}) {
				errs = append(errs, validPrefixes(fmt.Sprintf("pool %s allow[%d]", p.Name, i), []netip.Prefix{a.Destination})...)
			}
			switch a.Protocol {
			case "", ProtocolAny, ProtocolICMP:
				if len(a.Ports) > 0 {
					errs = append(errs, fmt.Errorf("pool %s allow[%d]: ports need protocol TCP or UDP", p.Name, i))
				}
			case ProtocolTCP, ProtocolUDP:
			default:
				errs = append(errs, fmt.Errorf("pool %s allow[%d]: unknown protocol %q", p.Name, i, a.Protocol))
			}
			for _, pr := range a.Ports {
				if pr.From == 0 || pr.To < pr.From {
					errs = append(errs, fmt.Errorf("pool %s allow[%d]: invalid port range %d-%d", p.Name, i, pr.From, pr.To))
				}
			}
		}
	}
	for _, t := range cfg.Tunnels {
		if err := validName(t.Name); err != nil {
			errs = append(errs, fmt.Errorf("tunnel %q: %w", t.Name, err))
		}
		if names["tunnel/"+t.Name] {
			errs = append(errs, fmt.Errorf("tunnel %q defined twice", t.Name))
		}
		names["tunnel/"+t.Name] = true
		for _, c := range t.Children {
			errs = append(errs, validPrefixes("tunnel "+t.Name+" local networks", c.LocalNetworks)...)
			errs = append(errs, validPrefixes("tunnel "+t.Name+" remote networks", c.RemoteNetworks)...)
		}
	}
	for _, r := range cfg.Refused {
		errs = append(errs, validPrefixes("refused "+r.Owner, []netip.Prefix{r.Prefix})...)
	}
	return errors.Join(errs...)
}

// validName accepts Kubernetes object names (DNS labels and subdomains),
// which also keeps chain names and rule ids free of separators. Their length
// is not limited here: chain and counter names are shortened (PoolChain),
// and rule ids too long for a comment are hashed (Rule.Comment).
func validName(n string) error {
	if n == "" {
		return errors.New("name must not be empty")
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("name contains %q; only a-z, 0-9, '-' and '.' are allowed", r)
		}
	}
	return nil
}

func validPrefixes(what string, ps []netip.Prefix) []error {
	var errs []error
	for _, p := range ps {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("%s: invalid network", what))
		} else if p.Masked() != p {
			errs = append(errs, fmt.Errorf("%s: %s has host bits set (network is %s)", what, p, p.Masked()))
		}
	}
	return errs
}

type builder struct {
	dp  DataPlane
	tun string
}

// in marks r as matching traffic that arrived through IPsec.
func (b *builder) in(r Rule) Rule {
	if b.dp == DataPlaneUserspace {
		r.IIFName = b.tun
	} else {
		r.IPsecIn = true
	}
	return r
}

// out marks r as matching traffic leaving through IPsec, where the data plane
// can tell: the kernel decides about encapsulation after the forward hook, so
// there the destination networks in r have to say it.
func (b *builder) out(r Rule) Rule {
	if b.dp == DataPlaneUserspace {
		r.OIFName = b.tun
	}
	return r
}

func (b *builder) inputChain(addrs []netip.Addr) Chain {
	c := Chain{Name: ChainInput, Base: &Base{Type: "filter", Hook: HookInput, Priority: priorityFilter}}
	dsts := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		dsts = append(dsts, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(dsts) == 0 {
		dsts = []netip.Prefix{{}}
	}
	for _, d := range dsts {
		fam, key := FamilyAny, "any"
		if d.IsValid() {
			fam, key = familyOf(d), d.Addr().String()
		}
		for _, port := range []uint16{500, 4500} {
			c.Rules = append(c.Rules, Rule{
				ID: fmt.Sprintf("input/ike/%s/%d", key, port), Family: fam, DAddr: d,
				L4: L4UDP, DPorts: PortRange{port, port}, Counter: true, Verdict: VerdictAccept,
			})
		}
		c.Rules = append(c.Rules, Rule{
			ID: fmt.Sprintf("input/esp/%s", key), Family: fam, DAddr: d,
			L4: L4ESP, Counter: true, Verdict: VerdictAccept,
		})
	}
	return c
}

// mssChain clamps SYNs through tunnels in both directions. It hooks forward
// at mangle priority, before any filter chain accepts the SYN/ACK as
// established.
func (b *builder) mssChain(mss uint16, pools []Pool, tunnels []Tunnel) Chain {
	c := Chain{Name: ChainMSS, Base: &Base{Type: "filter", Hook: HookForward, Priority: priorityMangle}}
	clamp := func(id string, r Rule) {
		for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
			if r.Family != FamilyAny && r.Family != f {
				continue
			}
			v := mss
			suffix := "/ipv4"
			if f == FamilyIPv6 {
				v, suffix = mss-ipv6MSSDelta, "/ipv6"
			}
			rr := r
			rr.ID, rr.Family, rr.L4, rr.TCPSyn, rr.MSSAbove, rr.SetMSS, rr.Counter = id+suffix, f, L4TCP, true, v, v, true
			c.Rules = append(c.Rules, rr)
		}
	}
	clamp("mss/in", b.in(Rule{}))
	if b.dp == DataPlaneUserspace {
		clamp("mss/out", b.out(Rule{}))
		return c
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			clamp("mss/out/pool/"+p.Name+"/"+cidr.String(), Rule{Family: familyOf(cidr), DAddr: cidr})
		}
	}
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			clamp("mss/out/tunnel/"+t.Name+"/"+rn.String(), Rule{Family: familyOf(rn), DAddr: rn})
		}
	}
	return c
}

func (b *builder) forwardChain(pools []Pool, tunnels []Tunnel, refused []Refused) Chain {
	c := Chain{Name: ChainForward, Base: &Base{Type: "filter", Hook: HookForward, Priority: priorityFilter}}
	c.Rules = append(c.Rules, Rule{
		ID: "forward/established", CtState: CtStateEstablished | CtStateRelated, Counter: true, Verdict: VerdictAccept,
	})
	for _, t := range tunnels {
		for _, p := range t.pairs() {
			l, r := p[0], p[1]
			c.Rules = append(c.Rules,
				b.in(Rule{ID: fmt.Sprintf("tunnel/%s/in/%s/%s", t.Name, r, l), Family: familyOf(r),
					SAddr: r, DAddr: l, Counter: true, Verdict: VerdictAccept}),
				b.out(Rule{ID: fmt.Sprintf("tunnel/%s/out/%s/%s", t.Name, l, r), Family: familyOf(r),
					SAddr: l, DAddr: r, Counter: true, Verdict: VerdictAccept}))
		}
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			c.Rules = append(c.Rules, Rule{
				ID: "pool/" + p.Name + "/from/" + cidr.String(), Family: familyOf(cidr), SAddr: cidr,
				Verdict: VerdictJump, Jump: PoolChain(p.Name),
			})
		}
	}
	// What else arrives from a tunnel's remote networks is no child's
	// traffic: dropped and counted per tunnel. These come after every
	// accept, so that one tunnel's drops never shadow another's pairs.
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			c.Rules = append(c.Rules, b.in(Rule{
				ID: TunnelDropRuleID(t.Name, rn), Family: familyOf(rn), SAddr: rn,
				NamedCounter: TunnelDropCounter(t.Name), Verdict: VerdictDrop,
			}))
		}
	}
	for _, r := range refused {
		c.Rules = append(c.Rules, b.in(Rule{
			ID: "refused/" + r.Owner + "/" + r.Prefix.String(), Family: familyOf(r.Prefix), SAddr: r.Prefix,
			NamedCounter: CounterRefused, Verdict: VerdictDrop,
		}))
	}
	return c
}

func (b *builder) poolChain(p Pool) Chain {
	c := Chain{Name: PoolChain(p.Name)}
	for i, a := range p.Allow {
		n := 0
		for _, cidr := range p.CIDRs {
			fam := familyOf(cidr)
			if a.Destination.IsValid() && familyOf(a.Destination) != fam {
				continue
			}
			base := b.in(Rule{Family: fam, SAddr: cidr, DAddr: a.Destination, Counter: true, Verdict: VerdictAccept})
			var l4 L4
			switch a.Protocol {
			case ProtocolTCP:
				l4 = L4TCP
			case ProtocolUDP:
				l4 = L4UDP
			case ProtocolICMP:
				l4 = L4ICMP
				if fam == FamilyIPv6 {
					l4 = L4ICMPv6
				}
			}
			base.L4 = l4
			ports := a.Ports
			if len(ports) == 0 {
				ports = []PortRange{{}}
			}
			for _, pr := range ports {
				r := base
				r.DPorts = pr
				r.ID = fmt.Sprintf("pool/%s/allow/%d.%d", p.Name, i, n)
				n++
				c.Rules = append(c.Rules, r)
			}
		}
	}
	c.Rules = append(c.Rules, Rule{
		ID: PoolDropRuleID(p.Name), NamedCounter: PoolDropCounter(p.Name), Verdict: VerdictDrop,
	})
	return c
}

// natChain masquerades pool traffic that asked for it. Traffic to VPN
// networks (tunnel remote networks, pools) is accepted first so it keeps its
// source address: a peer's traffic selectors only cover the real networks.
func (b *builder) natChain(pools []Pool, tunnels []Tunnel) Chain {
	c := Chain{Name: ChainPostrouting, Base: &Base{Type: "nat", Hook: HookPostrouting, Priority: prioritySrcNAT}}
	for _, t := range tunnels {
		for _, rn := range t.RemoteNetworks() {
			c.Rules = append(c.Rules, Rule{
				ID: "nat/keep/tunnel/" + t.Name + "/" + rn.String(), Family: familyOf(rn), DAddr: rn,
				Counter: true, Verdict: VerdictAccept,
			})
		}
	}
	for _, p := range pools {
		for _, cidr := range p.CIDRs {
			c.Rules = append(c.Rules, Rule{
				ID: "nat/keep/pool/" + p.Name + "/" + cidr.String(), Family: familyOf(cidr), DAddr: cidr,
				Counter: true, Verdict: VerdictAccept,
			})
		}
	}
	for _, p := range pools {
		if !p.Masquerade {
			continue
		}
		for _, cidr := range p.CIDRs {
			dsts := p.LocalNetworks
			if len(dsts) == 0 {
				dsts = []netip.Prefix{{}}
			}
			for _, d := range dsts {
				if d.IsValid() && familyOf(d) != familyOf(cidr) {
					continue
				}
				to := "any"
				if d.IsValid() {
					to = d.String()
				}
				c.Rules = append(c.Rules, Rule{
					ID: "nat/masquerade/" + p.Name + "/" + cidr.String() + "/" + to, Family: familyOf(cidr),
					SAddr: cidr, DAddr: d, Counter: true, Verdict: VerdictMasquerade,
				})
			}
		}
	}
	return c
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

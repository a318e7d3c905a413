package firewall

import (
	"net/netip"
	"strings"

	"github.com/ikegate/ikegate/internal/names"
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

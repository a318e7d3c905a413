package firewall

import (
	"net/netip"
)

// seedConfig is the seed scenario: one gateway at 198.51.100.10, mobile
// clients from 10.3.200.0/24 allowed to the LAN 10.3.0.0/24 with any protocol.
func seedConfig(dp DataPlane) Config {
	return Config{
		Table:            TableName("vpn", "seed"),
		GatewayAddresses: []netip.Addr{netip.MustParseAddr("198.51.100.10")},
		DataPlane:        dp,
		Pools: []Pool{{
			Name:  "mobile",
			CIDRs: []netip.Prefix{netip.MustParsePrefix("10.3.200.0/24")},
			Allow: []AllowRule{{Destination: netip.MustParsePrefix("10.3.0.0/24"), Protocol: ProtocolAny}},
		}},
	}
}

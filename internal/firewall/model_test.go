package firewall

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// golden compares got with testdata/<test name>.nft, rewriting it with -update.
func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".nft")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("Ruleset differs from %s (-want +got):\n%s", path, diff)
	}
}

// fullConfig exercises every feature: two pools (one dual stack, one
// masquerading), ports and ranges, ICMP, and two site-to-site tunnels.
func fullConfig(dp DataPlane) Config {
	return Config{
		Table: TableName("corp", "edge"),
		GatewayAddresses: []netip.Addr{
			netip.MustParseAddr("198.51.100.10"),
			netip.MustParseAddr("2001:db8::10"),
		},
		DataPlane: dp,
		MSS:       1400,
		Pools: []Pool{
			{
				Name:  "staff",
				CIDRs: []netip.Prefix{pfx("10.3.200.0/24"), pfx("fd00:3:200::/64")},
				Allow: []AllowRule{
					{Destination: pfx("10.3.0.0/24"), Protocol: ProtocolTCP, Ports: []PortRange{{443, 443}, {8000, 8099}}},
					{Destination: pfx("10.3.0.53/32"), Protocol: ProtocolUDP, Ports: []PortRange{{53, 53}}},
					{Protocol: ProtocolICMP},
					{Destination: pfx("fd00:3::/48")},
				},
			},
			{
				Name:          "contractors",
				CIDRs:         []netip.Prefix{pfx("10.3.210.0/25")},
				Allow:         []AllowRule{{Destination: pfx("10.3.5.0/28"), Protocol: ProtocolTCP, Ports: []PortRange{{22, 22}}}},
				Masquerade:    true,
				LocalNetworks: []netip.Prefix{pfx("10.3.5.0/28"), pfx("fd00:5::/64")},
			},
		},
		Tunnels: []Tunnel{
			{Name: "branch", Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("10.3.0.0/16")}, RemoteNetworks: []netip.Prefix{pfx("10.20.0.0/20"), pfx("fd00:20::/48")}}}},
			{Name: "dc", Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("10.3.0.0/24"), pfx("fd00:3::/48")}, RemoteNetworks: []netip.Prefix{pfx("172.16.0.0/12"), pfx("fd00:99::/48")}}}},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"seed-kernel", seedConfig(DataPlaneKernel)},
		{"seed-userspace", seedConfig(DataPlaneUserspace)},
		{"full-kernel", fullConfig(DataPlaneKernel)},
		{"full-userspace", fullConfig(DataPlaneUserspace)},
		{"custom-tun-no-clamp-any-address", Config{
			Table:           "ikegate-t",
			DataPlane:       DataPlaneUserspace,
			TunDevice:       "vti42",
			DisableMSSClamp: true,
			Pools: []Pool{{
				Name: "all", CIDRs: []netip.Prefix{pfx("10.8.0.0/20")},
				Allow:      []AllowRule{{}},
				Masquerade: true,
			}},
		}},
		{"empty", Config{Table: "ikegate-empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Build(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, RenderNft(rs))
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a := fullConfig(DataPlaneKernel)
	b := fullConfig(DataPlaneKernel)
	b.Pools[0], b.Pools[1] = b.Pools[1], b.Pools[0]
	b.Tunnels[0], b.Tunnels[1] = b.Tunnels[1], b.Tunnels[0]
	ra, err := Build(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Build(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ra, rb, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Order of pools and tunnels changed the ruleset (-a +b):\n%s", diff)
	}
	if RenderNft(ra) != RenderNft(rb) {
		t.Error("Renderings differ")
	}
}

func TestRuleIDsAndCommentsAreUniqueAndStable(t *testing.T) {
	rs, err := Build(fullConfig(DataPlaneUserspace))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			cm := r.Comment()
			if seen[cm] {
				t.Errorf("Comment %q used twice", cm)
			}
			seen[cm] = true
			if len(cm) >= 128 {
				t.Errorf("Comment %q is %d bytes, nft allows 127", cm, len(cm))
			}
			if id, _ := ruleIDFromComment(cm); len(r.ID) <= maxCommentID && id != r.ID {
				t.Errorf("Comment %q does not give back id %q", cm, r.ID)
			}
		}
	}
	// Changing an allow rule changes that rule's digest and nothing else.
	cfg := fullConfig(DataPlaneUserspace)
	cfg.Pools[0].Allow[0].Ports[0] = PortRange{444, 444}
	rs2, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for i, c := range rs.Chains {
		for j, r := range c.Rules {
			r2 := rs2.Chains[i].Rules[j]
			if r.ID != r2.ID {
				t.Fatalf("IDs moved: %s vs %s", r.ID, r2.ID)
			}
			if r.Comment() != r2.Comment() {
				changed = append(changed, r.ID)
			}
		}
	}
	if diff := cmp.Diff([]string{"pool/staff/allow/0.0"}, changed); diff != "" {
		t.Errorf("Changed comments (-want +got):\n%s", diff)
	}
}

func TestLongIDsStayWithinCommentLimit(t *testing.T) {
	long := strings.Repeat("a", 253)
	rs, err := Build(Config{
		Table:   "t",
		Tunnels: []Tunnel{{Name: long, Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("fd00:1234:5678:9abc::/64")}, RemoteNetworks: []netip.Prefix{pfx("fd00:1234:5678:9abd:1:2:3:0/112")}}}}},
		Pools:   []Pool{{Name: "p", CIDRs: []netip.Prefix{pfx("10.0.0.0/24")}, Masquerade: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if cm := r.Comment(); len(cm) >= 128 {
				t.Errorf("Comment %q is %d bytes", cm, len(cm))
			}
		}
	}
}

// maximalNames is a config whose pools and tunnel have 253-character names
// (the Kubernetes limit) that differ only in their last characters.
func maximalNames() Config {
	long := func(tag string) string { return strings.Repeat("long.", 51)[:253-len(tag)] + tag }
	return Config{
		Table: "ikegate-long",
		Pools: []Pool{
			{Name: long("a"), CIDRs: []netip.Prefix{pfx("10.3.200.0/24")}, Allow: []AllowRule{{Destination: pfx("10.3.0.0/24")}}},
			{Name: long("b"), CIDRs: []netip.Prefix{pfx("10.3.201.0/24")}, Masquerade: true},
		},
		Tunnels: []Tunnel{{Name: long("t"), Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("10.3.0.0/24")}, RemoteNetworks: []netip.Prefix{pfx("10.20.0.0/16")}}}}},
	}
}

func TestMaximalNamesBuild(t *testing.T) {
	cfg := maximalNames()
	rs, err := Build(cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var chains []string
	for _, c := range rs.Chains {
		chains = append(chains, c.Name)
	}
	seen := map[string]bool{}
	for _, p := range cfg.Pools {
		for _, n := range []string{PoolChain(p.Name), PoolDropCounter(p.Name)} {
			if len(n) > maxObjectName || seen[n] {
				t.Errorf("Pool %s: name %q is longer than %d or taken", p.Name, n, maxObjectName)
			}
			seen[n] = true
		}
		if !slices.Contains(chains, PoolChain(p.Name)) || !slices.Contains(rs.Counters, PoolDropCounter(p.Name)) {
			t.Errorf("Pool %s has no chain %s or counter %s: %v %v", p.Name, PoolChain(p.Name), PoolDropCounter(p.Name), chains, rs.Counters)
		}
	}
	if got := PoolChain("staff"); got != "pool-staff" {
		t.Errorf("PoolChain(staff) = %q; short names must be kept", got)
	}
}

func TestTableName(t *testing.T) {
	tests := []struct{ ns, name, want string }{
		{"vpn", "seed", "ikegate-vpn-seed"},
		{"default", "gw", "ikegate-default-gw"},
		{"production-network", "edge-gateway-01", "ikegate-production-3cbebf76"},
		{"a", "b-c", "ikegate-a-b-c"},
	}
	for _, tt := range tests {
		got := TableName(tt.ns, tt.name)
		if len(got) > maxTableName {
			t.Errorf("TableName(%q, %q) = %q longer than %d", tt.ns, tt.name, got, maxTableName)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("TableName(%q, %q) = %q, want %q", tt.ns, tt.name, got, tt.want)
		}
	}
	// "a-b"/"c" and "a"/"b-c" must not collide once hashed.
	if TableName(strings.Repeat("x", 20)+"-a", "b") == TableName(strings.Repeat("x", 20), "a-b") {
		t.Error("Different gateways share a table name")
	}
}

func TestBuildRejects(t *testing.T) {
	valid := func() Config { return seedConfig(DataPlaneKernel) }
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no table", func(c *Config) { c.Table = "" }, "table name is empty"},
		{"unknown data plane", func(c *Config) { c.DataPlane = "Hardware" }, `unknown data plane "Hardware"`},
		{"long tun", func(c *Config) { c.TunDevice = "a-very-long-device-name" }, "longer than 15"},
		{"mss too small", func(c *Config) { c.MSS = 500 }, "MSS 500 out of range"},
		{"pool without range", func(c *Config) { c.Pools[0].CIDRs = nil }, "has no address range"},
		{"pool host bits", func(c *Config) { c.Pools[0].CIDRs[0] = pfx("10.3.200.1/24") }, "has host bits set"},
		{"pool name", func(c *Config) { c.Pools[0].Name = "Mobile/1" }, "only a-z"},
		{"duplicate pool", func(c *Config) { c.Pools = append(c.Pools, c.Pools[0]) }, "defined twice"},
		{"ports without protocol", func(c *Config) { c.Pools[0].Allow[0].Ports = []PortRange{{80, 80}} }, "ports need protocol TCP or UDP"},
		{"bad protocol", func(c *Config) { c.Pools[0].Allow[0].Protocol = "SCTP" }, `unknown protocol "SCTP"`},
		{"inverted range", func(c *Config) {
			c.Pools[0].Allow[0].Protocol = ProtocolTCP
			c.Pools[0].Allow[0].Ports = []PortRange{{90, 80}}
		}, "invalid port range 90-80"},
		{"tunnel host bits", func(c *Config) {
			c.Tunnels = []Tunnel{{Name: "t", Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("10.0.0.1/8")}}}}}
		}, "has host bits set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			_, err := Build(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPoolOfDropRule(t *testing.T) {
	tests := []struct {
		id   string
		pool string
		ok   bool
	}{
		{PoolDropRuleID("mobile"), "mobile", true},
		{"pool/mobile/allow/0.0", "", false},
		{"pool//drop", "", false},
		{"forward/established", "", false},
	}
	for _, tt := range tests {
		pool, ok := PoolOfDropRule(tt.id)
		if pool != tt.pool || ok != tt.ok {
			t.Errorf("PoolOfDropRule(%q) = %q, %v; want %q, %v", tt.id, pool, ok, tt.pool, tt.ok)
		}
	}
}

func TestDefaultMSSArithmetic(t *testing.T) {
	// Recompute the worst case documented on DefaultMSS.
	const (
		pathMTU   = 1500
		outerIPv6 = 40
		udpEncap  = 8
		espHeader = 8
		cbcIV     = 16
		icv       = 32 // HMAC-SHA2-512-256
		trailer   = 2
		block     = 16
	)
	encrypted := pathMTU - outerIPv6 - udpEncap - espHeader - cbcIV - icv
	inner := encrypted/block*block - trailer
	if got := inner - 20 - 20; got != DefaultMSS {
		t.Errorf("Worst-case IPv4 MSS = %d, DefaultMSS = %d", got, DefaultMSS)
	}
	if got := inner - 40 - 20; got != DefaultMSS-ipv6MSSDelta {
		t.Errorf("Worst-case IPv6 MSS = %d, want %d", got, DefaultMSS-ipv6MSSDelta)
	}
}

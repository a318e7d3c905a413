package firewall

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

func newApplier(t *testing.T, ns *netns.NS, table string) *Applier {
	t.Helper()
	a, err := NewApplier(table, nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustBuild(t *testing.T, cfg Config) *Ruleset {
	t.Helper()
	rs, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// The kernel accepts every ruleset, and nft lists it exactly as RenderNft
// renders it: the golden files are what the kernel really holds.
func TestApplyListsAsRendered(t *testing.T) {
	require.Root(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"seed-kernel", seedConfig(DataPlaneKernel)},
		{"seed-userspace", seedConfig(DataPlaneUserspace)},
		{"full-kernel", fullConfig(DataPlaneKernel)},
		{"full-userspace", fullConfig(DataPlaneUserspace)},
		{"maximal-names", maximalNames()},
		{"non-byte-aligned", Config{Table: "ikegate-x", Pools: []Pool{{
			Name: "p", CIDRs: []netip.Prefix{pfx("10.3.208.0/21"), pfx("fd00:1:2:3::/77")},
			Allow: []AllowRule{{Destination: pfx("10.3.0.0/17")}, {Destination: pfx("fd00:8::/29")}},
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := netns.New(t, "fwa")
			rs := mustBuild(t, tt.cfg)
			a := newApplier(t, ns, rs.Table)
			changed, err := a.Apply(rs)
			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				t.Error("First Apply reported no change")
			}
			got := ns.Run(t, "nft", "list", "table", "inet", rs.Table)
			if diff := cmp.Diff(RenderNft(rs), got); diff != "" {
				t.Errorf("nft list table differs from RenderNft (-render +nft):\n%s", diff)
			}
			if os.Getenv("IKEGATE_SHOW_RULESET") != "" {
				t.Logf("nft list table inet %s:\n%s", rs.Table, got)
			}
		})
	}
}

func ruleHandles(t *testing.T, ns *netns.NS, table string) []uint64 {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var hs []uint64
	for _, c := range chains {
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			hs = append(hs, r.Handle)
		}
	}
	return hs
}

// monitor collects the nftables transactions committed in a namespace.
type monitor struct {
	ch <-chan *nftables.MonitorEvents
}

func startMonitor(t *testing.T, ns *netns.NS) *monitor {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	m := nftables.NewMonitor()
	ch, err := conn.AddGenerationalMonitor(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &monitor{ch: ch}
}

// drain returns the transactions seen until quiet has passed without one.
func (m *monitor) drain(quiet time.Duration) []*nftables.MonitorEvents {
	var out []*nftables.MonitorEvents
	for {
		select {
		case ev, ok := <-m.ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-time.After(quiet):
			return out
		}
	}
}

func changeTypes(evs []*nftables.MonitorEvents) []string {
	var out []string
	for _, ev := range evs {
		for _, c := range ev.Changes {
			out = append(out, msgName[int(c.Type)])
		}
	}
	return out
}

func TestApplyTwiceWritesNothing(t *testing.T) {
	ns := netns.New(t, "fwi")
	rs := mustBuild(t, seedConfig(DataPlaneUserspace))
	a := newApplier(t, ns, rs.Table)
	mon := startMonitor(t, ns)

	if changed, err := a.Apply(rs); err != nil || !changed {
		t.Fatalf("First Apply = %v, %v", changed, err)
	}
	if evs := mon.drain(300 * time.Millisecond); len(evs) != 1 {
		t.Fatalf("First Apply committed %d transactions, want 1 (%v)", len(evs), changeTypes(evs))
	}
	handles := ruleHandles(t, ns, rs.Table)

	// Same model, freshly built: nothing may reach the kernel.
	again := mustBuild(t, seedConfig(DataPlaneUserspace))
	if changed, err := a.Apply(again); err != nil || changed {
		t.Fatalf("Second Apply = %v, %v; want no change", changed, err)
	}
	if evs := mon.drain(300 * time.Millisecond); len(evs) != 0 {
		t.Errorf("Second Apply committed %d transactions: %v", len(evs), changeTypes(evs))
	}
	if got := ruleHandles(t, ns, rs.Table); !slices.Equal(got, handles) {
		t.Errorf("Rule handles changed from %v to %v", handles, got)
	}

	// A changed model is one transaction that keeps the named drop counter.
	cfg := seedConfig(DataPlaneUserspace)
	cfg.Pools[0].Allow = append(cfg.Pools[0].Allow, AllowRule{Destination: pfx("10.4.0.0/16"), Protocol: ProtocolUDP, Ports: []PortRange{{53, 53}}})
	changedRS := mustBuild(t, cfg)
	if changed, err := a.Apply(changedRS); err != nil || !changed {
		t.Fatalf("Apply of a changed model = %v, %v", changed, err)
	}
	evs := mon.drain(300 * time.Millisecond)
	if len(evs) != 1 {
		t.Fatalf("Changed Apply committed %d transactions, want 1", len(evs))
	}
	if types := changeTypes(evs); slices.Contains(types, "delobj") || slices.Contains(types, "newobj") {
		t.Errorf("Changed Apply touched the named counter: %v", types)
	}
	if got := ns.Run(t, "nft", "list", "table", "inet", rs.Table); got != RenderNft(changedRS) {
		t.Errorf("After the change nft lists:\n%s\nwant:\n%s", got, RenderNft(changedRS))
	}

	// Drift made by hand is repaired.
	ns.Run(t, "nft", "add", "rule", "inet", rs.Table, "forward", "accept")
	if changed, err := a.Apply(changedRS); err != nil || !changed {
		t.Fatalf("Apply after a manual change = %v, %v; want a repair", changed, err)
	}
	if got := ns.Run(t, "nft", "list", "table", "inet", rs.Table); got != RenderNft(changedRS) {
		t.Errorf("After the repair nft lists:\n%s", got)
	}
	ns.Run(t, "nft", "add", "set", "inet", rs.Table, "stray", "{ type ipv4_addr; }")
	if changed, err := a.Apply(changedRS); err != nil || !changed {
		t.Fatalf("Apply after a stray set = %v, %v; want a repair", changed, err)
	}
	if got := ns.Run(t, "nft", "list", "table", "inet", rs.Table); got != RenderNft(changedRS) {
		t.Errorf("After removing the stray set nft lists:\n%s", got)
	}
	if changed, err := a.Apply(changedRS); err != nil || changed {
		t.Errorf("Apply after the repair = %v, %v; want no change", changed, err)
	}
}

func TestDeleteRemovesTheTable(t *testing.T) {
	ns := netns.New(t, "fwd")
	rs := mustBuild(t, fullConfig(DataPlaneKernel))
	a := newApplier(t, ns, rs.Table)
	// A neighbour's table must survive.
	ns.Run(t, "nft", "add", "table", "inet", "neighbour")
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	mon := startMonitor(t, ns)
	if err := a.Delete(); err != nil {
		t.Fatal(err)
	}
	evs := mon.drain(300 * time.Millisecond)
	if len(evs) != 1 {
		t.Errorf("Delete committed %d transactions, want 1", len(evs))
	}
	if got := ns.Run(t, "nft", "list", "tables"); strings.Contains(got, rs.Table) || !strings.Contains(got, "neighbour") {
		t.Errorf("nft list tables after Delete:\n%s", got)
	}
	if err := a.Delete(); err != nil {
		t.Errorf("Deleting a missing table: %v", err)
	}
	if evs := mon.drain(200 * time.Millisecond); len(evs) != 0 {
		t.Errorf("Deleting a missing table committed %d transactions", len(evs))
	}
	if c, err := a.Counters(); err != nil || len(c) != 0 {
		t.Errorf("Counters of a missing table = %v, %v", c, err)
	}
}

// trafficConfig: clients may reach 10.3.0.0/24 on TCP 8080 and ICMP only.
func trafficConfig(dp DataPlane) Config {
	return Config{
		Table:            TableName("vpn", "traffic"),
		GatewayAddresses: []netip.Addr{netip.MustParseAddr(gatewayAddr)},
		DataPlane:        dp,
		Pools: []Pool{{
			Name:  "mobile",
			CIDRs: []netip.Prefix{pfx("10.3.200.0/24")},
			Allow: []AllowRule{
				{Destination: pfx("10.3.0.0/24"), Protocol: ProtocolTCP, Ports: []PortRange{{8080, 8080}}},
				{Destination: pfx("10.3.0.0/24"), Protocol: ProtocolICMP},
			},
		}},
	}
}

func TestUserspaceTraffic(t *testing.T) {
	require.Root(t)
	tp := newTopology(t, DefaultTunDevice, true)
	serve(t, tp.lan, lanAddr+":8080")
	serve(t, tp.lan, lanAddr+":8081")
	serve(t, tp.lan, otherLAN+":8080")

	// Without the table everything connects: failures below are the firewall's.
	for _, addr := range []string{lanAddr + ":8080", lanAddr + ":8081", otherLAN + ":8080"} {
		if _, err := dial(tp.client, addr, 2*time.Second); err != nil {
			t.Fatalf("Before the firewall, %s: %v", addr, err)
		}
	}

	rs := mustBuild(t, trafficConfig(DataPlaneUserspace))
	a := newApplier(t, tp.router, rs.Table)
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	clientCap := startCapture(t, tp.client, "c0")
	lanCap := startCapture(t, tp.lan, "eth0")

	seen, err := dial(tp.client, lanAddr+":8080", 2*time.Second)
	if err != nil {
		t.Fatalf("Allowed destination and port: %v", err)
	}
	if seen != clientAddr {
		t.Errorf("Server saw %s, want the client's own %s (no masquerading asked)", seen, clientAddr)
	}
	for _, addr := range []string{lanAddr + ":8081", otherLAN + ":8080"} {
		if _, err := dial(tp.client, addr, 500*time.Millisecond); err == nil {
			t.Errorf("%s: connected, want dropped", addr)
		}
	}

	t.Run("mss clamped both ways", func(t *testing.T) {
		var client, lan []int
		waitFor(t, "SYN and SYN/ACK on both sides", func() bool {
			client = append(clientCap.synMSS(8080, false), clientCap.synMSS(8080, true)...)
			lan = append(lanCap.synMSS(8080, false), lanCap.synMSS(8080, true)...)
			return len(client) >= 2 && len(lan) >= 2
		})
		// The client sent 1460 and sees the server's SYN/ACK clamped; the
		// server sees the client's SYN clamped and sent its own 1460.
		if c := clientCap.synMSS(8080, false); c[0] != 1460 {
			t.Errorf("Client's own SYN MSS = %v, want 1460 (veth MTU 1500)", c)
		}
		if got := lanCap.synMSS(8080, false); got[0] != DefaultMSS {
			t.Errorf("SYN arrived in the LAN with MSS %v, want %d", got, DefaultMSS)
		}
		if got := clientCap.synMSS(8080, true); got[0] != DefaultMSS {
			t.Errorf("SYN/ACK arrived at the client with MSS %v, want %d", got, DefaultMSS)
		}
		if got := lanCap.synMSS(8080, true); got[0] != 1460 {
			t.Errorf("Server's own SYN/ACK MSS = %v, want 1460", got)
		}
	})

	t.Run("ike to the gateway address is counted", func(t *testing.T) {
		tp.client.MustDo(t, func() error {
			c, err := net.Dial("udp4", gatewayAddr+":500")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("not really IKE"))
			return err
		})
		waitFor(t, "the IKE counter", func() bool {
			c, err := a.Counters()
			return err == nil && c["input/ike/"+gatewayAddr+"/500"].Packets >= 1
		})
	})

	counters, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c := counters[PoolDropRuleID("mobile")]; c.Packets < 2 || c.Bytes == 0 {
		t.Errorf("Pool drop counter = %+v, want at least the two refused SYNs", c)
	}
	if c := counters["pool/mobile/allow/0.0"]; c.Packets < 1 {
		t.Errorf("Allow rule counter = %+v, want the allowed SYN", c)
	}
	if c := counters["mss/in/ipv4"]; c.Packets < 1 {
		t.Errorf("MSS clamp counter = %+v", c)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(a))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dropped float64
	for _, mf := range mfs {
		if mf.GetName() == "ikegate_firewall_pool_dropped_packets_total" {
			for _, m := range mf.GetMetric() {
				dropped += m.GetCounter().GetValue()
			}
		}
	}
	if dropped < 2 {
		t.Errorf("ikegate_firewall_pool_dropped_packets_total = %v, want >= 2", dropped)
	}
}

func TestMasqueradeKeepsTunnelTrafficUnNATed(t *testing.T) {
	require.Root(t)
	tp := newTopology(t, DefaultTunDevice, true)
	serve(t, tp.lan, lanAddr+":8080")
	serve(t, tp.lan, remoteSite+":8080")

	cfg := trafficConfig(DataPlaneUserspace)
	cfg.Pools[0].Allow = append(cfg.Pools[0].Allow, AllowRule{Destination: pfx("10.9.0.0/24")})
	cfg.Pools[0].Masquerade = true // toward every destination
	cfg.Tunnels = []Tunnel{{Name: "site", Children: []TunnelChild{{LocalNetworks: []netip.Prefix{pfx("10.3.200.0/24")}, RemoteNetworks: []netip.Prefix{pfx("10.9.0.0/24")}}}}}
	rs := mustBuild(t, cfg)
	a := newApplier(t, tp.router, rs.Table)
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if seen, err := dial(tp.client, lanAddr+":8080", 2*time.Second); err != nil || seen != routerLAN {
		t.Errorf("LAN server saw %q (err %v), want the router's %s", seen, err, routerLAN)
	}
	if seen, err := dial(tp.client, remoteSite+":8080", 2*time.Second); err != nil || seen != clientAddr {
		t.Errorf("Remote-site server saw %q (err %v), want the client's own %s", seen, err, clientAddr)
	}

	// Masquerading only toward listed local networks, with a LAN that has no
	// route back to the pool: only masqueraded traffic gets an answer.
	tp2 := newTopology(t, DefaultTunDevice, false)
	serve(t, tp2.lan, lanAddr+":8080")
	cfg = trafficConfig(DataPlaneUserspace)
	cfg.Pools[0].Masquerade = true
	cfg.Pools[0].LocalNetworks = []netip.Prefix{pfx("10.3.0.0/24")}
	rs = mustBuild(t, cfg)
	a2 := newApplier(t, tp2.router, rs.Table)
	if _, err := a2.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if seen, err := dial(tp2.client, lanAddr+":8080", 2*time.Second); err != nil || seen != routerLAN {
		t.Errorf("LAN without a route back: server saw %q (err %v), want %s", seen, err, routerLAN)
	}
	c, err := a2.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got := c["nat/masquerade/mobile/10.3.200.0/24/10.3.0.0/24"].Packets; got != 1 {
		t.Errorf("Masquerade rule saw %d packets, want 1 (NAT rules see the first packet of a connection)", got)
	}
}

// The kernel data plane cannot carry ESP on these machines, so no packet has
// a secpath: pool-sourced traffic must be dropped (it did not come through
// IPsec), while connections toward the pool get their SYN clamped by
// destination.
func TestKernelDataPlaneTraffic(t *testing.T) {
	require.Root(t)
	tp := newTopology(t, "r0", true)
	serve(t, tp.lan, lanAddr+":8080")
	serve(t, tp.client, clientAddr+":2222")
	rs := mustBuild(t, trafficConfig(DataPlaneKernel))
	a := newApplier(t, tp.router, rs.Table)
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(tp.client, lanAddr+":8080", 500*time.Millisecond); err == nil {
		t.Error("Pool traffic without IPsec reached the LAN")
	}
	clientCap := startCapture(t, tp.client, "c0")
	if seen, err := dial(tp.lan, clientAddr+":2222", 2*time.Second); err != nil || seen != lanAddr {
		t.Fatalf("LAN to client: saw %q, err %v", seen, err)
	}
	var syns []int
	waitFor(t, "the SYN at the client", func() bool {
		syns = clientCap.synMSS(2222, false)
		return len(syns) > 0
	})
	if syns[0] != DefaultMSS {
		t.Errorf("SYN toward the pool arrived with MSS %d, want %d", syns[0], DefaultMSS)
	}
	c, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c[PoolDropRuleID("mobile")].Packets < 1 {
		t.Errorf("Drop counter = %+v", c[PoolDropRuleID("mobile")])
	}
	if c["mss/out/pool/mobile/10.3.200.0/24/ipv4"].Packets != 1 {
		t.Errorf("MSS out counter = %+v", c["mss/out/pool/mobile/10.3.200.0/24/ipv4"])
	}
}

// A real TUN device as kernel-libipsec creates it: packets written to it
// enter the router on the device, as decrypted client traffic does.
func TestUserspaceTrafficThroughTUN(t *testing.T) {
	require.Root(t)
	router := netns.New(t, "fwt")
	lan := netns.New(t, "fwu")
	tun := openTUN(t, router, DefaultTunDevice)
	router.Run(t, "ip", "link", "set", DefaultTunDevice, "up")
	router.AddRoute(t, "10.3.200.0/24", "dev", DefaultTunDevice)
	netns.VethNamed(t, router, "lan0", lan, "eth0", routerLAN+"/24", lanAddr+"/24")
	router.EnableForwarding(t)
	lan.AddRoute(t, "10.3.200.0/24", "via", routerLAN)

	cfg := trafficConfig(DataPlaneUserspace)
	cfg.Pools[0].Allow = []AllowRule{{Destination: pfx("10.3.0.0/24"), Protocol: ProtocolUDP, Ports: []PortRange{{5353, 5353}}}}
	rs := mustBuild(t, cfg)
	a := newApplier(t, router, rs.Table)
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}

	var conns []*net.UDPConn
	for _, port := range []int{5353, 5354} {
		lan.MustDo(t, func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(lanAddr), Port: port})
			conns = append(conns, c)
			return err
		})
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	client := net.ParseIP("10.3.200.7")
	for _, port := range []uint16{5353, 5354} {
		if _, err := tun.Write(udp4Packet(client, net.ParseIP(lanAddr), 40000, port, []byte("hello"))); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	_ = conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := conns[0].ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello" || !from.IP.Equal(client) {
		t.Fatalf("Allowed port: got %q from %v, err %v", buf[:n], from, err)
	}
	_ = conns[1].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := conns[1].ReadFromUDP(buf); err == nil {
		t.Errorf("Refused port received %q", buf[:n])
	}
	// The answer leaves through the TUN device (established, oifname).
	if _, err := conns[0].WriteToUDP([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	got := false
	_ = tun.SetReadDeadline(time.Now().Add(2 * time.Second))
	for !got {
		pkt := make([]byte, 2000)
		n, err := tun.Read(pkt)
		if err != nil {
			break
		}
		pkt = pkt[:n]
		got = n >= 28 && pkt[9] == 17 && net.IP(pkt[16:20]).Equal(client) && string(pkt[28:]) == "back"
	}
	if !got {
		t.Error("The LAN's answer did not come out of the TUN device")
	}
	c, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c[PoolDropRuleID("mobile")].Packets != 1 || c["pool/mobile/allow/0.0"].Packets != 1 {
		t.Errorf("Counters: drop %+v, allow %+v; want 1 each", c[PoolDropRuleID("mobile")], c["pool/mobile/allow/0.0"])
	}
}

// TestTunnelTrafficOnlyBetweenItsChildsNetworks: traffic arriving through
// IPsec from a tunnel's remote network passes to its child's local
// network, and to nothing else: the rest is dropped and counted on the
// tunnel's counter. (The client namespace stands in for the remote site.)
func TestTunnelTrafficOnlyBetweenItsChildsNetworks(t *testing.T) {
	require.Root(t)
	tp := newTopology(t, DefaultTunDevice, true)
	serve(t, tp.lan, lanAddr+":8080")
	serve(t, tp.lan, otherLAN+":8080")
	for _, addr := range []string{lanAddr + ":8080", otherLAN + ":8080"} {
		if _, err := dial(tp.client, addr, 2*time.Second); err != nil {
			t.Fatalf("Before the firewall, %s: %v", addr, err)
		}
	}
	cfg := Config{
		Table:     TableName("vpn", "site"),
		DataPlane: DataPlaneUserspace,
		Tunnels: []Tunnel{{Name: "site", Children: []TunnelChild{
			{LocalNetworks: []netip.Prefix{pfx("10.3.0.0/24")}, RemoteNetworks: []netip.Prefix{pfx("10.3.200.0/24")}},
		}}},
	}
	rs := mustBuild(t, cfg)
	a := newApplier(t, tp.router, rs.Table)
	if _, err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(tp.client, lanAddr+":8080", 2*time.Second); err != nil {
		t.Fatalf("The child's own networks: %v", err)
	}
	if _, err := dial(tp.client, otherLAN+":8080", 500*time.Millisecond); err == nil {
		t.Fatal("A destination outside the tunnel's children was reachable from its remote network")
	}
	cs, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c := cs[TunnelDropRuleID("site", pfx("10.3.200.0/24"))]; c.Packets == 0 {
		t.Errorf("The tunnel's drop counter is %+v after a refused SYN (counters %v)", c, cs)
	}
}

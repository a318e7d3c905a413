package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeCounters struct {
	counters map[string]Counter
	err      error
}

func (f fakeCounters) Table() string                         { return "ikegate-vpn-seed" }
func (f fakeCounters) Counters() (map[string]Counter, error) { return f.counters, f.err }

func TestCollector(t *testing.T) {
	c := NewCollector(fakeCounters{counters: map[string]Counter{
		PoolDropRuleID("mobile"): {Packets: 7, Bytes: 420},
		"pool/mobile/allow/0.0":  {Packets: 3, Bytes: 180},
		// Two drop rules of one tunnel share its named counter.
		TunnelDropRuleID("hq", netip.MustParsePrefix("10.9.0.0/24")): {Packets: 5, Bytes: 300},
		TunnelDropRuleID("hq", netip.MustParsePrefix("10.8.0.0/24")): {Packets: 5, Bytes: 300},
	}})
	want := `
# HELP ikegate_firewall_counters_read_error 1 when the firewall counters could not be read on this scrape.
# TYPE ikegate_firewall_counters_read_error gauge
ikegate_firewall_counters_read_error{table="ikegate-vpn-seed"} 0
# HELP ikegate_firewall_pool_dropped_bytes_total Bytes from a mobile pool that no allow rule accepted.
# TYPE ikegate_firewall_pool_dropped_bytes_total counter
ikegate_firewall_pool_dropped_bytes_total{pool="mobile",table="ikegate-vpn-seed"} 420
# HELP ikegate_firewall_pool_dropped_packets_total Packets from a mobile pool that no allow rule accepted.
# TYPE ikegate_firewall_pool_dropped_packets_total counter
ikegate_firewall_pool_dropped_packets_total{pool="mobile",table="ikegate-vpn-seed"} 7
# HELP ikegate_firewall_tunnel_dropped_packets_total Packets from a tunnel's remote networks that no child's networks accepted.
# TYPE ikegate_firewall_tunnel_dropped_packets_total counter
ikegate_firewall_tunnel_dropped_packets_total{table="ikegate-vpn-seed",tunnel="hq"} 5
# HELP ikegate_firewall_rule_packets_total Packets matched by a firewall rule; counters of rules restart when the ruleset changes.
# TYPE ikegate_firewall_rule_packets_total counter
ikegate_firewall_rule_packets_total{rule="pool/mobile/allow/0.0",table="ikegate-vpn-seed"} 3
ikegate_firewall_rule_packets_total{rule="pool/mobile/drop",table="ikegate-vpn-seed"} 7
ikegate_firewall_rule_packets_total{rule="tunnel/hq/drop/10.8.0.0/24",table="ikegate-vpn-seed"} 5
ikegate_firewall_rule_packets_total{rule="tunnel/hq/drop/10.9.0.0/24",table="ikegate-vpn-seed"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"ikegate_firewall_counters_read_error",
		"ikegate_firewall_pool_dropped_bytes_total",
		"ikegate_firewall_pool_dropped_packets_total",
		"ikegate_firewall_tunnel_dropped_packets_total",
		"ikegate_firewall_rule_packets_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "ikegate_firewall_rule_bytes_total"); n != 4 {
		t.Errorf("rule_bytes series = %d, want 4", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("Lint: %v %v", problems, err)
	}
}

func TestCollectorReportsReadErrors(t *testing.T) {
	c := NewCollector(fakeCounters{err: errors.New("netlink: permission denied")})
	want := `
# HELP ikegate_firewall_counters_read_error 1 when the firewall counters could not be read on this scrape.
# TYPE ikegate_firewall_counters_read_error gauge
ikegate_firewall_counters_read_error{table="ikegate-vpn-seed"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "ikegate_firewall_counters_read_error"); err != nil {
		t.Error(err)
	}
}

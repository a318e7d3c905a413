package firewall

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterReader is what the collector reads on every scrape; *Applier is one.
type CounterReader interface {
	Table() string
	Counters() (map[string]Counter, error)
}

// Collector exposes a gateway table's counters to Prometheus: packets and
// bytes dropped per pool (what clients tried to reach and were not allowed
// to) and per tunnel (what a site sent outside its children's networks),
// and the counters of every rule by rule ID.
type Collector struct {
	src CounterReader

	poolDroppedPackets *prometheus.Desc
	poolDroppedBytes   *prometheus.Desc
	tunnelDropped      *prometheus.Desc
	tunnelDroppedBytes *prometheus.Desc
	rulePackets        *prometheus.Desc
	ruleBytes          *prometheus.Desc
	scrapeError        *prometheus.Desc
}

// NewCollector reads src's counters on each scrape. Register one per gateway.
func NewCollector(src CounterReader) *Collector {
	constLabels := prometheus.Labels{"table": src.Table()}
	return &Collector{
		src: src,
		poolDroppedPackets: prometheus.NewDesc("ikegate_firewall_pool_dropped_packets_total",
			"Packets from a mobile pool that no allow rule accepted.", []string{"pool"}, constLabels),
		poolDroppedBytes: prometheus.NewDesc("ikegate_firewall_pool_dropped_bytes_total",
			"Bytes from a mobile pool that no allow rule accepted.", []string{"pool"}, constLabels),
		tunnelDropped: prometheus.NewDesc("ikegate_firewall_tunnel_dropped_packets_total",
			"Packets from a tunnel's remote networks that no child's networks accepted.", []string{"tunnel"}, constLabels),
		tunnelDroppedBytes: prometheus.NewDesc("ikegate_firewall_tunnel_dropped_bytes_total",
			"Bytes from a tunnel's remote networks that no child's networks accepted.", []string{"tunnel"}, constLabels),
		rulePackets: prometheus.NewDesc("ikegate_firewall_rule_packets_total",
			"Packets matched by a firewall rule; counters of rules restart when the ruleset changes.", []string{"rule"}, constLabels),
		ruleBytes: prometheus.NewDesc("ikegate_firewall_rule_bytes_total",
			"Bytes matched by a firewall rule; counters of rules restart when the ruleset changes.", []string{"rule"}, constLabels),
		scrapeError: prometheus.NewDesc("ikegate_firewall_counters_read_error",
			"1 when the firewall counters could not be read on this scrape.", nil, constLabels),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.poolDroppedPackets
	ch <- c.poolDroppedBytes
	ch <- c.tunnelDropped
	ch <- c.tunnelDroppedBytes
	ch <- c.rulePackets
	ch <- c.ruleBytes
	ch <- c.scrapeError
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counters, err := c.src.Counters()
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeError, prometheus.GaugeValue, failed)
	ids := make([]string, 0, len(counters))
	for id := range counters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// A tunnel's drop rules share its named counter: report it once.
	tunnels := map[string]bool{}
	for _, id := range ids {
		v := counters[id]
		ch <- prometheus.MustNewConstMetric(c.rulePackets, prometheus.CounterValue, float64(v.Packets), id)
		ch <- prometheus.MustNewConstMetric(c.ruleBytes, prometheus.CounterValue, float64(v.Bytes), id)
		if pool, ok := PoolOfDropRule(id); ok {
			ch <- prometheus.MustNewConstMetric(c.poolDroppedPackets, prometheus.CounterValue, float64(v.Packets), pool)
			ch <- prometheus.MustNewConstMetric(c.poolDroppedBytes, prometheus.CounterValue, float64(v.Bytes), pool)
		}
		if tn, ok := TunnelOfDropRule(id); ok && !tunnels[tn] {
			tunnels[tn] = true
			ch <- prometheus.MustNewConstMetric(c.tunnelDropped, prometheus.CounterValue, float64(v.Packets), tn)
			ch <- prometheus.MustNewConstMetric(c.tunnelDroppedBytes, prometheus.CounterValue, float64(v.Bytes), tn)
		}
	}
}

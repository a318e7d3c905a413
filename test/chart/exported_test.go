package chart

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ikegate/ikegate/controllers"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
)

// noCounters stands in for the nftables table: only the collector's
// descriptions are read, never its values.
type noCounters struct{}

func (noCounters) Table() string                                  { return "ikegate_test" }
func (noCounters) Counters() (map[string]firewall.Counter, error) { return nil, nil }

// exportedMetrics are the metric names the agent and the manager serve,
// taken from their real collectors: the agent's own, the firewall's, the
// manager's status collector, controller-runtime's registry and the Go and
// process collectors both binaries register.
func exportedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := agent.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	own := []prometheus.Collector{
		firewall.NewCollector(noCounters{}),
		controllers.NewStatusCollector(nil),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range own {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	// The agent's collectors are unexported: its families show up in
	// Gather once their vectors have children, so read the registry's
	// descriptions through a wrapping registerer instead.
	rec := &describeRecorder{}
	if err := agent.RegisterMetrics(rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(own, rec.collectors...) {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			names[descName(t, d)] = true
		}
	}
	// controller-runtime's global registry: what the manager's metrics
	// endpoint serves besides the collectors above.
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

// describeRecorder is a Registerer that keeps what is registered with it.
type describeRecorder struct{ collectors []prometheus.Collector }

func (r *describeRecorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}
func (r *describeRecorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}
func (r *describeRecorder) Unregister(prometheus.Collector) bool { return false }

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// descName reads the name out of a Desc; client_golang has no accessor.
func descName(t testing.TB, d *prometheus.Desc) string {
	t.Helper()
	m := fqNameRE.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("no fqName in %s", d)
	}
	return m[1]
}

var (
	quotedRE  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	bracesRE  = regexp.MustCompile(`\{[^}]*\}`)
	rangeRE   = regexp.MustCompile(`\[[^\]]*\]`)
	groupRE   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identRE   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	promqlOps = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

// metricNames returns the metric names a PromQL expression selects: what
// is left after label matchers, strings, ranges and grouping clauses are
// removed, without function names (followed by a parenthesis) and keywords.
// promtool has checked the expression's syntax before.
func metricNames(expr string) []string {
	s := quotedRE.ReplaceAllString(expr, `""`)
	s = bracesRE.ReplaceAllString(s, " ")
	s = rangeRE.ReplaceAllString(s, " ")
	s = groupRE.ReplaceAllString(s, " ")
	var names []string
	for _, m := range identRE.FindAllString(s, -1) {
		if strings.HasSuffix(m, "(") || promqlOps[m] {
			continue
		}
		names = append(names, m)
	}
	return names
}

// isExported accepts a histogram's or summary's series by its family name.
func isExported(exported map[string]bool, name string) bool {
	if exported[name] {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && exported[base] {
			return true
		}
	}
	return false
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, gateway) (rate(a_bucket{x=~"$y", z="b(c)"}[$__rate_interval]))) / on (pool) group_left b - time() > bool 0`)
	if strings.Join(got, ",") != "a_bucket,b" {
		t.Errorf("got %v, want [a_bucket b]", got)
	}
}

func TestExportedMetricsComeFromCollectors(t *testing.T) {
	ex := exportedMetrics(t)
	// One of each source, to prove each collector was asked.
	for _, n := range []string{"ikegate_agent_sessions", "ikegate_firewall_pool_dropped_packets_total",
		"ikegate_pool_leased_addresses", "go_goroutines", "process_cpu_seconds_total"} {
		if !ex[n] {
			t.Errorf("%s missing from the exported names", n)
		}
	}
}

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// measureHeld measures the user-ready latency up to the agent holding the
// user: the API write, the manager's credentials shard, the agent's
// informers, its build and its RADIUS server's user map, with a fake
// charon (vicitest) answering the agent's VICI calls, so the figure is the
// agent's own at sizes where the naive comparison (every user's NTLM secret
// in charon) cannot be loaded. spec's sizes are the users loaded, ascending.
func measureHeld(t testing.TB, spec figureSpec) []figureRow {
	cfg, c := startAPI(t)
	pki := charontest.NewPKI(t, "Figures CA")
	createGateway(t, c, pki, pki.Server(t, hostname, hostname), nil)
	shards := watchShards(t, cfg)
	// The first user: the pool serves nobody without one.
	createUsers(t, c, "u", 0, 1)
	fake := vicitest.NewFake()
	ag := startAgent(t, cfg, agentConfig{pod: v1alpha1.GatewayPodName(gatewayName, 0), session: fake, log: logr.Discard()})
	ag.waitReady(t, 60*time.Second)

	var rows []figureRow
	loaded := 1
	for _, n := range spec.sizes {
		row := figureRow{users: n}
		bulk := time.Now()
		createUsers(t, c, "u", loaded, n-loaded)
		loaded = n
		row.agentSyncAfterBulk = servedAt(t, ag, n, 15*time.Minute*time.Duration(max(1, n/10000))).Sub(bulk)
		// The fake records every command; the bulk's are not needed.
		fake.ResetCalls()
		waitSettled(t, c, n)
		sampleUserReady(t, cfg, c, ag, shards, spec, n, &row)
		rows = append(rows, row)
		t.Logf("%d users held by the agent: p50 %v p99 %v; the bulk took %v", n, percentile(row.agent, 0.5), percentile(row.agent, 0.99),
			row.agentSyncAfterBulk.Round(time.Millisecond))
	}
	return rows
}

// heldTable prints measureHeld's rows.
func heldTable(rows []figureRow) string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(&b, "\nUser-ready latency up to the agent holding the user (API write of VPNUser+Secret -> credentials Secret -> served by the agent's RADIUS server; charon faked)\n")
	fmt.Fprintf(&b, "%-13s %-11s %-11s %-11s %-16s %-16s %-22s\n", "users loaded", "agent p50", "agent p99", "agent max",
		"of which: writes", "credentials p50", "bulk until all held")
	for _, row := range rows {
		fmt.Fprintf(&b, "%-13d %-11s %-11s %-11s %-16s %-16s %-22s\n", row.users, ms(percentile(row.agent, 0.5)),
			ms(percentile(row.agent, 0.99)), ms(percentile(row.agent, 1)), ms(percentile(row.write, 0.5)),
			ms(percentile(row.credentials, 0.5)), row.agentSyncAfterBulk.Round(10*time.Millisecond))
	}
	if len(rows) > 1 {
		first, last := rows[0], rows[len(rows)-1]
		fmt.Fprintf(&b, "%d users against %d: p99 %.2fx\n", last.users, first.users, heldRatio(first, last))
	}
	return b.String()
}

// heldRatio is how many times the p99 of first the p99 of last is.
func heldRatio(first, last figureRow) float64 {
	return float64(percentile(last.agent, 0.99)) / float64(max(1, percentile(first.agent, 0.99)))
}

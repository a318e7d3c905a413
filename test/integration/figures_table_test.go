package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/vici"
)

// measureConnects connects the client n times to the agent's gateway and,
// with naive, as many times to the naive one, in turns so that neither
// always goes first, and returns the sorted connect times.
func measureConnects(t testing.TB, cl *vici.Client, n int, naive bool) (agent, swanctl []time.Duration) {
	t.Helper()
	ctx := context.Background()
	type target struct {
		conn string
		out  *[]time.Duration
	}
	for i := range n {
		order := []target{{"agent", &agent}}
		if naive {
			order = append(order, target{"naive", &swanctl})
		}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, target := range order {
			d, err := initiate(ctx, cl, target.conn)
			if err != nil {
				t.Fatalf("Connecting to the %s gateway: %v", target.conn, err)
			}
			*target.out = append(*target.out, d)
			if err := terminate(ctx, cl, target.conn); err != nil {
				t.Fatalf("Disconnecting from the %s gateway: %v", target.conn, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	slices.Sort(agent)
	slices.Sort(swanctl)
	return agent, swanctl
}

// connectTable prints the connect times per size, and the largest size's
// against the smallest's (issue 18: at most 1.1 times).
func (r figureResult) connectTable() string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(&b, "\nConnect time (IKE_SA + EAP-MSCHAPv2 + CHILD_SA, client side)\n")
	fmt.Fprintf(&b, "%-13s %-30s %-11s %-11s %-11s\n", "users loaded", "users checked by", "p50", "p90", "max")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "%-13d %-30s %-11s %-11s %-11s\n", row.users, "agent (eap-radius to agent)", ms(percentile(row.connectAgent, 0.5)),
			ms(percentile(row.connectAgent, 0.9)), ms(percentile(row.connectAgent, 1)))
		if len(row.connectNaive) > 0 {
			fmt.Fprintf(&b, "%-13d %-30s %-11s %-11s %-11s\n", row.users, "swanctl (charon NTLM secrets)", ms(percentile(row.connectNaive, 0.5)),
				ms(percentile(row.connectNaive, 0.9)), ms(percentile(row.connectNaive, 1)))
		}
	}
	if len(r.rows) > 1 {
		first, last := r.rows[0], r.rows[len(r.rows)-1]
		fmt.Fprintf(&b, "agent at %d users against %d: p50 %.2fx\n", last.users, first.users,
			float64(percentile(last.connectAgent, 0.5))/float64(max(1, percentile(first.connectAgent, 0.5))))
	}
	return b.String()
}

func (r figureResult) table() string {
	var b strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(&b, "\nUser-ready latency (API write of VPNUser+Secret -> the manager writes a credentials Secret -> the agent's RADIUS server holds the user)\n")
	fmt.Fprintf(&b, "%-13s %-11s %-11s %-11s %-26s %-14s %-16s %-16s %-30s %s\n", "users loaded", "agent p50", "agent p99", "agent max",
		"swanctl --load-all median", "swanctl/agent", "of which: writes", "credentials p50", "bulk served (after last write)", "manager settled after last write")
	for _, row := range r.rows {
		naive := percentile(row.naive, 0.5)
		ratio := "-"
		if p50 := percentile(row.agent, 0.5); p50 > 0 && naive > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(naive)/float64(p50))
		}
		fmt.Fprintf(&b, "%-13d %-11s %-11s %-11s %-26s %-14s %-16s %-16s %-30s %s\n", row.users, ms(percentile(row.agent, 0.5)),
			ms(percentile(row.agent, 0.99)), ms(percentile(row.agent, 1)), ms(naive), ratio,
			ms(percentile(row.write, 0.5)), ms(percentile(row.credentials, 0.5)),
			fmt.Sprintf("%s (%s)", ms(row.agentSyncAfterBulk), ms(row.afterBulkWritten)), ms(row.settledAfterBulk))
	}
	if len(r.rows) > 1 {
		first, last := r.rows[0], r.rows[len(r.rows)-1]
		ratio := func(q float64) float64 {
			return float64(percentile(last.agent, q)) / float64(max(1, percentile(first.agent, q)))
		}
		fmt.Fprintf(&b, "%d users against %d: p50 %.2fx, p99 %.2fx\n", last.users, first.users, ratio(0.5), ratio(0.99))
	}
	b.WriteString(r.connectTable())
	if len(r.rows) > 0 {
		last := r.rows[len(r.rows)-1]
		fmt.Fprintf(&b, "\nCharon restart with %d users, after its socket was back: connections and pools loaded %s, first login done %s\n",
			last.users, ms(r.serving), ms(r.restored))
	}
	return b.String()
}

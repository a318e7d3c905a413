package integration

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// drainPings is how many pings each client sends at 100 ms intervals
// while its replica drains; drainOutageBound the longest run of them a
// redirected client may lose. A client reconnects at once when redirected
// (IKE_SA_INIT, EAP, CHILD_SA: about 30 ms unloaded), so the bound leaves
// a wide margin for a loaded 2-core machine while staying far below what
// waiting for DPD would cost (30 s).
const (
	drainPings       = 120
	drainOutageBound = 50 // pings: 5 s
)

var icmpSeqRE = regexp.MustCompile(`icmp_seq=(\d+)`)

// TestDrainingAReplicaRedirectsItsClientsToTheOther drains replica 0 of two
// while four clients (two on each) ping the LAN every 100 ms: replica 0's
// clients are redirected to replica 1, get addresses of its slices and
// keep reaching the LAN; each client's longest run of lost pings is
// reported and bounded, and replica 1's clients lose none.
func TestDrainingAReplicaRedirectsItsClientsToTheOther(t *testing.T) {
	r := newReplicaRig(t, 2, 4, v1alpha1.ReturnPathMasquerade)
	for _, cl := range r.clients {
		cl.connect(t)
	}
	r.waitReported(t)

	lost := make([][]int, len(r.clients))
	var wg sync.WaitGroup
	for i, cl := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _ := cl.ns.Exec("ping", "-i", "0.1", "-W", "1", "-c", strconv.Itoa(drainPings), lanAddr)
			lost[i] = missing(out, drainPings)
		}()
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	res, err := r.nodes[0].agent.Drain(context.Background(), 20*time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Draining %s: %v", r.nodes[0].pod, err)
	}
	wg.Wait()
	if res.Redirected != 2 || res.Left != 0 || !slices.Equal(res.Targets, []string{r.nodes[1].addr}) {
		t.Errorf("Drain = %+v; want 2 clients redirected to %s, none left", res, r.nodes[1].addr)
	}

	var report []string
	for i, cl := range r.clients {
		run := longestRun(lost[i])
		report = append(report, fmt.Sprintf("%s (on %s): %d of %d pings lost, longest outage %d ms",
			cl.name, r.nodes[cl.node].pod, len(lost[i]), drainPings, run*100))
		switch {
		case cl.node == 1 && len(lost[i]) > 0:
			t.Errorf("%s stayed on %s but lost pings %v", cl.name, r.nodes[1].pod, lost[i])
		case run > drainOutageBound:
			t.Errorf("%s was without connectivity for %d pings (%d ms), more than %d", cl.name, run, run*100, drainOutageBound)
		}
		if cl.node == 0 {
			vip := cl.vip(t)
			if !slices.ContainsFunc(swan.ReplicaPrefixes(netip.MustParsePrefix(poolNet), swan.Replica{Ordinal: 1, Count: 2}), func(p netip.Prefix) bool { return p.Contains(vip) }) {
				t.Errorf("%s was redirected but holds %s, not an address of %s", cl.name, vip, r.nodes[1].pod)
			}
		}
	}
	t.Logf("Drain of %s took %v: %+v", r.nodes[0].pod, took.Round(time.Millisecond), res)
	for _, line := range report {
		t.Log(line)
	}
}

// missing are the sequence numbers 1..n that ping's output has no reply for.
func missing(out string, n int) []int {
	got := map[int]bool{}
	for _, m := range icmpSeqRE.FindAllStringSubmatch(out, -1) {
		if s, err := strconv.Atoi(m[1]); err == nil {
			got[s] = true
		}
	}
	var out2 []int
	for s := 1; s <= n; s++ {
		if !got[s] {
			out2 = append(out2, s)
		}
	}
	return out2
}

// longestRun is the length of the longest run of consecutive numbers in
// sorted seqs.
func longestRun(seqs []int) int {
	best, run := 0, 0
	for i, s := range seqs {
		if i > 0 && s == seqs[i-1]+1 {
			run++
		} else {
			run = 1
		}
		best = max(best, run)
	}
	return best
}

package agent

import (
	"context"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// TestAgentCountsWaitForTheGap: a change of the session counts alone is
// written at most once per SessionWriteGap, any other change at once.
func TestAgentCountsWaitForTheGap(t *testing.T) {
	w := &statusRecorder{}
	clock := time.Now()
	a := &Agent{opts: Options{Namespace: testNS, Gateway: testGW, Pod: testPod, Writer: w, CountsWriteGap: time.Second,
		Now: func() time.Time { return clock }}, owner: "agent", written: newWrittenState()}
	ctx := context.Background()
	ms := time.Millisecond
	start := clock
	for i, s := range []struct {
		at     time.Duration
		change func(*v1alpha1.AgentStatus)
		writes int
		held   time.Duration
	}{
		{0, func(r *v1alpha1.AgentStatus) { r.Pod, r.Sessions = testPod, 1 }, 1, 0},
		{100 * ms, func(*v1alpha1.AgentStatus) {}, 0, 0},
		{300 * ms, func(r *v1alpha1.AgentStatus) { r.Sessions = 2 }, 0, 700 * ms},
		// A pool's first lease is more than a count.
		{350 * ms, func(r *v1alpha1.AgentStatus) { r.Pools = []v1alpha1.PoolLeases{{Name: "staff", Leased: 1}} }, 1, 0},
		{400 * ms, func(r *v1alpha1.AgentStatus) { r.LastError = "charon refused a connection" }, 1, 0},
		{900 * ms, func(r *v1alpha1.AgentStatus) {
			r.Sessions, r.Pools = 3, []v1alpha1.PoolLeases{{Name: "staff", Leased: 2}}
		}, 0, 500 * ms},
		{1000 * ms, func(r *v1alpha1.AgentStatus) {
			r.Pools = []v1alpha1.PoolLeases{{Name: "staff", Leased: 2, LeasedSlices: []int32{4}}}
		}, 1, 0},
		{1100 * ms, func(r *v1alpha1.AgentStatus) { r.Sessions = 4 }, 0, 900 * ms},
		{2000 * ms, func(*v1alpha1.AgentStatus) {}, 1, 0},
	} {
		clock = start.Add(s.at)
		s.change(&a.report)
		held := a.writeAgentCounts(ctx, clock)
		if got := len(w.take("VPNGateway")); got != s.writes || held != s.held {
			t.Errorf("Step %d: %d writes, held %v; want %d and %v", i, got, held, s.writes, s.held)
		}
	}
	if a.written.agent == nil || a.written.agent.Sessions != 4 || a.written.agent.LastError == "" {
		t.Errorf("Last written %+v, want the last report", a.written.agent)
	}
}

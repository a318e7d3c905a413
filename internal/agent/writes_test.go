package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ikegate/ikegate/internal/diagnose"
)

// retry pushes a failing login perSecond times a second for d of the
// fixture's clock through the agent's pipeline, with the session loop's
// flush every DefaultSAInterval, and returns the API writes it caused.
func retry(t testing.TB, fx *diagFixture, perSecond int, d time.Duration) int {
	before := fx.writer.writes()
	step := time.Second / time.Duration(perSecond)
	conn := fx.poolConnection(t)
	var sinceFlush time.Duration
	for i := 0; time.Duration(i)*step < d; i++ {
		fx.replay(t, "wrong-password", uint32(10*i), conn)
		fx.clock.Step(step)
		if sinceFlush += step; sinceFlush >= DefaultSAInterval {
			sinceFlush = 0
			fx.agent.flushFailures(context.Background())
		}
	}
	fx.agent.flushFailures(context.Background())
	return fx.writer.writes() - before
}

func TestARetryingClientCausesABoundedNumberOfWrites(t *testing.T) {
	fx := newDiagFixture(t, vpnUser("jimp"))
	const d = 60 * time.Second
	n := retry(t, fx, 100, d)
	// One Event and its updates every eventInterval, the gateway's recent
	// failures every DefaultFailureInterval, the user's condition once.
	bound := 1 + int(d/eventInterval) + 1 + int(d/DefaultFailureInterval) + 1
	if n > bound || n < 3 {
		t.Errorf("6000 failed logins in 60 s caused %d API writes, want 3..%d", n, bound)
	}
	evs := fx.warningEvents(t)
	if len(evs) != 1 || evs[0].Count < 5000 {
		t.Errorf("Events = %d (count %d), want one aggregating the attempts", len(evs), evs[0].Count)
	}
	rf := fx.agent.report.RecentFailures
	if len(rf) != 1 || rf[0].Count < 5000 {
		t.Errorf("recentFailures = %+v, want one entry counting the attempts", rf)
	}
	if v := testutil.ToFloat64(fx.agent.metrics.failures.WithLabelValues(string(diagnose.PhaseIKEAuth), diagnose.ReasonAuthenticationFailed)); v != 6000 {
		t.Errorf("negotiation failures = %v, want 6000", v)
	}
	t.Logf("6000 failed logins over 60 s: %d API writes", n)
}

// BenchmarkRetryingClient: a client failing its login 100 times a second
// for 60 s of simulated time; reports the API writes it caused.
func BenchmarkRetryingClient(b *testing.B) {
	fx := newDiagFixture(b, vpnUser("jimp"))
	b.ResetTimer()
	var writes int
	for range b.N {
		writes += retry(b, fx, 100, 60*time.Second)
		fx.clock.Step(eventWindow + time.Second)
	}
	b.ReportMetric(float64(writes)/float64(b.N), "API-writes/60s")
}

// A script trying a new username every 10 ms: one Event on the gateway,
// the recent failures bounded, the writes as few as for one retrying client.
func TestGuessingUsernamesCausesABoundedNumberOfWrites(t *testing.T) {
	fx := newDiagFixture(t, vpnUser("jimp"))
	conn := fx.poolConnection(t)
	before := fx.writer.writes()
	const attempts = 6000
	for i := range attempts {
		fx.replayWith(t, "unknown-identity", uint32(10*i), conn, strings.NewReplacer("nobody@", fmt.Sprintf("guess%d@", i)))
		fx.clock.Step(10 * time.Millisecond)
		if i%300 == 0 {
			fx.agent.flushFailures(context.Background())
		}
	}
	fx.agent.flushFailures(context.Background())
	n := fx.writer.writes() - before
	// One Event and its updates, the gateway's recent failures on their cadence.
	const d = attempts * 10 * time.Millisecond
	if bound := 1 + int(d/eventInterval) + 1 + int(d/DefaultFailureInterval); n > bound {
		t.Errorf("%d guessed usernames in 60 s caused %d API writes, want at most %d", attempts, n, bound)
	}
	if evs := fx.warningEvents(t); len(evs) != 1 || evs[0].InvolvedObject.Kind != "VPNGateway" {
		t.Errorf("Events = %d, want one on the gateway", len(evs))
	}
	if rf := fx.agent.report.RecentFailures; len(rf) != maxRecentFailures || rf[len(rf)-1].Peer != fmt.Sprintf("guess%d@example.com", attempts-1) {
		t.Errorf("recentFailures = %d entries ending %+v, want the %d newest", len(rf), rf[len(rf)-1], maxRecentFailures)
	}
	t.Logf("%d guessed usernames over 60 s: %d API writes", attempts, n)
}

// A client failing from ever new addresses keeps the user's condition as
// it is: it names the failure, not where it came from.
func TestFailuresFromNewAddressesWriteTheConditionOnce(t *testing.T) {
	fx := newDiagFixture(t, vpnUser("jimp"))
	conn := fx.poolConnection(t)
	for i := range 50 {
		fx.replayWith(t, "wrong-password", uint32(10*i), conn, strings.NewReplacer("192.0.2.2", fmt.Sprintf("198.51.100.%d", i+1)))
		fx.clock.Step(time.Second)
	}
	n := 0
	for _, ap := range fx.writer.take("VPNUser") {
		if ap.owner == fx.agent.owner+"/diagnosis" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("The Connected condition was written %d times for 50 failures from 50 addresses, want once", n)
	}
}

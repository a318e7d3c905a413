package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// An item charon refuses fails alone: the agent names the item in its
// report and still ends a deleted user's session.
func TestRefusedItemDoesNotStopTheGateway(t *testing.T) {
	f := vicitest.NewFake()
	f.FailOn("load-pool", "staff-ipv4", "refused for the test")
	fx := newFixture(t, f, "alice", "bob")
	eventually(t, "the pool's connection loaded and alice served", func() bool {
		return f.Conn("mobile-staff") != nil && serves(fx.agent, "alice@example.com")
	})
	// The gateway's only pool is refused: no client could get an address,
	// so the pod is not ready (readiness_test.go has a pool refused beside
	// one that serves), but the agent goes on applying and revoking.
	if fx.agent.Ready() {
		t.Error("Ready with the only pool refused")
	}
	eventually(t, "the refused item in the report", func() bool {
		for _, r := range fx.writer.take("VPNGateway") {
			for _, e := range r.status["agents"].([]any) {
				if msg, _ := e.(map[string]any)["lastError"].(string); strings.Contains(msg, "staff-ipv4") && strings.Contains(msg, "refused for the test") {
					return true
				}
			}
		}
		return false
	})

	f.AddSA(clientSA("alice@example.com"))
	u, _ := user("alice")
	if err := fx.reader.Delete(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	fx.agent.Trigger()
	eventually(t, "the deleted user's session to end", func() bool { return len(f.SAs()) == 0 })
	if serves(fx.agent, "alice@example.com") {
		t.Error("The deleted user is still served")
	}
}

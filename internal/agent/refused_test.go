package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// A secret charon refuses fails alone: the agent still becomes ready, names
// the item in its report, and still ends a deleted user's session.
func TestRefusedItemDoesNotStopTheGateway(t *testing.T) {
	f := vicitest.NewFake()
	f.FailOn("load-shared", "ntlm-bob", "refused for the test")
	fx := newFixture(t, f, "alice", "bob")
	eventually(t, "ready", fx.agent.Ready)
	if f.Shared("ntlm-alice") == nil || f.Conn("mobile-staff") == nil {
		t.Fatal("The other user's secret or the pool's connection is not loaded")
	}
	eventually(t, "the refused item in the report", func() bool {
		for _, r := range fx.writer.take("VPNGateway") {
			for _, e := range r.status["agents"].([]any) {
				if msg, _ := e.(map[string]any)["lastError"].(string); strings.Contains(msg, "ntlm-bob") && strings.Contains(msg, "refused for the test") {
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
	if f.Shared("ntlm-alice") != nil {
		t.Error("The deleted user's secret is still loaded")
	}
}

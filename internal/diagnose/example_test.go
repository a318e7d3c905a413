package diagnose_test

import (
	"fmt"
	"time"

	"github.com/ikegate/ikegate/internal/diagnose"
)

// The agent feeds a Correlator from one goroutine: VICI `log` events
// (internal/vici's LogEntry has the same fields as LogEvent, stamped on
// arrival) and the alerts an AlertReader reads from the error-notify
// socket. Each Failure returned is one failed attempt, ready for an Event,
// a status entry and a metric labelled {phase, reason}.
func Example() {
	c := diagnose.NewCorrelator(diagnose.Options{
		LocalIDs: []string{"vpn.example.com"},
		// The gateway's own users: charon cannot tell disabled from unknown.
		UserState: func(id string) string {
			if id == "ann@example.com" {
				return diagnose.ReasonDisabled
			}
			return ""
		},
	})
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, msg := range []string{
		"192.0.2.2 is initiating an IKE_SA",
		"received EAP identity 'ann@example.com'",
		"no EAP key found for hosts 'vpn.example.com' - 'ann@example.com'",
	} {
		f, ok := c.Observe(diagnose.LogEvent{Time: now, Group: "IKE", Level: 1, Thread: 7, IKESA: 12, IKEName: "mobile", Msg: msg})
		if ok {
			fmt.Printf("%s %s %s %s: %s\n", f.Phase, f.Reason, f.Remote, f.RemoteID, f.Advice())
		}
	}
	// Output: IKE_AUTH Disabled 192.0.2.2 ann@example.com: enable the VPNUser ann@example.com if the login is wanted
}

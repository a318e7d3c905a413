package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// requireCalmStart checks the Events of a healthy start: nothing a user
// should look into (no Warning from anyone), and each state change of
// ikegate's told once. kubectl describe and `kubectl get events` are where a
// new user looks first; a Warning there on a start that works teaches them
// to ignore Warnings. cert-manager's Normal events repeat on each sync of
// an Issuer or request (KeyPairVerified, WaitingForApproval), in a real
// cluster too; they are not ikegate's to count.
func requireCalmStart(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	var list eventsv1.EventList
	must(t, c.List(ctx, &list, client.InNamespace(namespace)))
	told := map[string]int32{}
	ours := map[string]bool{}
	var lines, problems []string
	for _, e := range list.Items {
		line := fmt.Sprintf("%s %s %s/%s: %s", e.Type, e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note)
		n := int32(1)
		if e.Series != nil {
			n = e.Series.Count
		}
		if e.DeprecatedCount > n {
			n = e.DeprecatedCount
		}
		if told[line] == 0 {
			lines = append(lines, line)
		}
		ours[line] = strings.HasPrefix(e.ReportingController, "ikegate")
		told[line] += n
		if e.Type == corev1.EventTypeWarning {
			problems = append(problems, "a Warning: "+line)
		}
	}
	// The gateway's conditions turning True are ikegate's; none would mean
	// this check counted nobody's repeats.
	if !slices.ContainsFunc(lines, func(l string) bool { return ours[l] }) {
		t.Fatalf("no Event of ikegate's among those of the start:\n%s", strings.Join(lines, "\n"))
	}
	slices.Sort(lines)
	for _, line := range lines {
		if told[line] > 1 && ours[line] {
			problems = append(problems, fmt.Sprintf("told %d times: %s", told[line], line))
		}
	}
	say(t, "Events of the start (kubectl -n %s get events):\n%s", namespace, indent(strings.Join(lines, "\n")))
	if len(problems) > 0 {
		t.Fatalf("A healthy start gave Events a user would have to look into:\n%s", strings.Join(problems, "\n"))
	}
}

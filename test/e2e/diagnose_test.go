package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

// withErrorNotify has the gateway charon write its alerts to a socket next
// to its VICI socket, as the manager's strongswan.conf has it in the pod's
// shared volume, and stores the socket's path in path.
func withErrorNotify(path *string) func(*swan.Settings) {
	return func(s *swan.Settings) {
		*path = filepath.Join(filepath.Dir(strings.TrimPrefix(s.VICISocket, "unix://")), "charon.enfy")
		s.ErrorNotifySocket = "unix://" + *path
	}
}

// refusedClient is a client that must fail, and where its failure must show.
type refusedClient struct {
	story        string
	client       charontest.EAPClient
	reason       string
	kind, object string
	// values are both sides' values the Event's message must name.
	values []string
}

// showDiagnosis lets two clients fail, one with a wrong password and one
// that offers only 3DES/SHA-1/MODP1024 (which the gateway's preset refuses),
// and checks that each failure is a Warning Event with its reason on the
// object whose owner can fix it; the demo prints the Events and
// `kubectl ikegate diagnose` for them.
func showDiagnosis(t *testing.T, ctx context.Context, c client.Client, cl *charontest.Charon, caPEM []byte, kubeconfig string) {
	t.Helper()
	clients := []refusedClient{{
		story:  "a client typing the wrong password for " + identity,
		client: charontest.EAPClient{Conn: "typo", Gateway: wanAddress, RemoteID: hostname, Identity: identity, Password: "abc124", RemoteTS: "10.3.0.0/24"},
		reason: v1alpha1.ReasonAuthenticationFailed, kind: "VPNUser", object: userName,
		values: []string{identity, "check the password"},
	}, {
		story: "an old client offering only 3des-sha1-modp1024",
		client: charontest.EAPClient{Conn: "legacy", Gateway: wanAddress, RemoteID: hostname, Identity: identity, Password: password,
			RemoteTS: "10.3.0.0/24", Proposals: "3des-sha1-modp1024", ESPProposals: "3des-sha1"},
		reason: v1alpha1.ReasonProposalMismatch, kind: "VPNGateway", object: gatewayName,
		values: []string{"the peer offered IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "the gateway has IKE:"},
	}}
	// charon would carry a new client's CHILD_SA in the IKE_SA it has with
	// the same gateway; the failing clients need IKE_SAs of their own.
	say(t, "The client disconnects")
	if out, err := cl.Swanctl("--terminate", "--ike", "home", "--timeout", "10"); err != nil {
		t.Fatalf("terminating the client's session: %v\n%s", err, out)
	}
	for _, rc := range clients {
		say(t, "Connecting %s", rc.story)
		if out, err := cl.LoadAll(charontest.ClientConf(rc.client), map[string][]byte{"x509ca/ca.pem": caPEM}); err != nil {
			t.Fatalf("loading the client configuration: %v\n%s", err, out)
		}
		if out, err := cl.Swanctl("--initiate", "--child", rc.client.Conn, "--timeout", "10"); err == nil {
			t.Fatalf("%s connected:\n%s", rc.story, out)
		}
		var ev corev1.Event
		kube.Eventually(t, "the "+rc.reason+" Event", 30*time.Second, func() error {
			var err error
			ev, err = warningEvent(ctx, c, rc.reason)
			return err
		})
		if ev.InvolvedObject.Kind != rc.kind || ev.InvolvedObject.Name != rc.object {
			t.Fatalf("%s Event is on %s %s, want %s %s", rc.reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, rc.kind, rc.object)
		}
		for _, v := range rc.values {
			if !strings.Contains(ev.Message, v) {
				t.Fatalf("%s Event message lacks %q: %s", rc.reason, v, ev.Message)
			}
		}
		say(t, "The agent explained it on %s %s: %s", rc.kind, rc.object, ev.Reason)
	}
	// The gateway's recent failures follow on a cadence of their own
	// (agent.DefaultFailureInterval), so that a retrying client cannot
	// cause a status write per attempt.
	kube.Eventually(t, "the gateway's recent failures", 30*time.Second, func() error {
		gw := &v1alpha1.VPNGateway{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, gw); err != nil {
			return err
		}
		on := map[string]string{}
		for _, a := range gw.Status.Agents {
			for _, f := range a.RecentFailures {
				on[f.Reason] = f.Kind + " " + f.Name
			}
		}
		for _, rc := range clients {
			if on[rc.reason] != rc.kind+" "+rc.object {
				return fmt.Errorf("recent failures %v, want %s on %s %s", on, rc.reason, rc.kind, rc.object)
			}
		}
		return nil
	})
	say(t, "kubectl -n %s get events --field-selector type=Warning\n%s", namespace,
		indent(kubectl(t, kubeconfig, "-n", namespace, "get", "events", "--field-selector", "type=Warning")))
	out := kubectlIkegate(t, kubeconfig, "diagnose", "-n", namespace, gatewayName)
	for _, rc := range clients {
		if !strings.Contains(out, rc.reason) {
			t.Fatalf("kubectl ikegate diagnose lacks %s:\n%s", rc.reason, out)
		}
	}
	say(t, "kubectl ikegate diagnose -n %s %s\n%s", namespace, gatewayName, indent(out))
}

// warningEvent is the agent's Warning Event with that reason.
func warningEvent(ctx context.Context, c client.Client, reason string) (corev1.Event, error) {
	var l corev1.EventList
	if err := c.List(ctx, &l, client.InNamespace(namespace)); err != nil {
		return corev1.Event{}, err
	}
	for _, e := range l.Items {
		if e.Type == corev1.EventTypeWarning && e.Reason == reason && e.Source.Component == "ikegate-agent" {
			return e, nil
		}
	}
	return corev1.Event{}, fmt.Errorf("no %s Event among %d", reason, len(l.Items))
}

func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	must(t, err)
	out, err := exec.Command(filepath.Join(root, "bin", "k8s", "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kubectlIkegate builds the plugin and runs it as kubectl would.
func kubectlIkegate(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	must(t, err)
	bin := filepath.Join(t.TempDir(), "kubectl-ikegate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-ikegate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-ikegate: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, append(args, "--kubeconfig", kubeconfig)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl ikegate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

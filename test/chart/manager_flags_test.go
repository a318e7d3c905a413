package chart

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Deployments the chart and config/default render start the manager with
// flags cmd/manager defines: the real binary parses them, and stops at -h
// before it would need a cluster.
func TestManagerAcceptsRenderedArgs(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manager: %v\n%s", err, out)
	}

	parse := func(args []string) (string, error) {
		cmd := exec.Command(bin, append(append([]string{}, args...), "-h")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}

	renders := map[string][]string{
		"helm defaults": managerDeployment(t, helmTemplate(t, releaseName, namespace)).Spec.Template.Spec.Containers[0].Args,
		"helm values": managerDeployment(t, helmTemplate(t, releaseName, namespace,
			"manager.leaderElection.enabled=false",
			"manager.extraArgs[0]=--zap-log-level=debug",
			"image.agent.digest=sha256:"+strings.Repeat("0", 64))).Spec.Template.Spec.Containers[0].Args,
		"kustomize": managerDeployment(t, kustomizeDefault(t)).Spec.Template.Spec.Containers[0].Args,
	}
	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			if len(args) == 0 {
				t.Fatal("no args rendered")
			}
			if stderr, err := parse(args); err != nil {
				t.Fatalf("manager %v: %v\n%s", args, err, stderr)
			}
		})
	}

	// The check can fail: a flag the manager lacks stops it with exit code 2.
	stderr, err := parse([]string{"--metrics-bind-address=:8080", "--no-such-flag=1"})
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr, "no-such-flag") {
		t.Fatalf("manager with an unknown flag: %v, stderr %q; want exit code 2 naming the flag", err, stderr)
	}
}

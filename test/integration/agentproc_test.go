package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/testenv"
)

// buildAgent builds cmd/agent into the test's directory.
func buildAgent(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "agent")
	build := exec.Command("go", "build", "-o", bin, "./cmd/agent")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Building cmd/agent: %v\n%s", err, out)
	}
	return bin
}

// agentProcess is cmd/agent running as a process, as in its container.
type agentProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

// startAgentProcess runs bin with args and the pod's environment; the
// process is SIGKILLed when the test ends if it still runs.
func startAgentProcess(t testing.TB, bin, pod string, args ...string) *agentProcess {
	t.Helper()
	return startAgentCommand(t, exec.Command(bin, args...), pod)
}

// startAgentCommand is startAgentProcess for a command that ends by
// executing the agent (e.g. ip netns exec, setpriv).
func startAgentCommand(t testing.TB, cmd *exec.Cmd, pod string) *agentProcess {
	t.Helper()
	cmd.Env = append(os.Environ(), "POD_NAME="+pod, "POD_NAMESPACE="+namespace, "GATEWAY_NAME="+gatewayName)
	p := &agentProcess{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("Output of agent %s:\n%s", pod, p.out.String())
		}
	})
	return p
}

// kill SIGKILLs the agent (no shutdown of any kind) and waits for it.
func (p *agentProcess) kill(t testing.TB) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("Agent pid %d survived SIGKILL", p.cmd.Process.Pid)
	}
}

// count is how often the agent's output holds substr so far.
func (p *agentProcess) count(substr string) int { return strings.Count(p.out.String(), substr) }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

package e2e

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/ikegate/ikegate/internal/demorun"
)

// beginRun gives the run its own directory (TMPDIR, the namespaces' names)
// after removing what killed runs left, and removes it all at the very end.
func beginRun(t *testing.T) *demorun.Run {
	t.Helper()
	run, removed, err := demorun.Begin(demorun.Base())
	if run == nil {
		t.Fatalf("Making the run's directory under %s: %v", demorun.Base(), err)
	}
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() {
		if _, err := run.Remove(); err != nil {
			t.Errorf("Removing the run's leftovers: %v", err)
		}
	})
	if len(removed) > 0 {
		say(t, "Removed what an earlier run that was killed left behind:\n%s", indent(strings.Join(removed, "\n")))
	}
	if err != nil {
		say(t, "Could not remove all an earlier run left behind: %v", err)
	}
	return run
}

// catchSignals takes SIGINT, SIGTERM and SIGHUP from their default (death
// without cleanup) before the run makes anything; stopOnSignal handles
// them once the run exists. SIGPIPE is caught for good, so that a reader
// gone from stdout (`make demo | tee demo.log`: Ctrl-C kills tee too) makes
// narration writes fail, which say ignores, instead of killing the process
// before its cleanup.
func catchSignals(t *testing.T) <-chan os.Signal {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(sigs) })
	return sigs
}

// stopOnSignal stops the run with its cleanup at any moment. While
// waitForInterrupt waits, the signal goes to it and the test's own cleanups
// run. At any other moment a step may block for a minute, so the run's
// processes, namespaces and directory are removed from here and the process
// exits.
func stopOnSignal(t *testing.T, run *demorun.Run, sigs <-chan os.Signal) (waiting <-chan os.Signal) {
	// Unbuffered: a send succeeds only while waitForInterrupt receives.
	wait := make(chan os.Signal)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				select {
				case wait <- s:
					continue
				default:
				}
				fmt.Printf("==> %v: stopping and cleaning up\n", s)
				run.RemoveAndExit(128+int(s.(syscall.Signal)), func(removed []string, err error) {
					fmt.Printf("==> Removed:\n%s\n", indent(strings.Join(removed, "\n")))
					if err != nil {
						fmt.Fprintf(os.Stderr, "Cleaning up: %v\n", err)
					}
				})
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	return wait
}

func waitForInterrupt(kubeconfig string, sig <-chan os.Signal) {
	fmt.Printf(`
The demo keeps running. Look around with kubectl:

  export KUBECONFIG=%s
  bin/k8s/kubectl -n %s get vpngateways,mobilepools,vpnusers,tunnels
  bin/k8s/kubectl -n %s get vpnuser %s -o yaml

Press Ctrl-C to stop; namespaces and processes are cleaned up.
`, kubeconfig, namespace, namespace, userName)
	s := <-sig
	fmt.Printf("==> %v: stopping and cleaning up\n", s)
}

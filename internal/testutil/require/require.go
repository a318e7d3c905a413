// Package require gates tests on what the machine offers (root, programs)
// in one way for the whole project: such a test skips on a developer's
// machine, but fails when IKEGATE_REQUIRE_ROOT_TESTS=1 (set by `make test` as
// root), so a privileged suite can never pass in CI by silently skipping.
package require

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Env names the environment variable that turns skips into failures.
const Env = "IKEGATE_REQUIRE_ROOT_TESTS"

// Strict reports whether skipping is forbidden.
func Strict() bool { return os.Getenv(Env) == "1" }

// Root skips (or, when Strict, fails) the test unless it runs as root.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	SkipOrFail(t, "needs root (euid %d)", os.Geteuid())
}

// Commands skips (or fails) the test unless every named program is on PATH.
func Commands(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			SkipOrFail(t, "%s not found on PATH (hack/install-strongswan.sh installs it)", n)
		}
	}
}

// SkipOrFail skips the test with the message, or fails it when Strict.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s, and %s=1 forbids skipping", msg, Env)
	}
	t.Skip(msg)
}

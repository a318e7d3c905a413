package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RootRequired reports whether the run demands that root-gated tests run
// (IKEGATE_REQUIRE_ROOT_TESTS=1, set by `make test` when run as root).
func RootRequired() bool { return os.Getenv(RequireRootEnv) == "1" }

// RequireRoot skips the test when not running as root, or fails it when
// IKEGATE_REQUIRE_ROOT_TESTS=1, so a root-gated suite can't be skipped in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	SkipOrFail(t, "needs root (euid %d)", os.Geteuid())
}

// RequireCommands skips or fails (see SkipOrFail) unless every named program
// is on PATH, e.g. RequireCommands(t, "ip", "nft", "swanctl").
func RequireCommands(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			SkipOrFail(t, "%s not found on PATH (hack/install-strongswan.sh installs it)", n)
		}
	}
}

// SkipOrFail is the one way for privileged or host-dependent tests to bow out
// when the machine can't run them: it skips normally, but fails the test when
// IKEGATE_REQUIRE_ROOT_TESTS=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RootRequired() {
		t.Fatalf("%s, and %s=1 forbids skipping", msg, RequireRootEnv)
	}
	t.Skip(msg)
}

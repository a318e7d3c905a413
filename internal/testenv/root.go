package testenv

import (
	"testing"

	"github.com/ikegate/ikegate/internal/testutil/require"
)

// RootRequired reports whether the run demands that root-gated tests run
// (IKEGATE_REQUIRE_ROOT_TESTS=1, set by `make test` when run as root).
func RootRequired() bool { return require.Strict() }

// RequireRoot skips the test when not running as root, or fails it when
// IKEGATE_REQUIRE_ROOT_TESTS=1, so a root-gated suite can't be skipped in CI.
func RequireRoot(t testing.TB) { t.Helper(); require.Root(t) }

// RequireCommands skips or fails (see SkipOrFail) unless every named program
// is on PATH, e.g. RequireCommands(t, "ip", "nft", "swanctl").
func RequireCommands(t testing.TB, names ...string) { t.Helper(); require.Commands(t, names...) }

// SkipOrFail is the one way for privileged or host-dependent tests to bow out
// when the machine can't run them: it skips normally, but fails the test when
// IKEGATE_REQUIRE_ROOT_TESTS=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	require.SkipOrFail(t, format, args...)
}

package gen

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// UserCounts are the user counts a scale benchmark runs at: def, or the
// comma-separated IKEGATE_BENCH_USERS.
func UserCounts(tb testing.TB, def ...int) []int {
	tb.Helper()
	env := os.Getenv("IKEGATE_BENCH_USERS")
	if env == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("IKEGATE_BENCH_USERS=%q: want user counts separated by commas", env)
		}
		out = append(out, n)
	}
	return out
}

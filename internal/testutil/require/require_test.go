package require_test

import (
	"testing"

	"github.com/ikegate/ikegate/internal/testutil/require"
)

// A gated test skips on a developer's machine and fails where the run
// demands every gated test.
func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		env             string
		skipped, failed bool
	}{
		{env: "", skipped: true},
		{env: "1", failed: true},
	} {
		t.Run(require.Env+"="+tc.env, func(t *testing.T) {
			t.Setenv(require.Env, tc.env)
			ft := &fakeTB{TB: t}
			runInGoroutine(func() { require.SkipOrFail(ft, "reason") })
			if ft.skipped != tc.skipped || ft.failed != tc.failed {
				t.Fatalf("skipped=%v failed=%v, want skipped=%v failed=%v", ft.skipped, ft.failed, tc.skipped, tc.failed)
			}
		})
	}
}

// fakeTB records Skip/Fatal instead of acting on the real test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	panic(stop{})
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic(stop{})
}

type stop struct{}

func runInGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stop); !ok {
					panic(r)
				}
			}
		}()
		fn()
	}()
	<-done
}

package require_test

import (
	"testing"

	"github.com/ikegate/ikegate/internal/testutil/require"
)

func TestSkipOrFailSkipsWithoutRequirement(t *testing.T) {
	t.Setenv(require.Env, "")
	ft := &fakeTB{TB: t}
	runInGoroutine(func() { require.SkipOrFail(ft, "reason") })
	if !ft.skipped || ft.failed {
		t.Fatalf("skipped=%v failed=%v, want skipped only", ft.skipped, ft.failed)
	}
}

func TestSkipOrFailFailsWhenRequired(t *testing.T) {
	t.Setenv(require.Env, "1")
	ft := &fakeTB{TB: t}
	runInGoroutine(func() { require.SkipOrFail(ft, "reason") })
	if !ft.failed || ft.skipped {
		t.Fatalf("skipped=%v failed=%v, want failed only", ft.skipped, ft.failed)
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

package poll

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf ends only the goroutine it runs on,
// as the real one does, so a failing Eventually can be observed.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(fn func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	tries := 0
	r := run(func(t testing.TB) {
		Eventually(t, "third try", time.Minute, func() error {
			if tries++; tries < 3 {
				return errors.New("not yet")
			}
			return nil
		}, Every(time.Millisecond))
	})
	if r.failed != "" || tries != 3 {
		t.Errorf("failed %q after %d tries, want success on the third", r.failed, tries)
	}
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	tries := 0
	r := run(func(t testing.TB) {
		Eventually(t, "the impossible", 0, func() error {
			tries++
			return fmt.Errorf("try %d failed", tries)
		})
	})
	if tries != 1 {
		t.Errorf("cond tried %d times with a zero timeout, want once", tries)
	}
	for _, want := range []string{"the impossible", "try 1 failed"} {
		if !strings.Contains(r.failed, want) {
			t.Errorf("failure %q does not name %q", r.failed, want)
		}
	}
}

func TestHolds(t *testing.T) {
	if err := Holds(func() bool { return true })(); err != nil {
		t.Errorf("Holds(true) = %v", err)
	}
	if err := Holds(func() bool { return false })(); err == nil {
		t.Error("Holds(false) = nil")
	}
}

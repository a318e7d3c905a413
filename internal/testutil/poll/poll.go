// Package poll is the one wait loop of the project's tests: Eventually
// polls a condition until it holds or a timeout passes. It depends on nothing
// but the standard library, so tests of any package can use it.
package poll

import (
	"errors"
	"testing"
	"time"
)

// DefaultInterval is how long Eventually sleeps between tries unless Every
// says otherwise: often enough for a test against an API server or charon,
// rare enough not to load a shared 2-core machine.
const DefaultInterval = 100 * time.Millisecond

// Option changes how Eventually polls.
type Option func(*options)

type options struct{ interval time.Duration }

// Every makes Eventually try every d instead of DefaultInterval; a test that
// measures how long something takes polls finely, so the poll interval
// bounds the figure's resolution.
func Every(d time.Duration) Option {
	return func(o *options) { o.interval = d }
}

// Eventually calls cond until it returns nil, sleeping between tries, and
// fails the test with cond's last error once timeout has passed. cond is
// tried at least once, and the test fails only on a try that ended after the
// deadline, so a machine that overslept still looks at the latest state.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() error, opts ...Option) {
	t.Helper()
	o := options{interval: DefaultInterval}
	for _, opt := range opts {
		opt(&o)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(o.interval)
	}
}

// errNotYet is what Holds reports while its condition is false.
var errNotYet = errors.New("condition does not hold yet")

// Holds adapts a condition that has nothing to say on failure to Eventually.
func Holds(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}
}

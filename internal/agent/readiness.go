package agent

import (
	"errors"

	"github.com/ikegate/ikegate/internal/vici"
)

// serving decides readiness from one apply: whether charon serves the
// gateway's clients, and why not. The pod's readiness gates the gateway's
// Service, so it answers "can a client connect here", not "did every item
// load": a user's secret or a Tunnel charon refuses fails alone and is
// reported in status, while a mobile connection, a pool or the gateway's
// own key that charon lacks leaves clients nothing to connect to.
func serving(applied vici.Result, applyErr, other error, tunnelConn func(string) bool) (bool, string) {
	switch {
	case errors.Is(applyErr, vici.ErrUnavailable):
		return false, "charon is unreachable"
	case other != nil:
		return false, other.Error()
	case applyErr != nil && len(applied.Failed) == 0:
		// Nothing was planned: charon's inventory could not be read.
		return false, applyErr.Error()
	}
	for _, f := range applied.Failed {
		switch f.Ref.Kind {
		case vici.KindPool, vici.KindKey:
			return false, f.Ref.String() + " is not loaded"
		case vici.KindConn:
			if !tunnelConn(f.Ref.Name) {
				return false, f.Ref.String() + " is not loaded"
			}
		}
	}
	return true, "charon holds the gateway's connections"
}

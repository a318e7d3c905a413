package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
)

func TestServing(t *testing.T) {
	failed := func(kind vici.Kind, name string) vici.Result {
		return vici.Result{Failed: []vici.Failure{{Ref: vici.Ref{Kind: kind, Name: name}, Err: errors.New("refused")}}}
	}
	refused := errors.New("refused")
	tunnel := func(name string) bool { return name == "tunnel-hq" }
	// Two pools, each with its connection, and a tunnel.
	m := swan.Model{Connections: []swan.Connection{
		{Name: "mobile-staff", Pools: []string{"staff"}},
		{Name: "mobile-guests", Pools: []string{"guests"}},
		{Name: "tunnel-hq"},
	}}
	both := func(a, b vici.Result) vici.Result { return vici.Result{Failed: append(a.Failed, b.Failed...)} }
	for _, tc := range []struct {
		name     string
		applied  vici.Result
		applyErr error
		other    error
		want     bool
	}{
		{name: "everything loaded", want: true},
		{name: "a user's secret refused", applied: failed(vici.KindSecret, "ntlm-bob"), applyErr: refused, want: true},
		{name: "a tunnel refused", applied: failed(vici.KindConn, "tunnel-hq"), applyErr: refused, want: true},
		{name: "one mobile connection refused", applied: failed(vici.KindConn, "mobile-staff"), applyErr: refused, want: true},
		{name: "one pool refused", applied: failed(vici.KindPool, "staff"), applyErr: refused, want: true},
		{name: "every mobile connection refused", applied: both(failed(vici.KindConn, "mobile-staff"), failed(vici.KindConn, "mobile-guests")), applyErr: refused},
		{name: "one connection and the other's pool refused", applied: both(failed(vici.KindConn, "mobile-staff"), failed(vici.KindPool, "guests")), applyErr: refused},
		{name: "the gateway's key refused", applied: failed(vici.KindKey, "gateway"), applyErr: refused},
		{name: "charon unreachable", applyErr: fmt.Errorf("dialling: %w", vici.ErrUnavailable)},
		{name: "charon's inventory unreadable", applyErr: errors.New("listing connections: timeout")},
		{name: "the firewall failed", other: errors.New("nftables: permission denied")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := serving(m, tc.applied, tc.applyErr, tc.other, tunnel); got != tc.want || why == "" {
				t.Errorf("serving = %v (%q), want %v with a reason", got, why, tc.want)
			}
		})
	}
}

package vici_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	govici "github.com/strongswan/govici/vici"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

func TestWireError(t *testing.T) {
	msg := func(key string, v any) *govici.Message {
		m := govici.NewMessage()
		if err := m.Set(key, v); err != nil {
			t.Fatal(err)
		}
		return m
	}
	section := func(name string, sub *govici.Message) *govici.Message { return msg(name, sub) }
	tests := []struct {
		name string
		msg  *govici.Message
		want string // "" when the message fits
	}{
		{"longest name", section(strings.Repeat("c", 255), msg("k", "v")), ""},
		{"name one byte over", section(strings.Repeat("c", 256), msg("k", "v")), "name"},
		{"nested key over", section("conn", msg(strings.Repeat("k", 256), "v")), "conn: name"},
		{"longest value", msg("data", strings.Repeat("v", 65535)), ""},
		{"value one byte over", msg("data", strings.Repeat("v", 65536)), "value of data"},
		{"list item over", msg("certs", []string{"a", strings.Repeat("v", 65536)}), "item of certs"},
		// Ten values just under the item limit make a message over 512 KiB.
		{"message over charon's limit", msg("certs", slices.Repeat([]string{strings.Repeat("v", 60000)}, 10)), "over charon's limit"},
		{"message under charon's limit", msg("certs", slices.Repeat([]string{strings.Repeat("v", 60000)}, 8)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := vici.WireError("load-conn", tt.msg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("WireError = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("WireError = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// unsendable adds to m a connection whose name VICI cannot carry, a secret
// whose data it cannot carry, and a pool charon refuses.
func unsendable(m swan.Model) swan.Model {
	m.Connections = append(m.Connections, mobileConn("mobile-"+strings.Repeat("x", 300), "staff4"))
	m.Secrets = append(m.Secrets, swan.Secret{Name: "ntlm-huge", Type: "NTLM", Owners: []string{"huge@example.com"}, Data: make([]byte, 70000)})
	m.Pools = append(m.Pools, pool("refused4", "10.3.202.0/24"))
	return m
}

func failedRefs(res vici.Result) []string {
	var out []string
	for _, f := range res.Failed {
		out = append(out, f.Ref.String())
	}
	slices.Sort(out)
	return out
}

// One item that cannot be sent, and one charon refuses, fail alone: the
// removed user's secret is still unloaded, the new one loaded, and charon's
// connection is not given up for lost.
func TestUnsendableAndRefusedItemsFailAlone(t *testing.T) {
	f := vicitest.NewFake()
	a := vici.NewApplier(f)
	apply(t, a, testModel(t, "alice", "bob"))
	f.FailOn("load-pool", "refused4", "invalid pool")
	epoch, _ := f.Connect(context.Background())

	m := unsendable(testModel(t, "bob", "carol"))
	res, err := a.Apply(context.Background(), m)
	if err == nil || errors.Is(err, vici.ErrUnavailable) {
		t.Fatalf("Apply error = %v, want the items' failures and not charon unavailable", err)
	}
	want := []string{"conn mobile-" + strings.Repeat("x", 300), "pool refused4", "secret ntlm-huge"}
	if got := failedRefs(res); !slices.Equal(got, want) {
		t.Errorf("Failed = %v, want %v", got, want)
	}
	for _, f := range res.Failed {
		if !strings.Contains(err.Error(), f.Err.Error()) {
			t.Errorf("Apply's error lacks %v", f.Err)
		}
	}
	if f.Shared("ntlm-alice") != nil {
		t.Error("The removed user's secret is still loaded")
	}
	if f.Shared("ntlm-carol") == nil || f.Shared("ntlm-bob") == nil {
		t.Error("The other users' secrets are not loaded")
	}
	if now, _ := f.Connect(context.Background()); now != epoch {
		t.Error("Apply dropped charon's connection")
	}

	// The next Apply neither re-reads charon nor sends the broken items.
	f.ResetCalls()
	res, _ = a.Apply(context.Background(), m)
	if res.Synced {
		t.Error("The next Apply re-read charon")
	}
	if w := writes(f); !slices.Equal(w, []string{"load-pool refused4"}) {
		t.Errorf("Writes of the next Apply = %v, want only the refused pool retried", w)
	}
}

package vici_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// A real charon gets a plan in which one connection's name and one secret's
// data cannot be sent and one pool is refused: the rest of the plan still
// runs (the removed user's secret is unloaded, the new one loaded) on the
// same connection to charon.
func TestUnsendableItemsFailAloneInCharon(t *testing.T) {
	ns := netns.New(t, "vicis")
	gw := charontest.Start(t, ns, charontest.Options{Name: "gw", Userspace: true})
	p := newGatewayPKI(t)
	client := vici.NewClient(gw.VICISocket())
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a := vici.NewApplier(client)
	if _, err := a.Apply(ctx, gatewayModel(p, map[string]string{"alice": "abc123", "bob": "s3cret"})); err != nil {
		t.Fatalf("First Apply: %v", err)
	}
	epoch, err := client.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}

	m := gatewayModel(p, map[string]string{"bob": "s3cret", "carol": "x"})
	long := m.Connections[0]
	long.Name = "mobile-" + strings.Repeat("x", 300)
	m.Connections = append(m.Connections, long)
	m.Secrets = append(m.Secrets, swan.Secret{Name: "ntlm-huge", Type: "NTLM", Owners: []string{"huge@example.com"}, Data: make([]byte, 70000)})
	m.Pools = append(m.Pools, swan.Pool{Name: "refused4", Addrs: "not-an-address"})
	res, err := a.Apply(ctx, m)
	if err == nil || errors.Is(err, vici.ErrUnavailable) {
		t.Fatalf("Apply error = %v, want the items' failures and not charon unavailable", err)
	}
	if !strings.Contains(err.Error(), "invalid addrs value") {
		t.Errorf("Apply error = %v, want charon's refusal of the pool in it", err)
	}
	want := []string{"conn " + long.Name, "pool refused4", "secret ntlm-huge"}
	if got := failedRefs(res); !slices.Equal(got, want) {
		t.Errorf("Failed = %v, want %v", got, want)
	}

	inv, err := vici.ReadInventory(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inv.Shared, ","); got != "ntlm-bob,ntlm-carol" {
		t.Errorf("get-shared = %s, want the removed user's secret gone and the new one loaded", got)
	}
	if !slices.Equal(inv.Conns, []string{"mobile"}) {
		t.Errorf("Connections = %v, want mobile only", inv.Conns)
	}
	if now, err := client.Connect(ctx); err != nil || now != epoch {
		t.Errorf("The connection to charon was redialled (epoch %d -> %d, %v)", epoch, now, err)
	}
}

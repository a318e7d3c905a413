package radiusd_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/radiusd"
)

// TestCharonThroughServer runs a real gateway charon whose eap-radius
// plugin asks the server on the gateway namespace's loopback, and a real
// strongSwan client: a user in the map connects and pings through the
// tunnel, a wrong password is refused, and users removed from or added to
// the map are refused or accepted on their next login with nothing done
// to charon (same process, no reload); a static address in the map
// becomes the user's virtual IP.
func TestCharonThroughServer(t *testing.T) {
	ctx := context.Background()
	users := &radiusd.Map{}
	users.Set("alice", radiusd.User{NTHash: ntHash("alice-pass")})
	users.Set("bob", radiusd.User{NTHash: ntHash("bob-right")})
	b := newBed(t, users, nil)
	b.loadClients(t,
		client("alice", radiusGW, "alice", "alice-pass"),
		client("bob", radiusGW, "bob", "bob-wrong"),
		client("dave", staticGW, "dave", "dave-pass"),
	)
	pid := b.gw.PID()

	if _, err := initiate(ctx, b.clVICI, "alice"); err != nil {
		t.Fatalf("alice could not connect through the RADIUS server: %v\nServer:\n%s", err, b.logs)
	}
	b.ping(t)
	sas, err := b.gw.Swanctl("--list-sas")
	if err != nil || !strings.Contains(sas, "alice") || !strings.Contains(sas, "INSTALLED") {
		t.Fatalf("Gateway holds no CHILD_SA of alice: %v\n%s", err, sas)
	}
	if !strings.Contains(b.gw.Log(), "RADIUS authentication of 'alice' successful") {
		t.Errorf("The gateway's charon did not authenticate alice through RADIUS:\n%s", b.gw.Log())
	}

	if _, err := initiate(ctx, b.clVICI, "bob"); err == nil {
		t.Fatal("bob connected with a wrong password")
	}
	if !strings.Contains(b.logs.String(), `"identity"="bob" "reason"="wrong password"`) {
		t.Errorf("The server did not refuse bob for his password:\n%s", b.logs)
	}

	if err := terminate(ctx, b.clVICI, "alice"); err != nil {
		t.Fatal(err)
	}
	users.Delete("alice")
	if _, err := initiate(ctx, b.clVICI, "alice"); err == nil {
		t.Fatal("alice connected after she was removed from the map")
	}
	if _, err := initiate(ctx, b.clVICI, "dave"); err == nil {
		t.Fatal("dave connected before he was added to the map")
	}
	// dave comes with a static address: charon takes Framed-IP-Address as
	// his virtual IP through the "radius" pool of the connection he uses.
	users.Set("dave", radiusd.User{NTHash: ntHash("dave-pass"), Policy: radiusd.Policy{Address: netip.MustParseAddr("10.3.201.9")}})
	if _, err := initiate(ctx, b.clVICI, "dave"); err != nil {
		t.Fatalf("dave could not connect right after he was added: %v\nServer:\n%s", err, b.logs)
	}
	b.ping(t)
	if sas, err := b.gw.Swanctl("--list-sas"); err != nil || !strings.Contains(sas, "remote 10.3.201.9/32") {
		t.Errorf("dave's CHILD_SA does not use his static address 10.3.201.9: %v\n%s", err, sas)
	}

	if got := b.gw.PID(); got != pid {
		t.Errorf("The gateway's charon restarted (process %d, was %d)", got, pid)
	}
	st := b.server.Stats()
	if st.Accepts != 2 || st.Rejects != 3 {
		t.Errorf("Server stats %+v, want 2 accepts (alice, dave) and 3 rejects (bob, alice removed, dave unknown)", st)
	}
	for name, log := range map[string]string{"server": b.logs.String(), "gateway charon": b.gw.Log(), "client charon": b.cl.Log()} {
		if strings.Contains(log, string(b.secret)) {
			t.Errorf("The %s logged the RADIUS shared secret", name)
		}
		for _, h := range []string{"alice-pass", "bob-right", "dave-pass"} {
			if hash := ntHash(h); strings.Contains(strings.ToLower(log), fmt.Sprintf("%x", hash[:])) {
				t.Errorf("The %s logged an NT hash", name)
			}
		}
	}
}

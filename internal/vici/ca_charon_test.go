package vici_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestARotatedCAAuthenticatesNobody backs the plan's reason for never
// clearing credentials: after the client CA is rotated, the old CA stays in
// charon's memory (strongSwan cannot unload one certificate) but a client
// whose certificate it issued is refused, and one of the new CA gets in.
func TestARotatedCAAuthenticatesNobody(t *testing.T) {
	gwNS := netns.New(t, "vicag")
	clNS := netns.New(t, "vicac")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	p := newGatewayPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gwc := vici.NewClient(gw.VICISocket())
	defer gwc.Close()
	clc := vici.NewClient(cl.VICISocket())
	defer clc.Close()
	s := &counting{Session: gwc}
	gwApplier, clApplier := vici.NewApplier(s), vici.NewApplier(clc)

	oldCA, newCA := charontest.NewPKI(t, "Old Client CA"), charontest.NewPKI(t, "New Client CA")
	// The gateway accepts clients whose chain ends in the client CA.
	gateway := func(ca *charontest.PKI) swan.Model {
		m := gatewayModel(p, nil)
		m.Certs = append(m.Certs, swan.Cert{Name: "client-ca", Type: "x509ca", PEM: ca.CertPEM})
		m.Connections[0].Remote = []swan.Auth{{Method: "pubkey", ID: "%any", CACerts: []string{"client-ca"}}}
		return m
	}
	login := func(ca *charontest.PKI) error {
		leaf := ca.Client(t, "carol.example.com", "carol.example.com")
		m := clientModel(p, "carol", "unused")
		m.Secrets = nil
		m.Connections[0].Local = []swan.Auth{{Method: "pubkey", ID: "carol.example.com", Certs: []string{"me"}}}
		m.Connections[0].SendCert = "always"
		m.Certs = append(m.Certs, swan.Cert{Name: "me", Type: "x509", PEM: leaf.CertPEM})
		m.Keys = []swan.PrivateKey{{Name: "me", Type: "any", PEM: leaf.KeyPEM}}
		if _, err := clApplier.Apply(ctx, m); err != nil {
			t.Fatalf("Applying the client: %v", err)
		}
		_, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "15")
		_, _ = cl.Swanctl("--terminate", "--ike", "home", "--force", "--timeout", "-1")
		_, _ = gw.Swanctl("--terminate", "--ike", "mobile", "--force", "--timeout", "-1")
		return err
	}

	if _, err := gwApplier.Apply(ctx, gateway(oldCA)); err != nil {
		t.Fatal(err)
	}
	if err := login(oldCA); err != nil {
		t.Fatalf("A client of the trusted CA was refused: %v\n%s", err, gw.Log())
	}
	s.take()
	if _, err := gwApplier.Apply(ctx, gateway(newCA)); err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(s.take(), ","); w != "load-cert,load-conn mobile" {
		t.Errorf("Rotating the client CA wrote %s, want load-cert,load-conn mobile", w)
	}
	inv, err := vici.ReadInventory(ctx, gwc)
	if err != nil {
		t.Fatal(err)
	}
	held := false
	oldFP, _ := vici.CertFingerprint(oldCA.CertPEM)
	for _, c := range inv.Certs {
		held = held || c.Fingerprint == oldFP
	}
	if !held {
		t.Error("charon no longer holds the old CA: this test would not show that holding it is harmless")
	}
	if err := login(oldCA); err == nil {
		t.Error("A client of the rotated-out CA logged in")
	}
	if err := login(newCA); err != nil {
		t.Errorf("A client of the new CA was refused: %v\n%s", err, gw.Log())
	}
}

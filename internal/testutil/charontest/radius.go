package charontest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
)

// RADIUSDir is where a gateway charon's eap-radius plugin reads its servers
// (RADIUSServersInclude): the directory an agent under test writes to, as
// the agent of a pod writes v1alpha1.RADIUSDir.
func (c *Charon) RADIUSDir() string { return filepath.Join(c.runDir(), "radius") }

// ListenUDP binds a UDP socket to addr in the charon's namespace, closed
// when the test ends: where an agent running in the test process serves
// charon's RADIUS requests, as it would on the loopback of a gateway pod.
func (c *Charon) ListenUDP(t testing.TB, addr string) net.PacketConn {
	t.Helper()
	var conn net.PacketConn
	c.ns.MustDo(t, func() (err error) {
		conn, err = net.ListenPacket("udp", addr)
		return err
	})
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ServeUsers answers the EAP-MSCHAPv2 logins of this gateway charon the
// way the agent of a pod does for swan.Build's local users: a radiusd
// server on the namespace's loopback holding users, written into
// RADIUSDir and read by charon at once. It serves until the test ends;
// the returned Map can be changed under it.
func (c *Charon) ServeUsers(t testing.TB, users []swan.AcceptedUser) *radiusd.Map {
	t.Helper()
	m := &radiusd.Map{}
	for _, u := range users {
		m.Set(u.Identity, radiusd.User{NTHash: u.NTHash, Policy: radiusd.Policy{Address: u.Address, Class: u.Group}})
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	secret := []byte(hex.EncodeToString(raw))
	srv, err := radiusd.New(radiusd.Options{Conn: c.ListenUDP(t, "127.0.0.1:0"), Secret: secret, Users: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RADIUS server of charon %s: %v", c.opts.Name, err)
		}
	})
	port := int(srv.Addr().Port())
	conf := swan.RenderRADIUSServers([]swan.RADIUSServer{{Name: "agent", Address: "127.0.0.1", AuthPort: port, AcctPort: port, Secret: secret}})
	if err := os.WriteFile(filepath.Join(c.RADIUSDir(), "servers.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Swanctl("--reload-settings"); err != nil {
		t.Fatalf("charon %s re-reading its RADIUS server: %v\n%s", c.opts.Name, err, out)
	}
	return m
}

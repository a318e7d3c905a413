package radiusd_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-logr/logr/funcr"
	govici "github.com/strongswan/govici/vici"
	"golang.org/x/crypto/md4"

	"github.com/ikegate/ikegate/internal/radiusd"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// Addresses of the test bed: the gateway answers RADIUS logins on
// radiusGW and charon's own NTLM secrets on ntlmGW, so both paths run
// through the same two charons in one run. On staticGW RADIUS logins get
// only the address the server sends (pools = radius).
const (
	radiusGW = "192.0.2.1"
	ntlmGW   = "192.0.2.3"
	staticGW = "192.0.2.4"
	clientIP = "192.0.2.2"
	gwName   = "vpn.example.com"
	lanNet   = "10.3.0.0/24"
	lanAddr  = "10.3.0.1"
)

// ntHash is MD4 over the UTF-16LE password.
func ntHash(password string) [16]byte {
	h := md4.New()
	for _, u := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(u), byte(u >> 8)})
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// swapUsers lets a benchmark change the whole user set under a running
// server between rounds.
type swapUsers struct{ p atomic.Pointer[radiusd.Map] }

func (s *swapUsers) NTHash(id string) ([16]byte, bool) { return s.p.Load().NTHash(id) }
func (s *swapUsers) Policy(id string) radiusd.Policy   { return s.p.Load().Policy(id) }

// bed is a gateway charon with eap-radius pointing at a radiusd.Server on
// the gateway namespace's loopback, and a client charon.
type bed struct {
	gwNS, clNS *netns.NS
	gw, cl     *charontest.Charon
	gwVICI     vici.Session
	clVICI     vici.Session
	server     *radiusd.Server
	users      *swapUsers
	secret     []byte
	logs       *syncBuilder
	pki        *charontest.PKI
}

// gatewayConf is the gateway: connection rad authenticates clients through
// RADIUS, connection ntlm with the NT hashes in ntlm (identity: hash).
func gatewayConf(ntlm map[string][16]byte) string {
	conn := func(name, addr, auth, pools string) string {
		return fmt.Sprintf(`  %[1]s {
    version = 2
    local_addrs = %[2]s
    proposals = aes256gcm16-prfsha256-x25519
    pools = %[6]s
    send_cert = always
    local {
      auth = pubkey
      certs = gw.pem
      id = %[4]s
    }
    remote {
      auth = %[3]s
      eap_id = %%any
    }
    children {
      %[1]s {
        local_ts = %[5]s
        esp_proposals = aes256gcm16
      }
    }
  }
`, name, addr, auth, gwName, lanNet, pools)
	}
	var secrets strings.Builder
	for id, h := range ntlm {
		fmt.Fprintf(&secrets, "  ntlm-%s {\n    id = %s\n    secret = 0x%x\n  }\n", id, id, h[:])
	}
	return "connections {\n" + conn("rad", radiusGW, "eap-radius", "mobile4") + conn("ntlm", ntlmGW, "eap-mschapv2", "mobile4") +
		conn("static", staticGW, "eap-radius", "radius") +
		"}\npools {\n  mobile4 {\n    addrs = 10.3.200.0/24\n  }\n}\nsecrets {\n" + secrets.String() + "}\n"
}

// newBed starts the server with users and the two charons; the gateway
// also holds ntlm as charon secrets.
func newBed(t testing.TB, users *radiusd.Map, ntlm map[string][16]byte) *bed {
	t.Helper()
	b := &bed{users: &swapUsers{}, logs: &syncBuilder{}}
	b.users.p.Store(users)
	b.gwNS = netns.New(t, "rsgw")
	b.clNS = netns.New(t, "rscl")
	gwIf, _ := netns.Veth(t, b.gwNS, b.clNS, radiusGW+"/24", clientIP+"/24")
	for _, a := range []string{ntlmGW, staticGW} {
		b.gwNS.Run(t, "ip", "addr", "add", a+"/24", "dev", gwIf)
	}
	b.gwNS.AddLoopbackAddr(t, lanAddr+"/24")

	// The per-pod secret, as the caller generates it; printable so that
	// it could also be written by hand into a servers file.
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	b.secret = []byte(fmt.Sprintf("%x", raw))
	log := funcr.New(func(prefix, args string) { b.logs.add(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 1})
	b.gwNS.MustDo(t, func() error {
		var err error
		b.server, err = radiusd.New(radiusd.Options{Addr: "127.0.0.1:0", Secret: b.secret, Users: b.users, Logger: log})
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.server.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	dir := filepath.Join(t.TempDir(), "radius")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	port := int(b.server.Addr().Port())
	conf := swan.RenderRADIUSServers([]swan.RADIUSServer{{Name: "agent", Address: "127.0.0.1", AuthPort: port, AcctPort: port + 1, Secret: b.secret}})
	if err := os.WriteFile(filepath.Join(dir, "servers.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.gw = charontest.Start(t, b.gwNS, charontest.Options{Name: "gw", Userspace: true, Settings: func(s *swan.Settings) {
		s.EAPRADIUS = &swan.EAPRADIUS{ServersInclude: dir + "/*.conf"}
	}})
	b.cl = charontest.Start(t, b.clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	b.gwVICI, b.clVICI = vici.NewClient(b.gw.VICISocket()), vici.NewClient(b.cl.VICISocket())
	t.Cleanup(func() { b.gwVICI.Close(); b.clVICI.Close() })

	b.pki = charontest.NewPKI(t, "radiusd Test CA")
	server := b.pki.Server(t, gwName, gwName, radiusGW, ntlmGW, staticGW)
	if out, err := b.gw.LoadAll(gatewayConf(ntlm), map[string][]byte{
		"x509/gw.pem": server.CertPEM, "x509ca/ca.pem": b.pki.CertPEM, "private/gw.key": server.KeyPEM,
	}); err != nil {
		t.Fatalf("Loading the gateway: %v\n%s", err, out)
	}
	return b
}

// loadClients loads the client's connections, one per client.
func (b *bed) loadClients(t testing.TB, clients ...charontest.EAPClient) {
	t.Helper()
	if out, err := b.cl.LoadAll(charontest.ClientConf(clients...), map[string][]byte{"x509ca/ca.pem": b.pki.CertPEM}); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
}

// client is a connection named conn of identity with password to gw.
func client(conn, gw, identity, password string) charontest.EAPClient {
	return charontest.EAPClient{Conn: conn, Gateway: gw, RemoteID: gwName, Identity: identity, Password: password, RemoteTS: lanNet}
}

// initiate brings up the client's connection (IKE_SA, EAP, CHILD_SA) over
// VICI and returns how long it took.
func initiate(ctx context.Context, s vici.Session, conn string) (time.Duration, error) {
	req := govici.NewMessage()
	_ = req.Set("child", conn)
	_ = req.Set("ike", conn)
	_ = req.Set("timeout", "20000")
	// With a deadline the VICI client waits that long for charon's answer;
	// without one it gives up after 5 s of silence, shorter than an IKE
	// retransmission on a loaded machine.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := s.Call(ctx, "initiate", req)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("initiating %s: %w", conn, err)
	}
	if resp.Get("success") != "yes" {
		return d, fmt.Errorf("initiating %s: %v", conn, resp.Get("errmsg"))
	}
	return d, nil
}

// terminate ends the client's IKE_SAs of conn and waits for the gateway's
// answer, so that the next connect starts from a clean gateway.
func terminate(ctx context.Context, s vici.Session, conn string) error {
	req := govici.NewMessage()
	_ = req.Set("ike", conn)
	_ = req.Set("timeout", "5000")
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := s.Call(ctx, "terminate", req)
	if err != nil && (resp == nil || resp.Get("matches") != "0") {
		return fmt.Errorf("terminating %s: %w", conn, err)
	}
	return nil
}

// ping sends count pings from the client through the tunnel to the LAN.
func (b *bed) ping(t testing.TB) {
	t.Helper()
	out, err := b.clNS.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", lanAddr)
	if err != nil || !strings.Contains(out, " 3 received") {
		t.Fatalf("Ping through the tunnel: %v\n%s", err, out)
	}
}

// syncBuilder collects the server's log, written from its workers.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

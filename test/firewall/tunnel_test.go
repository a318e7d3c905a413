// Package firewall_test checks a gateway's nftables table with real traffic
// from a real IPsec client: a client charon connects to a gateway charon (the
// userspace data plane, so decrypted packets come out of the ipsec0 TUN device),
// and the gateway forwards to a LAN namespace behind it.
package firewall_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

const (
	gatewayWAN = "192.0.2.1"
	clientWAN  = "192.0.2.2"
	gatewayLAN = "10.3.0.1"
	server     = "10.3.0.2" // allowed, on port allowedPort only
	otherHost  = "10.3.0.3" // inside the tunnel's networks, outside the policy
	pool       = "10.3.200.0/24"

	allowedPort = 8080
	otherPort   = 9090
	// clampTo is far below what the TUN device's MTU would give (about
	// 1360), so a SYN that arrives with it was clamped by the table.
	clampTo = 1200
)

func TestFirewallThroughTunnel(t *testing.T) {
	require.Root(t)

	gw := netns.New(t, "fwgw")
	cl := netns.New(t, "fwcl")
	lan := netns.New(t, "fwlan")
	netns.Veth(t, gw, cl, gatewayWAN+"/24", clientWAN+"/24")
	netns.Veth(t, gw, lan, gatewayLAN+"/24", server+"/24")
	lan.AddLoopbackAddr(t, otherHost+"/32")
	lan.AddRoute(t, pool, "via", gatewayLAN)
	gw.EnableForwarding(t)

	// Listeners on the LAN host record who connected and with which MSS.
	seen := newRecorder()
	for _, addr := range []string{server + ":" + itoa(allowedPort), server + ":" + itoa(otherPort), otherHost + ":" + itoa(allowedPort)} {
		var ln net.Listener
		lan.MustDo(t, func() (err error) {
			ln, err = net.Listen("tcp4", addr)
			return err
		})
		t.Cleanup(func() { ln.Close() })
		go seen.serve(ln)
	}

	connectClient(t, gw, cl)

	// Before the gateway has a table, everything in the tunnel's networks is reachable.
	for _, dst := range []string{server + ":" + itoa(otherPort), otherHost + ":" + itoa(allowedPort)} {
		if err := dial(t, cl, dst); err != nil {
			t.Fatalf("without a firewall table, %s should be reachable: %v", dst, err)
		}
	}

	fw, err := firewall.NewApplier(firewall.TableName("vpn", "vpn"), nftables.WithNetNSFd(gw.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Delete() })
	cfg := firewall.Config{
		Table:            fw.Table(),
		GatewayAddresses: []netip.Addr{netip.MustParseAddr(gatewayWAN)},
		DataPlane:        firewall.DataPlaneUserspace,
		MSS:              clampTo,
		Pools: []firewall.Pool{{
			Name:  "staff",
			CIDRs: []netip.Prefix{netip.MustParsePrefix(pool)},
			Allow: []firewall.AllowRule{{
				Destination: netip.MustParsePrefix(server + "/32"),
				Protocol:    firewall.ProtocolTCP,
				Ports:       []firewall.PortRange{{From: allowedPort, To: allowedPort}},
			}},
		}},
	}
	apply(t, fw, cfg)

	t.Run("allowed destination and port", func(t *testing.T) {
		if err := dial(t, cl, server+":"+itoa(allowedPort)); err != nil {
			t.Fatalf("allowed connection refused: %v", err)
		}
		c := seen.last(t, server+":"+itoa(allowedPort))
		if !strings.HasPrefix(c.remote, "10.3.200.") {
			t.Errorf("LAN saw the connection from %s, want the client's pool address", c.remote)
		}
		if c.mss > clampTo {
			t.Errorf("LAN side MSS %d: the SYN through the tunnel was not clamped to %d", c.mss, clampTo)
		}
		t.Logf("connection from %s arrived with MSS %d (clamp %d)", c.remote, c.mss, clampTo)
	})

	before := dropped(t, fw)
	t.Run("other port refused", func(t *testing.T) {
		if err := dial(t, cl, server+":"+itoa(otherPort)); err == nil {
			t.Fatal("connection to a port outside the policy went through")
		}
	})
	t.Run("other destination refused", func(t *testing.T) {
		if err := dial(t, cl, otherHost+":"+itoa(allowedPort)); err == nil {
			t.Fatal("connection to a destination outside the policy went through")
		}
	})
	if after := dropped(t, fw); after < before+2 {
		t.Errorf("pool drop counter went from %d to %d packets; want at least the two refused SYNs", before, after)
	} else {
		t.Logf("pool drop counter: %d -> %d packets", before, after)
	}

	t.Run("masquerade", func(t *testing.T) {
		cfg.Pools[0].Masquerade = true
		cfg.Pools[0].LocalNetworks = []netip.Prefix{netip.MustParsePrefix("10.3.0.0/24")}
		apply(t, fw, cfg)
		// Without a route back to the pool, only masquerading lets replies return.
		lan.Run(t, "ip", "route", "del", pool)
		if err := dial(t, cl, server+":"+itoa(allowedPort)); err != nil {
			t.Fatalf("masqueraded connection failed: %v", err)
		}
		if c := seen.last(t, server+":"+itoa(allowedPort)); c.remote != gatewayLAN {
			t.Errorf("LAN saw the connection from %s, want the gateway's address %s", c.remote, gatewayLAN)
		}
	})

	t.Run("delete leaves no table", func(t *testing.T) {
		if err := fw.Delete(); err != nil {
			t.Fatal(err)
		}
		if out := gw.Run(t, "nft", "list", "tables"); strings.Contains(out, fw.Table()) {
			t.Fatalf("table %s still present:\n%s", fw.Table(), out)
		}
	})
}

func apply(t *testing.T, fw *firewall.Applier, cfg firewall.Config) {
	t.Helper()
	rs, err := firewall.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	// A second apply of the same ruleset changes nothing.
	if changed, err := fw.Apply(rs); err != nil || changed {
		t.Fatalf("re-applying the same ruleset: changed=%v err=%v", changed, err)
	}
}

func dropped(t *testing.T, fw *firewall.Applier) uint64 {
	t.Helper()
	cs, err := fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cs[firewall.PoolDropRuleID("staff")]
	if !ok {
		t.Fatalf("no counter %s in %v", firewall.PoolDropRuleID("staff"), cs)
	}
	return c.Packets
}

// connectClient starts a gateway and a client charon (userspace ESP) and
// brings the client's tunnel up; the client gets an address from pool and
// reaches 10.3.0.0/24 through it.
func connectClient(t *testing.T, gw, cl *netns.NS) {
	t.Helper()
	pki := charontest.NewPKI(t, "Firewall Test CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", gatewayWAN)
	g := charontest.Start(t, gw, charontest.Options{Name: "gateway", Userspace: true})
	if out, err := g.LoadAll(gatewayConf, map[string][]byte{
		"x509ca/ca.pem":  pki.CertPEM,
		"x509/gw.pem":    leaf.CertPEM,
		"private/gw.pem": leaf.KeyPEM,
	}); err != nil {
		t.Fatalf("gateway: %v\n%s", err, out)
	}
	c := charontest.Start(t, cl, charontest.Options{Name: "client", Userspace: true, Client: true})
	if out, err := c.LoadAll(clientConf, map[string][]byte{"x509ca/ca.pem": pki.CertPEM}); err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if out, err := c.Swanctl("--initiate", "--child", "home", "--timeout", "20"); err != nil {
		t.Fatalf("client could not connect: %v\n%s", err, out)
	}
}

// dial opens a TCP connection from the client namespace (its source is the
// virtual IP, as charon's routes say) and sends a line so the server records it.
func dial(t *testing.T, ns *netns.NS, addr string) error {
	t.Helper()
	var conn net.Conn
	err := ns.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", addr, 1500*time.Millisecond)
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		return err
	}
	buf := make([]byte, 3)
	if _, err := conn.Read(buf); err != nil {
		return fmt.Errorf("no answer from %s: %w", addr, err)
	}
	return nil
}

type accepted struct {
	remote string
	mss    int
}

// recorder keeps the last connection each listener accepted.
type recorder struct {
	mu   sync.Mutex
	byLn map[string]accepted
	wake chan struct{}
}

func newRecorder() *recorder {
	return &recorder{byLn: map[string]accepted{}, wake: make(chan struct{}, 16)}
}

func (r *recorder) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		a := accepted{remote: conn.RemoteAddr().(*net.TCPAddr).IP.String(), mss: maxSeg(conn)}
		r.mu.Lock()
		r.byLn[ln.Addr().String()] = a
		r.mu.Unlock()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 6)
		if _, err := conn.Read(buf); err == nil {
			conn.Write([]byte("ok\n"))
		}
		conn.Close()
	}
}

func (r *recorder) last(t *testing.T, addr string) accepted {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.byLn[addr]
	if !ok {
		t.Fatalf("no connection reached %s", addr)
	}
	delete(r.byLn, addr)
	return a
}

// maxSeg is the MSS the accepted connection settled on: at most what the
// peer's SYN announced.
func maxSeg(conn net.Conn) int {
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1
	}
	mss := -1
	var serr error
	if err := raw.Control(func(fd uintptr) {
		mss, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG)
	}); err != nil || serr != nil {
		return -1
	}
	return mss
}

func itoa(i int) string { return fmt.Sprint(i) }

const gatewayConf = `connections {
  mobile {
    version = 2
    pools = staff
    send_cert = always
    local {
      auth = pubkey
      certs = gw.pem
      id = vpn.example.com
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      staff {
        local_ts = 10.3.0.0/24
      }
    }
  }
}
pools {
  staff {
    addrs = 10.3.200.0/24
  }
}
secrets {
  eap-jimp {
    id = jimp@example.com
    secret = abc123
  }
}
`

var clientConf = charontest.ClientConf(charontest.EAPClient{
	Conn: "home", Gateway: gatewayWAN, RemoteID: "vpn.example.com",
	Identity: "jimp@example.com", Password: "abc123", RemoteTS: "10.3.0.0/24",
})

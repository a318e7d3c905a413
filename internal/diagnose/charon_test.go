package diagnose_test

import (
	"encoding/hex"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4"

	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

var update = flag.Bool("update", false, "rewrite testdata/*.log from real charons")

const (
	gwAddr    = "192.0.2.1"
	clAddr    = "192.0.2.2"
	clAddr2   = "192.0.2.3"
	password  = "correct-horse"
	gatewayID = "vpn.example.com"
)

// live is a gateway charon and a client charon in their own namespaces.
type live struct {
	gw, cl  *charontest.Charon
	clNS    *netns.NS
	clIf    string // the client's end of the link to the gateway
	pki     *charontest.PKI
	alerts  *diagnose.AlertReader
	enfy    string
	started time.Time
}

func ntHash(pw string) string {
	h := md4.New()
	for _, u := range utf16.Encode([]rune(pw)) {
		h.Write([]byte{byte(u), byte(u >> 8)})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// startLive starts both charons at charon's default log level (1 for
// every group, as the VICI log stream gets them), the gateway with its
// error-notify socket, and loads gwConf and clConf.
func startLive(t *testing.T, sc scenario) *live {
	t.Helper()
	gwNS := netns.New(t, "dggw")
	clNS := netns.New(t, "dgcl")
	var clIf string
	if sc.nat {
		natBetween(t, gwNS, clNS)
	} else {
		_, clIf = netns.Veth(t, gwNS, clNS, gwAddr+"/24", clAddr+"/24")
	}
	if sc.secondAddr {
		clNS.Run(t, "ip", "addr", "add", clAddr2+"/24", "dev", clIf)
	}
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	l := &live{pki: charontest.NewPKI(t, "Diagnose CA"), clNS: clNS, clIf: clIf}
	quick := func(s *swan.Settings) {
		s.Retransmit = swan.Retransmit{Tries: 1, Timeout: 500 * time.Millisecond, Base: 1.5}
	}
	l.gw = charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true, LogLevels: map[string]int{"default": 1},
		Settings: func(s *swan.Settings) {
			l.enfy = filepath.Join(filepath.Dir(strings.TrimPrefix(s.VICISocket, "unix://")), "charon.enfy")
			s.ErrorNotifySocket = "unix://" + l.enfy
			quick(s)
		}})
	server := l.pki.Server(t, gatewayID, gatewayID, gwAddr)
	gwFiles := map[string][]byte{"x509/gw.pem": server.CertPEM, "x509ca/ca.pem": l.pki.CertPEM, "private/gw.key": server.KeyPEM}
	if out, err := l.gw.LoadAll(sc.gateway(), gwFiles); err != nil {
		t.Fatalf("Loading gateway: %v\n%s", err, out)
	}
	conn, err := net.Dial("unix", l.enfy)
	if err != nil {
		t.Fatalf("Connecting to the error-notify socket: %v", err)
	}
	l.alerts = diagnose.NewAlertReader(conn)
	t.Cleanup(func() { _ = l.alerts.Close() })
	if sc.client != nil {
		l.cl = charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true, LogLevels: map[string]int{"default": 1}})
		files := map[string][]byte{"x509ca/ca.pem": l.pki.CertPEM}
		if sc.untrusted {
			files["x509ca/ca.pem"] = charontest.NewPKI(t, "Other CA").CertPEM
		}
		if sc.foreignClientCert {
			leaf := charontest.NewPKI(t, "Other CA").Client(t, "laptop.example.com", "laptop.example.com")
			files["x509/client.pem"], files["private/client.key"] = leaf.CertPEM, leaf.KeyPEM
		}
		if out, err := l.cl.LoadAll(sc.client(), files); err != nil {
			t.Fatalf("Loading client: %v\n%s", err, out)
		}
	}
	return l
}

// gatewayConf is a road-warrior gateway (EAP-MSCHAPv2, certificate) plus
// extra connections.
func gatewayConf(pool, unique, extra string, users ...string) string {
	if pool == "" {
		pool = "10.3.200.0/24"
	}
	if unique == "" {
		unique = "no"
	}
	var secrets strings.Builder
	for _, u := range users {
		secrets.WriteString("  ntlm-" + strings.Split(u, "@")[0] + " {\n    id = " + u + "\n    secret = 0x" + ntHash(password) + "\n  }\n")
	}
	return `connections {
  mobile {
    version = 2
    proposals = aes256gcm16-prfsha256-x25519,aes256-sha256-modp2048
    pools = mobile4
    send_cert = always
    unique = ` + unique + `
    local {
      auth = pubkey
      certs = gw.pem
      id = ` + gatewayID + `
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      mobile {
        local_ts = 10.3.0.0/24
        esp_proposals = aes256gcm16,aes256-sha256
      }
    }
  }
` + extra + `}
pools {
  mobile4 {
    addrs = ` + pool + `
  }
}
secrets {
` + secrets.String() + `  ike-site {
    id = site.example.com
    secret = site-secret-on-the-gateway
  }
}
`
}

// siteTunnel is a PSK site-to-site connection; on the gateway it accepts
// site.example.com, on the client side it is that site.
func siteTunnel(local, remote, remoteAddr string) string {
	addrs := ""
	if remoteAddr != "" {
		addrs = "\n    remote_addrs = " + remoteAddr + "\n    keyingtries = 1"
	}
	return `  site {
    version = 2
    proposals = aes256gcm16-prfsha256-x25519` + addrs + `
    local {
      auth = psk
      id = ` + local + `
    }
    remote {
      auth = psk
      id = ` + remote + `
    }
    children {
      site {
        local_ts = 10.3.0.0/24
        remote_ts = 10.9.0.0/24
      }
    }
  }
`
}

// Addresses of the NAT topology: the client's private address, and the
// router's public one it is masqueraded to.
const (
	natPrivate = "10.0.0.2"
	natPublic  = "192.0.2.3"
)

// natBetween puts a masquerading router between the gateway and the client.
func natBetween(t *testing.T, gwNS, clNS *netns.NS) {
	t.Helper()
	rtNS := netns.New(t, "dgrt")
	_, rtOut := netns.Veth(t, gwNS, rtNS, gwAddr+"/24", natPublic+"/24")
	netns.Veth(t, rtNS, clNS, "10.0.0.1/24", natPrivate+"/24")
	clNS.AddRoute(t, "default", "via", "10.0.0.1")
	rtNS.EnableForwarding(t)
	rtNS.Run(t, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname "+rtOut+" masquerade")
}

// natTunnels: the gateway expects the branch to identify itself by its
// public address, as many site-to-site setups do; the branch, behind NAT
// and configured with no identity, sends its private one.
func natGateway() string {
	return `connections {
  branch {
    version = 2
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = gw.example.com
    }
    remote {
      auth = psk
      id = ` + natPublic + `
    }
    children {
      branch {
        local_ts = 10.3.0.0/24
        remote_ts = 10.9.0.0/24
      }
    }
  }
}
secrets {
  ike-branch {
    id = ` + natPublic + `
    secret = branch-secret
  }
}
`
}

func natBranch() string {
	return `connections {
  branch {
    version = 2
    remote_addrs = ` + gwAddr + `
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
    }
    remote {
      auth = psk
      id = gw.example.com
    }
    children {
      branch {
        local_ts = 10.9.0.0/24
        remote_ts = 10.3.0.0/24
      }
    }
  }
}
secrets {
  ike-gw {
    secret = branch-secret
  }
}
`
}

// withDPD makes the gateway probe its clients every second.
func withDPD(conf string) string {
	return strings.Replace(conf, "    unique = no\n", "    unique = no\n    dpd_delay = 1s\n", 1)
}

// certGateway accepts clients authenticated by certificates of its CA.
func certGateway() string {
	return `connections {
  machines {
    version = 2
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = pubkey
      certs = gw.pem
      id = ` + gatewayID + `
    }
    remote {
      auth = pubkey
    }
    children {
      machines {
        local_ts = 10.3.0.0/24
      }
    }
  }
}
`
}

// certClient authenticates with a certificate another CA issued.
func certClient() string {
	return `connections {
  laptop {
    version = 2
    remote_addrs = ` + gwAddr + `
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = pubkey
      certs = client.pem
      id = laptop.example.com
    }
    remote {
      auth = pubkey
      id = ` + gatewayID + `
    }
    children {
      laptop {
        remote_ts = 10.3.0.0/24
      }
    }
  }
}
`
}

func client(mods ...func(*charontest.EAPClient)) func() string {
	return func() string {
		var cs []charontest.EAPClient
		for _, mod := range mods {
			c := charontest.EAPClient{Conn: "home", Gateway: gwAddr, RemoteID: gatewayID, Identity: "jimp@example.com", Password: password, RemoteTS: "10.3.0.0/24"}
			mod(&c)
			cs = append(cs, c)
		}
		return charontest.ClientConf(cs...)
	}
}

func same(*charontest.EAPClient) {}

// TestLiveFailures reproduces each failure with real charons, feeds the
// gateway's log and its error-notify alerts to a Correlator, and checks the
// Failures; with -update the gateway's log becomes the scenario's fixture.
func TestLiveFailures(t *testing.T) {
	for _, sc := range scenarios {
		if sc.fixture != sc.name {
			continue // a variant replaying another scenario's fixture
		}
		t.Run(sc.name, func(t *testing.T) {
			l := startLive(t, sc)
			alerts := make(chan diagnose.Alert, 64)
			go func() {
				for {
					a, err := l.alerts.Read()
					if err != nil {
						close(alerts)
						return
					}
					alerts <- a
				}
			}()
			sc.run(t, l)
			// charon's half-open timeout is 30 s; the rest is margin.
			l.gw.WaitLog(t, sc.waitFor, 60*time.Second)
			log := relevant(l.gw.Log())
			got := replay(t, sc, log)
			sc.check(t, got)
			if *update {
				if err := os.WriteFile(filepath.Join("testdata", sc.fixture+".log"), []byte(log), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if sc.alert != 0 {
				waitAlert(t, alerts, sc)
			}
		})
	}
}

// waitAlert checks that the error-notify socket carried the scenario's
// alert, decoded, and that the Correlator explains it alone the same way.
func waitAlert(t *testing.T, alerts <-chan diagnose.Alert, sc scenario) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case a, ok := <-alerts:
			if !ok {
				t.Fatal("error-notify socket closed")
			}
			t.Logf("Alert %d %q conn=%q id=%q ip=%q", a.Type, a.Text, a.Connection, a.PeerID, a.Peer)
			if a.Type != sc.alert {
				continue
			}
			f, ok := diagnose.NewCorrelator(diagnose.Options{}).Alert(a)
			want := sc.reason
			if sc.alertReason != "" {
				want = sc.alertReason
			}
			if !ok || f.Reason != want {
				t.Fatalf("Alert %+v gave %+v, %v; want reason %s", a, f, ok, want)
			}
			if !strings.HasPrefix(a.Peer, clAddr+"[") && sc.remote == clAddr {
				t.Errorf("Alert peer = %q, want %s[port]", a.Peer, clAddr)
			}
			return
		case <-deadline:
			t.Fatalf("No error-notify alert %d", sc.alert)
		}
	}
}

// relevant drops charon's start-up lines, which say nothing about an
// IKE_SA, except the list of plugins: it marks the daemon's start.
func relevant(log string) string {
	var out []string
	on := false
	for _, line := range strings.SplitAfter(log, "\n") {
		start := strings.Contains(line, "] loaded plugins: ")
		if strings.Contains(line, "[NET] ") || strings.Contains(line, "[ENC] ") || strings.Contains(line, " initiating") {
			on = true
		}
		if (on || start) && line != "" && !strings.Contains(line, "[CFG] vici ") && !strings.Contains(line, "[CFG] loaded ") &&
			!strings.Contains(line, "[CFG] added vici") && !strings.Contains(line, "[CFG] updated vici") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

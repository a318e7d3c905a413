package charontest

import (
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4"

	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// ntHash is MD4 over the UTF-16LE password, what the gateway stores instead
// of the password for EAP-MSCHAPv2.
func ntHash(password string) string {
	h := md4.New()
	for _, u := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(u), byte(u >> 8)})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestNTHash(t *testing.T) {
	// Known answer from the MS-NLMP examples ("Password").
	if got, want := ntHash("Password"), "a4f49c406510bdcab6824ee7c30fd852"; got != want {
		t.Fatalf("ntHash = %s, want %s", got, want)
	}
}

func TestPKIServerCertificate(t *testing.T) {
	pki := NewPKI(t, "Test CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", "192.0.2.1")
	roots := x509.NewCertPool()
	roots.AddCert(pki.Cert)
	for _, name := range []string{"vpn.example.com", "192.0.2.1"} {
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("Verifying server certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: roots}); err == nil {
		t.Error("Server certificate verified for a name not in its SANs")
	}
}

func TestStartStopRestart(t *testing.T) {
	ns := netns.New(t, "ctss")
	c := Start(t, ns, Options{Name: "solo", Userspace: true, Client: true})
	if len(c.VICISocket()) > maxSocketPath {
		t.Fatalf("VICI socket path %q longer than %d bytes", c.VICISocket(), maxSocketPath)
	}
	out, err := c.Swanctl("--stats")
	if err != nil || !strings.Contains(out, "loaded plugins:") {
		t.Fatalf("swanctl --stats: %v\n%s", err, out)
	}
	// The plugin list comes from the distribution's includes plus our overrides.
	for _, want := range []string{" vici", " kernel-libipsec", " eap-mschapv2", " openssl"} {
		if !strings.Contains(out, want) {
			t.Errorf("Plugin%s not loaded:\n%s", want, out)
		}
	}
	if strings.Contains(out, " resolve") {
		t.Errorf("resolve loaded in client mode:\n%s", out)
	}
	if _, err := ns.Exec("ip", "link", "show", "ipsec0"); err != nil {
		t.Errorf("kernel-libipsec created no TUN device: %v", err)
	}
	c.WaitLog(t, "spawning", 5*time.Second)

	c.Restart(t)
	if !c.Running() {
		t.Fatal("Charon not running after Restart")
	}
	if _, err := c.Swanctl("--stats"); err != nil {
		t.Fatalf("swanctl after restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "charon.log.1")); err != nil {
		t.Errorf("Previous log not kept: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c.Running() {
		t.Fatal("Charon running after Stop")
	}
	if _, err := c.Swanctl("--stats"); err == nil {
		t.Fatal("swanctl reached a stopped charon")
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Second Stop: %v", err)
	}
}

func TestLoadAllReportsFailures(t *testing.T) {
	ns := netns.New(t, "ctlf")
	c := Start(t, ns, Options{Name: "bad"})
	// A connection naming a certificate that is not there fails to load.
	conf := `connections { c { local { auth = pubkey
certs = missing.pem } remote { auth = pubkey } } }`
	out, err := c.LoadAll(conf, nil)
	if err == nil {
		t.Fatalf("LoadAll accepted a connection with a missing certificate:\n%s", out)
	}
	if !strings.Contains(out, "missing.pem") {
		t.Fatalf("LoadAll failed for another reason: %v\n%s", err, out)
	}
	t.Logf("LoadAll: %v", err)
}

// TestEAPMSCHAPv2Tunnel is the project's smoke test: a gateway and a road
// warrior, each a charon in its own namespace joined by a veth pair, the
// gateway holding only the NT hash of the user's password, ESP in userspace,
// pool attributes pushed to the client, and a ping through the tunnel.
func TestEAPMSCHAPv2Tunnel(t *testing.T) {
	begin := time.Now()
	gwNS := netns.New(t, "ctgw")
	clNS := netns.New(t, "ctcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")

	pki := NewPKI(t, "Smoke CA")
	server := pki.Server(t, "vpn.example.com", "vpn.example.com", "192.0.2.1")

	gw := Start(t, gwNS, Options{Name: "gw", Userspace: true})
	cl := Start(t, clNS, Options{Name: "cl", Userspace: true, Client: true})
	started := time.Now()

	const password = "abc123"
	gwConf := `connections {
  mobile {
    version = 2
    proposals = aes256gcm16-prfsha256-x25519,aes256-sha256-modp2048
    pools = mobile4
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
      mobile {
        local_ts = 10.3.0.0/24
        esp_proposals = aes256gcm16,aes256-sha256
      }
    }
  }
}
pools {
  mobile4 {
    addrs = 10.3.200.0/24
    dns = 10.3.0.1
    nbns = 10.3.0.2
    split_include = 10.3.0.0/24
    25 = example.com, example.org
    28674 = example.com
    28675 = example.com example.org
    28672 = Welcome to the example VPN
  }
}
secrets {
  ntlm-jimp {
    id = jimp@example.com
    secret = 0x` + ntHash(password) + `
  }
}
`
	if out, err := gw.LoadAll(gwConf, map[string][]byte{
		"x509/gw.pem":    server.CertPEM,
		"x509ca/ca.pem":  pki.CertPEM,
		"private/gw.key": server.KeyPEM,
	}); err != nil {
		t.Fatalf("Loading gateway: %v\n%s", err, out)
	}
	clConf := `connections {
  home {
    version = 2
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = eap-mschapv2
      eap_id = jimp@example.com
    }
    remote {
      auth = pubkey
      id = vpn.example.com
    }
    children {
      home {
        remote_ts = 10.3.0.0/24
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  eap-jimp {
    id = jimp@example.com
    secret = ` + password + `
  }
}
`
	if out, err := cl.LoadAll(clConf, map[string][]byte{"x509ca/ca.pem": pki.CertPEM}); err != nil {
		t.Fatalf("Loading client: %v\n%s", err, out)
	}

	loaded := time.Now()
	out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "20")
	if err != nil {
		t.Fatalf("Initiating: %v\n%s", err, out)
	}
	established := time.Now()
	if !regexp.MustCompile(`CHILD_SA home\{\d+\} established .* TS 10\.3\.200\.\d+/32 === 10\.3\.0\.0/24`).MatchString(out) {
		t.Fatalf("No CHILD_SA established:\n%s", out)
	}
	// Every pool attribute reached the client: address, DNS, WINS, split
	// include, both INTERNAL_DNS_DOMAINs (RFC 8598), and the Unity ones.
	if want := "CPRP(ADDR DNS NBNS U_SPLITINC DOMAIN DOMAIN U_DEFDOM U_SPLITDNS U_BANNER)"; !strings.Contains(out, want) {
		t.Errorf("Client did not receive %s:\n%s", want, out)
	}

	// The virtual IP sits on kernel-libipsec's TUN device.
	addrs := clNS.Run(t, "ip", "-4", "-o", "addr", "show")
	if !regexp.MustCompile(`ipsec0\s+inet 10\.3\.200\.\d+/`).MatchString(addrs) {
		t.Fatalf("No virtual IP from the pool on ipsec0:\n%s", addrs)
	}

	ping, err := clNS.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.3.0.1")
	if err != nil {
		t.Fatalf("Ping through the tunnel: %v\n%s", err, ping)
	}
	if !strings.Contains(ping, "3 received") {
		t.Fatalf("Ping lost packets:\n%s", ping)
	}
	pinged := time.Now()

	sas, err := gw.Swanctl("--list-sas")
	if err != nil {
		t.Fatalf("Listing SAs: %v", err)
	}
	for _, want := range []string{"jimp@example.com", "INSTALLED", "AES_GCM_16-256", "local  10.3.0.0/24", "remote 10.3.200."} {
		if !strings.Contains(sas, want) {
			t.Errorf("Gateway SAs lack %q:\n%s", want, sas)
		}
	}
	// ESP really carried the pings: the gateway counted them.
	if m := regexp.MustCompile(`in\s+[0-9a-f]+,\s+\d+ bytes,\s+(\d+) packets`).FindStringSubmatch(sas); m == nil || m[1] == "0" {
		t.Errorf("Gateway CHILD_SA counted no inbound packets:\n%s", sas)
	}
	if strings.Contains(gw.Log(), password) || strings.Contains(cl.Log(), password) {
		t.Error("A charon logged the user's password")
	}
	t.Logf("Timing: namespaces+charons %v, load %v, IKE+EAP+CHILD_SA %v, ping %v, total %v",
		started.Sub(begin).Round(time.Millisecond), loaded.Sub(started).Round(time.Millisecond),
		established.Sub(loaded).Round(time.Millisecond), pinged.Sub(established).Round(time.Millisecond),
		time.Since(begin).Round(time.Millisecond))
}

func TestShortDirFallsBackToTmp(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	dir := shortDir(t, "gw")
	if strings.HasPrefix(dir, long) || len(filepath.Join(dir, "charon.vici")) > maxSocketPath {
		t.Fatalf("shortDir = %q, want a short directory under /tmp", dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("shortDir did not create %s: %v", dir, err)
	}
}

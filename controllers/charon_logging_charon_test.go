package controllers

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// payloadDump matches charon's dumps of decrypted or authentication data
// ("plain => 52 bytes @ 0x..."): decrypted IKE payloads, the parser's and
// generator's view of them, relayed EAP payloads, and what AUTH signs.
var payloadDump = regexp.MustCompile(`(?m)(plain|padding|parsing payload from|generated data (of this generator|for this payload)|EAP_[A-Z0-9_]+ payload|octets = message.*|AUTH = prf.*) => \d+ bytes`)

// TestDiagnosticLoggingKeepsEAPOutOfCharonLog logs in with EAP-MSCHAPv2
// to a gateway charon at the levels a VPNGateway with logging.default
// Diagnostic gets, and finds none of the exchange's decrypted payloads in
// the log. The same login with the opt-in shows that the check sees them.
func TestDiagnosticLoggingKeepsEAPOutOfCharonLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unsafe bool
	}{{"default", false}, {"opted in", true}} {
		t.Run(tc.name, func(t *testing.T) {
			log := mschapLogin(t, charonLogLevels(v1alpha1.Logging{Default: "Diagnostic", UnsafeLogDecryptedPayloads: tc.unsafe}))
			dumps := payloadDump.FindAllString(log, 5)
			if tc.unsafe && len(dumps) == 0 {
				t.Fatalf("With the opt-in the log shows no decrypted payload; the check sees nothing:\n%s", log)
			}
			if !tc.unsafe && len(dumps) > 0 {
				t.Errorf("Diagnostic logged decrypted payloads: %q", dumps)
			}
			// Level 3 did reach the other subsystems: net dumps the packets
			// as they arrive, still encrypted.
			if !strings.Contains(log, "received packet =>") {
				t.Errorf("The log has no level-3 line of net:\n%s", log)
			}
		})
	}
}

// mschapLogin runs a gateway charon with levels and a client that logs in
// with EAP-MSCHAPv2, and returns the gateway's log.
func mschapLogin(t *testing.T, levels map[string]int) string {
	gwNS := netns.New(t, "lggw")
	clNS := netns.New(t, "lgcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	pki := charontest.NewPKI(t, "Logging CA")
	server := pki.Server(t, "vpn.example.com", "vpn.example.com")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true, LogLevels: levels})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})

	const identity, password = "jimp@example.com", "log-check-password"
	gwConf := `connections {
  mobile {
    version = 2
    pools = mobile4
    local { auth = pubkey
      certs = gw.pem
      id = vpn.example.com }
    remote { auth = eap-mschapv2
      eap_id = %any }
    children { mobile { local_ts = 10.3.0.0/24 } }
  }
}
pools { mobile4 { addrs = 10.3.200.0/24 } }
secrets { eap-jimp { id = ` + identity + `
    secret = ` + password + ` } }
`
	if out, err := gw.LoadAll(gwConf, map[string][]byte{"x509/gw.pem": server.CertPEM, "private/gw.key": server.KeyPEM}); err != nil {
		t.Fatalf("Loading the gateway: %v\n%s", err, out)
	}
	conn, secret := charontest.EAPClient{
		Conn: "home", Gateway: "192.0.2.1", RemoteID: "vpn.example.com",
		Identity: identity, Password: password, RemoteTS: "10.3.0.0/24",
	}.Sections()
	if out, err := cl.LoadAll("connections {\n"+conn+"}\nsecrets {\n"+secret+"}\n", map[string][]byte{"x509ca/ca.pem": pki.CertPEM}); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
	if out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "20"); err != nil {
		t.Fatalf("Logging in: %v\n%s", err, out)
	}
	return gw.Log()
}

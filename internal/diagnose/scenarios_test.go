package diagnose_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/diagnose"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
)

// scenario is one failure: how to produce it with real charons, and the
// Failure the gateway's log must yield.
type scenario struct {
	name string
	// fixture is the testdata log replayed (the name, unless a variant
	// replays another scenario's log with other Options).
	fixture   string
	gateway   func() string
	client    func() string
	untrusted bool // the client trusts another CA than the gateway's
	// foreignClientCert gives the client a certificate of a CA the gateway
	// does not trust.
	foreignClientCert bool
	// nat puts a masquerading router between client and gateway.
	nat bool
	// secondAddr gives the client namespace clAddr2 as well.
	secondAddr bool
	run        func(t *testing.T, l *live)
	// waitFor is a line the gateway logs once the failure is complete.
	waitFor string
	alert   int // the error-notify alert expected, 0 for none
	// alertReason is what the alert alone tells, when it says less than
	// the log (peer authentication failed, for a PSK mismatch); "" for reason.
	alertReason string
	opts        diagnose.Options

	phase                    diagnose.Phase
	reason, remote, remoteID string
	localID                  string
	transforms               []string
	offered, configured      []string // each must be among the Failure's
}

// initiate starts the client's first connection and expects it to fail
// (or swanctl to stop waiting for it).
func initiate(child string) func(t *testing.T, l *live) {
	return func(t *testing.T, l *live) {
		if out, err := l.cl.Swanctl("--initiate", "--child", child, "--timeout", "5"); err == nil {
			t.Fatalf("Initiating %s succeeded:\n%s", child, out)
		}
	}
}

// connect starts a client connection and expects it to succeed.
func connect(t *testing.T, l *live, child string) {
	t.Helper()
	if out, err := l.cl.Swanctl("--initiate", "--child", child, "--timeout", "20"); err != nil {
		t.Fatalf("Initiating %s: %v\n%s", child, err, out)
	}
}

var jimp = []string{"jimp@example.com", "ann@example.com"}

var scenarios = []scenario{{
	name:    "wrong-password",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.Password = "wrong" }),
	run:     initiate("home"), waitFor: "EAP-MS-CHAPv2 verification failed",
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonAuthenticationFailed, remote: clAddr, remoteID: "jimp@example.com", localID: gatewayID,
}, {
	name:    "ike-3des-sha1-modp1024",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.Proposals = "3des-sha1-modp1024" }),
	run:     initiate("home"), waitFor: "N(NO_PROP)", alert: diagnose.AlertProposalMismatchIKE,
	phase: diagnose.PhaseIKESAInit, reason: diagnose.ReasonProposalMismatch, remote: clAddr,
	transforms: []string{diagnose.TransformEncryption, diagnose.TransformIntegrity, diagnose.TransformPRF, diagnose.TransformDH},
	offered:    []string{"IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"},
	configured: []string{"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"},
}, {
	name:    "ike-dh-only",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.Proposals = "aes256-sha256-modp1024" }),
	run:     initiate("home"), waitFor: "N(NO_PROP)",
	phase: diagnose.PhaseIKESAInit, reason: diagnose.ReasonProposalMismatch, remote: clAddr,
	transforms: []string{diagnose.TransformDH},
	offered:    []string{"IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_1024"},
}, {
	name:    "esp-integrity",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.ESPProposals = "aes256-sha1" }),
	run:     initiate("home"), waitFor: "N(NO_PROP)", alert: diagnose.AlertProposalMismatchESP,
	phase: diagnose.PhaseChildSA, reason: diagnose.ReasonProposalMismatch, remote: clAddr, remoteID: "jimp@example.com",
	transforms: []string{diagnose.TransformIntegrity},
	offered:    []string{"ESP:AES_CBC_256/HMAC_SHA1_96/NO_EXT_SEQ"},
	configured: []string{"ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ"},
}, {
	name:    "pfs-at-rekey",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.ESPProposals = "aes256gcm16-modp2048" }),
	run: func(t *testing.T, l *live) {
		connect(t, l, "home")
		// charon reports the rekey's failure in the log, not to swanctl.
		_, _ = l.cl.Swanctl("--rekey", "--child", "home")
	},
	waitFor: "N(NO_PROP)", alert: diagnose.AlertProposalMismatchESP,
	phase: diagnose.PhaseRekey, reason: diagnose.ReasonProposalMismatch, remote: clAddr,
	transforms: []string{diagnose.TransformDH},
	offered:    []string{"ESP:AES_GCM_16_256/MODP_2048/NO_EXT_SEQ"},
}, {
	name:    "ts-not-routed",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.RemoteTS = "10.99.0.0/24" }),
	run:     initiate("home"), waitFor: "N(TS_UNACCEPT)", alert: diagnose.AlertTSMismatch,
	phase: diagnose.PhaseChildSA, reason: diagnose.ReasonTrafficSelectorMismatch, remote: clAddr, remoteID: "jimp@example.com",
	offered: []string{"10.99.0.0/24 (from 0.0.0.0/0)"},
}, {
	name:    "wrong-remote-id",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	// A good login first: the gateway's own identity appears in the log.
	client: client(same, func(c *charontest.EAPClient) { c.Conn, c.RemoteID = "vpn2", "vpn2.example.com" }),
	run: func(t *testing.T, l *live) {
		connect(t, l, "home")
		initiate("vpn2")(t, l)
	},
	waitFor: "no matching peer config found",
	phase:   diagnose.PhaseIKEAuth, reason: diagnose.ReasonIdentityMismatch, remote: clAddr, localID: "vpn2.example.com",
	offered: []string{"vpn2.example.com"}, configured: []string{gatewayID},
}, {
	name:    "unknown-identity",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(func(c *charontest.EAPClient) { c.Identity = "nobody@example.com" }),
	run:     initiate("home"), waitFor: "no EAP key found",
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonUnknownUser, remote: clAddr, remoteID: "nobody@example.com",
}, {
	name: "disabled-user", fixture: "unknown-identity",
	opts: diagnose.Options{UserState: func(id string) string {
		if id == "nobody@example.com" {
			return diagnose.ReasonDisabled
		}
		return ""
	}},
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonDisabled, remote: clAddr, remoteID: "nobody@example.com",
}, {
	name: "psk-mismatch",
	gateway: func() string {
		return gatewayConf("", "", siteTunnel("gw.example.com", "site.example.com", ""), jimp...)
	},
	client: func() string {
		return "connections {\n" + siteTunnel("site.example.com", "gw.example.com", gwAddr) +
			"}\nsecrets {\n  ike-gw {\n    id = gw.example.com\n    secret = another-secret-on-the-site\n  }\n}\n"
	},
	run: initiate("site"), waitFor: "N(AUTH_FAILED)", alert: diagnose.AlertPeerAuthFailed, alertReason: diagnose.ReasonAuthenticationFailed,
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonPSKMismatch, remote: clAddr, remoteID: "site.example.com", localID: "gw.example.com",
}, {
	name: "peer-unreachable",
	gateway: func() string {
		return gatewayConf("", "", siteTunnel("gw.example.com", "site.example.com", clAddr), jimp...)
	},
	run: func(t *testing.T, l *live) {
		if out, err := l.gw.Swanctl("--initiate", "--child", "site", "--timeout", "20"); err == nil {
			t.Fatalf("Initiating towards a silent peer succeeded:\n%s", out)
		}
	},
	waitFor: "giving up after", alert: diagnose.AlertRetransmitTimeout,
	phase: diagnose.PhaseIKESAInit, reason: diagnose.ReasonPeerUnreachable, remote: clAddr,
}, {
	name:    "pool-exhausted",
	gateway: func() string { return gatewayConf("10.3.200.7-10.3.200.7", "", "", jimp...) },
	client:  client(same, func(c *charontest.EAPClient) { c.Conn, c.Identity = "ann", "ann@example.com" }),
	run: func(t *testing.T, l *live) {
		connect(t, l, "home")
		initiate("ann")(t, l)
	},
	waitFor: "no virtual IP found", alert: diagnose.AlertVIPFailure,
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonPoolExhausted, remote: clAddr, remoteID: "ann@example.com",
}, {
	name:    "duplicate-login",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	// The second login comes from another address: from the same one
	// charon suspects a reauthentication and logs no duplicate.
	client: func() string {
		return strings.Replace(client(same, func(c *charontest.EAPClient) { c.Conn = "again" })(),
			"  again {\n", "  again {\n    local_addrs = "+clAddr2+"\n", 1)
	},
	secondAddr: true,
	run: func(t *testing.T, l *live) {
		connect(t, l, "home")
		connect(t, l, "again")
	},
	waitFor: "duplicate IKE_SA for peer",
	phase:   diagnose.PhaseLiveness, reason: diagnose.ReasonDuplicateLogin, remote: clAddr, remoteID: "jimp@example.com",
}, {
	name:      "client-refuses-gateway-certificate",
	gateway:   func() string { return gatewayConf("", "", "", jimp...) },
	client:    client(same),
	untrusted: true,
	run:       initiate("home"), waitFor: "N(AUTH_FAILED)",
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonCertificateInvalid, remote: clAddr,
}, {
	name:    "client-certificate-untrusted",
	gateway: certGateway, client: certClient, foreignClientCert: true,
	run: initiate("laptop"), waitFor: "N(AUTH_FAILED)", alert: diagnose.AlertNoIssuerCert,
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonCertificateInvalid, remote: clAddr, remoteID: "laptop.example.com",
}, {
	name:    "dead-peer",
	gateway: func() string { return withDPD(gatewayConf("", "", "", jimp...)) },
	client:  client(same),
	run: func(t *testing.T, l *live) {
		connect(t, l, "home")
		// A client that vanishes without a DELETE, as a phone losing coverage.
		l.clNS.Run(t, "ip", "link", "set", "dev", l.clIf, "down")
	},
	waitFor: "giving up after", alert: diagnose.AlertRetransmitTimeout,
	phase: diagnose.PhaseLiveness, reason: diagnose.ReasonPeerUnreachable, remote: clAddr, remoteID: "jimp@example.com",
}, {
	name:    "nat-private-identity",
	gateway: natGateway, client: natBranch, nat: true,
	run: initiate("branch"), waitFor: "no matching peer config found",
	phase: diagnose.PhaseIKEAuth, reason: diagnose.ReasonNATMismatch, remote: natPublic, remoteID: natPrivate,
	offered: []string{natPrivate}, configured: []string{natPublic},
}, {
	name:    "half-open-timeout",
	gateway: func() string { return gatewayConf("", "", "", jimp...) },
	client:  client(same),
	run: func(t *testing.T, l *live) {
		// The client's IKE_AUTH (UDP 4500 after NAT detection) never leaves:
		// the gateway holds a half-open IKE_SA until charon's 30 s timeout.
		l.clNS.Run(t, "nft", "add table inet block; add chain inet block out { type filter hook output priority 0; }; add rule inet block out udp dport 4500 drop")
		initiate("home")(t, l)
	},
	waitFor: "deleting half open IKE_SA", alert: diagnose.AlertHalfOpenTimeout,
	phase: diagnose.PhaseIKESAInit, reason: diagnose.ReasonPeerUnreachable, remote: clAddr,
}}

func init() {
	for i := range scenarios {
		if scenarios[i].fixture == "" {
			scenarios[i].fixture = scenarios[i].name
		}
	}
}

// replay feeds a log to a Correlator as kubectl-ikegate does.
func replay(t *testing.T, sc scenario, log string) []diagnose.Failure {
	t.Helper()
	c := diagnose.NewCorrelator(sc.opts)
	var out []diagnose.Failure
	for _, line := range strings.Split(log, "\n") {
		ev, ok := diagnose.ParseLine(line)
		if !ok {
			continue
		}
		if f, ok := c.Observe(ev); ok {
			out = append(out, f)
		}
	}
	return out
}

// check finds the scenario's Failure among those of the log.
func (sc scenario) check(t *testing.T, got []diagnose.Failure) {
	t.Helper()
	for _, f := range got {
		if f.Reason != sc.reason || f.Phase != sc.phase {
			continue
		}
		if f.Remote != sc.remote || sc.remoteID != "" && f.RemoteID != sc.remoteID || sc.localID != "" && f.LocalID != sc.localID {
			t.Errorf("Failure %s/%s has remote %q id %q local %q, want %q %q %q", f.Phase, f.Reason, f.Remote, f.RemoteID, f.LocalID, sc.remote, sc.remoteID, sc.localID)
		}
		if sc.transforms != nil && !slices.Equal(f.Transforms, sc.transforms) {
			t.Errorf("Transforms = %v, want %v", f.Transforms, sc.transforms)
		}
		for _, v := range sc.offered {
			if !slices.Contains(f.Offered, v) {
				t.Errorf("Offered %q lacks %q", f.Offered, v)
			}
		}
		for _, v := range sc.configured {
			if !slices.Contains(f.Configured, v) {
				t.Errorf("Configured %q lacks %q", f.Configured, v)
			}
		}
		if f.Time.IsZero() || f.IKESA == 0 {
			t.Errorf("Failure lacks the log's time or IKE_SA id: %+v", f)
		}
		return
	}
	t.Fatalf("No %s/%s failure; got %+v", sc.phase, sc.reason, got)
}

// TestFixtures replays the logs real charons (5.9.8) wrote for each
// scenario; TestLiveFailures -update regenerates them.
func TestFixtures(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", sc.fixture+".log"))
			if err != nil {
				t.Fatal(err)
			}
			sc.check(t, replay(t, sc, string(b)))
		})
	}
}

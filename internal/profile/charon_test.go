package profile_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
)

const (
	gatewayWAN = "192.0.2.1"
	clientWAN  = "192.0.2.2"
	// gatewayLAN is an address of the pool's local network (the seed's
	// 10.3.0.0/24) on the gateway, which clients ping through the tunnel.
	gatewayLAN = "10.3.0.1"
)

// TestProfilesConnectToARealGateway: for each preset and PFS setting, a
// strongSwan client configured with exactly the proposals the Windows and
// Apple profiles make their OS send, and the .sswan and swanctl profiles as
// they are, connects to a charon given the model the same resources build,
// pings through the tunnel, and survives a CHILD_SA rekey and an IKE_SA
// rekey initiated from either side (a PFS mismatch shows only at a CHILD_SA
// rekey, and either side may be first to rekey). Gateways run in parallel,
// each in namespaces of its own; the clients of one gateway share its
// user, so they take turns.
func TestProfilesConnectToARealGateway(t *testing.T) {
	require.Root(t)
	failed := stepFailures(t)
	pki := charontest.NewPKI(t, "ikegate test CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", gatewayWAN)
	for _, preset := range []v1alpha1.ProposalPreset{v1alpha1.PresetModern, v1alpha1.PresetCompatible, v1alpha1.PresetLegacy} {
		for _, pfs := range []v1alpha1.PFSGroup{v1alpha1.PFSNone, "ECP256"} {
			t.Run(fmt.Sprintf("%s/pfs=%s", preset, pfs), func(t *testing.T) {
				t.Parallel()
				res := seed(t, ikePreset(preset), esp(preset, pfs), func(r *swan.Resources) {
					r.Gateway.Spec.Addresses = []v1alpha1.IPAddress{gatewayWAN}
					r.ServerCertPEM, r.ServerKeyPEM, r.CAPEM = leaf.CertPEM, leaf.KeyPEM, pki.CertPEM
					// Legacy offers what RFC 8247 advises against.
					r.Gateway.Spec.AllowInsecureAlgorithms = preset == v1alpha1.PresetLegacy
					r.Pools[0].Spec.AllowInsecureAlgorithms = preset == v1alpha1.PresetLegacy
				})
				built := swan.Build(res)
				in := input(t, res, profile.Options{Dial: gatewayWAN})
				gwConn := userConnectionOf(t, built, "jimp")

				gwNS, clNS := netns.New(t, "pfgw"), netns.New(t, "pfcl")
				netns.Veth(t, gwNS, clNS, gatewayWAN+"/24", clientWAN+"/24")
				gwNS.AddLoopbackAddr(t, gatewayLAN+"/24")
				g := charontest.Start(t, gwNS, charontest.Options{Name: "gateway", Userspace: true})
				if out, err := g.LoadAll(swan.Render(built.Model, swan.RenderOptions{ShowSecrets: true}), swan.Files(built.Model)); err != nil {
					t.Fatalf("Gateway refused its configuration: %v\n%s", err, out)
				}
				// The users' passwords are checked as the agent does.
				g.ServeUsers(t, built.Users)
				c := charontest.Start(t, clNS, charontest.Options{Name: "client", Userspace: true, Client: true})
				for _, client := range profileClients(t, in) {
					t.Run(client.name, func(t *testing.T) {
						if out, err := c.LoadAll(client.conf, map[string][]byte{"x509ca/vpn-ca.pem": pki.CertPEM}); err != nil {
							t.Fatalf("Client refused its configuration: %v\n%s\n%s", err, out, client.conf)
						}
						s := session{t: t, failed: failed, gw: g, cl: c, clNS: clNS, conn: client.conn, child: client.child, gwConn: gwConn}
						s.connect()
						defer s.terminate()
						s.ping("after connecting")
						s.rekeyChild(c, "client")
						s.rekeyChild(g, "gateway")
						s.rekeyIKE(c, "client")
						s.rekeyIKE(g, "gateway")
					})
				}
			})
		}
	}
}

// profileClient is one client: its swanctl.conf and the connection and
// child it initiates.
type profileClient struct{ name, conf, conn, child string }

// profileClients are the clients of each profile format for in: Windows
// and Apple as strongSwan clients proposing exactly what the profiles make
// the OS propose, Android and swanctl from the profiles themselves.
func profileClients(t *testing.T, in profile.Input) []profileClient {
	t.Helper()
	const password = "abc123"
	eap := func(conn, ike, esp string) string {
		return charontest.ClientConf(charontest.EAPClient{Conn: conn, Gateway: gatewayWAN, RemoteID: "vpn.example.com",
			Identity: in.Identity, Password: password, RemoteTS: "10.3.0.0/24", Proposals: ike, ESPProposals: esp})
	}
	winScript, err := profile.Windows(in)
	if err != nil {
		t.Fatal(err)
	}
	winIKE, winESP, _ := windowsProposals(t, string(winScript))
	appleIKE, appleESP := appleProposals(t, payloads(t, appleProfile(t, in))["com.apple.vpn.managed"]["IKEv2"].(map[string]any))
	sswan, err := profile.Android(in)
	if err != nil {
		t.Fatal(err)
	}
	var android struct {
		IKE string `json:"ike-proposal"`
		ESP string `json:"esp-proposal"`
	}
	if err := json.Unmarshal(sswan, &android); err != nil {
		t.Fatal(err)
	}
	withPassword := in
	withPassword.Password = password
	swanctlConf, err := profile.Swanctl(withPassword)
	if err != nil {
		t.Fatal(err)
	}
	return []profileClient{
		{"windows", eap("windows", winIKE, winESP), "windows", "windows"},
		{"apple", eap("apple", appleIKE, appleESP), "apple", "apple"},
		{"android", eap("android", android.IKE, android.ESP), "android", "android"},
		{"swanctl", string(swanctlConf), "vpn", "vpn"},
	}
}

// userConnectionOf is the gateway connection Build put a user on.
func userConnectionOf(t *testing.T, res swan.Result, user string) string {
	t.Helper()
	i := slices.IndexFunc(res.Users, func(u swan.AcceptedUser) bool { return u.Name == user })
	if i < 0 {
		t.Fatalf("Build did not accept %s: %+v", user, res.Problems)
	}
	return res.Users[i].Connection
}

// session drives one client's IKE_SA with the gateway.
type session struct {
	t              *testing.T
	failed         *failures
	gw, cl         *charontest.Charon
	clNS           *netns.NS
	conn, child    string
	gwConn         string
	ikeID, childID string
}

func (s *session) connect() {
	s.t.Helper()
	if out, err := s.cl.Swanctl("--initiate", "--child", s.child, "--timeout", "20"); err != nil {
		s.fatalf("Connecting failed: %v\n%s", err, out)
	}
	s.ikeID, s.childID = s.ids()
	if s.ikeID == "" || s.childID == "" {
		out, _ := s.cl.Swanctl("--list-sas")
		s.fatalf("No established IKE_SA with an installed CHILD_SA after connecting:\n%s", out)
	}
}

func (s *session) terminate() {
	if out, err := s.cl.Swanctl("--terminate", "--ike", s.conn, "--timeout", "10"); err != nil {
		s.failed.add(s.t, "Terminating: %v", err)
		s.t.Errorf("Terminating: %v\n%s", err, out)
	}
}

// ping sends packets to the gateway's LAN through the tunnel.
func (s *session) ping(when string) {
	s.t.Helper()
	// Three packets over 0.6 s: a responder installs its new outbound SA
	// only when the initiator deletes the old one, and a packet sent in
	// between is lost; the test asserts that traffic flows, not that no
	// packet of a rekey is lost.
	if out, err := s.clNS.Exec("ping", "-c", "3", "-i", "0.3", "-W", "3", gatewayLAN); err != nil {
		s.fatalf("Ping through the tunnel %s: %v\n%s", when, err, out)
	}
}

// rekeyChild has side rekey the CHILD_SA, waits for the client to hold a
// new one, and pings through it.
func (s *session) rekeyChild(side *charontest.Charon, who string) {
	s.t.Helper()
	args := []string{"--rekey", "--child", s.child}
	if side == s.gw {
		args = []string{"--rekey", "--child", s.gwChild()}
	}
	if out, err := side.Swanctl(args...); err != nil {
		s.fatalf("Rekeying the CHILD_SA from the %s: %v\n%s", who, err, out)
	}
	s.waitFor("CHILD_SA rekeyed by the "+who, func(ike, child string) bool { return child != "" && child != s.childID })
	s.ping("after the " + who + " rekeyed the CHILD_SA")
}

// rekeyIKE has side rekey the IKE_SA, waits for the client to hold a new
// one with the CHILD_SA moved over, and pings through it.
func (s *session) rekeyIKE(side *charontest.Charon, who string) {
	s.t.Helper()
	conn := s.conn
	if side == s.gw {
		conn = s.gwConn
	}
	if out, err := side.Swanctl("--rekey", "--ike", conn); err != nil {
		s.fatalf("Rekeying the IKE_SA from the %s: %v\n%s", who, err, out)
	}
	s.waitFor("IKE_SA rekeyed by the "+who, func(ike, child string) bool { return ike != "" && ike != s.ikeID && child != "" })
	s.ping("after the " + who + " rekeyed the IKE_SA")
}

// waitFor waits until the client's SAs satisfy done and records them.
func (s *session) waitFor(what string, done func(ike, child string) bool) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ike, child := s.ids()
		if done(ike, child) {
			s.ikeID, s.childID = ike, child
			return
		}
		if time.Now().After(deadline) {
			out, _ := s.cl.Swanctl("--list-sas")
			s.fatalf("%s: not seen (IKE_SA #%s, CHILD_SA #%s before; now #%s, #%s):\n%s\nGateway log:\n%s", what, s.ikeID, s.childID, ike, child, out, tail(s.gw.Log(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ids are the unique ids of the client's one established IKE_SA and its
// one installed CHILD_SA, or "" while there is not exactly one.
func (s *session) ids() (ike, child string) {
	out, err := s.cl.Swanctl("--list-sas", "--ike", s.conn)
	if err != nil {
		s.fatalf("swanctl --list-sas: %v\n%s", err, out)
	}
	ikes := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(s.conn)+`: #(\d+), ESTABLISHED`).FindAllStringSubmatch(out, -1)
	children := regexp.MustCompile(`(?m)^\s+`+regexp.QuoteMeta(s.child)+`: #(\d+), reqid \d+, INSTALLED`).FindAllStringSubmatch(out, -1)
	if len(ikes) == 1 {
		ike = ikes[0][1]
	}
	if len(children) == 1 {
		child = children[0][1]
	}
	return ike, child
}

// gwChild is the name of the gateway's CHILD_SA of the client's session.
func (s *session) gwChild() string {
	s.t.Helper()
	out, err := s.gw.Swanctl("--list-sas", "--ike", s.gwConn)
	if err != nil {
		s.fatalf("swanctl --list-sas on the gateway: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\s+(\S+): #\d+, reqid \d+, INSTALLED`).FindStringSubmatch(out)
	if m == nil {
		s.fatalf("The gateway has no installed CHILD_SA on %s:\n%s", s.gwConn, out)
	}
	return m[1]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failures collects the first line of every failed step, so that the test
// ends with the list: the steps' own messages are far up in the output,
// above the charon logs of every failed subtest.
type failures struct {
	mu   sync.Mutex
	list []string
}

// stepFailures returns the collector of t, whose list is printed when t
// and all its subtests are done.
func stepFailures(t *testing.T) *failures {
	f := &failures{}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.list) > 0 {
			t.Logf("Failed steps:\n%s", strings.Join(f.list, "\n"))
		}
	})
	return f
}

func (f *failures) add(t *testing.T, format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, t.Name()+": "+msg)
}

// fatalf records the failed step and ends the subtest.
func (s *session) fatalf(format string, args ...any) {
	s.t.Helper()
	s.failed.add(s.t, format, args...)
	s.t.Fatalf(format, args...)
}

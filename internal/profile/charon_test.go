package profile_test

import (
	"regexp"
	"slices"
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
)

// TestProfilesConnectToARealGateway: a strongSwan client configured with
// exactly the proposals the Windows and Apple profiles make their OS send,
// and the swanctl profile as it is, connect to a charon given the model the
// same resources build, and rekey their CHILD_SA (where a PFS mismatch
// would show).
func TestProfilesConnectToARealGateway(t *testing.T) {
	require.Root(t)
	pki := charontest.NewPKI(t, "ikegate test CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", gatewayWAN)
	for _, sc := range profileScenarios[:3] {
		t.Run(sc.name, func(t *testing.T) {
			res := seed(t, append(sc.mods, func(r *swan.Resources) {
				r.Gateway.Spec.Addresses = []v1alpha1.IPAddress{gatewayWAN}
				r.ServerCertPEM, r.ServerKeyPEM, r.CAPEM = leaf.CertPEM, leaf.KeyPEM, pki.CertPEM
			})...)
			in := input(t, res, profile.Options{Dial: gatewayWAN})
			m := swan.Build(res).Model

			gw, cl := netns.New(t, "pfgw"), netns.New(t, "pfcl")
			netns.Veth(t, gw, cl, gatewayWAN+"/24", clientWAN+"/24")
			// The pool's local network, for charon's route to the client.
			gw.AddLoopbackAddr(t, "10.3.0.1/24")
			g := charontest.Start(t, gw, charontest.Options{Name: "gateway", Userspace: true})
			if out, err := g.LoadAll(swan.Render(m, swan.RenderOptions{ShowSecrets: true}), swan.Files(m)); err != nil {
				t.Fatalf("Gateway refused its configuration: %v\n%s", err, out)
			}
			c := charontest.Start(t, cl, charontest.Options{Name: "client", Userspace: true, Client: true})

			winScript, err := profile.Windows(in)
			if err != nil {
				t.Fatal(err)
			}
			winIKE, winESP, _ := windowsProposals(t, string(winScript))
			appleIKE, appleESP := appleProposals(t, payloads(t, appleProfile(t, in))["com.apple.vpn.managed"]["IKEv2"].(map[string]any))
			withPassword := in
			withPassword.Password = "abc123"
			swanctlConf, err := profile.Swanctl(withPassword)
			if err != nil {
				t.Fatal(err)
			}
			clients := []struct{ name, child, conf string }{
				{"windows", "windows", charontest.ClientConf(charontest.EAPClient{Conn: "windows", Gateway: gatewayWAN, RemoteID: "vpn.example.com", Identity: "jimp@example.com", Password: "abc123", RemoteTS: "10.3.0.0/24", Proposals: winIKE, ESPProposals: winESP})},
				{"apple", "apple", charontest.ClientConf(charontest.EAPClient{Conn: "apple", Gateway: gatewayWAN, RemoteID: "vpn.example.com", Identity: "jimp@example.com", Password: "abc123", RemoteTS: "10.3.0.0/24", Proposals: appleIKE, ESPProposals: appleESP})},
				{"swanctl", "vpn", string(swanctlConf)},
			}
			for _, client := range clients {
				t.Run(client.name, func(t *testing.T) {
					if out, err := c.LoadAll(client.conf, map[string][]byte{"x509ca/vpn-ca.pem": pki.CertPEM}); err != nil {
						t.Fatalf("Client refused its configuration: %v\n%s\n%s", err, out, client.conf)
					}
					if out, err := c.Swanctl("--initiate", "--child", client.child, "--timeout", "20"); err != nil {
						t.Fatalf("Connecting failed: %v\n%s", err, out)
					}
					before := childIDs(t, c, client.child)
					if len(before) != 1 {
						t.Fatalf("Installed CHILD_SAs after connecting: %v", before)
					}
					if out, err := c.Swanctl("--rekey", "--child", client.child); err != nil {
						t.Fatalf("Rekeying the CHILD_SA failed: %v\n%s", err, out)
					}
					waitRekeyed(t, c, client.child, before)
					if out, err := c.Swanctl("--terminate", "--ike", client.child, "--timeout", "10"); err != nil {
						t.Fatalf("Terminating: %v\n%s", err, out)
					}
				})
			}
		})
	}
}

// childIDs lists the unique ids of the installed CHILD_SAs of child.
func childIDs(t *testing.T, c *charontest.Charon, child string) []string {
	t.Helper()
	out, err := c.Swanctl("--list-sas")
	if err != nil {
		t.Fatalf("swanctl --list-sas: %v\n%s", err, out)
	}
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^\s+`+regexp.QuoteMeta(child)+`: #(\d+), reqid \d+, INSTALLED`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// waitRekeyed waits until the CHILD_SA before has been replaced by a new
// one, which a rekey the gateway accepted installs.
func waitRekeyed(t *testing.T, c *charontest.Charon, child string, before []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ids := childIDs(t, c, child)
		if len(ids) == 1 && !slices.Contains(before, ids[0]) {
			return
		}
		if time.Now().After(deadline) {
			out, _ := c.Swanctl("--list-sas")
			t.Fatalf("CHILD_SA %s was not replaced (before %v, now %v):\n%s", child, before, ids, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

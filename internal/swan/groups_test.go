package swan_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestPoolPerGroupWithClients proves the pool-per-group scheme in a real
// charon: EAP-MSCHAPv2 clients of two user groups connect to one gateway
// and each gets an address from its own group's pool, through the
// connection Build made for it; a user without a secret is refused.
func TestPoolPerGroupWithClients(t *testing.T) {
	gwNS := netns.New(t, "grgw")
	clNS := netns.New(t, "grcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")

	pki := newTestPKI(t)
	in := twoGroups(t)
	pki.apply(&in)
	res := Build(in)
	if len(res.Problems) > 0 {
		t.Fatal(res.Problems)
	}
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw"})
	loadGateway(t, gw, res)

	type client struct {
		user, pool, conn string
	}
	clients := []client{
		{"alice", `10\.3\.201\.\d+`, "mobile-sales"},
		{"bob", `10\.3\.202\.\d+`, "mobile-engineering"},
		{"anna", `10\.3\.201\.\d+`, "mobile-sales"},
		{"ben", `10\.3\.202\.\d+`, "mobile-engineering"},
	}
	users := []string{"mallory"}
	for _, c := range clients {
		users = append(users, c.user)
	}
	conf := eapClients(users...)
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Client: true})
	if out, err := cl.LoadAll(conf, map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}

	for _, c := range clients {
		out, err := cl.Swanctl("--initiate", "--ike", c.user, "--timeout", "20")
		if err != nil {
			t.Fatalf("%s could not connect: %v\n%s", c.user, err, out)
		}
		if !regexp.MustCompile(`installing new virtual IP ` + c.pool).MatchString(out) {
			t.Errorf("%s did not get an address from its pool (%s):\n%s", c.user, c.pool, out)
		}
	}
	sas, err := gw.Swanctl("--list-sas")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		// "<conn>: #n, ESTABLISHED ..." followed by the remote line with the EAP identity and virtual IP.
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.conn) + `: #\d+, ESTABLISHED.*\n(?:.*\n)?.*EAP: '` + c.user + `@example\.com' \[` + c.pool + `\]`)
		if !re.MatchString(sas) {
			t.Errorf("Gateway does not show %s on %s with an address from %s:\n%s", c.user, c.conn, c.pool, sas)
		}
	}
	if out, err := cl.Swanctl("--initiate", "--ike", "mallory", "--timeout", "20"); err == nil {
		t.Errorf("mallory, who has no secret on the gateway, connected:\n%s", out)
	}
}

// TestCertificateUsersPinnedWithClients: with EAP-TLS and with public key
// authentication only VPNUsers connect, each through a connection naming
// its identity: a certificate user selected by a pool's userSelector gets
// an address from that pool, another from the default pool, and a
// certificate of the client CA whose identity has no VPNUser is refused.
// Disabling a user leaves it out of Result.Users, which is what makes the
// agent end its session, and takes its connection away, so that it cannot
// come back.
func TestCertificateUsersPinnedWithClients(t *testing.T) {
	for _, method := range []v1alpha1.ClientAuthMethod{v1alpha1.ClientAuthEAPTLS, v1alpha1.ClientAuthPublicKey} {
		t.Run(string(method), func(t *testing.T) {
			gwNS := netns.New(t, "cegw")
			clNS := netns.New(t, "cecl")
			netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")

			pki := newTestPKI(t)
			in := certUsers(method)(t)
			pki.apply(&in)
			res := Build(in)
			if len(res.Problems) > 0 {
				t.Fatal(res.Problems)
			}
			checkNoCatchAll(t, res)
			gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw"})
			loadGateway(t, gw, res)

			cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Client: true})
			conf, files := certClients(t, pki, method, "carl@contractor.example", "dora@example.com", "eve@example.com")
			if out, err := cl.LoadAll(conf, files); err != nil {
				t.Fatalf("Loading the client: %v\n%s", err, out)
			}
			for _, c := range []struct{ name, pool, conn string }{
				{"carl", `10\.3\.210\.\d+`, "user-carl"},
				{"dora", `10\.3\.200\.\d+`, "user-dora"},
			} {
				out, err := cl.Swanctl("--initiate", "--ike", c.name, "--timeout", "20")
				if err != nil {
					t.Fatalf("%s could not connect: %v\n%s", c.name, err, out)
				}
				if !regexp.MustCompile(`installing new virtual IP ` + c.pool).MatchString(out) {
					t.Errorf("%s did not get an address from %s:\n%s", c.name, c.pool, out)
				}
				sas, err := gw.Swanctl("--list-sas", "--ike", c.conn)
				if err != nil || !strings.Contains(sas, c.name+"@") {
					t.Errorf("Gateway has no SA of %s on %s: %v\n%s", c.name, c.conn, err, sas)
				}
			}
			if out, err := cl.Swanctl("--initiate", "--ike", "eve", "--timeout", "20"); err == nil {
				t.Errorf("eve, whose certificate the client CA issued but who is no VPNUser, connected:\n%s", out)
			}

			in.Users[0].Spec.Disabled = true
			res = Build(in)
			if slices.ContainsFunc(res.Users, func(u AcceptedUser) bool { return u.Name == "carl" }) {
				t.Fatalf("A disabled user is still accepted: %+v", res.Users)
			}
			// What the agent ends: the sessions of identities that are not
			// in Result.Users (internal/agent revoked, over VICI). Ended
			// first here: swanctl cannot unload the pool of carl's group
			// while carl holds a lease in it.
			allowed := map[string]bool{}
			for _, u := range res.Users {
				allowed[u.Identity] = true
			}
			sas, err := vici.ListSAs(context.Background(), vici.NewClient(gw.VICISocket()))
			if err != nil {
				t.Fatal(err)
			}
			var ended []string
			for _, sa := range sas {
				if !allowed[sa.Identity()] {
					ended = append(ended, sa.Identity())
					if _, err := vici.TerminateSA(context.Background(), vici.NewClient(gw.VICISocket()), sa.UniqueID); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !slices.Equal(ended, []string{"carl@contractor.example"}) {
				t.Errorf("Sessions outside Result.Users: %v, want carl's only", ended)
			}
			if out, err := gw.LoadAll(Render(res.Model, RenderOptions{ShowSecrets: true}), Files(res.Model)); err != nil {
				t.Fatalf("Reloading the gateway: %v\n%s", err, out)
			}
			if out, err := cl.Swanctl("--initiate", "--ike", "carl", "--timeout", "20"); err == nil {
				t.Errorf("carl connected again after being disabled:\n%s", out)
			}
			if sas, err := gw.Swanctl("--list-sas", "--ike", "user-dora"); err != nil || !strings.Contains(sas, "dora@") {
				t.Errorf("dora's session did not survive carl's removal: %v\n%s", err, sas)
			}
		})
	}
}

// checkNoCatchAll fails when a connection of a certificate gateway could
// take an identity that is not a VPNUser's: only the selection connection
// has %any, and it refuses everybody by group.
func checkNoCatchAll(t *testing.T, res Result) {
	t.Helper()
	for _, c := range res.Model.Connections {
		for _, r := range c.Remote {
			if (r.ID == "%any" || r.EAPID == "%any" || r.ID == "" && r.EAPID == "") && len(r.Groups) == 0 {
				t.Errorf("Connection %s accepts any identity: %+v", c.Name, r)
			}
		}
	}
	conns := map[string]bool{}
	for _, c := range res.Model.Connections {
		conns[c.Name] = true
	}
	for _, u := range res.Users {
		if u.Connection != UserConnectionName(u.Name) || !conns[u.Connection] {
			t.Errorf("User %s is on connection %q, want its own %q in the model", u.Name, u.Connection, UserConnectionName(u.Name))
		}
	}
}

// certClients is the swanctl.conf and files of a client charon with one
// connection per identity (named after its local part), each with a
// certificate of the client CA.
func certClients(t *testing.T, pki *testPKI, method v1alpha1.ClientAuthMethod, users ...string) (string, map[string][]byte) {
	t.Helper()
	auth := "pubkey"
	if method == v1alpha1.ClientAuthEAPTLS {
		auth = "eap-tls"
	}
	files := map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}
	var conf strings.Builder
	conf.WriteString("connections {\n")
	for _, user := range users {
		name := strings.Split(user, "@")[0]
		leaf := pki.clientCA.Client(t, user, user)
		files["x509/"+name+".pem"] = leaf.CertPEM
		files["private/"+name+".pem"] = leaf.KeyPEM
		fmt.Fprintf(&conf, `  %s {
    version = 2
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0
    keyingtries = 1
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = %s
      certs = %s.pem
      id = %s
    }
    remote {
      auth = pubkey
      id = vpn.example.com
    }
  }
`, name, auth, name, user)
	}
	conf.WriteString("}\n")
	return conf.String(), files
}

// eapClients is the swanctl.conf of a client charon with one EAP-MSCHAPv2
// connection per user (named after it) to the gateway at 192.0.2.1.
func eapClients(users ...string) string {
	var conf strings.Builder
	conf.WriteString("connections {\n")
	for _, u := range users {
		fmt.Fprintf(&conf, `  %[1]s {
    version = 2
    remote_addrs = 192.0.2.1
    vips = 0.0.0.0, ::
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = eap-mschapv2
      eap_id = %[1]s@example.com
    }
    remote {
      auth = pubkey
      id = vpn.example.com
    }
  }
`, u)
	}
	conf.WriteString("}\nsecrets {\n")
	for _, u := range users {
		fmt.Fprintf(&conf, "  eap-%[1]s {\n    id = %[1]s@example.com\n    secret = %[2]s\n  }\n", u, password(u))
	}
	conf.WriteString("}\n")
	return conf.String()
}

// TestStaticAddressWithClients: users with a static address get exactly it
// (IPv4 and IPv6 ones) and their pool's attributes, and a user without gets
// a pool address that is not anybody's static address.
func TestStaticAddressWithClients(t *testing.T) {
	gwNS := netns.New(t, "stgw")
	clNS := netns.New(t, "stcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	pki := newTestPKI(t)
	in := staticAddresses(t)
	pki.apply(&in)
	res := Build(in)
	if len(res.Problems) > 0 {
		t.Fatal(res.Problems)
	}
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw"})
	loadGateway(t, gw, res)
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Client: true})
	if out, err := cl.LoadAll(eapClients("vera", "walt", "jimp"), map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
	for _, c := range []struct{ user, want, not string }{
		{"vera", `installing new virtual IP 10\.3\.200\.10\n`, ""},
		{"walt", `installing new virtual IP fd00:3:200::20\n`, ""},
		{"jimp", `installing new virtual IP 10\.3\.200\.\d+\n`, `virtual IP (10\.3\.200\.10|fd00:3:200::20)\n`},
	} {
		out, err := cl.Swanctl("--initiate", "--ike", c.user, "--timeout", "20")
		if err != nil {
			t.Fatalf("%s could not connect: %v\n%s", c.user, err, out)
		}
		if !regexp.MustCompile(c.want).MatchString(out) {
			t.Errorf("%s: no %s in:\n%s", c.user, c.want, out)
		}
		if c.not != "" && regexp.MustCompile(c.not).MatchString(out) {
			t.Errorf("%s got somebody's static address:\n%s", c.user, out)
		}
		if c.user == "vera" {
			// vera's address is in no dynamic range: the pool of the
			// static IPv4 users' attributes gives her the DNS server and
			// the split network.
			for _, a := range []string{"building INTERNAL_IP4_DNS attribute", "building UNITY_SPLIT_INCLUDE attribute"} {
				if !strings.Contains(gw.Log(), a) {
					t.Errorf("The gateway sent vera no %s:\n%s", strings.TrimPrefix(a, "building "), gw.Log())
				}
			}
		}
	}
}

package swan_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/radiusd"
	. "github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// TestNoPasswordAuthenticatesAnotherIdentity runs a gateway charon with what
// Build makes of users whose identities the API refuses (bypassed here, as by
// objects stored before the rules): a wildcard, %any, two users differing only
// in case, and a user named like the gateway, with the users' RADIUS server
// as the agent runs it. A client then tries each password under identities
// other than its owner's: wildcards, %any and case variants. Only an owner's
// password under its owner's identity, spelt as the user's, logs in. The last
// part serves the refused users as well and shows that even then none of
// their identities vouches for another: charon's own secrets matched
// wildcards and the gateway's identity, the server takes names literally.
func TestNoPasswordAuthenticatesAnotherIdentity(t *testing.T) {
	gwNS := netns.New(t, "swidg")
	clNS := netns.New(t, "swidc")
	netns.Veth(t, gwNS, clNS, "198.51.100.10/24", "198.51.100.20/24")
	// charon routes the pool's local network through an address of its own.
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	pki := newTestPKI(t)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})

	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}}
	pki.apply(&in)
	withUsers(&in,
		newUser("alice", "alice@example.com"),
		newUser("bob", "bob@example.com"),
		newUser("star", "*@example.com"),
		newUser("anyone", "%any"),
		newUser("carol", "carol@example.com"),
		newUser("carol2", "CAROL@example.com"),
		newUser("gwuser", "VPN.example.com"),
	)
	res := Build(in)
	m, problems := res.Model, res.Problems
	refused := map[string]string{}
	for _, p := range problems {
		refused[p.Name] = p.Reason
	}
	wantRefused := map[string]string{
		"star": v1alpha1.ReasonInvalidSpec, "anyone": v1alpha1.ReasonInvalidSpec,
		"carol": v1alpha1.ReasonDuplicateIdentity, "carol2": v1alpha1.ReasonDuplicateIdentity,
		"gwuser": v1alpha1.ReasonDuplicateIdentity,
	}
	for name, reason := range wantRefused {
		if refused[name] != reason {
			t.Errorf("VPNUser %s: problem %q, want %q (problems: %v)", name, refused[name], reason, problems)
		}
	}
	var ids []string
	for _, u := range res.Users {
		ids = append(ids, u.Identity)
	}
	if want := []string{"alice@example.com", "bob@example.com"}; !slices.Equal(ids, want) || len(m.Secrets) != 0 {
		t.Fatalf("Users %v and %d model secrets, want %v and none", ids, len(m.Secrets), want)
	}
	users := loadGateway(t, gw, res)

	type attempt struct {
		identity, passwordOf string
		in                   bool
	}
	try := func(a attempt) {
		t.Helper()
		conn, secret := charontest.EAPClient{
			Conn: "try", Gateway: "198.51.100.10", RemoteID: "vpn.example.com",
			Identity: a.identity, Password: password(a.passwordOf), RemoteTS: "10.3.0.0/24",
		}.Sections()
		conf := "connections {\n" + conn + "}\nsecrets {\n" + secret + "}\n"
		if out, err := cl.LoadAll(conf, map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}); err != nil {
			t.Fatalf("Loading the client: %v\n%s", err, out)
		}
		before := len(gw.Log())
		out, err := cl.Swanctl("--initiate", "--ike", "try", "--child", "try", "--timeout", "20")
		log := gw.Log()[before:]
		// A client that fails EAP leaves without a word; the gateway would
		// keep its IKE_SA half open and, at five, ignore the client's address.
		defer func() {
			_, _ = gw.Swanctl("--terminate", "--ike", MobileConnectionName("staff"), "--force", "--timeout", "-1")
		}()
		if a.in {
			if err != nil {
				t.Errorf("%s with %s's password was refused: %v\n%s", a.identity, a.passwordOf, err, log)
				return
			}
			if _, err := cl.Swanctl("--terminate", "--ike", "try", "--force", "--timeout", "-1"); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err == nil {
			t.Errorf("%s logged in with %s's password:\n%s", a.identity, a.passwordOf, out)
			_, _ = cl.Swanctl("--terminate", "--ike", "try", "--force", "--timeout", "-1")
			return
		}
		// Refused by the RADIUS server, not by anything before it.
		if !strings.Contains(log, "RADIUS authentication of '") || !strings.Contains(log, "' failed") {
			t.Errorf("%s with %s's password failed, but not in RADIUS:\n%s", a.identity, a.passwordOf, log)
		}
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "RADIUS authentication of") {
				t.Logf("%s with %s's password: %s", a.identity, a.passwordOf, strings.TrimSpace(l))
			}
		}
	}

	for _, a := range []attempt{
		{"alice@example.com", "alice", true},
		{"bob@example.com", "bob", true},
		// The server looks identities up as they are spelt, as the
		// agent's session bookkeeping does.
		{"ALICE@example.com", "alice", false},
		{"ALICE@example.com", "bob", false},
		{"alice@example.com", "bob", false},
		{"bob@EXAMPLE.COM", "alice", false},
		{"*@example.com", "star", false},
		{"*@example.com", "alice", false},
		{"dave@example.com", "star", false},
		{"fqdn:%any", "anyone", false},
		{"fqdn:%any", "alice", false},
		{"fqdn:*", "alice", false},
		{"carol@example.com", "carol2", false},
		{"CAROL@example.com", "carol", false},
		{"dave@example.com", "gwuser", false},
		{"vpn.example.com", "gwuser", false},
	} {
		try(a)
	}

	// Without the refusals, each of star and gwuser alone: the server
	// takes an identity literally, so neither vouches for another one.
	for _, c := range []struct{ user, identity string }{{"star", "*@example.com"}, {"gwuser", "VPN.example.com"}} {
		hash, _ := PasswordHash("password", []byte(password(c.user)))
		users.Set(c.identity, radiusd.User{NTHash: [16]byte(hash)})
		try(attempt{"dave@example.com", c.user, false})
		try(attempt{"alice@example.com", "alice", true})
		users.Delete(c.identity)
	}
}

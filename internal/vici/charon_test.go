package vici_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	govici "github.com/strongswan/govici/vici"
	"golang.org/x/crypto/md4" //nolint:staticcheck // MS-CHAPv2 is defined over MD4

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/poll"
	"github.com/ikegate/ikegate/internal/vici"
	"github.com/ikegate/ikegate/internal/vici/vicitest"
)

// These tests run against real charon daemons (Debian's strongSwan 5.9.8) in
// network namespaces, as root.

// ntHash is MD4 over the UTF-16LE password: what the gateway holds for
// EAP-MSCHAPv2 instead of the password.
func ntHash(password string) []byte {
	h := md4.New()
	for _, u := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(u), byte(u >> 8)})
	}
	return h.Sum(nil)
}

// counting wraps a Session and counts the write commands sent through it.
type counting struct {
	vici.Session
	mu     sync.Mutex
	writes []string
}

func (c *counting) Call(ctx context.Context, cmd string, in *govici.Message) (*govici.Message, error) {
	if vicitest.IsWrite(cmd) {
		c.mu.Lock()
		c.writes = append(c.writes, vicitest.RecordedCall{Command: cmd, Message: in}.String())
		c.mu.Unlock()
	}
	return c.Session.Call(ctx, cmd, in)
}

func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

type gatewayPKI struct {
	pki    *charontest.PKI
	server charontest.Leaf
}

func newGatewayPKI(t testing.TB) gatewayPKI {
	pki := charontest.NewPKI(t, "Gateway CA")
	return gatewayPKI{pki: pki, server: pki.Server(t, "vpn.example.com", "vpn.example.com", "192.0.2.1")}
}

// gatewayModel is the seed's mobile setup: a pubkey-authenticated gateway,
// EAP-MSCHAPv2 users held as NT hashes, one pool with attributes.
func gatewayModel(p gatewayPKI, passwords map[string]string) swan.Model {
	m := swan.Model{
		Connections: []swan.Connection{{
			Name:      "mobile",
			Version:   2,
			Proposals: []string{"aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048"},
			Pools:     []string{"mobile4"},
			Mobike:    true,
			SendCert:  "always",
			Unique:    "never",
			Local:     []swan.Auth{{Method: "pubkey", ID: "vpn.example.com", Certs: []string{"gw"}}},
			Remote:    []swan.Auth{{Method: "eap-mschapv2", EAPID: "%any"}},
			Children: []swan.Child{{
				Name:         "mobile",
				LocalTS:      []string{"10.3.0.0/24"},
				ESPProposals: []string{"aes256gcm16", "aes256-sha256"},
			}},
		}},
		Pools: []swan.Pool{{Name: "mobile4", Addrs: "10.3.200.0/24", Attributes: []swan.Attribute{
			{Key: "dns", Values: []string{"10.3.0.1"}},
			{Key: "split_include", Values: []string{"10.3.0.0/24"}},
			{Key: "25", Values: []string{"example.com", "example.org"}},
			{Key: "28672", Values: []string{"Welcome to the example VPN"}},
		}}},
		Certs: []swan.Cert{
			{Name: "ca", Type: "x509ca", PEM: p.pki.CertPEM},
			{Name: "gw", Type: "x509", PEM: p.server.CertPEM},
		},
		Keys:        []swan.PrivateKey{{Name: "gw", Type: "ecdsa", PEM: p.server.KeyPEM}},
		Authorities: []swan.Authority{{Name: "gateway-ca", CACert: "ca"}},
	}
	for _, user := range slices.Sorted(maps.Keys(passwords)) {
		m.Secrets = append(m.Secrets, swan.Secret{
			Name:   "ntlm-" + user,
			Type:   "NTLM",
			Owners: []string{user + "@example.com"},
			Data:   ntHash(passwords[user]),
		})
	}
	return m
}

func TestApplyToCharon(t *testing.T) {
	ns := netns.New(t, "vicap")
	gw := charontest.Start(t, ns, charontest.Options{Name: "gw", Userspace: true})
	p := newGatewayPKI(t)
	client := vici.NewClient(gw.VICISocket())
	defer client.Close()
	s := &counting{Session: client}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m := gatewayModel(p, map[string]string{"alice": "abc123", "bob": "s3cret"})
	a := vici.NewApplier(s)
	res, err := a.Apply(ctx, m)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Logf("First apply: %d writes in %v", len(res.Ops), res.Duration)

	conns, err := gw.Swanctl("--list-conns")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mobile: IKEv2", "local public key authentication:", "id: vpn.example.com", "remote EAP_MSCHAPV2 authentication:", "mobile: TUNNEL", "local:  10.3.0.0/24"} {
		if !strings.Contains(conns, want) {
			t.Errorf("swanctl --list-conns lacks %q:\n%s", want, conns)
		}
	}
	pools, err := gw.Swanctl("--list-pools")
	if err != nil || !regexp.MustCompile(`mobile4\s+10\.3\.200\.0\s+0 / 0 / 254`).MatchString(pools) {
		t.Errorf("swanctl --list-pools: %v\n%s", err, pools)
	}
	inv, err := vici.ReadInventory(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(inv.Shared, ",") != "ntlm-alice,ntlm-bob" {
		t.Errorf("get-shared = %v", inv.Shared)
	}
	// Our key ids are charon's: a restarted agent can recognise its keys.
	id, _ := vici.KeyID(p.server.KeyPEM)
	if len(inv.Keys) != 1 || inv.Keys[0] != id {
		t.Errorf("get-keys = %v, want [%s]", inv.Keys, id)
	}
	for _, c := range m.Certs {
		fp, _ := vici.CertFingerprint(c.PEM)
		found := false
		for _, have := range inv.Certs {
			found = found || have.Fingerprint == fp
		}
		if !found {
			t.Errorf("list-certs lacks certificate %s", c.Name)
		}
	}
	if strings.Join(inv.Authorities, ",") != "gateway-ca" {
		t.Errorf("get-authorities = %v", inv.Authorities)
	}
	s.take()

	t.Run("re-apply writes nothing", func(t *testing.T) {
		res, err := a.Apply(ctx, gatewayModel(p, map[string]string{"alice": "abc123", "bob": "s3cret"}))
		if err != nil {
			t.Fatal(err)
		}
		if w := s.take(); len(w) != 0 || len(res.Ops) != 0 {
			t.Errorf("Re-apply wrote %v", w)
		}
	})

	t.Run("one user changed", func(t *testing.T) {
		if _, err := a.Apply(ctx, gatewayModel(p, map[string]string{"alice": "abc123", "bob": "new", "carol": "x"})); err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(s.take(), ","); w != "load-shared ntlm-bob,load-shared ntlm-carol" {
			t.Errorf("Writes = %s", w)
		}
		if _, err := a.Apply(ctx, gatewayModel(p, map[string]string{"alice": "abc123", "carol": "x"})); err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(s.take(), ","); w != "unload-shared ntlm-bob" {
			t.Errorf("Writes = %s", w)
		}
		inv, err := vici.ReadInventory(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(inv.Shared, ",") != "ntlm-alice,ntlm-carol" {
			t.Errorf("get-shared = %v", inv.Shared)
		}
	})

	m = gatewayModel(p, map[string]string{"alice": "abc123", "carol": "x"})
	t.Run("restarted agent", func(t *testing.T) {
		res, err := vici.NewApplier(s).Apply(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		w := s.take()
		for _, op := range w {
			if strings.HasPrefix(op, "unload-") || op == "load-cert" || op == "load-key" || op == "clear-creds" {
				t.Errorf("Restarted agent sent %s", op)
			}
		}
		t.Logf("Restarted agent converged with %d writes in %v: %v", len(res.Ops), res.Duration, w)
	})

	t.Run("listings are complete", func(t *testing.T) {
		// govici's own streaming can lose a listing's last events; each of
		// these listings must see everything every time.
		for i := 0; i < 200; i++ {
			inv, err := vici.ReadInventory(ctx, client)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Conns) != 1 || len(inv.Certs) != 2 {
				t.Fatalf("Listing %d: %d connections and %d certificates, want 1 and 2", i, len(inv.Conns), len(inv.Certs))
			}
		}
	})

	t.Run("charon restarted", func(t *testing.T) {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		events := vici.Watch(wctx, client, vici.WatchOptions{Retry: 20 * time.Millisecond})
		if ev := <-events; ev.Kind != vici.EventConnected {
			t.Fatalf("First event = %s", ev.Kind)
		}
		gw.Restart(t)
		start := time.Now()
		// What the agent does: wait for charon to be back, then apply.
		for ev := range events {
			if ev.Kind == vici.EventConnected {
				break
			}
		}
		res, err := a.Apply(ctx, m)
		if err != nil {
			t.Fatalf("Apply after restart: %v", err)
		}
		took := time.Since(start)
		if !res.Synced {
			t.Error("Apply after a charon restart did not re-read charon")
		}
		t.Logf("Configuration back %v after charon restarted (%d writes)", took, len(res.Ops))
		conns, err := gw.Swanctl("--list-conns")
		if err != nil || !strings.Contains(conns, "mobile: IKEv2") {
			t.Errorf("After restart: %v\n%s", err, conns)
		}
		shared, err := vici.ReadInventory(ctx, client)
		if err != nil || strings.Join(shared.Shared, ",") != "ntlm-alice,ntlm-carol" {
			t.Errorf("After restart get-shared = %v, %v", shared, err)
		}
		s.take()
		if res, err := a.Apply(ctx, m); err != nil || len(res.Ops) != 0 {
			t.Errorf("Apply after the reload: %d writes, %v", len(res.Ops), err)
		}
	})

	t.Run("a CA change touches only it", func(t *testing.T) {
		// A certificate tunnel whose peers' chains must end in caPEM.
		withTunnel := func(caPEM []byte) swan.Model {
			w := gatewayModel(p, map[string]string{"alice": "abc123", "carol": "x"})
			w.Certs = append(w.Certs, swan.Cert{Name: "tunnel-ca", Type: "x509ca", PEM: caPEM})
			tun := w.Connections[0]
			tun.Name, tun.Pools = "tunnel", nil
			tun.Remote = []swan.Auth{{Method: "pubkey", ID: "peer.example.com", CACerts: []string{"tunnel-ca"}}}
			tun.Children = []swan.Child{{Name: "tunnel", LocalTS: []string{"10.3.0.0/24"}, RemoteTS: []string{"10.4.0.0/24"}}}
			w.Connections = append(w.Connections, tun)
			return w
		}
		if _, err := a.Apply(ctx, withTunnel(charontest.NewPKI(t, "Tunnel CA").CertPEM)); err != nil {
			t.Fatal(err)
		}
		s.take()
		rotated := charontest.NewPKI(t, "Rotated Tunnel CA")
		for _, step := range []struct {
			name string
			m    swan.Model
			want string
		}{
			{"rotated", withTunnel(rotated.CertPEM), "load-cert,load-conn tunnel"},
			{"removed", m, "unload-conn tunnel"},
		} {
			if _, err := a.Apply(ctx, step.m); err != nil {
				t.Fatal(err)
			}
			if w := strings.Join(s.take(), ","); w != step.want {
				t.Errorf("%s: writes %s, want %s", step.name, w, step.want)
			}
			inv, err := vici.ReadInventory(ctx, client)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(inv.Shared, ",") != "ntlm-alice,ntlm-carol" || len(inv.Keys) != 1 || len(inv.Conns) != len(step.m.Connections) || len(inv.Authorities) != 1 {
				t.Errorf("%s: charon holds %+v", step.name, inv)
			}
		}
		if res, err := a.Apply(ctx, m); err != nil || len(res.Ops) != 0 {
			t.Errorf("Apply after the removal: %d writes, %v", len(res.Ops), err)
		}
	})

	t.Run("refusal names the item", func(t *testing.T) {
		bad := gatewayModel(p, map[string]string{"alice": "abc123", "carol": "x"})
		bad.Pools = append(bad.Pools, swan.Pool{Name: "broken", Addrs: "not-an-address"})
		_, err := a.Apply(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "load pool broken: charon:") {
			t.Fatalf("Apply of a bad pool: %v", err)
		}
		t.Logf("charon refused: %v", err)
	})
}

// clientModel is a road warrior logging in as user with password.
func clientModel(p gatewayPKI, user, password string) swan.Model {
	return swan.Model{
		Connections: []swan.Connection{{
			Name:        "home",
			Version:     2,
			RemoteAddrs: []string{"192.0.2.1"},
			Vips:        []string{"0.0.0.0"},
			Proposals:   []string{"aes256gcm16-prfsha256-x25519"},
			Mobike:      true,
			Local:       []swan.Auth{{Method: "eap-mschapv2", EAPID: user + "@example.com"}},
			Remote:      []swan.Auth{{Method: "pubkey", ID: "vpn.example.com"}},
			Children: []swan.Child{{
				Name:         "home",
				RemoteTS:     []string{"10.3.0.0/24"},
				ESPProposals: []string{"aes256gcm16"},
			}},
		}},
		Certs:   []swan.Cert{{Name: "ca", Type: "x509ca", PEM: p.pki.CertPEM}},
		Secrets: []swan.Secret{{Name: "eap-" + user, Type: "EAP", Owners: []string{user + "@example.com"}, Data: []byte(password)}},
	}
}

func TestSessionsOfARealClient(t *testing.T) {
	gwNS := netns.New(t, "vicgw")
	clNS := netns.New(t, "viccl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	p := newGatewayPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	gwc := vici.NewClient(gw.VICISocket())
	defer gwc.Close()
	clc := vici.NewClient(cl.VICISocket())
	defer clc.Close()
	users := map[string]string{"alice": "abc123", "bob": "hunter2"}
	if _, err := vici.NewApplier(gwc).Apply(ctx, gatewayModel(p, users)); err != nil {
		t.Fatalf("Applying the gateway: %v", err)
	}
	clApplier := vici.NewApplier(clc)
	if _, err := clApplier.Apply(ctx, clientModel(p, "alice", "abc123")); err != nil {
		t.Fatalf("Applying the client: %v", err)
	}

	events := vici.Watch(ctx, gwc, vici.WatchOptions{Log: true})
	if ev := <-events; ev.Kind != vici.EventConnected {
		t.Fatalf("First event = %s", ev.Kind)
	}
	out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "20")
	if err != nil {
		t.Fatalf("Initiating: %v\n%s", err, out)
	}

	// The gateway reports the session, first as events, then in list-sas.
	// charon queues log events, so they may come after the up events.
	var up, childUp *vici.Event
	authLogged := false
	for deadline := time.After(10 * time.Second); up == nil || childUp == nil || !authLogged; {
		select {
		case ev := <-events:
			switch {
			case ev.Kind == vici.EventIKEUpDown && ev.Up:
				up = &ev
			case ev.Kind == vici.EventChildUpDown && ev.Up:
				childUp = &ev
			case ev.Kind == vici.EventLog && strings.Contains(ev.Log.Message, "EAP method EAP_MSCHAPV2 succeeded"):
				authLogged = true
			}
		case <-deadline:
			t.Fatalf("Within 10s: ike-updown up %v, child-updown up %v, EAP success logged %v", up != nil, childUp != nil, authLogged)
		}
	}
	if up.IKE.Identity() != "alice@example.com" || len(up.IKE.RemoteVIPs) != 1 {
		t.Errorf("ike-updown IKE_SA = %+v", up.IKE)
	}
	if childUp.Child == nil || childUp.Child.Name != "mobile" || childUp.Child.State != "INSTALLED" {
		t.Errorf("child-updown CHILD_SA = %+v", childUp.Child)
	}

	if _, err := clNS.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.3.0.1"); err != nil {
		t.Fatalf("Ping through the tunnel: %v", err)
	}
	sas, err := vici.ListSAs(ctx, gwc)
	if err != nil || len(sas) != 1 {
		t.Fatalf("ListSAs = %+v, %v", sas, err)
	}
	sa := sas[0]
	if sa.Name != "mobile" || sa.State != "ESTABLISHED" || sa.RemoteEAPID != "alice@example.com" ||
		sa.RemoteHost != "192.0.2.2" || sa.RemotePort == 0 || len(sa.RemoteVIPs) != 1 || !strings.HasPrefix(sa.RemoteVIPs[0], "10.3.200.") ||
		sa.Proposal.Encr != "AES_GCM_16" || sa.Proposal.EncrKeySize != 256 || sa.Proposal.DHGroup != "CURVE_25519" || sa.Proposal.PRF != "PRF_HMAC_SHA2_256" {
		t.Errorf("IKE_SA = %+v", sa)
	}
	if len(sa.Children) != 1 || sa.Children[0].PacketsIn < 2 || sa.Children[0].BytesIn == 0 ||
		strings.Join(sa.Children[0].LocalTS, ",") != "10.3.0.0/24" || sa.Children[0].Proposal.Encr != "AES_GCM_16" {
		t.Errorf("CHILD_SAs = %+v", sa.Children)
	}
	t.Logf("Session: %s %s:%d vips %v %s/%d %s %s, children %+v", sa.Identity(), sa.RemoteHost, sa.RemotePort, sa.RemoteVIPs,
		sa.Proposal.Encr, sa.Proposal.EncrKeySize, sa.Proposal.PRF, sa.Proposal.DHGroup, sa.Children)

	// A restarted agent reloads the connection it finds in charon, and a
	// changed connection replaces the old one: neither takes the user's
	// IKE_SA down, because established SAs keep the configuration they were
	// made with.
	t.Run("reload keeps the SA", func(t *testing.T) {
		m := gatewayModel(p, users)
		if _, err := vici.NewApplier(gwc).Apply(ctx, m); err != nil {
			t.Fatal(err)
		}
		gw.WaitLog(t, "updated vici connection: mobile", 5*time.Second)
		m.Connections[0].DPDDelay = 20 * time.Second
		m.Pools[0].Attributes[0].Values = []string{"10.3.0.53"}
		if _, err := vici.NewApplier(gwc).Apply(ctx, m); err != nil {
			t.Fatal(err)
		}
		gw.WaitLog(t, "replaced vici connection: mobile", 5*time.Second)
		gw.WaitLog(t, "updated vici pool mobile4", 5*time.Second)
		after, err := vici.ListSAs(ctx, gwc)
		if err != nil || len(after) != 1 || after[0].UniqueID != sa.UniqueID || after[0].State != "ESTABLISHED" {
			t.Fatalf("SAs after reloading = %+v, %v; want IKE_SA #%d still established", after, err, sa.UniqueID)
		}
		if _, err := clNS.Exec("ping", "-c", "1", "-W", "2", "10.3.0.1"); err != nil {
			t.Errorf("Ping after reloading: %v", err)
		}
	})

	t.Run("terminate the user", func(t *testing.T) {
		start := time.Now()
		n, err := terminateIdentity(ctx, gwc, "alice@example.com")
		took := time.Since(start)
		if err != nil || n != 1 {
			t.Fatalf("terminateIdentity = %d, %v", n, err)
		}
		t.Logf("terminateIdentity took %v", took)
		// The client's IKE_SA must go within a second of the call.
		poll.Eventually(t, "the client's IKE_SA to go", time.Second-time.Since(start), func() error {
			sas, err := vici.ListSAs(ctx, clc)
			if err != nil {
				t.Fatal(err)
			}
			if len(sas) != 0 {
				return fmt.Errorf("client still has %+v", sas)
			}
			return nil
		}, poll.Every(10*time.Millisecond))
		t.Logf("terminateIdentity returned in %v; the client's IKE_SA was gone after %v", took, time.Since(start))
		if gwSAs, _ := vici.ListSAs(ctx, gwc); len(gwSAs) != 0 {
			t.Errorf("Gateway still has %+v", gwSAs)
		}
		for deadline := time.After(time.Second); ; {
			select {
			case ev := <-events:
				if ev.Kind != vici.EventIKEUpDown {
					continue
				}
				if ev.Up || ev.IKE.UniqueID != sa.UniqueID || ev.IKE.Identity() != "alice@example.com" {
					t.Errorf("ike-updown after terminate = up %v, %+v", ev.Up, ev.IKE)
				}
			case <-deadline:
				t.Fatal("No ike-updown down event within 1s of terminating")
			}
			break
		}
	})

	t.Run("changed password replaces the secret", func(t *testing.T) {
		gwApplier := vici.NewApplier(gwc)
		if _, err := gwApplier.Apply(ctx, gatewayModel(p, map[string]string{"alice": "n3w-pw", "bob": "hunter2"})); err != nil {
			t.Fatal(err)
		}
		if out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "10"); err == nil {
			t.Fatalf("The old password still works:\n%s", out)
		}
		if _, err := clApplier.Apply(ctx, clientModel(p, "alice", "n3w-pw")); err != nil {
			t.Fatal(err)
		}
		if out, err := cl.Swanctl("--initiate", "--child", "home", "--timeout", "10"); err != nil {
			t.Fatalf("The new password does not work: %v\n%s", err, out)
		}
	})
}

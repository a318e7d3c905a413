package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// TestStaticAddressesAndGroupsThroughTheAgent: real EAP-MSCHAPv2 clients
// log in through charon's eap-radius plugin and the agent's RADIUS server,
// which tells charon each user's address and pool group: a user with a
// static address gets exactly it (Framed-IP-Address), a user whose group
// selects the engineering pool gets an address of it (Class), a user of
// neither gets the default pool's and never the static one. Each pings the
// LAN. charon holds one connection per group and kind of address, none
// per user.
func TestStaticAddressesAndGroupsThroughTheAgent(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		gwAddr  = "192.0.2.1"
		engNet  = "10.3.202.0/24"
		static  = "10.3.200.77"
		engPool = "engineering"
	)
	gwNS, clNS := netns.New(t, "stgw"), netns.New(t, "stcl")
	netns.Veth(t, gwNS, clNS, gwAddr+"/24", "192.0.2.2/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Static Test CA")
	server := pki.Server(t, hostname, hostname, gwAddr)
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	gwVICI, clVICI := vici.NewClient(gw.VICISocket()), vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { gwVICI.Close(); clVICI.Close() })

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{gwAddr})
	team := map[string]string{"team": "eng"}
	if err := c.Create(ctx, gen.Pool(namespace, engPool, engNet, gen.SplitTunnel(lanNet), gen.Allowing(lanNet), gen.Selecting(team))); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		mod  func(*v1alpha1.VPNUser)
	}{
		{"vera", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = static }},
		{"erin", gen.WithLabels(team)},
		{"dan", func(*v1alpha1.VPNUser) {}},
	} {
		s, user := userObjects(u.name, u.name+"@example.com", u.name+"-pass")
		u.mod(user)
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	ag := startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: gw, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)
	ag.waitServes(t, 3)

	var conns, secrets []string
	for _, u := range []string{"vera", "erin", "dan"} {
		conn, secret := clientConf(u, gwAddr, u+"@example.com", u+"-pass")
		conns, secrets = append(conns, conn), append(secrets, secret)
	}
	loadClient(t, cl, pki, conns, secrets)

	names, err := connNames(ctx, gwVICI)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	want := []string{swan.MobileConnectionName(engPool), swan.MobileConnectionName(poolName), swan.StaticConnectionName(poolName, "4")}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("charon holds connections %v, want %v", names, want)
	}

	inPool := func(n string) func(netip.Addr) bool {
		p := netip.MustParsePrefix(n)
		return p.Contains
	}
	for _, tc := range []struct {
		user, conn string
		ok         func(netip.Addr) bool
		what       string
	}{
		{"vera", swan.StaticConnectionName(poolName, "4"), func(a netip.Addr) bool { return a == netip.MustParseAddr(static) }, "her static address " + static},
		{"erin", swan.MobileConnectionName(engPool), inPool(engNet), "an address of pool " + engPool},
		{"dan", swan.MobileConnectionName(poolName), func(a netip.Addr) bool { return inPool(poolNet)(a) && a != netip.MustParseAddr(static) }, "an address of pool " + poolName + " other than " + static},
	} {
		if _, err := initiate(ctx, clVICI, tc.user); err != nil {
			t.Fatalf("%s could not log in: %v", tc.user, err)
		}
		// charon lists an IKE_SA a moment after initiate returned.
		var vip string
		waitFor(t, 10*time.Second, tc.user+"'s IKE_SA with a virtual IP on the client", func() (bool, string) {
			sas, err := established(ctx, clVICI, tc.user)
			if err != nil || len(sas) != 1 || len(sas[0].LocalVIPs) != 1 {
				return false, fmt.Sprintf("client IKE_SAs %+v (%v), want one with a virtual IP", sas, err)
			}
			vip = sas[0].LocalVIPs[0]
			return true, ""
		})
		if a, err := netip.ParseAddr(vip); err != nil || !tc.ok(a) {
			t.Errorf("%s got virtual IP %s, want %s", tc.user, vip, tc.what)
		}
		waitFor(t, 10*time.Second, tc.user+"'s IKE_SA on the gateway's connection "+tc.conn, func() (bool, string) {
			onGW, err := established(ctx, gwVICI, tc.conn)
			ok := err == nil && slices.ContainsFunc(onGW, func(sa vici.IKESA) bool { return sa.RemoteEAPID == tc.user+"@example.com" })
			return ok, fmt.Sprintf("gateway IKE_SAs of %s: %+v (%v)", tc.conn, onGW, err)
		})
		waitFor(t, 10*time.Second, tc.user+" pinging the LAN", func() (bool, string) { return pings(clNS, "", lanAddr, 2) })
		if err := terminate(ctx, clVICI, tc.user); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, tc.user+"'s IKE_SA to end on the gateway", func() (bool, string) {
			sas, err := established(ctx, gwVICI, tc.conn)
			return err == nil && len(sas) == 0, "still established"
		})
	}
	log := gw.Log()
	for _, line := range []string{"received group membership '" + swan.GroupClass(poolName, "4") + "' from RADIUS", "received group membership '" + swan.GroupClass(engPool, "") + "' from RADIUS"} {
		if !strings.Contains(log, line) {
			t.Errorf("charon did not log %q", line)
		}
	}
	if keys, err := sharedKeys(ctx, gwVICI); err != nil || len(keys) != 0 {
		t.Errorf("charon holds shared keys %v (%v), want none", keys, err)
	}
}

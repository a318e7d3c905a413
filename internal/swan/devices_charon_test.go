package swan_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// startGateway loads what Build makes of in into a gateway charon (with
// userspace ESP, so pings go through) in gwNS.
func startGateway(t *testing.T, gwNS *netns.NS, pki *testPKI, in Resources) *charontest.Charon {
	t.Helper()
	pki.apply(&in)
	res := Build(in)
	if len(res.Problems) > 0 {
		t.Fatal(res.Problems)
	}
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	loadGateway(t, gw, res)
	return gw
}

// device is a client charon in a namespace of its own, dialling the gateway
// at gwAddr as a user.
type device struct {
	name string
	ns   *netns.NS
	c    *charontest.Charon
}

func newDevice(t *testing.T, pki *testPKI, gwNS *netns.NS, name, gwAddr, addr, user string) *device {
	t.Helper()
	ns := netns.New(t, "dv"+name[:2])
	netns.Veth(t, gwNS, ns, gwAddr+"/24", addr+"/24")
	c := charontest.Start(t, ns, charontest.Options{Name: name, Userspace: true, Client: true})
	conn, secret := charontest.EAPClient{Conn: name, Gateway: gwAddr, RemoteID: "vpn.example.com",
		Identity: user + "@example.com", Password: password(user), RemoteTS: "10.3.0.0/24"}.Sections()
	conf := "connections {\n" + conn + "}\nsecrets {\n" + secret + "}\n"
	if out, err := c.LoadAll(conf, map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}); err != nil {
		t.Fatalf("Loading %s: %v\n%s", name, err, out)
	}
	return &device{name, ns, c}
}

var virtualIP = regexp.MustCompile(`installing new virtual IP (\S+)\n`)

// connect brings the device's tunnel up and returns its virtual IP and what
// charon printed.
func (d *device) connect(t *testing.T) (string, string) {
	t.Helper()
	out, err := d.c.Swanctl("--initiate", "--child", d.name, "--timeout", "20")
	if err != nil {
		t.Fatalf("%s could not connect: %v\n%s", d.name, err, out)
	}
	m := virtualIP.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s got no virtual IP:\n%s", d.name, out)
	}
	return m[1], out
}

func (d *device) ping(t *testing.T, addr string) {
	t.Helper()
	out, err := d.ns.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", addr)
	if err != nil || !strings.Contains(out, "3 received") {
		t.Errorf("%s's ping to %s through the tunnel: %v\n%s", d.name, addr, err, out)
	}
}

// TestTwoDevicesOfOneUserWithClients: a laptop and a phone log in as the same
// user at once. Each sends INITIAL_CONTACT; with the rendered unique = never
// charon keeps both IKE_SAs (its default destroys the first without a
// DELETE), its pool gives each device its own address (leases are keyed by
// identity and the device's address and port), both pass traffic, and a
// device that disconnects and comes back gets its address again (its lease
// went offline and is the identity's first offline lease).
func TestTwoDevicesOfOneUserWithClients(t *testing.T) {
	gwNS := netns.New(t, "dvgw")
	gwNS.AddLoopbackAddr(t, "10.3.0.1/24")
	pki := newTestPKI(t)
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{newPool("staff", "10.3.200.0/24")}}
	withUsers(&in, newUser("jimp", "jimp@example.com"))
	gw := startGateway(t, gwNS, pki, in)
	laptop := newDevice(t, pki, gwNS, "laptop", "192.0.2.1", "192.0.2.2", "jimp")
	phone := newDevice(t, pki, gwNS, "phone", "198.51.100.1", "198.51.100.2", "jimp")

	laptopIP, out := laptop.connect(t)
	if !strings.Contains(out, "N(INIT_CONTACT)") {
		t.Errorf("The laptop sent no INITIAL_CONTACT, so the test shows nothing about it:\n%s", out)
	}
	phoneIP, out := phone.connect(t)
	if !strings.Contains(out, "N(INIT_CONTACT)") {
		t.Errorf("The phone sent no INITIAL_CONTACT:\n%s", out)
	}
	if laptopIP == phoneIP {
		t.Fatalf("Both devices got %s", laptopIP)
	}
	if strings.Contains(gw.Log(), "destroying duplicate IKE_SA") {
		t.Errorf("The gateway destroyed the first device's IKE_SA:\n%s", gw.Log())
	}
	laptop.ping(t, "10.3.0.1")
	phone.ping(t, "10.3.0.1")
	sas, err := gw.Swanctl("--list-sas")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ remote, vip string }{{"192.0.2.2", laptopIP}, {"198.51.100.2", phoneIP}} {
		re := regexp.MustCompile(`remote '` + regexp.QuoteMeta(d.remote) + `' @ ` + regexp.QuoteMeta(d.remote) + `\[\d+\] EAP: 'jimp@example\.com' \[` + regexp.QuoteMeta(d.vip) + `\]`)
		if !re.MatchString(sas) {
			t.Errorf("The gateway does not show jimp's device at %s with %s:\n%s", d.remote, d.vip, sas)
		}
	}

	// The laptop leaves (sending a DELETE) and comes back.
	if out, err := laptop.c.Swanctl("--terminate", "--ike", laptop.name, "--timeout", "20"); err != nil {
		t.Fatalf("Terminating the laptop: %v\n%s", err, out)
	}
	again, _ := laptop.connect(t)
	if again != laptopIP {
		t.Errorf("The laptop came back with %s, want its address %s", again, laptopIP)
	}
	laptop.ping(t, "10.3.0.1")
	phone.ping(t, "10.3.0.1")
}

// TestFullPoolGivesEveryClientItsAttributes fills a pool of two addresses:
// both clients get the pool's DNS server, domains and split networks (with
// the pool rendered as a subnet, charon 5.9.8 sent the pool's last address
// only CPRP(ADDR)), and a third client is refused an address.
func TestFullPoolGivesEveryClientItsAttributes(t *testing.T) {
	gwNS := netns.New(t, "fpgw")
	clNS := netns.New(t, "fpcl")
	netns.Veth(t, gwNS, clNS, "192.0.2.1/24", "192.0.2.2/24")
	pki := newTestPKI(t)
	in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{newPool("small", "10.3.200.0/30", func(p *v1alpha1.MobilePool) {
		p.Spec.DNS = &v1alpha1.DNSSettings{Servers: []v1alpha1.IPAddress{"10.3.0.1"}, DefaultDomain: "example.com",
			SplitDomains: []v1alpha1.DomainName{"example.com", "example.org"}}
	})}}
	users := []string{"ann", "bea", "cid"}
	for _, u := range users {
		withUsers(&in, newUser(u, u+"@example.com"))
	}
	pki.apply(&in)
	res := Build(in)
	if len(res.Problems) > 0 {
		t.Fatal(res.Problems)
	}
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw"})
	loadGateway(t, gw, res)
	cl := charontest.Start(t, clNS, charontest.Options{Name: "cl", Client: true})
	if out, err := cl.LoadAll(eapClients(users...), map[string][]byte{"x509ca/ca.pem": pki.ca.CertPEM}); err != nil {
		t.Fatalf("Loading the clients: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, u := range users[:2] {
		out, err := cl.Swanctl("--initiate", "--ike", u, "--timeout", "20")
		if err != nil {
			t.Fatalf("%s could not connect: %v\n%s", u, err, out)
		}
		m := regexp.MustCompile(`installing new virtual IP (10\.3\.200\.[12])\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s got no address of the pool:\n%s", u, out)
		}
		got[m[1]] = true
		if want := "CPRP(ADDR DNS U_SPLITINC DOMAIN DOMAIN U_DEFDOM U_SPLITDNS)"; !strings.Contains(out, want) {
			t.Errorf("%s (address %s) did not receive %s:\n%s", u, m[1], want, out)
		}
	}
	for _, attr := range []string{"INTERNAL_IP4_DNS", "INTERNAL_DNS_DOMAIN", "UNITY_SPLIT_INCLUDE", "UNITY_DEF_DOMAIN", "UNITY_SPLITDNS_NAME"} {
		if n := strings.Count(cl.Log(), "processing "+attr+" attribute"); n < 2 {
			t.Errorf("The clients processed %s %d times, want it for both:\n%s", attr, n, cl.Log())
		}
	}
	if len(got) != 2 {
		t.Errorf("The pool's two addresses were not both handed out: %v", got)
	}
	out, _ := cl.Swanctl("--initiate", "--ike", "cid", "--timeout", "20")
	if !strings.Contains(out, "N(INT_ADDR_FAIL)") || virtualIP.MatchString(out) {
		t.Errorf("cid, the third client of a full pool, was not refused an address:\n%s", out)
	}
}

// TestPoolsRenderedAsRanges: every pool is an address range from its
// prefix's first to its last address charon hands out, an IPv6 prefix is
// cut to charon's 2^31 - 2 addresses of a pool (a longer range is refused:
// "IP address range too large"), static addresses split the range only
// where it holds them, and charon loads every one of these pools.
func TestPoolsRenderedAsRanges(t *testing.T) {
	host := startCharonHost(t)
	tests := []struct {
		name, v4, v6, static string
		want                 map[string]string
	}{
		{name: "a /30", v4: "10.3.200.0/30", want: map[string]string{"staff-ipv4": "10.3.200.1-10.3.200.2"}},
		{name: "a /64", v6: "fd00:3::/64", want: map[string]string{"staff-ipv6": "fd00:3::1-fd00:3::7fff:fffe"}},
		{name: "a static address inside the served part", v6: "fd00:3::/64", static: "fd00:3::20", want: map[string]string{
			"staff-ipv6-fd00_3__1-fd00_3__1f":         "fd00:3::1-fd00:3::1f",
			"staff-ipv6-fd00_3__21-fd00_3__7fff_fffe": "fd00:3::21-fd00:3::7fff:fffe",
			"statics-staff-v6":                        "fd00:3::20-fd00:3::20",
		}},
		{name: "a static address beyond it", v6: "fd00:3::/64", static: "fd00:3::1:0:5", want: map[string]string{
			"staff-ipv6-fd00_3__1-fd00_3__7fff_fffe": "fd00:3::1-fd00:3::7fff:fffe",
			"statics-staff-v6":                       "fd00:3::1:0:5-fd00:3::1:0:5",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Resources{Gateway: newGateway(), Now: testNow, Pools: []v1alpha1.MobilePool{newPool("staff", tc.v4, func(p *v1alpha1.MobilePool) {
				p.Spec.Addresses.IPv6 = v1alpha1.CIDR(tc.v6)
				if tc.v6 != "" {
					p.Spec.LocalNetworks = append(p.Spec.LocalNetworks, "fd00:9::/64")
				}
			})}}
			withUsers(&in, newUser("jimp", "jimp@example.com", func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = v1alpha1.IPAddress(tc.static) }))
			newTestPKI(t).apply(&in)
			res := Build(in)
			if len(res.Problems) > 0 {
				t.Fatal(res.Problems)
			}
			got := map[string]string{}
			for _, p := range res.Model.Pools {
				got[p.Name] = p.Addrs
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Pools (-want +got):\n%s", d)
			}
			host.accepts(t, res.Model)
		})
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/testutil/require"
	"github.com/ikegate/ikegate/internal/vici"
)

// userDevice is a client charon in its own namespace, wired to the gateway
// namespace on a network of its own.
type userDevice struct {
	name, addr string
	ns         *netns.NS
	charon     *charontest.Charon
	vici       *vici.Client
}

func newUserDevice(t *testing.T, gwNS *netns.NS, pki *charontest.PKI, name, gwAddr, addr, identity, password string) *userDevice {
	t.Helper()
	ns := netns.New(t, "ud"+name[:2])
	netns.Veth(t, gwNS, ns, gwAddr+"/24", addr+"/24")
	cl := charontest.Start(t, ns, charontest.Options{Name: name, Userspace: true, Client: true})
	s := vici.NewClient(cl.VICISocket())
	t.Cleanup(func() { s.Close() })
	conn, secret := clientConf(name, gwAddr, identity, password)
	loadClient(t, cl, pki, []string{conn}, []string{secret})
	return &userDevice{name: name, addr: addr, ns: ns, charon: cl, vici: s}
}

// connect brings the device's tunnel up and returns its virtual IP.
func (d *userDevice) connect(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if _, err := initiate(ctx, d.vici, d.name); err != nil {
		t.Fatalf("%s could not connect: %v", d.name, err)
	}
	// A listing right after initiate can miss the IKE_SA while charon's
	// thread that set it up still holds it.
	var vip string
	waitFor(t, 10*time.Second, d.name+"'s IKE_SA with a virtual IP", func() (bool, string) {
		sas, err := established(ctx, d.vici, d.name)
		if err != nil || len(sas) != 1 || len(sas[0].LocalVIPs) != 1 {
			return false, fmt.Sprintf("established IKE_SAs %+v, %v", sas, err)
		}
		vip = sas[0].LocalVIPs[0]
		return true, ""
	})
	return vip
}

// TestUserDevicesAndMaxSessions runs the agent against a real charon with
// two devices of one user. With the default limit both stay connected,
// each with its own address and its own entry in the user's status; a
// device that reconnects keeps its address; with maxSessions 1 a new login
// ends the older device's session with a DELETE, and the user gets an
// Event naming that device.
func TestUserDevicesAndMaxSessions(t *testing.T) {
	require.Root(t)
	ctx := context.Background()
	const (
		pod      = "vpn-gateway-0"
		identity = "jimp@example.com"
		password = "abc123"
	)
	gwNS := netns.New(t, "udgw")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	pki := charontest.NewPKI(t, "Devices Test CA")
	server := pki.Server(t, hostname, hostname, "192.0.2.1", "198.51.100.1")
	gw := charontest.Start(t, gwNS, charontest.Options{Name: "gw", Userspace: true})
	laptop := newUserDevice(t, gwNS, pki, "laptop", "192.0.2.1", "192.0.2.2", identity, password)
	phone := newUserDevice(t, gwNS, pki, "phone", "198.51.100.1", "198.51.100.2", identity, password)

	cfg, c := startAPI(t)
	createGateway(t, c, pki, server, []string{"192.0.2.1", "198.51.100.1"})
	if err := createUser(ctx, c, "jimp", identity, password); err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t, cfg, agentConfig{pod: pod, gw: gw, log: testr.New(t)})
	ag.waitReady(t, 30*time.Second)
	ag.waitServes(t, 1)

	laptopIP, phoneIP := laptop.connect(t), phone.connect(t)
	if laptopIP == phoneIP {
		t.Fatalf("Both devices got %s", laptopIP)
	}
	ping(t, laptop.ns, 3)
	ping(t, phone.ns, 3)
	// Each device is its own session: remote address, IKE identity (the
	// client's own address, as it sends no other) and virtual IP.
	want := map[string]string{"192.0.2.2": laptopIP, "198.51.100.2": phoneIP}
	waitFor(t, 15*time.Second, "both devices in the user's status", func() (bool, string) {
		u := getUser(t, c, "jimp")
		if u.Status.SessionCount != 2 || len(u.Status.Sessions) != 2 {
			return false, sessionsString(u)
		}
		for _, s := range u.Status.Sessions {
			if vip, ok := want[s.RemoteAddress]; !ok || s.IKEIdentity != s.RemoteAddress || !slices.Equal(s.VirtualAddresses, []string{vip}) || s.Pod != pod {
				return false, "session " + s.RemoteAddress + " ike " + s.IKEIdentity + " vips " + strings.Join(s.VirtualAddresses, ",")
			}
		}
		return true, ""
	})

	// The phone leaves and comes back to its address; the limit is now one.
	if err := terminate(ctx, phone.vici, phone.name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the phone's session to end", func() (bool, string) {
		u := getUser(t, c, "jimp")
		return u.Status.SessionCount == 1 && len(u.Status.Sessions) == 1 && u.Status.Sessions[0].RemoteAddress == "192.0.2.2", sessionsString(u)
	})
	u := getUser(t, c, "jimp")
	patch := client.MergeFrom(u.DeepCopy())
	u.Spec.MaxSessions = ptr.To[int32](1)
	if err := c.Patch(ctx, &u, patch); err != nil {
		t.Fatal(err)
	}
	if again := phone.connect(t); again != phoneIP {
		t.Errorf("The phone came back with %s, want its address %s", again, phoneIP)
	}

	// The laptop, the older session, is told with a DELETE.
	waitFor(t, 20*time.Second, "the laptop's IKE_SA to be deleted", func() (bool, string) {
		sas, err := established(ctx, laptop.vici, laptop.name)
		return err == nil && len(sas) == 0 && strings.Contains(laptop.charon.Log(), "received DELETE for IKE_SA laptop"), "laptop still connected"
	})
	waitFor(t, 15*time.Second, "only the phone in the user's status", func() (bool, string) {
		u := getUser(t, c, "jimp")
		ok := u.Status.SessionCount == 1 && len(u.Status.Sessions) == 1 && u.Status.Sessions[0].RemoteAddress == "198.51.100.2" &&
			slices.Equal(u.Status.Sessions[0].VirtualAddresses, []string{phoneIP})
		return ok, sessionsString(u)
	})
	var replaced []corev1.Event
	waitFor(t, 15*time.Second, "a SessionReplaced Event on the user", func() (bool, string) {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		replaced = slices.DeleteFunc(evs.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind != "VPNUser" || e.InvolvedObject.Name != "jimp" || e.Reason != v1alpha1.EventReasonSessionReplaced
		})
		return len(replaced) > 0, "no Event yet"
	})
	if len(replaced) != 1 || !strings.Contains(replaced[0].Message, "192.0.2.2") || !strings.Contains(replaced[0].Message, laptopIP) ||
		replaced[0].InvolvedObject.UID != u.UID {
		t.Errorf("SessionReplaced Events = %+v; want one naming the laptop (192.0.2.2, %s) on the user's UID", replaced, laptopIP)
	}
	ping(t, phone.ns, 3)
	if strings.Contains(gw.Log(), "destroying duplicate IKE_SA") {
		t.Error("charon destroyed a duplicate IKE_SA without a DELETE")
	}
}

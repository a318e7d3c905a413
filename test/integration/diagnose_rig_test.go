package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/gen"
	"github.com/ikegate/ikegate/internal/testutil/netns"
	"github.com/ikegate/ikegate/internal/vici"
)

// The rig of the diagnosis tests: a gateway charon run by the agent and a
// client charon, and the helpers that wait for an Event and check it.

// diagRig is a gateway charon run by an agent (API objects in envtest,
// charon's VICI log and error-notify socket) and a client charon in
// another namespace, shared by the subtests of one test.
type diagRig struct {
	c      client.Client
	gw, cl *charontest.Charon
	clVICI *vici.Client
	clNS   *netns.NS
	pki    *charontest.PKI
	ag     *runningAgent
}

const (
	diagGW = "192.0.2.1"
	diagCl = "192.0.2.2"
	// diagPool is a /30: two addresses, so that two sessions exhaust it.
	diagPool = "10.3.200.0/30"
)

// newDiagRig starts both charons, the API server and the manager, the
// gateway (DPD every second, a two-address pool) with the given users, and
// the agent. The gateway's charon retransmits twice within about 5 s so
// that a dead peer is declared quickly.
func newDiagRig(t *testing.T, users ...client.Object) *diagRig {
	t.Helper()
	return newDiagRigHalfOpen(t, 0, users...)
}

// newDiagRigHalfOpen is newDiagRig with the gateway charon's
// half_open_timeout; 0 keeps charon's 30 s.
func newDiagRigHalfOpen(t *testing.T, halfOpen time.Duration, users ...client.Object) *diagRig {
	t.Helper()
	r := &diagRig{}
	gwNS := netns.New(t, "dugw")
	r.clNS = netns.New(t, "ducl")
	netns.Veth(t, gwNS, r.clNS, diagGW+"/24", diagCl+"/24")
	gwNS.AddLoopbackAddr(t, lanAddr+"/24")
	r.pki = charontest.NewPKI(t, "Diagnose Users CA")
	server := r.pki.Server(t, hostname, hostname, diagGW)
	var enfy string
	r.gw, enfy = diagGateway(t, gwNS, swan.Retransmit{Tries: 2, Timeout: time.Second, Base: 1.5}, nil,
		func(s *swan.Settings) { s.HalfOpenTimeout = halfOpen })
	r.cl = charontest.Start(t, r.clNS, charontest.Options{Name: "cl", Userspace: true, Client: true})
	r.clVICI = vici.NewClient(r.cl.VICISocket())
	t.Cleanup(func() { r.clVICI.Close() })

	cfg, c := startAPI(t)
	r.c = c
	dpd := func(gw *v1alpha1.VPNGateway) { gw.Spec.IKE.DPD.Delay = &metav1.Duration{Duration: time.Second} }
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		gen.TLSSecret(namespace, certSecret, server.CertPEM, server.KeyPEM, r.pki.CertPEM),
		gen.Gateway(namespace, gatewayName, gen.WithAddresses(diagGW), gen.Userspace, dpd),
		gen.Pool(namespace, poolName, diagPool, gen.SplitTunnel(lanNet), gen.Allowing(lanNet)),
	}
	for _, o := range append(objs, users...) {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("Creating %T %s: %v", o, o.GetName(), err)
		}
	}
	r.ag = startAgent(t, cfg, agentConfig{pod: "vpn-gateway-0", gw: r.gw, log: testr.New(t), errorNotify: enfy})
	r.ag.waitReady(t, 30*time.Second)
	return r
}

// diagGateway starts a gateway charon with its error-notify socket and
// returns it with the socket's path; a non-zero retransmit shortens how
// long it waits for a silent peer; nil levels are charontest's; more
// adjust the settings further.
func diagGateway(t testing.TB, ns *netns.NS, retransmit swan.Retransmit, levels map[string]int, more ...func(*swan.Settings)) (*charontest.Charon, string) {
	t.Helper()
	var enfy string
	gw := charontest.Start(t, ns, charontest.Options{Name: "gw", Userspace: true, LogLevels: levels, Settings: func(s *swan.Settings) {
		enfy = filepath.Join(filepath.Dir(strings.TrimPrefix(s.VICISocket, "unix://")), "charon.enfy")
		s.ErrorNotifySocket = "unix://" + enfy
		if retransmit.Tries > 0 {
			s.Retransmit = retransmit
		}
		for _, m := range more {
			m(s)
		}
	}})
	return gw, enfy
}

// waitServed waits until the agent's RADIUS server holds the users'
// passwords: an agent is ready once charon serves, and on a loaded machine
// the manager may derive a user's password hash after that.
func waitServed(t testing.TB, ag *runningAgent, users ...string) {
	t.Helper()
	for _, u := range users {
		waitFor(t, 30*time.Second, "the agent serving "+u, func() (bool, string) {
			return ag.Serves(u + "@example.com"), "no password hash"
		})
	}
}

// waitConn waits until the gateway's charon holds a connection whose name
// contains each part: a Tunnel's comes once the manager has derived its
// pre-shared key, which on a loaded machine is after the agent is ready.
func waitConn(t testing.TB, gw *charontest.Charon, parts ...string) {
	t.Helper()
	s := vici.NewClient(gw.VICISocket())
	defer s.Close()
	for _, part := range parts {
		waitFor(t, 30*time.Second, "charon holding the connection of "+part, func() (bool, string) {
			names, err := connNames(context.Background(), s)
			if err != nil {
				return false, err.Error()
			}
			return slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, part) }), fmt.Sprintf("connections %v", names)
		})
	}
}

// eapClient is a client of the rig's gateway; mod adjusts it.
func (r *diagRig) eapClient(conn, identity, password string, mod func(*charontest.EAPClient)) charontest.EAPClient {
	ec := charontest.EAPClient{Conn: conn, Gateway: diagGW, RemoteID: hostname, Identity: identity, Password: password, RemoteTS: lanNet}
	if mod != nil {
		mod(&ec)
	}
	return ec
}

// load replaces the client's configuration with these clients, trusting
// the gateway's CA (and the x509ca files given).
func (r *diagRig) load(t *testing.T, files map[string][]byte, clients ...charontest.EAPClient) {
	t.Helper()
	all := map[string][]byte{"x509ca/ca.pem": r.pki.CertPEM}
	for k, v := range files {
		all[k] = v
	}
	if out, err := r.cl.LoadAll(charontest.ClientConf(clients...), all); err != nil {
		t.Fatalf("Loading the client: %v\n%s", err, out)
	}
}

func (r *diagRig) connect(t *testing.T, conn string) {
	t.Helper()
	if _, err := initiate(context.Background(), r.clVICI, conn); err != nil {
		t.Fatalf("Client %s could not connect: %v", conn, err)
	}
}

func (r *diagRig) refused(t *testing.T, conn string) {
	t.Helper()
	if _, err := initiate(context.Background(), r.clVICI, conn); err == nil {
		t.Fatalf("Client %s connected", conn)
	}
}

func (r *diagRig) end(conns ...string) {
	for _, conn := range conns {
		_ = terminate(context.Background(), r.clVICI, conn)
	}
}

// wantEvent waits for the agent's Warning Event with this reason, checks
// the object it is on and that its message holds each value, and logs it
// (docs/diagnosis.md quotes these lines).
func (r *diagRig) wantEvent(t *testing.T, reason, kind, name string, values ...string) corev1.Event {
	t.Helper()
	ev := waitEvent(t, r.c, reason, kind, name)
	checkEvent(t, ev, kind, name, values...)
	return ev
}

// waitEvent waits for the agent's Warning Event with this reason on the
// object kind/name; the error lists the Events there are.
func waitEvent(t *testing.T, c client.Client, reason, kind, name string) corev1.Event {
	t.Helper()
	var ev corev1.Event
	waitFor(t, 30*time.Second, "the "+reason+" Event on "+kind+"/"+name, func() (bool, string) {
		evs := warningEvents(t, c)
		for _, e := range evs {
			if e.Reason == reason && e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
				ev = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("Events: %v", evs)
	})
	return ev
}

// checkEvent checks the object an Event is on and that its message holds
// each value, and logs it.
func checkEvent(t *testing.T, ev corev1.Event, kind, name string, values ...string) {
	t.Helper()
	if ev.InvolvedObject.Kind != kind || ev.InvolvedObject.Name != name || ev.InvolvedObject.UID == "" {
		t.Errorf("%s Event on %s/%s (uid %q), want %s/%s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.InvolvedObject.UID, kind, name)
	}
	for _, v := range values {
		if !strings.Contains(ev.Message, v) {
			t.Errorf("%s Event message lacks %q: %s", ev.Reason, v, ev.Message)
		}
	}
	t.Logf("%s on %s/%s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
}

// userConnected waits for the VPNUser's Connected condition to have reason.
func (r *diagRig) userConnected(t *testing.T, name string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	waitFor(t, 15*time.Second, "Connected="+string(status)+" "+reason+" on VPNUser "+name, func() (bool, string) {
		u := getUser(t, r.c, name)
		cond := meta.FindStatusCondition(u.Status.Conditions, v1alpha1.ConditionConnected)
		return cond != nil && cond.Status == status && cond.Reason == reason, fmt.Sprintf("conditions: %+v", u.Status.Conditions)
	})
}

// agentConnections waits for the agent to report n connections in charon.
func (r *diagRig) agentConnections(t *testing.T, n int32) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("the agent reporting %d connections", n), func() (bool, string) {
		var g v1alpha1.VPNGateway
		if err := r.c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: gatewayName}, &g); err != nil {
			return false, err.Error()
		}
		for _, a := range g.Status.Agents {
			if a.Connections != nil && *a.Connections == n {
				return true, ""
			}
		}
		return false, "agents: " + agentsString(g.Status.Agents)
	})
}

func (r *diagRig) setDisabled(t *testing.T, disabled bool, names ...string) {
	t.Helper()
	for _, name := range names {
		u := getUser(t, r.c, name)
		patch := client.MergeFrom(u.DeepCopy())
		u.Spec.Disabled = disabled
		if err := r.c.Patch(context.Background(), &u, patch); err != nil {
			t.Fatalf("Patching VPNUser %s: %v", name, err)
		}
	}
}

// toPublicKey turns the rig's gateway into one whose clients authenticate
// with certificates of the rig's CA, and adds a certificate VPNUser.
func (r *diagRig) toPublicKey(t *testing.T, user, identity string) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		gen.Secret(namespace, "client-ca", map[string]string{"ca.crt": string(r.pki.CertPEM)}),
		&v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: user}, Spec: v1alpha1.VPNUserSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: gatewayName}, Identity: v1alpha1.Identity(identity),
			Certificate: &v1alpha1.UserCertificate{Issue: true},
		}},
	}
	for _, o := range objs {
		if err := r.c.Create(ctx, o); err != nil {
			t.Fatalf("Creating %s: %v", o.GetName(), err)
		}
	}
	var gw v1alpha1.VPNGateway
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthPublicKey,
		ClientCA: &v1alpha1.SecretKeyReference{Name: "client-ca", Key: "ca.crt"}}
	if err := r.c.Patch(ctx, &gw, patch); err != nil {
		t.Fatalf("Patching the gateway: %v", err)
	}
	waitFor(t, 20*time.Second, "the agent applying the public key gateway", func() (bool, string) {
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, &gw); err != nil {
			return false, err.Error()
		}
		// The gateway's generation is applied before the user's connection
		// may be: the user waits for its client CA in the credentials.
		// A public key gateway has no connection but its users'.
		for _, a := range gw.Status.Agents {
			if a.AppliedGeneration >= gw.Generation && a.LastError == "" && a.Connections != nil && *a.Connections >= 1 {
				return true, ""
			}
		}
		return false, "agents: " + agentsString(gw.Status.Agents)
	})
}

// certClientConf is a client authenticating with the certificate
// x509/<conn>.pem as identity.
func certClientConf(conn, identity string) string {
	return `connections {
  ` + conn + ` {
    version = 2
    remote_addrs = ` + diagGW + `
    vips = 0.0.0.0
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = pubkey
      certs = ` + conn + `.pem
      id = ` + identity + `
    }
    remote {
      auth = pubkey
      id = ` + hostname + `
    }
    children {
      ` + conn + ` {
        remote_ts = ` + lanNet + `
        esp_proposals = aes256gcm16
      }
    }
  }
}
`
}

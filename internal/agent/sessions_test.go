package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/vici"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestUserSessions(t *testing.T) {
	tunnels := map[string]tunnelInfo{"tunnel-hq": {name: "hq"}}
	gcm := vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 256, PRF: "PRF_HMAC_SHA2_256", DHGroup: "CURVE_25519"}
	sas := []vici.IKESA{
		{Name: "mobile-staff", UniqueID: 1, State: "ESTABLISHED", RemoteHost: "203.0.113.9", RemotePort: 4500,
			RemoteID: "192.168.1.20", RemoteEAPID: "jimp@example.com", RemoteVIPs: []string{"10.3.200.1"}, Established: 90 * time.Second, Proposal: gcm,
			Children: []vici.ChildSA{
				{Name: "staff", State: "INSTALLED", Proposal: vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 256}, BytesIn: 10, BytesOut: 20, PacketsIn: 1, PacketsOut: 2},
				{Name: "staff", State: "REKEYED", BytesIn: 5, BytesOut: 5, PacketsIn: 1, PacketsOut: 1},
			}},
		// The rekeyed predecessor's successor from the same endpoint: only the newest counts.
		{Name: "mobile-staff", UniqueID: 3, State: "ESTABLISHED", RemoteHost: "198.51.100.7", RemotePort: 4500,
			RemoteEAPID: "jimp@example.com", Established: time.Second, Children: []vici.ChildSA{{Name: "staff", State: "INSTALLED"}}},
		{Name: "mobile-staff", UniqueID: 4, State: "ESTABLISHED", RemoteHost: "198.51.100.7", RemotePort: 4500,
			RemoteEAPID: "jimp@example.com", Established: 0, Children: []vici.ChildSA{{Name: "staff", State: "REKEYING"}}},
		// Its CHILD_SA failed (a traffic selector or ESP mismatch): no session, no lease.
		{Name: "mobile-staff", UniqueID: 7, State: "ESTABLISHED", RemoteHost: "192.0.2.60", RemotePort: 4500,
			RemoteEAPID: "mallory@example.com", RemoteVIPs: []string{"10.3.200.9"}},
		// Not yet established, and a tunnel: neither is a user session.
		{Name: "mobile-staff", UniqueID: 5, State: "CONNECTING", RemoteHost: "192.0.2.50", RemotePort: 500, RemoteEAPID: "eve@example.com"},
		{Name: "tunnel-hq", UniqueID: 6, State: "ESTABLISHED", RemoteHost: "192.0.2.80", RemotePort: 500, RemoteID: "hq"},
	}
	clock := sessionClock{}
	got := userSessions(sas, "gw-0", tunnels, clock, now)
	want := map[string][]v1alpha1.Session{
		"jimp@example.com": {
			{Pod: "gw-0", RemoteAddress: "198.51.100.7", RemotePort: 4500, EstablishedAt: metav1.NewTime(now)},
			{Pod: "gw-0", RemoteAddress: "203.0.113.9", RemotePort: 4500, IKEIdentity: "192.168.1.20", VirtualAddresses: []string{"10.3.200.1"},
				EstablishedAt: metav1.NewTime(now.Add(-90 * time.Second)),
				IKEProposal:   "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", ESPProposal: "AES_GCM_16_256",
				TrafficCounters: v1alpha1.TrafficCounters{BytesIn: 15, BytesOut: 25, PacketsIn: 2, PacketsOut: 3}},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("userSessions (-want +got):\n%s", d)
	}
	// A poll a little later, where charon's age in seconds ticked over
	// unevenly, keeps every start time: nothing looks changed.
	sas[0].Established += 3 * time.Second
	later := userSessions(sas, "gw-0", tunnels, clock, now.Add(2500*time.Millisecond))
	if sessionShape(later["jimp@example.com"]) != sessionShape(got["jimp@example.com"]) {
		t.Errorf("Shape changed between polls:\n%s\n%s", sessionShape(got["jimp@example.com"]), sessionShape(later["jimp@example.com"]))
	}
	clock.prune(sas[:1])
	if len(clock) != 1 {
		t.Errorf("Clock kept %d IKE_SAs after pruning to one", len(clock))
	}
}

func TestTunnelStatus(t *testing.T) {
	sas := []vici.IKESA{
		{Name: "tunnel-hq", UniqueID: 2, State: "CONNECTING", RemoteHost: "192.0.2.80"},
		{Name: "tunnel-hq", UniqueID: 3, State: "ESTABLISHED", RemoteHost: "192.0.2.80", Established: time.Minute,
			Proposal: vici.Proposal{Encr: "AES_CBC", EncrKeySize: 256, Integ: "HMAC_SHA2_256_128", PRF: "PRF_HMAC_SHA2_256", DHGroup: "MODP_2048"},
			Children: []vici.ChildSA{
				{Name: "lan", State: "INSTALLED", Proposal: vici.Proposal{Encr: "AES_GCM_16", EncrKeySize: 128}, BytesIn: 7, PacketsIn: 1,
					InstallTime: 90 * time.Second, LocalTS: []string{"10.3.0.0/24"}, RemoteTS: []string{"10.9.0.0/24"}},
			}},
		{Name: "mobile-staff", UniqueID: 4, State: "ESTABLISHED"},
	}
	got := tunnelStatus(sas, "tunnel-hq", []string{"lan", "dmz"}, sessionClock{}, now)
	at := metav1.NewTime(now.Add(-time.Minute))
	want := v1alpha1.TunnelStatus{
		Phase1: &v1alpha1.Phase1Status{State: "ESTABLISHED", EstablishedAt: &at, RemoteAddress: "192.0.2.80",
			IKEProposal: "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"},
		Children: []v1alpha1.TunnelChildStatus{
			{Name: "lan", State: "INSTALLED", ESPProposal: "AES_GCM_16_128", LocalTS: []string{"10.3.0.0/24"}, RemoteTS: []string{"10.9.0.0/24"},
				InstalledAt: ptr(metav1.NewTime(now.Add(-90 * time.Second))), TrafficCounters: v1alpha1.TrafficCounters{BytesIn: 7, PacketsIn: 1}},
			{Name: "dmz", State: "Down"},
		},
		ChildrenUp: "1/2",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tunnelStatus (-want +got):\n%s", d)
	}
	down := tunnelStatus(nil, "tunnel-hq", []string{"lan"}, sessionClock{}, now)
	if down.Phase1.State != "Down" || down.ChildrenUp != "0/1" || down.Children[0].State != "Down" {
		t.Errorf("Status without SAs = %+v", down)
	}
}

func TestRevoked(t *testing.T) {
	sas := []vici.IKESA{
		{Name: "mobile-staff", UniqueID: 1, State: "ESTABLISHED", RemoteID: "203.0.113.9", RemoteEAPID: "alice@example.com"},
		{Name: "mobile-staff", UniqueID: 2, State: "ESTABLISHED", RemoteID: "203.0.113.9", RemoteEAPID: "bob@example.com"},
		// Mid-authentication: no proven identity yet, not ours to judge.
		{Name: "select-identity", UniqueID: 3, State: "CONNECTING", RemoteID: "203.0.113.7"},
		{Name: "tunnel-hq", UniqueID: 4, State: "ESTABLISHED", RemoteEAPID: "hq"},
		// Public key users: the certificate's identity is the IKE identity.
		{Name: "user-carol", UniqueID: 5, State: "ESTABLISHED", RemoteID: "carol@example.com"},
		{Name: "user-dave", UniqueID: 6, State: "REKEYING", RemoteID: "dave@example.com"},
		// An EAP identity equal to the IKE identity is not listed apart.
		{Name: "mobile-staff", UniqueID: 7, State: "ESTABLISHED", RemoteID: "erin@example.com"},
	}
	got := revoked(sas, map[string]bool{"alice@example.com": true, "carol@example.com": true}, map[string]tunnelInfo{"tunnel-hq": {}})
	var ids []uint32
	for _, sa := range got {
		ids = append(ids, sa.UniqueID)
	}
	if !slices.Equal(ids, []uint32{2, 6, 7}) {
		t.Errorf("revoked IKE_SAs %v, want 2 (bob), 6 (dave) and 7 (erin)", ids)
	}
}

func TestWrittenDue(t *testing.T) {
	w := written{shape: "a", counters: "1", at: now}
	for _, tc := range []struct {
		name            string
		shape, counters string
		at              time.Time
		want            bool
	}{
		{"unchanged", "a", "1", now.Add(time.Hour), false},
		{"new session", "b", "1", now, true},
		{"counters soon after", "a", "2", now.Add(time.Second), false},
		{"counters after the interval", "a", "2", now.Add(30 * time.Second), true},
	} {
		if got := w.due(tc.shape, tc.counters, tc.at, 30*time.Second); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOnlySpecAndLabelChangesTrigger(t *testing.T) {
	user := func(rv string, gen int64, labels map[string]string) *v1alpha1.VPNUser {
		return &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv, Generation: gen, Labels: labels}}
	}
	secret := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
	}
	gw := func(rv, certSecret string, sessions int32) *v1alpha1.VPNGateway {
		return &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv, Generation: 1},
			Status: v1alpha1.VPNGatewayStatus{CertificateSecretName: certSecret, Sessions: sessions}}
	}
	for _, tc := range []struct {
		name     string
		old, new any
		want     bool
	}{
		{"resync", user("1", 1, nil), user("1", 1, nil), false},
		{"status write", user("1", 1, nil), user("2", 1, nil), false},
		{"spec change", user("1", 1, nil), user("2", 2, nil), true},
		{"label change", user("1", 1, map[string]string{"team": "a"}), user("2", 1, map[string]string{"team": "b"}), true},
		{"secret data", secret("1"), secret("2"), true},
		{"gateway's certificate Secret named", gw("1", "", 0), gw("2", "vpn-tls", 0), true},
		{"gateway status written by agents", gw("1", "vpn-tls", 0), gw("2", "vpn-tls", 1), false},
	} {
		got := false
		onUpdate(tc.old, tc.new, func() { got = true })
		if got != tc.want {
			t.Errorf("%s: triggered = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTunnelEstablished(t *testing.T) {
	up := v1alpha1.TunnelStatus{Phase1: &v1alpha1.Phase1Status{State: "ESTABLISHED"},
		Children: []v1alpha1.TunnelChildStatus{{Name: "lan", State: "INSTALLED"}, {Name: "dmz", State: "REKEYING"}}}
	if s, _, _ := tunnelEstablished(up); s != metav1.ConditionTrue {
		t.Errorf("IKE_SA up and every child installed: %s", s)
	}
	oneDown := up
	oneDown.Children = []v1alpha1.TunnelChildStatus{{Name: "lan", State: "INSTALLED"}, {Name: "dmz", State: "Down"}}
	if s, r, m := tunnelEstablished(oneDown); s != metav1.ConditionFalse || r != v1alpha1.ReasonConnecting || m != "1 of 2 children installed" {
		t.Errorf("A child down: %s %s %q", s, r, m)
	}
	if s, _, _ := tunnelEstablished(v1alpha1.TunnelStatus{Phase1: &v1alpha1.Phase1Status{State: "CONNECTING"}}); s != metav1.ConditionFalse {
		t.Errorf("IKE_SA connecting: %s", s)
	}
}

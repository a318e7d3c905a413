package swan_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

// buildTunnel builds a gateway with one tunnel and returns its connection,
// failing the test if Build refused it.
func buildTunnel(t *testing.T, gw v1alpha1.VPNGateway, mods ...func(*v1alpha1.Tunnel)) Connection {
	t.Helper()
	in := Resources{Gateway: gw, Now: testNow}
	in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch", mods...)}
	in.Secrets = map[string]map[string][]byte{"branch-psk": {"psk": []byte("a branch key long enough")}}
	res := Build(in)
	if p := problemsOf(res, KindTunnel, "branch"); len(p) > 0 {
		t.Fatalf("Build refused the tunnel: %+v", p)
	}
	for _, c := range res.Model.Connections {
		if c.Name == TunnelConnectionName("branch") {
			return c
		}
	}
	t.Fatalf("No connection for the tunnel in %+v", res.Model.Connections)
	return Connection{}
}

// TestTunnelComesBack checks the charon actions a tunnel child gets: a
// Start or Trap child is never left down by a dead or closing peer unless
// the Tunnel says so, and every tunnel retries forever and replaces
// duplicate IKE_SAs.
func TestTunnelComesBack(t *testing.T) {
	for _, tc := range []struct {
		start            v1alpha1.StartAction
		close            v1alpha1.CloseAction
		dpd              v1alpha1.DPDAction
		wantStart        string
		wantClose, wantD string
	}{
		{start: "Start", close: "None", dpd: "Clear", wantStart: "start", wantClose: "start", wantD: "restart"},
		{start: "Start", wantStart: "start", wantClose: "start", wantD: "restart"},
		{start: "Trap", close: "None", dpd: "Clear", wantStart: "trap", wantClose: "trap", wantD: "trap"},
		{start: "None", close: "None", dpd: "Clear", wantStart: "none", wantClose: "none", wantD: "clear"},
		// What the Tunnel spells out other than the defaults is kept.
		{start: "Start", close: "Trap", dpd: "Trap", wantStart: "start", wantClose: "trap", wantD: "trap"},
		{start: "Start", close: "None", dpd: "None", wantStart: "start", wantClose: "start", wantD: "none"},
		{start: "None", close: "Start", dpd: "Restart", wantStart: "none", wantClose: "start", wantD: "restart"},
		{start: "Trap", close: "Start", dpd: "Restart", wantStart: "trap", wantClose: "start", wantD: "restart"},
	} {
		name := string(tc.start) + "/" + string(tc.close) + "/" + string(tc.dpd)
		t.Run(name, func(t *testing.T) {
			c := buildTunnel(t, newGateway(), func(tn *v1alpha1.Tunnel) {
				tn.Spec.Children[0].StartAction = tc.start
				tn.Spec.Children[0].CloseAction = tc.close
				tn.Spec.IKE.DPD.Action = tc.dpd
			})
			if c.KeyingTries != KeyingTriesForever || c.Unique != "replace" {
				t.Errorf("keyingtries %d, unique %q; want %d (forever) and replace", c.KeyingTries, c.Unique, KeyingTriesForever)
			}
			ch := c.Children[0]
			if ch.StartAction != tc.wantStart || ch.CloseAction != tc.wantClose || ch.DPDAction != tc.wantD {
				t.Errorf("start_action %s, close_action %s, dpd_action %s; want %s, %s, %s",
					ch.StartAction, ch.CloseAction, ch.DPDAction, tc.wantStart, tc.wantClose, tc.wantD)
			}
			conf := Render(Model{Connections: []Connection{c}}, RenderOptions{})
			for _, line := range []string{"keyingtries = 0", "unique = replace", "dpd_action = " + tc.wantD, "close_action = " + tc.wantClose} {
				if !strings.Contains(conf, line) {
					t.Errorf("Rendered tunnel lacks %q:\n%s", line, conf)
				}
			}
		})
	}
}

// TestTunnelLocalAddrs checks that a tunnel sends from the gateway's
// addresses, or the one its localAddress picks, and that a localAddress
// the gateway has not got refuses the tunnel with both named.
func TestTunnelLocalAddrs(t *testing.T) {
	two := newGateway(func(gw *v1alpha1.VPNGateway) {
		gw.Spec.Addresses = []v1alpha1.IPAddress{"198.51.100.10", "2001:db8::10"}
	})
	if got := buildTunnel(t, two).LocalAddrs; !slices.Equal(got, []string{"198.51.100.10", "2001:db8::10"}) {
		t.Errorf("Default local_addrs %v, want the gateway's two addresses", got)
	}
	// The address is compared as an address, not as the text typed.
	got := buildTunnel(t, two, func(tn *v1alpha1.Tunnel) { tn.Spec.LocalAddress = "2001:DB8:0::10" }).LocalAddrs
	if !slices.Equal(got, []string{"2001:db8::10"}) {
		t.Errorf("local_addrs with localAddress %v, want [2001:db8::10]", got)
	}
	none := newGateway(func(gw *v1alpha1.VPNGateway) { gw.Spec.Addresses = nil })
	if got := buildTunnel(t, none).LocalAddrs; len(got) != 0 {
		t.Errorf("local_addrs of a gateway without addresses %v, want none (%%any)", got)
	}

	in := Resources{Gateway: two, Now: testNow}
	in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch", func(tn *v1alpha1.Tunnel) { tn.Spec.LocalAddress = "198.51.100.99" })}
	in.Secrets = map[string]map[string][]byte{"branch-psk": {"psk": []byte("a branch key long enough")}}
	res := Build(in)
	probs := problemsOf(res, KindTunnel, "branch")
	if len(probs) != 1 || probs[0].Reason != v1alpha1.ReasonInvalidSpec ||
		!strings.Contains(probs[0].Message, "198.51.100.99") || !strings.Contains(probs[0].Message, "198.51.100.10") {
		t.Fatalf("Problems for a foreign localAddress: %+v, want one InvalidSpec naming it and the gateway's addresses", probs)
	}
	if len(res.Tunnels) != 0 || len(res.Model.Connections) != 0 {
		t.Errorf("A refused tunnel left %d accepted tunnels and %d connections", len(res.Tunnels), len(res.Model.Connections))
	}
}

// TestTunnelIKEv1WithoutAEAD checks that an IKEv1 tunnel offers no AEAD
// IKE proposal, which IKEv1 cannot negotiate, and is refused when nothing
// else is left.
func TestTunnelIKEv1WithoutAEAD(t *testing.T) {
	c := buildTunnel(t, newGateway(), func(tn *v1alpha1.Tunnel) {
		tn.Spec.IKEVersion = 1
		tn.Spec.IKE.Preset = v1alpha1.PresetCompatible
	})
	if len(c.Proposals) == 0 {
		t.Fatal("No IKE proposals for an IKEv1 tunnel with the Compatible preset")
	}
	for _, p := range c.Proposals {
		if strings.Contains(p, "gcm") || strings.Contains(p, "chacha20poly1305") {
			t.Errorf("IKEv1 tunnel offers the AEAD proposal %s", p)
		}
	}
	// IKEv2 keeps them.
	if c := buildTunnel(t, newGateway(), func(tn *v1alpha1.Tunnel) { tn.Spec.IKE.Preset = v1alpha1.PresetCompatible }); !strings.Contains(c.Proposals[0], "aes256gcm16") {
		t.Errorf("IKEv2 tunnel lost its AEAD proposal: %v", c.Proposals)
	}

	in := Resources{Gateway: newGateway(), Now: testNow}
	// Proposals with AEAD ciphers only leave IKEv1 nothing to offer.
	in.Tunnels = []v1alpha1.Tunnel{newTunnel("branch", func(tn *v1alpha1.Tunnel) {
		tn.Spec.IKEVersion = 1
		tn.Spec.IKE.Proposals = []v1alpha1.IKEProposal{{Encryption: []v1alpha1.EncryptionAlgorithm{"AES256GCM16"}, PRF: []v1alpha1.PRFAlgorithm{"PRFSHA256"}, DHGroups: []v1alpha1.DHGroup{"ECP256"}}}
	})}
	in.Secrets = map[string]map[string][]byte{"branch-psk": {"psk": []byte("a branch key long enough")}}
	res := Build(in)
	probs := problemsOf(res, KindTunnel, "branch")
	if len(probs) != 1 || probs[0].Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(probs[0].Message, "Compatible") {
		t.Errorf("Problems for IKEv1 with AEAD-only proposals: %+v, want one InvalidSpec pointing at Compatible", probs)
	}
}

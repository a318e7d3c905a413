package swan_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/api/v1alpha1"
	. "github.com/ikegate/ikegate/internal/swan"
)

// longName is a 253-character object name, the most Kubernetes allows, with
// dots; names made by it differ only in their last characters, beyond what
// a shortened model name keeps.
func longName(tag string) string {
	base := strings.Repeat("long.", 51)
	return base[:253-len(tag)] + tag
}

// Every name the model takes from a maximal object name fits charon's
// limits, no two collide, and charon loads the whole model.
func TestMaximalNamesFit(t *testing.T) {
	pki := newTestPKI(t)
	pinned := longName("pin")
	static := longName("sta")
	in := Resources{
		Gateway: newGateway(),
		Pools: []v1alpha1.MobilePool{
			newPool(longName("all"), "10.3.200.0/24"),
			newPool(longName("ops"), "10.3.201.0/24", selecting("ops")),
		},
		Tunnels: []v1alpha1.Tunnel{
			newTunnel(longName("psk"), func(tn *v1alpha1.Tunnel) { tn.Spec.Auth.PSK.SecretRef.Name = "branch-psk" }),
			newTunnel(longName("crt"), func(tn *v1alpha1.Tunnel) {
				tn.Spec.Remote.Identity = "branch2.example.net"
				tn.Spec.Remote.Addresses = []string{"203.0.113.21"}
				tn.Spec.Children[0].RemoteNetworks = []v1alpha1.CIDR{"10.21.0.0/16"}
				tn.Spec.Auth = v1alpha1.TunnelAuth{Certificate: &v1alpha1.CertificateAuth{PeerCARef: v1alpha1.SecretKeyReference{Name: "branch-ca", Key: "ca.crt"}}}
			}),
		},
	}
	pki.apply(&in)
	in.Secrets["branch-psk"] = map[string][]byte{"psk": []byte("a long enough pre-shared key")}
	withUsers(&in,
		newUser(pinned, "pinned@example.com", inTeam("ops")),
		newUser(static, "static@example.com", inTeam("ops"), func(u *v1alpha1.VPNUser) { u.Spec.StaticAddress = "10.3.201.7" }),
		newUser(longName("usr"), "user@example.com"),
	)
	res := Build(in)
	m, problems := res.Model, res.Problems
	if len(problems) > 0 {
		t.Fatalf("Build problems: %v", problems)
	}
	consistent(t, m)

	var got []string
	for _, c := range m.Connections {
		got = append(got, c.Name)
	}
	for _, p := range m.Pools {
		got = append(got, p.Name)
	}
	for _, s := range m.Secrets {
		got = append(got, s.Name)
	}
	for _, a := range m.Authorities {
		got = append(got, a.Name)
	}
	for _, n := range got {
		if len(n) > MaxNameLen {
			t.Errorf("Model name %q has %d bytes, over %d", n, len(n), MaxNameLen)
		}
	}
	for _, c := range m.Certs {
		if len(CertFile(c.Name)) > 255 {
			t.Errorf("Certificate file %q is longer than a file name may be", CertFile(c.Name))
		}
	}
	for _, want := range []string{
		MobileConnectionName(longName("all")), StaticConnectionName(longName("ops"), "4"),
		TunnelConnectionName(longName("psk")), TunnelConnectionName(longName("crt")),
	} {
		if !slices.ContainsFunc(m.Connections, func(c Connection) bool { return c.Name == want }) {
			t.Errorf("No connection %s in %v", want, got)
		}
	}
	for _, u := range res.Users {
		if len(u.Group) > 43 {
			t.Errorf("User %s's Class %q has %d bytes; charon takes no group of 44 or more", u.Name, u.Group, len(u.Group))
		}
	}
	if n := len(m.Secrets); n != 1 || len(res.Users) != 3 {
		t.Errorf("Model has %d secrets and %d users, want the PSK tunnel's and 3", n, len(res.Users))
	}

	host := startCharonHost(t)
	host.accepts(t, m)
}

package swan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func radiusGateway(servers ...v1alpha1.RADIUSServer) *v1alpha1.VPNGateway {
	return &v1alpha1.VPNGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "vpn", Name: "vpn"},
		Spec: v1alpha1.VPNGatewaySpec{ClientAuth: v1alpha1.ClientAuth{
			Method: v1alpha1.ClientAuthEAPRADIUS,
			RADIUS: &v1alpha1.RADIUSSettings{Servers: servers, Accounting: true, NASIdentifier: "vpn.example.com"},
		}},
	}
}

func radiusServer(name, addr, secret, key string) v1alpha1.RADIUSServer {
	return v1alpha1.RADIUSServer{Name: name, Address: addr, SecretRef: v1alpha1.SecretKeyReference{Name: secret, Key: key}}
}

func TestRADIUSServers(t *testing.T) {
	secrets := map[string]map[string][]byte{
		"radius": {"secret": []byte("shared"), "empty": {}, "nul": []byte("a\x00b")},
	}
	primary := radiusServer("primary", "10.0.0.10", "radius", "secret")
	primary.AuthPort, primary.AccountingPort = 11812, 11813
	tests := []struct {
		name     string
		gw       *v1alpha1.VPNGateway
		want     []RADIUSServer
		problems []string // reasons and messages
	}{
		{name: "not a RADIUS gateway", gw: &v1alpha1.VPNGateway{Spec: v1alpha1.VPNGatewaySpec{ClientAuth: v1alpha1.ClientAuth{
			Method: v1alpha1.ClientAuthEAPMSCHAPv2,
			RADIUS: &v1alpha1.RADIUSSettings{Servers: []v1alpha1.RADIUSServer{primary}},
		}}}},
		{
			name: "ports given and defaulted",
			gw:   radiusGateway(primary, radiusServer("backup", "radius.example.com", "radius", "secret")),
			want: []RADIUSServer{
				{Name: "primary", Address: "10.0.0.10", AuthPort: 11812, AcctPort: 11813, Secret: []byte("shared"), NASIdentifier: "vpn.example.com"},
				{Name: "backup", Address: "radius.example.com", AuthPort: 1812, AcctPort: 1813, Secret: []byte("shared"), NASIdentifier: "vpn.example.com"},
			},
		},
		{
			name: "unusable secrets leave their servers out",
			gw: radiusGateway(primary,
				radiusServer("gone", "10.0.0.11", "missing", "secret"),
				radiusServer("nokey", "10.0.0.12", "radius", "other"),
				radiusServer("empty", "10.0.0.13", "radius", "empty"),
				radiusServer("nul", "10.0.0.14", "radius", "nul"),
				radiusServer("Bad.Name", "10.0.0.15", "radius", "secret")),
			want: []RADIUSServer{
				{Name: "primary", Address: "10.0.0.10", AuthPort: 11812, AcctPort: 11813, Secret: []byte("shared"), NASIdentifier: "vpn.example.com"},
			},
			problems: []string{
				"SecretNotFound: clientAuth.radius.servers[gone].secretRef: Secret missing not found",
				`SecretKeyNotFound: clientAuth.radius.servers[nokey].secretRef: Secret radius has no key "other"`,
				`SecretInvalid: clientAuth.radius.servers[empty].secretRef: key "empty" of Secret radius is empty`,
				`SecretInvalid: clientAuth.radius.servers[nul].secretRef: key "nul" of Secret radius contains a NUL byte`,
				`InvalidSpec: clientAuth.radius.servers: name "Bad.Name" is not a lower-case DNS label`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := RADIUSServers(tc.gw, secrets)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Servers (-want +got):\n%s", diff)
			}
			var msgs []string
			for _, p := range problems {
				if p.Kind != KindVPNGateway || p.Name != tc.gw.Name {
					t.Errorf("Problem on %s %s, want the gateway", p.Kind, p.Name)
				}
				if strings.Contains(p.Message, "shared") {
					t.Errorf("Problem message reveals the secret: %s", p.Message)
				}
				msgs = append(msgs, p.Reason+": "+p.Message)
			}
			if diff := cmp.Diff(tc.problems, msgs); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderRADIUSServers(t *testing.T) {
	tests := []struct {
		name    string
		servers []RADIUSServer
	}{
		{name: "none"},
		{name: "two servers", servers: []RADIUSServer{
			{Name: "primary", Address: "10.0.0.10", AuthPort: 1812, AcctPort: 1813, Secret: []byte("plain"), NASIdentifier: "vpn.example.com"},
			{Name: "backup", Address: "radius.example.com", AuthPort: 11812, AcctPort: 11813, Secret: []byte("plain"), Sockets: 8},
		}},
		{name: "syntax in values", servers: []RADIUSServer{
			// Each of these would end the value, the line or the section if written bare.
			{Name: "odd", Address: "10.0.0.10 } evil {", AuthPort: 1812, AcctPort: 1813,
				Secret: []byte("a\"b\\c}d#e f\tg\nh\ri"), NASIdentifier: "nas # } \""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RenderRADIUSServers(tc.servers)
			if again := RenderRADIUSServers(tc.servers); again != got {
				t.Fatalf("Rendering twice differs")
			}
			settingsGolden(t, got)
		})
	}
}

func TestConfString(t *testing.T) {
	for in, want := range map[string]string{
		"":             `""`,
		"abc":          `"abc"`,
		`a"b`:          `"a\"b"`,
		`a\b`:          `"a\\b"`,
		"a\nb\rc\td":   `"a\nb\rc\td"`,
		"} # { = , . ": `"} # { = , . "`,
	} {
		if got := confString(in); got != want {
			t.Errorf("confString(%q) = %s, want %s", in, got, want)
		}
	}
}

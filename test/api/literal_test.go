package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
)

// gapCases are manifests that once got through, or got an answer blaming the
// wrong rule or the server: each must be refused with a 422 whose message
// names the field and says why, whether created or server-side applied.
func gapCases() []invalidCase {
	child := obj("name", "lan", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24"))
	radius := func(names ...string) any {
		var servers []any
		for i, n := range names {
			servers = append(servers, obj("name", n, "address", fmt.Sprintf("10.3.0.%d", 5+i), "secretRef", obj("name", "radius", "key", "secret")))
		}
		return obj("method", "EAPRADIUS", "radius", obj("servers", servers))
	}
	return []invalidCase{
		// A VPNUser identity is the owner of the user's secret in charon: a pattern lends the password to others.
		{name: "user wildcard identity", base: userYAML, mutate: fns(set("spec.identity", "*@example.com")), want: `spec.identity: Invalid value: "*@example.com": identity must be literal: charon treats '*' as a wildcard matching other users' identities`},
		{name: "user wildcard DN", base: userYAML, mutate: fns(set("spec.identity", "CN=*, O=Example")), want: "charon treats '*' as a wildcard"},
		{name: "user any identity", base: userYAML, mutate: fns(set("spec.identity", "%any")), want: `spec.identity: Invalid value: "%any": identity must be literal: charon treats %any, %any6, 0.0.0.0 and :: as any identity`},
		{name: "user any6 identity", base: userYAML, mutate: fns(set("spec.identity", "%any6")), want: "as any identity"},
		{name: "user unspecified address", base: userYAML, mutate: fns(set("spec.identity", "0.0.0.0")), want: "as any identity"},
		{name: "user unspecified IPv6", base: userYAML, mutate: fns(set("spec.identity", "::")), want: "as any identity"},
		{name: "user subnet identity", base: userYAML, mutate: fns(set("spec.identity", "10.0.0.0/8")), want: "charon treats an address followed by / or - (10.0.0.0/8, 10.0.0.1-10.0.0.9) as a range matching every address identity in it"},
		{name: "user range identity", base: userYAML, mutate: fns(set("spec.identity", "10.0.0.1-10.0.0.9")), want: "as a range matching every address identity"},
		{name: "user IPv6 subnet identity", base: userYAML, mutate: fns(set("spec.identity", "2001:db8::/32")), want: "as a range matching every address identity"},
		{name: "user ipv4net identity", base: userYAML, mutate: fns(set("spec.identity", "IPv4Net:#0a000000ff000000")), want: "charon treats ipv4net:, ipv6net:, ipv4range: and ipv6range: as address ranges, and {N}: as a raw identity type that can be any identity"},
		{name: "user numeric type identity", base: userYAML, mutate: fns(set("spec.identity", "{0}:x")), want: "{N}: as a raw identity type"},
		{name: "user regex identity", base: userYAML, mutate: fns(set("spec.identity", "email:^[a-z]+@example[.]com$")), want: "strongSwan 6.0.2 and later treat a prefixed ^...$ as a regular expression"},

		// A pool's addresses inside its own local networks.
		{name: "pool inside its local network", base: poolYAML, mutate: fns(set("spec.localNetworks", list("10.3.0.0/16"))), want: "spec.addresses: Invalid value: addresses must not overlap localNetworks: a client's own address would also be a destination behind the gateway"},
		{name: "pool covering its local network", base: poolYAML, mutate: fns(set("spec.localNetworks", list("10.4.0.0/24", "10.3.200.128/25"))), want: "addresses must not overlap localNetworks"},
		{name: "pool IPv6 inside its local network", base: poolYAML, mutate: fns(set("spec.addresses", obj("ipv6", "fd00:3::/112")), set("spec.localNetworks", list("fd00::/16"))), want: "addresses must not overlap localNetworks"},

		// Text that is no duration, answered by the field's own rule.
		{name: "gateway lifetime not a duration", base: gatewayYAML, mutate: fns(set("spec.ike.lifetime", "soon")), want: `spec.ike.lifetime: Invalid value: "soon": ike.lifetime must be a duration such as 8h or 90m`},
		{name: "gateway rekey not a duration", base: gatewayYAML, mutate: fns(set("spec.ike.rekeyTime", "1 hour")), want: "ike.rekeyTime must be a duration such as 8h or 90m"},
		{name: "gateway reauth not a duration", base: gatewayYAML, mutate: fns(set("spec.ike.reauthTime", "never")), want: "ike.reauthTime must be a duration such as 8h or 90m"},
		{name: "gateway DPD delay not a duration", base: gatewayYAML, mutate: fns(set("spec.ike.dpd.delay", "30")), want: "dpd.delay must be a duration such as 8h or 90m"},
		{name: "gateway certificate duration in years", base: gatewayYAML, mutate: fns(set("spec.certificate.duration", "1y")), want: `spec.certificate.duration: Invalid value: "1y": certificate.duration must be a duration such as 8h or 90m`},
		{name: "gateway renewBefore not a duration", base: gatewayYAML, mutate: fns(set("spec.certificate.renewBefore", "2w")), want: "certificate.renewBefore must be a duration such as 8h or 90m"},
		{name: "pool ESP lifetime not a duration", base: poolYAML, mutate: fns(set("spec.esp.lifetime", "8 hours")), want: "esp.lifetime must be a duration such as 8h or 90m"},
		{name: "pool ESP rekey not a duration", base: poolYAML, mutate: fns(set("spec.esp.rekeyTime", "x")), want: `spec.esp.rekeyTime: Invalid value: "x": esp.rekeyTime must be a duration such as 8h or 90m`},
		{name: "tunnel lifetime not a duration", base: tunnelYAML, mutate: fns(set("spec.ike.lifetime", "h")), want: "ike.lifetime must be a duration such as 8h or 90m"},
		{name: "user certificate duration not a duration", base: userYAML, mutate: fns(set("spec.passwordSecretRef", "-"), set("spec.certificate", obj("issue", true, "duration", "1 year"))), want: "certificate.duration must be a duration such as 8h or 90m"},

		// A peer is an IP address or a DNS name.
		{name: "tunnel remote address out of range", base: tunnelYAML, mutate: fns(set("spec.remote.addresses", list("300.1.1.1"))), want: "spec.remote.addresses: Invalid value: remote.addresses must be IP addresses or DNS names such as 203.0.113.5, 2001:db8::5 or vpn.example.net"},
		{name: "tunnel remote name with empty label", base: tunnelYAML, mutate: fns(set("spec.remote.addresses", list("a..b"))), want: "remote.addresses must be IP addresses or DNS names"},
		{name: "tunnel remote name with bad characters", base: tunnelYAML, mutate: fns(set("spec.remote.addresses", list("vpn_1.example.net"))), want: "remote.addresses must be IP addresses or DNS names"},

		// Duplicate keys: refused by validation, not failed by the merge.
		{name: "tunnel duplicate child", base: tunnelYAML, mutate: fns(set("spec.children", list(child, child))), want: "spec.children: Invalid value: children must not repeat a name"},
		{name: "tunnel duplicate remote address", base: tunnelYAML, mutate: fns(set("spec.remote.addresses", list("203.0.113.5", "203.0.113.5"))), want: "remote.addresses must not repeat an address"},
		{name: "tunnel duplicate child network", base: tunnelYAML, mutate: fns(set("spec.children", list(obj("name", "lan", "localNetworks", list("10.3.0.0/24", "10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24"))))), want: "spec.children[0].localNetworks: Invalid value: children[].localNetworks must not repeat a network"},
		{name: "pool duplicate local network", base: poolYAML, mutate: fns(set("spec.localNetworks", list("10.3.0.0/24", "10.3.0.0/24"))), want: "spec.localNetworks: Invalid value: localNetworks must not repeat a network"},
		{name: "pool duplicate DNS server", base: poolYAML, mutate: fns(set("spec.dns", obj("servers", list("10.3.0.53", "10.3.0.53")))), want: "dns.servers must not repeat an address"},
		{name: "pool duplicate split domain", base: poolYAML, mutate: fns(set("spec.dns", obj("splitDomains", list("corp.example", "corp.example")))), want: "dns.splitDomains must not repeat a domain"},
		{name: "gateway duplicate hostname", base: gatewayYAML, mutate: fns(set("spec.hostnames", list("vpn.example.com", "vpn.example.com"))), want: "hostnames must not repeat a name"},
		{name: "gateway duplicate address", base: gatewayYAML, mutate: fns(set("spec.addresses", list("198.51.100.10", "198.51.100.10"))), want: "addresses must not repeat an address"},
		{name: "gateway duplicate RADIUS server", base: gatewayYAML, mutate: fns(set("spec.clientAuth", radius("r1", "r1"))), want: "spec.clientAuth.radius.servers: Invalid value: radius.servers must not repeat a name"},
	}
}

func TestGapsRefusedByCreateAndApply(t *testing.T) {
	_, c, _ := testenv.Start(t)
	ctx := context.Background()
	if err := c.Create(ctx, parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vpn}")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range gapCases() {
		t.Run(tc.name, func(t *testing.T) {
			u := parse(t, tc.base)
			for _, m := range tc.mutate {
				m(u)
			}
			checkRefused(t, c.Create(ctx, u.DeepCopy(), client.DryRunAll), tc.want)
			err := c.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner("gaps-test"), client.ForceOwnership, client.DryRunAll)
			if status := apierrors.APIStatus(nil); errors.As(err, &status) && status.Status().Code != http.StatusUnprocessableEntity {
				t.Fatalf("server-side apply answered %d, want 422: %v", status.Status().Code, err)
			}
			checkRefused(t, err, tc.want)
		})
	}
}

// TestLiteralsAndEdgesAccepted: values next to each new rule stay valid, so
// the refusals above cannot pass by refusing everything.
func TestLiteralsAndEdgesAccepted(t *testing.T) {
	_, c, _ := testenv.Start(t)
	ctx := context.Background()
	if err := c.Create(ctx, parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vpn}")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		base   string
		mutate []func(*unstructured.Unstructured)
	}{
		{"user plain name", userYAML, fns(set("spec.identity", "jimp"))},
		{"user upper-case e-mail", userYAML, fns(set("spec.identity", "Jim.P@Example.com"))},
		{"user address identity", userYAML, fns(set("spec.identity", "192.0.2.7"))},
		{"user IPv6 identity", userYAML, fns(set("spec.identity", "2001:db8::7"))},
		{"user hyphenated name", userYAML, fns(set("spec.identity", "jim-p.example.com"))},
		{"user name with slash", userYAML, fns(set("spec.identity", "dept/jimp"))},
		{"user DN", userYAML, fns(set("spec.identity", "CN=Jim P, O=Example, C=CH"))},
		{"user prefixed e-mail", userYAML, fns(set("spec.identity", "email:jimp@example.com"))},
		{"user percent inside", userYAML, fns(set("spec.identity", "100%jimp@example.com"))},
		{"pool next to its local network", poolYAML, fns(set("spec.localNetworks", list("10.3.201.0/24", "10.3.199.0/24")))},
		{"pool IPv6 next to an IPv4 local network", poolYAML, fns(set("spec.addresses", obj("ipv4", "10.3.200.0/24", "ipv6", "fd00:3::/112")), set("spec.localNetworks", list("10.3.0.0/24", "fd00:4::/64")))},
		{"gateway composite durations", gatewayYAML, fns(set("spec.ike.lifetime", "7h30m"), set("spec.ike.rekeyTime", "1.5h"), set("spec.ike.dpd.delay", "0"))},
		{"tunnel remote DNS names and IPv6", tunnelYAML, fns(set("spec.remote.addresses", list("vpn-b.example.net", "2001:db8::5", "Branch.Example.NET")))},
		{"tunnel children with distinct names", tunnelYAML, fns(set("spec.children", list(
			obj("name", "lan", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24")),
			obj("name", "dmz", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.6.0.0/24")))))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := parse(t, tc.base)
			for _, m := range tc.mutate {
				m(u)
			}
			if err := c.Create(ctx, u.DeepCopy(), client.DryRunAll); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("gaps-test"), client.ForceOwnership, client.DryRunAll); err != nil {
				t.Fatalf("server-side apply refused: %v", err)
			}
		})
	}
}

// Package api_test checks the ikegate.io/v1alpha1 CRDs against a real
// kube-apiserver: the examples apply, invalid objects are refused by the API
// server itself with a message naming the field, and defaults come back as documented.
package api_test

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

const ns = "vpn"

func TestExamplesApply(t *testing.T) {
	_, c, _ := testenv.Start(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := filepath.Glob(filepath.Join(root, "examples", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := readObjects(t, dir)
			if len(objs) == 0 {
				t.Fatalf("example %s holds no objects", dir)
			}
			for _, o := range objs {
				// Each example is applied into its own namespace so examples
				// with the same object names do not collide.
				o = o.DeepCopy()
				if o.GetKind() == "Namespace" {
					continue
				}
				o.SetNamespace(exampleNamespace(t, c, dir))
				if err := c.Create(context.Background(), o); err != nil {
					t.Errorf("%s %s/%s: %v", o.GetKind(), filepath.Base(dir), o.GetName(), err)
				}
			}
		})
	}
}

func exampleNamespace(t *testing.T, c client.Client, dir string) string {
	t.Helper()
	name := "ex-" + strings.ReplaceAll(filepath.Base(dir), "_", "-")
	nsObj := &unstructured.Unstructured{}
	nsObj.SetAPIVersion("v1")
	nsObj.SetKind("Namespace")
	nsObj.SetName(name)
	if err := c.Create(context.Background(), nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

func readObjects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return kube.DecodeFiles(t, files...)
}

func parse(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096).Decode(&m); err != nil {
		t.Fatalf("bad test YAML: %v\n%s", err, s)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetNamespace(ns)
	return u
}

const gatewayYAML = `
apiVersion: ikegate.io/v1alpha1
kind: VPNGateway
metadata: {name: vpn}
spec:
  hostnames: [vpn.example.com]
  addresses: [198.51.100.10]
`

const poolYAML = `
apiVersion: ikegate.io/v1alpha1
kind: MobilePool
metadata: {name: staff}
spec:
  gatewayRef: {name: vpn}
  addresses: {ipv4: 10.3.200.0/24}
  localNetworks: [10.3.0.0/24]
`

const userYAML = `
apiVersion: ikegate.io/v1alpha1
kind: VPNUser
metadata: {name: jimp}
spec:
  gatewayRef: {name: vpn}
  identity: jimp@example.com
  passwordSecretRef: {name: jimp, key: password}
`

const tunnelYAML = `
apiVersion: ikegate.io/v1alpha1
kind: Tunnel
metadata: {name: site-b}
spec:
  gatewayRef: {name: vpn}
  remote: {addresses: [203.0.113.5]}
  auth: {psk: {secretRef: {name: site-b, key: psk}}}
  children:
  - name: lan
    localNetworks: [10.3.0.0/24]
    remoteNetworks: [10.5.0.0/24]
`

// set writes value at a dotted path of obj; "-" as value deletes the field.
func set(path string, value any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		fields := strings.Split(path, ".")
		if s, ok := value.(string); ok && s == "-" {
			unstructured.RemoveNestedField(u.Object, fields...)
			return
		}
		if err := unstructured.SetNestedField(u.Object, value, fields...); err != nil {
			panic(err)
		}
	}
}

func list(v ...any) []any { return v }

func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

type invalidCase struct {
	name   string
	base   string
	mutate []func(*unstructured.Unstructured)
	// update, when set, is applied to a stored valid object (transition rules).
	update []func(*unstructured.Unstructured)
	want   string
}

func invalidCases() []invalidCase {
	return []invalidCase{
		// VPNGateway
		{name: "gateway without hostnames", base: gatewayYAML, mutate: fns(set("spec.hostnames", list())), want: "spec.hostnames"},
		{name: "gateway hostname not a DNS name", base: gatewayYAML, mutate: fns(set("spec.hostnames", list("VPN_example com"))), want: "must be a lower-case DNS name"},
		{name: "gateway address not an IP", base: gatewayYAML, mutate: fns(set("spec.addresses", list("198.51.100.300"))), want: "must be an IPv4 or IPv6 address"},
		{name: "gateway legacy preset without opt-in", base: gatewayYAML, mutate: fns(set("spec.ike.preset", "Legacy")), want: "ike.preset Legacy offers 3DES, MODP1024 and MODP1536"},
		{name: "gateway 3DES proposal without opt-in", base: gatewayYAML, mutate: fns(set("spec.ike.proposals", list(obj("encryption", list("3DES"), "integrity", list("SHA256"), "dhGroups", list("MODP2048"))))), want: "ike.proposals use 3DES, MODP1024 or MODP1536"},
		{name: "gateway DH group 2 without opt-in", base: gatewayYAML, mutate: fns(set("spec.ike.proposals", list(obj("encryption", list("AES256GCM16"), "dhGroups", list("MODP1024"))))), want: "ike.proposals use 3DES, MODP1024 or MODP1536"},
		// MUST NOT in RFC 8247/8221: refused even with the opt-in.
		{name: "gateway MD5 integrity with opt-in", base: gatewayYAML, mutate: fns(set("spec.allowInsecureAlgorithms", true), set("spec.ike.proposals", list(obj("encryption", list("AES256"), "integrity", list("MD5"), "dhGroups", list("ECP256"))))), want: "not even allowInsecureAlgorithms allows them"},
		{name: "gateway PRFMD5 with opt-in", base: gatewayYAML, mutate: fns(set("spec.allowInsecureAlgorithms", true), set("spec.ike.proposals", list(obj("encryption", list("AES256GCM16"), "prf", list("PRFMD5"), "dhGroups", list("ECP256"))))), want: "forbidden by RFC 8247 (MUST NOT)"},
		{name: "pool MD5 ESP with opt-in", base: poolYAML, mutate: fns(set("spec.allowInsecureAlgorithms", true), set("spec.esp.proposals", list(obj("encryption", list("AES256"), "integrity", list("MD5"))))), want: "MD5 is forbidden by RFC 8221 (MUST NOT); not even allowInsecureAlgorithms allows it"},
		{name: "pool PFS group 1 with opt-in", base: poolYAML, mutate: fns(set("spec.allowInsecureAlgorithms", true), set("spec.esp.pfsGroup", "MODP768")), want: "pfsGroup MODP768 (DH group 1) is forbidden"},
		{name: "gateway CBC proposal without integrity", base: gatewayYAML, mutate: fns(set("spec.ike.proposals", list(obj("encryption", list("AES256"), "dhGroups", list("ECP256"))))), want: "needs at least one integrity algorithm"},
		{name: "gateway unknown cipher", base: gatewayYAML, mutate: fns(set("spec.ike.proposals", list(obj("encryption", list("Blowfish"), "dhGroups", list("ECP256"))))), want: "Unsupported value: \"Blowfish\""},
		{name: "gateway lifetime too short", base: gatewayYAML, mutate: fns(set("spec.ike.lifetime", "1m")), want: "ike.lifetime must be between 10m and 168h"},
		{name: "gateway rekey not shorter than lifetime", base: gatewayYAML, mutate: fns(set("spec.ike.lifetime", "1h"), set("spec.ike.rekeyTime", "2h")), want: "ike.rekeyTime must be shorter than ike.lifetime"},
		{name: "gateway reauth longer than lifetime", base: gatewayYAML, mutate: fns(set("spec.ike.reauthTime", "9h")), want: "ike.reauthTime must be 0s (off) or shorter than ike.lifetime"},
		{name: "gateway IKEv1 for mobile clients", base: gatewayYAML, mutate: fns(set("spec.ike.version", int64(1))), want: "spec.ike.version"},
		{name: "gateway RSA key size", base: gatewayYAML, mutate: fns(set("spec.certificate.privateKey", obj("algorithm", "RSA", "size", int64(1024)))), want: "privateKey.size for RSA must be 2048, 3072 or 4096"},
		{name: "gateway ECDSA key size", base: gatewayYAML, mutate: fns(set("spec.certificate.privateKey", obj("algorithm", "ECDSA", "size", int64(255)))), want: "privateKey.size for ECDSA must be 256, 384 or 521"},
		{name: "gateway renewBefore after duration", base: gatewayYAML, mutate: fns(set("spec.certificate.duration", "24h"), set("spec.certificate.renewBefore", "48h")), want: "certificate.renewBefore must be shorter than certificate.duration"},
		{name: "gateway RADIUS without servers", base: gatewayYAML, mutate: fns(set("spec.clientAuth.method", "EAPRADIUS")), want: "clientAuth.radius is required when clientAuth.method is EAPRADIUS"},
		{name: "gateway EAP-TLS without client CA", base: gatewayYAML, mutate: fns(set("spec.clientAuth.method", "EAPTLS")), want: "clientAuth.clientCA is required"},
		{name: "gateway MSS clamp too large", base: gatewayYAML, mutate: fns(set("spec.firewall.mssClamp", int64(1500))), want: "firewall.mssClamp must be 0 (off) or between 536 and 1460"},
		{name: "gateway unknown data plane", base: gatewayYAML, mutate: fns(set("spec.dataplane", "DPDK")), want: "spec.dataplane"},
		{name: "gateway local identity with control characters", base: gatewayYAML, mutate: fns(set("spec.localIdentity", "vpn\x07.example.com")), want: "must not contain control characters"},
		{name: "gateway replicas zero", base: gatewayYAML, mutate: fns(set("spec.exposure.replicas", int64(0))), want: "spec.exposure.replicas"},
		{name: "gateway first hostname changed", base: gatewayYAML, update: fns(set("spec.hostnames", list("other.example.com"))), want: "hostnames[0] is immutable"},
		{name: "gateway CA changed", base: gatewayYAML, update: fns(set("spec.certificate.issuerRef", obj("name", "corp-ca"))), want: "certificate.issuerRef is immutable"},
		{name: "gateway exposure type changed", base: gatewayYAML, update: fns(set("spec.exposure.type", "LoadBalancer")), want: "exposure.type is immutable"},

		// MobilePool
		{name: "pool IPv6 network as ipv4", base: poolYAML, mutate: fns(set("spec.addresses.ipv4", "fd00::/112")), want: "addresses.ipv4 must be an IPv4 network"},
		{name: "pool IPv4 network as ipv6", base: poolYAML, mutate: fns(set("spec.addresses", obj("ipv6", "10.3.200.0/24"))), want: "addresses.ipv6 must be an IPv6 network"},
		{name: "pool not CIDR", base: poolYAML, mutate: fns(set("spec.addresses.ipv4", "10.3.200.0")), want: "must be a network in CIDR notation"},
		{name: "pool host bits set", base: poolYAML, mutate: fns(set("spec.addresses.ipv4", "10.3.200.1/24")), want: "must be written as its network address"},
		{name: "pool too small", base: poolYAML, mutate: fns(set("spec.addresses.ipv4", "10.3.200.0/31")), want: "addresses.ipv4 prefix length must be between /8 and /30"},
		{name: "pool IPv6 too large", base: poolYAML, mutate: fns(set("spec.addresses", obj("ipv6", "fd00::/48"))), want: "addresses.ipv6 prefix length must be between /64 and /126"},
		{name: "pool without addresses", base: poolYAML, mutate: fns(set("spec.addresses", obj())), want: "addresses needs ipv4, ipv6 or both"},
		{name: "pool both split and full tunnel", base: poolYAML, mutate: fns(set("spec.fullTunnel", true)), want: "set exactly one of localNetworks"},
		{name: "pool neither split nor full tunnel", base: poolYAML, mutate: fns(set("spec.localNetworks", "-")), want: "set exactly one of localNetworks"},
		{name: "pool bad local network", base: poolYAML, mutate: fns(set("spec.localNetworks", list("10.3.0.0/33"))), want: "must be a network in CIDR notation"},
		{name: "pool DNS server not an IP", base: poolYAML, mutate: fns(set("spec.dns", obj("servers", list("dns.example.com")))), want: "must be an IPv4 or IPv6 address"},
		{name: "pool bad split domain", base: poolYAML, mutate: fns(set("spec.dns", obj("splitDomains", list("exa mple.com")))), want: "must be a DNS domain"},
		{name: "pool IPv6 WINS", base: poolYAML, mutate: fns(set("spec.winsServers", list("fd00::1"))), want: "winsServers must be IPv4 addresses"},
		{name: "pool ESP lifetime too long", base: poolYAML, mutate: fns(set("spec.esp.lifetime", "48h")), want: "esp.lifetime must be between 5m and 24h"},
		{name: "pool ESP rekey after lifetime", base: poolYAML, mutate: fns(set("spec.esp.rekeyTime", "2h")), want: "esp.rekeyTime must be shorter than esp.lifetime"},
		{name: "pool PFS group 2 without opt-in", base: poolYAML, mutate: fns(set("spec.esp.pfsGroup", "MODP1024")), want: "esp.pfsGroup MODP1024 and MODP1536"},
		{name: "pool 3DES ESP without opt-in", base: poolYAML, mutate: fns(set("spec.esp.proposals", list(obj("encryption", list("3DES"), "integrity", list("SHA256"))))), want: "esp.proposals use 3DES"},
		{name: "pool ports with ICMP", base: poolYAML, mutate: fns(set("spec.firewall.allow", list(obj("to", "10.3.0.0/24", "protocol", "ICMP", "ports", list(obj("port", int64(22))))))), want: "ports are only allowed with protocol TCP or UDP"},
		{name: "pool port range reversed", base: poolYAML, mutate: fns(set("spec.firewall.allow", list(obj("to", "10.3.0.0/24", "protocol", "TCP", "ports", list(obj("port", int64(443), "endPort", int64(80))))))), want: "endPort must not be lower than port"},
		{name: "pool banner with escape", base: poolYAML, mutate: fns(set("spec.banner", "hello\x1b[31m")), want: "banner must not contain control characters"},
		{name: "pool moved to another gateway", base: poolYAML, update: fns(set("spec.gatewayRef.name", "other")), want: "gatewayRef is immutable"},
		{name: "pool addresses changed", base: poolYAML, update: fns(set("spec.addresses.ipv4", "10.3.201.0/24")), want: "addresses.ipv4 is immutable"},

		// VPNUser
		{name: "user password reference too long for a credentials key", base: userYAML, mutate: fns(set("spec.passwordSecretRef", obj("name", strings.Repeat("s", 200), "key", strings.Repeat("k", 46)))), want: "name and key together must be at most 245 characters"},
		{name: "user identity with newline", base: userYAML, mutate: fns(set("spec.identity", "jimp@example.com\nadmin")), want: "must not contain control characters"},
		{name: "user identity too long", base: userYAML, mutate: fns(set("spec.identity", strings.Repeat("a", 300))), want: "spec.identity"},
		{name: "user identity padded", base: userYAML, mutate: fns(set("spec.identity", " jimp@example.com")), want: "must not start or end with white space"},
		{name: "user without credentials", base: userYAML, mutate: fns(set("spec.passwordSecretRef", "-")), want: "set exactly one of passwordSecretRef"},
		{name: "user with both credentials", base: userYAML, mutate: fns(set("spec.certificate", obj("issue", true))), want: "set exactly one of passwordSecretRef"},
		{name: "user static address not an IP", base: userYAML, mutate: fns(set("spec.staticAddress", "10.3.200")), want: "must be an IPv4 or IPv6 address"},
		{name: "user identity changed", base: userYAML, update: fns(set("spec.identity", "other@example.com")), want: "identity is immutable"},

		// Tunnel
		{name: "tunnel without children", base: tunnelYAML, mutate: fns(set("spec.children", list())), want: "spec.children"},
		{name: "tunnel IKE version 3", base: tunnelYAML, mutate: fns(set("spec.ikeVersion", int64(3))), want: "spec.ikeVersion"},
		{name: "tunnel MOBIKE on IKEv1", base: tunnelYAML, mutate: fns(set("spec.ikeVersion", int64(1)), set("spec.ike.mobike", true)), want: "ike.mobike needs ikeVersion 2"},
		{name: "tunnel without auth", base: tunnelYAML, mutate: fns(set("spec.auth", obj())), want: "auth needs exactly one of psk or certificate"},
		{name: "tunnel legacy child without opt-in", base: tunnelYAML, mutate: fns(set("spec.children", list(obj("name", "lan", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24"), "esp", obj("preset", "Legacy"))))), want: "children[].esp uses what RFC 8221 and RFC 8247 advise against"},
		{name: "tunnel bad remote network", base: tunnelYAML, mutate: fns(set("spec.children", list(obj("name", "lan", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.1/24"))))), want: "must be written as its network address"},
		{name: "tunnel child name", base: tunnelYAML, mutate: fns(set("spec.children", list(obj("name", "LAN one", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24"))))), want: "spec.children[0].name"},
		{name: "tunnel unknown start action", base: tunnelYAML, mutate: fns(set("spec.children", list(obj("name", "lan", "localNetworks", list("10.3.0.0/24"), "remoteNetworks", list("10.5.0.0/24"), "startAction", "Always")))), want: "spec.children[0].startAction"},
		{name: "tunnel over 1024 network pairs", base: tunnelYAML, mutate: fns(set("spec.children", list(child("a", 32, 32, 0), child("b", 1, 1, 1)))), want: "children pair at most 1024 local with remote networks"},
		{name: "tunnel DH group 1 without opt-in", base: tunnelYAML, mutate: fns(set("spec.ike.proposals", list(obj("encryption", list("AES128GCM16"), "dhGroups", list("MODP768"))))), want: "MODP768 (DH group 1) are forbidden by RFC 8247"},
		{name: "tunnel DH group 1 with opt-in", base: tunnelYAML, mutate: fns(set("spec.allowInsecureAlgorithms", true), set("spec.ike.proposals", list(obj("encryption", list("AES128GCM16"), "dhGroups", list("MODP768"))))), want: "not even allowInsecureAlgorithms allows them"},
	}
}

// child is a tunnel child with local x remote distinct /24 networks; n
// keeps the networks of different children apart.
func child(name string, local, remote, n int) map[string]any {
	nets := func(first, count int) []any {
		var out []any
		for i := range count {
			out = append(out, "10."+strconv.Itoa(first)+"."+strconv.Itoa(i)+".0/24")
		}
		return out
	}
	return obj("name", name, "localNetworks", nets(2*n+1, local), "remoteNetworks", nets(2*n+100, remote))
}

func fns(f ...func(*unstructured.Unstructured)) []func(*unstructured.Unstructured) { return f }

func TestInvalidObjectsRefused(t *testing.T) {
	_, c, _ := testenv.Start(t)
	ctx := context.Background()
	if err := c.Create(ctx, parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vpn}")); err != nil {
		t.Fatal(err)
	}
	cases := invalidCases()
	if len(cases) < 30 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := parse(t, tc.base)
			// Transition rules need a stored object to compare with.
			if tc.update != nil {
				u.SetName(u.GetName() + "-" + strings.ToLower(strings.ReplaceAll(strings.Fields(tc.name)[0], "_", "")) + "-" + strconv.Itoa(i))
				if err := c.Create(ctx, u); err != nil {
					t.Fatalf("creating the valid object: %v", err)
				}
				for _, m := range tc.update {
					m(u)
				}
				err := c.Update(ctx, u)
				checkRefused(t, err, tc.want)
				return
			}
			for _, m := range tc.mutate {
				m(u)
			}
			err := c.Create(ctx, u, client.DryRunAll)
			checkRefused(t, err, tc.want)
		})
	}
}

func checkRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal mentioning %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal does not mention %q:\n%v", want, err)
	}
	t.Logf("refused: %v", err)
}

// maximalName is a name of 253 characters, the most Kubernetes allows.
var maximalName = strings.Repeat("long.", 51)[:252] + "x"

func TestValidObjectsAccepted(t *testing.T) {
	_, c, _ := testenv.Start(t)
	ctx := context.Background()
	if err := c.Create(ctx, parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vpn}")); err != nil {
		t.Fatal(err)
	}
	// Each of these sits at an edge of a rule and must still be accepted, so the
	// invalid table above cannot pass by refusing everything.
	cases := []struct {
		name   string
		base   string
		mutate []func(*unstructured.Unstructured)
	}{
		{"gateway legacy with opt-in", gatewayYAML, fns(set("spec.ike.preset", "Legacy"), set("spec.allowInsecureAlgorithms", true))},
		// SHA-1 is MUST- in RFC 8247 and RFC 8221: no opt-in needed.
		{"gateway SHA1 integrity without opt-in", gatewayYAML, fns(set("spec.ike.proposals", list(obj("encryption", list("AES256"), "integrity", list("SHA1"), "prf", list("PRFSHA1"), "dhGroups", list("ECP256")))))},
		{"pool SHA1 ESP without opt-in", poolYAML, fns(set("spec.esp.proposals", list(obj("encryption", list("AES256"), "integrity", list("SHA1")))))},
		{"pool PFS group 2 with opt-in", poolYAML, fns(set("spec.allowInsecureAlgorithms", true), set("spec.esp.pfsGroup", "MODP1024"))},
		{"gateway MSS clamp off", gatewayYAML, fns(set("spec.firewall.mssClamp", int64(0)))},
		{"gateway RADIUS", gatewayYAML, fns(set("spec.clientAuth", obj("method", "EAPRADIUS", "radius", obj("servers", list(obj("name", "r1", "address", "10.3.0.5", "secretRef", obj("name", "radius", "key", "secret")))))))},
		{"gateway Ed25519 key", gatewayYAML, fns(set("spec.certificate.privateKey", obj("algorithm", "Ed25519")))},
		{"gateway reauth off", gatewayYAML, fns(set("spec.ike.reauthTime", "0s"))},
		{"gateway IPv6 address", gatewayYAML, fns(set("spec.addresses", list("2001:db8::10")))},
		{"pool dual-stack full tunnel", poolYAML, fns(set("spec.localNetworks", "-"), set("spec.fullTunnel", true), set("spec.addresses", obj("ipv4", "10.3.200.0/24", "ipv6", "fd00:3::/112")))},
		{"pool /30", poolYAML, fns(set("spec.addresses.ipv4", "10.3.200.0/30"))},
		{"pool TCP port range", poolYAML, fns(set("spec.firewall.allow", list(obj("to", "10.3.0.0/24", "protocol", "TCP", "ports", list(obj("port", int64(80), "endPort", int64(443)))))))},
		{"pool banner with newlines", poolYAML, fns(set("spec.banner", "Welcome\nto the VPN"))},
		{"user certificate", userYAML, fns(set("spec.passwordSecretRef", "-"), set("spec.certificate", obj("issue", true)))},
		{"tunnel at 1024 network pairs", tunnelYAML, fns(set("spec.children", list(child("a", 16, 32, 0), child("b", 16, 32, 1))))},
		// Names as long as Kubernetes allows: every name derived from them is shortened.
		{"pool with a maximal name", poolYAML, fns(set("metadata.name", maximalName))},
		{"tunnel with a maximal name", tunnelYAML, fns(set("metadata.name", maximalName))},
		{"user with a maximal name and the longest reference", userYAML, fns(set("metadata.name", maximalName),
			set("spec.passwordSecretRef", obj("name", strings.Repeat("s", 237), "key", "password")))},
		{"tunnel IKEv1 certificates", tunnelYAML, fns(set("spec.ikeVersion", int64(1)), set("spec.auth", obj("certificate", obj("peerCARef", obj("name", "peer-ca", "key", "ca.crt")))))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := parse(t, tc.base)
			for _, m := range tc.mutate {
				m(u)
			}
			if err := c.Create(ctx, u, client.DryRunAll); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	_, c, _ := testenv.Start(t)
	ctx := context.Background()
	if err := c.Create(ctx, parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: vpn}")); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		base string
		path string
		val  any
	}{
		{gatewayYAML, "spec.ike.lifetime", "8h"},
		{gatewayYAML, "spec.ike.preset", "Modern"},
		{gatewayYAML, "spec.ike.version", int64(2)},
		{gatewayYAML, "spec.ike.mobike", true},
		{gatewayYAML, "spec.ike.dpd.delay", "30s"},
		{gatewayYAML, "spec.ike.dpd.action", "Clear"},
		{gatewayYAML, "spec.ike.fragmentation", "Yes"},
		{gatewayYAML, "spec.clientAuth.method", "EAPMSCHAPv2"},
		{gatewayYAML, "spec.exposure.type", "HostNetwork"},
		{gatewayYAML, "spec.exposure.replicas", int64(1)},
		{gatewayYAML, "spec.dataplane", "Kernel"},
		{gatewayYAML, "spec.firewall.enabled", true},
		{gatewayYAML, "spec.firewall.mssClamp", int64(1350)},
		{gatewayYAML, "spec.certificate.privateKey.algorithm", "ECDSA"},
		{gatewayYAML, "spec.certificate.duration", "2160h"},
		{gatewayYAML, "spec.certificate.renewBefore", "360h"},
		{poolYAML, "spec.esp.lifetime", "1h"},
		{poolYAML, "spec.esp.pfsGroup", "None"},
		{poolYAML, "spec.esp.preset", "Modern"},
		{tunnelYAML, "spec.ikeVersion", int64(2)},
		{tunnelYAML, "spec.ike.lifetime", "8h"},
		{tunnelYAML, "spec.children.0.startAction", "Trap"},
		{tunnelYAML, "spec.children.0.closeAction", "None"},
		{tunnelYAML, "spec.children.0.esp.lifetime", "1h"},
	}
	created := map[string]*unstructured.Unstructured{}
	for _, base := range []string{gatewayYAML, poolYAML, tunnelYAML} {
		u := parse(t, base)
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Fatal(err)
		}
		created[base] = got
	}
	for _, w := range want {
		got := created[w.base]
		v, ok := lookup(got.Object, w.path)
		if !ok {
			t.Errorf("%s %s: not defaulted", got.GetKind(), w.path)
			continue
		}
		if v != w.val {
			t.Errorf("%s %s = %v (%T), want %v", got.GetKind(), w.path, v, v, w.val)
		}
	}
}

// lookup follows a dotted path through maps and, for numeric parts, lists.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[p]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i := 0
			for _, r := range p {
				i = i*10 + int(r-'0')
			}
			if i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

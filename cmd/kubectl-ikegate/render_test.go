package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/charontest"
	"github.com/ikegate/ikegate/internal/testutil/netns"
)

// runCLI runs kubectl-ikegate in-process with args.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

const seedDir = "../../examples/pfsense-mobile/"

func TestRenderSeed(t *testing.T) {
	out, errOut, err := runCLI(t, "render", "-f", seedDir)
	if err != nil {
		t.Fatalf("render failed: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"addrs = 10.3.200.1-10.3.200.254",
		"dns = 10.3.0.1",
		"25 = example.com, example.org",
		"28675 = example.com example.org",
		"id = vpn.example.com",
		"certs = gateway.pem",
		"eap_id = %any",
		"auth = eap-radius",
		"# charon's eap-radius servers, written by the agent into /run/ikegate/radius/*.conf:",
		"VPNUsers it holds: 1",
		`#     address = "127.0.0.1"`,
		`#     secret = "<per-pod secret>"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "abc123") || strings.Contains(out, "0xf9e37e83") {
		t.Errorf("Secret printed without --show-secrets:\n%s", out)
	}
}

// TestRenderShowSecretsLoadsIntoCharon: with --show-secrets the output is
// a configuration charon loads, once the gateway's certificate and key are
// put where the configuration names them.
func TestRenderShowSecretsLoadsIntoCharon(t *testing.T) {
	out, errOut, err := runCLI(t, "render", "-f", seedDir, "--show-secrets", "--gateway", "vpn")
	if err != nil {
		t.Fatalf("render failed: %v\n%s", err, errOut)
	}
	// The user's NT hash (of the seed's password abc123) stays with the
	// agent: charon holds no user secret, so none is printed.
	if strings.Contains(out, "f9e37e83b83c47a93c2f09f66408631b") || strings.Contains(out, "abc123") {
		t.Fatalf("A user's password or NT hash printed:\n%s", out)
	}
	ns := netns.New(t, "kicli")
	c := charontest.Start(t, ns, charontest.Options{Name: "cli"})
	pki := charontest.NewPKI(t, "ikegate test CA")
	leaf := pki.Server(t, "vpn.example.com", "vpn.example.com", "198.51.100.10")
	files := map[string][]byte{
		filepath.Join(swan.DirX509, swan.CertFile(swan.GatewayCert)):   leaf.CertPEM,
		filepath.Join(swan.DirPrivate, swan.CertFile(swan.GatewayKey)): leaf.KeyPEM,
	}
	res, err := c.LoadAll(out, files)
	if err != nil {
		t.Fatalf("charon refused the rendered configuration: %v\n%s", err, res)
	}
	for _, want := range []string{"loaded connection 'mobile-staff'", "loaded pool 'staff-ipv4'"} {
		if !strings.Contains(res, want) {
			t.Errorf("swanctl did not report %q:\n%s", want, res)
		}
	}
}

func TestRenderProblems(t *testing.T) {
	dir := t.TempDir()
	manifest := `apiVersion: ikegate.io/v1alpha1
kind: VPNGateway
metadata: {name: vpn, namespace: vpn}
spec:
  hostnames: [vpn.example.com]
---
apiVersion: ikegate.io/v1alpha1
kind: MobilePool
metadata: {name: staff, namespace: vpn}
spec:
  gatewayRef: {name: vpn}
  addresses: {ipv4: 10.3.200.0/24}
  localNetworks: [10.3.0.0/24]
---
apiVersion: ikegate.io/v1alpha1
kind: VPNUser
metadata: {name: jimp, namespace: vpn}
spec:
  gatewayRef: {name: vpn}
  identity: jimp@example.com
  passwordSecretRef: {name: jimp, key: password}
`
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "render", "-f", dir)
	if !errors.Is(err, errProblems) {
		t.Fatalf("render = %v, want the problems error", err)
	}
	if out != "" {
		t.Errorf("A configuration was printed despite problems:\n%s", out)
	}
	if !strings.Contains(errOut, "VPNUser jimp: SecretNotFound: passwordSecretRef: Secret jimp not found") {
		t.Errorf("Problems output:\n%s", errOut)
	}
}

func TestRenderRefusesMisspeltFields(t *testing.T) {
	f := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: ikegate.io/v1alpha1\nkind: VPNGateway\nmetadata: {name: vpn}\nspec:\n  hostname: [vpn.example.com]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "render", "-f", f); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Fatalf("render = %v, want an error naming the unknown field", err)
	}
}

func TestRenderChoosesGateway(t *testing.T) {
	f := filepath.Join(t.TempDir(), "two.yaml")
	gw := "apiVersion: ikegate.io/v1alpha1\nkind: VPNGateway\nmetadata: {name: %s, namespace: vpn}\nspec:\n  hostnames: [%s.example.com]\n"
	doc := strings.ReplaceAll(gw, "%s", "a") + "---\n" + strings.ReplaceAll(gw, "%s", "b")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "render", "-f", f); err == nil || !strings.Contains(err.Error(), "vpn/a, vpn/b") {
		t.Fatalf("render without --gateway = %v, want an error listing both", err)
	}
	if _, _, err := runCLI(t, "render", "-f", f, "--gateway", "c"); err == nil {
		t.Fatal("render --gateway c succeeded without such a gateway")
	}
	out, _, err := runCLI(t, "render", "-f", f, "--gateway", "b")
	if err != nil || !strings.Contains(out, "swanctl.conf") {
		t.Fatalf("render --gateway b = %v:\n%s", err, out)
	}
}

// TestRenderFirewall: --firewall prints the table the agent would install
// for the seed, from the same Build: the pool's chain and its jump, and
// nothing of swanctl.conf.
func TestRenderFirewall(t *testing.T) {
	out, errOut, err := runCLI(t, "render", "-f", seedDir, "--firewall")
	if err != nil {
		t.Fatalf("render --firewall failed: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"table inet ikegate-vpn-vpn {",
		"chain pool-staff {",
		"ip saddr 10.3.200.0/24 jump pool-staff",
		"udp dport 500",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "connections {") {
		t.Errorf("--firewall printed the charon configuration:\n%s", out)
	}
}

// TestRenderRADIUSNoteRedacts: an EAPRADIUS gateway's servers are shown
// with their addresses and ports, their shared secrets never.
func TestRenderRADIUSNoteRedacts(t *testing.T) {
	note := radiusNote(&swan.Result{RADIUSOn: true, RADIUS: []swan.RADIUSServer{
		{Name: "nps", Address: "10.3.0.5", AuthPort: 1812, AcctPort: 1813, Secret: []byte("topsecret")},
	}})
	for _, want := range []string{`#     address = "10.3.0.5"`, "#     auth_port = 1812", `#     secret = "<redacted>"`} {
		if !strings.Contains(note, want) {
			t.Errorf("Note lacks %q:\n%s", want, note)
		}
	}
	if strings.Contains(note, "topsecret") {
		t.Errorf("Note prints the shared secret:\n%s", note)
	}
}

package profile_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/proposals"
)

// Windows' valid sets (VpnClient module, Set-VpnConnectionIPsecConfiguration)
// as an oracle, with the strongSwan keyword of each value ikegate may use.
var (
	winEncryption = map[string]string{"AES128": "aes128", "AES192": "aes192", "AES256": "aes256", "GCMAES128": "aes128gcm16", "GCMAES256": "aes256gcm16", "DES": "des", "DES3": "3des"}
	winIntegrity  = map[string]string{"SHA256": "sha256", "SHA384": "sha384", "SHA1": "sha1", "MD5": "md5"}
	winDH         = map[string]string{"ECP256": "ecp256", "ECP384": "ecp384", "Group14": "modp2048", "Group2": "modp1024", "Group1": "modp768", "Group24": "", "None": ""}
	winCipher     = map[string]string{"AES128": "aes128", "AES192": "aes192", "AES256": "aes256", "GCMAES128": "aes128gcm16", "GCMAES192": "aes192gcm16", "GCMAES256": "aes256gcm16", "DES": "des", "DES3": "3des", "None": "null"}
	winAuth       = map[string]string{"SHA256128": "sha256", "SHA196": "sha1", "MD596": "md5", "GCMAES128": "", "GCMAES192": "", "GCMAES256": "", "None": ""}
	winPFS        = map[string]string{"None": "", "ECP256": "ecp256", "ECP384": "ecp384", "PFS2048": "modp2048", "PFS2": "modp1024", "PFS1": "modp768", "PFS24": "", "PFSMM": ""}
)

var ipsecLine = regexp.MustCompile(`-EncryptionMethod (\S+) -IntegrityCheckMethod (\S+) -DHGroup (\S+) ` + "`" + `\s+-CipherTransformConstants (\S+) -AuthenticationTransformConstants (\S+) -PfsGroup (\S+)`)

// windowsProposals reads back what Windows will propose from the script's policy.
func windowsProposals(t *testing.T, script string) (ike, esp, pfs string) {
	t.Helper()
	m := ipsecLine.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("No Set-VpnConnectionIPsecConfiguration with all six values:\n%s", script)
	}
	look := func(set map[string]string, v, what string) string {
		tok, ok := set[v]
		if !ok {
			t.Fatalf("%s %q is not in Windows' valid set", what, v)
		}
		return tok
	}
	enc, hash, dh := look(winEncryption, m[1], "EncryptionMethod"), look(winIntegrity, m[2], "IntegrityCheckMethod"), look(winDH, m[3], "DHGroup")
	if a, _ := proposals.Lookup(enc); a.AEAD {
		ike = enc + "-prf" + hash + "-" + dh
	} else {
		ike = enc + "-" + hash + "-prf" + hash + "-" + dh
	}
	cipher, auth := look(winCipher, m[4], "CipherTransformConstants"), look(winAuth, m[5], "AuthenticationTransformConstants")
	if a, _ := proposals.Lookup(cipher); a.AEAD != strings.HasPrefix(m[5], "GCM") || a.AEAD && m[4] != m[5] {
		t.Fatalf("Windows takes a GCM cipher with the same GCM authentication transform only: %s/%s", m[4], m[5])
	}
	esp = cipher
	if auth != "" {
		esp += "-" + auth
	}
	pfs = look(winPFS, m[6], "PfsGroup")
	if pfs != "" {
		esp += "-" + pfs
	}
	return ike, esp, m[6]
}

func TestWindowsPolicyIsOneTheGatewayAccepts(t *testing.T) {
	wantPFS := map[string]string{"seed": "None", "compatible-pfs-ecp256": "ECP256", "modern-pfs-ecp256": "ECP256", "full-tunnel-dial-address": "None"}
	for _, sc := range profileScenarios {
		t.Run(sc.name, func(t *testing.T) {
			in := input(t, seed(t, sc.mods...), sc.opts)
			out, err := profile.Windows(in)
			if err != nil {
				t.Fatal(err)
			}
			ike, esp, pfs := windowsProposals(t, string(out))
			if _, ok := proposals.Negotiate(in.IKEProposals, []string{ike}); !ok {
				t.Errorf("The gateway refuses Windows' IKE proposal %s (gateway %v)", ike, in.IKEProposals)
			}
			if _, ok := proposals.NegotiateESP(in.ESPProposals, []string{esp}); !ok {
				t.Errorf("The gateway refuses Windows' ESP proposal %s at a rekey (gateway %v)", esp, in.ESPProposals)
			}
			if pfs != wantPFS[sc.name] {
				t.Errorf("PfsGroup = %s, want %s for ESP %v", pfs, wantPFS[sc.name], in.ESPProposals)
			}
			for _, want := range []string{`Cert:\LocalMachine\Root`, "-TunnelType Ikev2", "New-EapConfiguration", "Import-Certificate"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("Script lacks %q", want)
				}
			}
			routes := strings.Count(string(out), "Add-VpnConnectionRoute")
			if in.FullTunnel != strings.Contains(string(out), "-SplitTunneling:$false") || routes != len(in.LocalNetworks) {
				t.Errorf("Full tunnel %v, routes %d for %v", in.FullTunnel, routes, in.LocalNetworks)
			}
		})
	}
}

// TestWindowsQuotesEveryValue: names from the cluster cannot end a string
// or run code in the script.
func TestWindowsQuotesEveryValue(t *testing.T) {
	in := input(t, seed(t), profile.Options{})
	in.Gateway = "o'brien\u2019s $(Remove-Item C:\\)"
	in.Identity = "x'; Remove-Item C:\\ #"
	out, err := profile.Windows(in)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`$name = 'o''brien` + "\u2019\u2019" + `s $(Remove-Item C:\) (vpn.example.com)'`,
		`'x''; Remove-Item C:\ #'`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Script lacks the quoted value %s:\n%s", want, s)
		}
	}
}

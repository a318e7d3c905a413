package proposals

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// clientFamily is what one kind of client proposes out of the box (or with
// the configuration ikegate's profiles give it), in strongSwan syntax.
// ESP lists are those sent when rekeying (CREATE_CHILD_SA), where PFS
// groups must match; the CHILD_SA created with IKE_AUTH ignores groups.
type clientFamily struct {
	Name string
	IKE  []string
	ESP  []string
}

var clientFamilies = []clientFamily{
	{
		// strongSwan documentation, interop/windowsClients.html ("Enable Strong
		// Key Exchange"): Windows 7 up to 11 propose only MODP 1024, as
		// ike = 3des-aes128-aes192-aes256-sha1-sha256-sha384-modp1024, and ESP
		// esp = aes256-aes128-3des-des-null-sha1 (no PFS).
		Name: "Windows 10 default",
		IKE:  []string{"3des-aes128-aes192-aes256-sha1-sha256-sha384-modp1024"},
		ESP:  []string{"aes256-aes128-3des-des-null-sha1"},
	},
	{
		// Same page: Windows 11 additionally proposes AES-GCM, also with MODP 1024
		// (ike = aes128gcm16-aes256gcm16-sha1-sha256-sha384-modp1024; with AEAD
		// the hashes are PRFs).
		Name: "Windows 11 default",
		IKE: []string{
			"aes128gcm16-aes256gcm16-prfsha1-prfsha256-prfsha384-modp1024",
			"3des-aes128-aes192-aes256-sha1-sha256-sha384-modp1024",
		},
		ESP: []string{"aes256-aes128-3des-des-null-sha1"},
	},
	{
		// Same page: with the registry value NegotiateDH2048_AES256 = 2 Windows
		// proposes ike = aes256-sha1-sha256-sha384-modp2048; ESP is unchanged
		// and still SHA-1 only.
		Name: "Windows with NegotiateDH2048_AES256=2",
		IKE:  []string{"aes256-sha1-sha256-sha384-modp2048"},
		ESP:  []string{"aes256-aes128-3des-des-null-sha1"},
	},
	{
		// What ikegate's PowerShell profile sets with
		// Set-VpnConnectionIPsecConfiguration -EncryptionMethod GCMAES256
		// -IntegrityCheckMethod SHA256 -DHGroup ECP256 -CipherTransformConstants
		// GCMAES256 -AuthenticationTransformConstants GCMAES256 -PfsGroup ECP256
		// (the cmdlet's documented parameters): one proposal each, PFS on.
		Name: "Windows with ikegate policy",
		IKE:  []string{"aes256gcm16-prfsha256-ecp256"},
		ESP:  []string{"aes256gcm16-ecp256"},
	},
	{
		// The same policy for a pool without PFS: PfsGroup None.
		Name: "Windows with ikegate policy, no PFS",
		IKE:  []string{"aes256gcm16-prfsha256-ecp256"},
		ESP:  []string{"aes256gcm16"},
	},
	{
		// strongSwan documentation, interop/ios.html, "Default IKE/ESP proposals
		// sent by iOS/macOS", iOS (as of 16.5). When rekeying, iOS sends the
		// first ESP proposal with the IKE_SA's DH group (ECP 256 when the
		// gateway picked it) and the others without.
		Name: "iOS 16 built-in, no profile",
		IKE: []string{
			"aes256-sha256-prfsha256-modp2048",
			"aes256-sha256-prfsha256-ecp256",
			"aes256-sha256-prfsha256-modp1536",
			"aes128-sha1-prfsha1-modp1024",
			"3des-sha1-prfsha1-modp1024",
		},
		ESP: []string{"aes256-sha256-ecp256", "aes256-sha256", "aes128-sha1", "3des-sha1"},
	},
	{
		// Same page, macOS (as of 13.4): like iOS but "only iOS sends a proposal
		// with ecp256", and macOS proposes no DH group when rekeying.
		Name: "macOS 13 built-in, no profile",
		IKE: []string{
			"aes256-sha256-prfsha256-modp2048",
			"aes256-sha256-prfsha256-modp1536",
			"aes128-sha1-prfsha1-modp1024",
			"3des-sha1-prfsha1-modp1024",
		},
		ESP: []string{"aes256-sha256", "aes128-sha1", "3des-sha1"},
	},
	{
		// ikegate's .mobileconfig: IKESecurityAssociationParameters and
		// ChildSecurityAssociationParameters with EncryptionAlgorithm AES-256-GCM,
		// IntegrityAlgorithm SHA2-256, DiffieHellmanGroup 19, EnablePFS false.
		Name: "Apple with ikegate profile",
		IKE:  []string{"aes256gcm16-prfsha256-ecp256"},
		ESP:  []string{"aes256gcm16"},
	},
	{
		// The strongSwan app for Android (and NetworkManager-strongswan) sends
		// charon's built-in defaults unless a profile sets proposals: strongSwan
		// src/libstrongswan/crypto/proposal/proposal.c, proposal_create_default_aead
		// and proposal_create_default with the openssl plugin (group order as
		// the plugin registers them).
		Name: "strongSwan app defaults",
		IKE: []string{
			"aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-prfaesxcbc-prfsha1-ecp256-ecp384-ecp521-x25519-x448-modp3072-modp4096-modp6144-modp8192-modp2048",
			"aes128-aes192-aes256-3des-sha256-sha384-sha512-aesxcbc-sha1-prfsha256-prfsha384-prfsha512-prfaesxcbc-prfsha1-ecp256-ecp384-ecp521-x25519-x448-modp3072-modp4096-modp6144-modp8192-modp2048",
		},
		ESP: []string{"aes128gcm16-aes192gcm16-aes256gcm16", "aes128-aes192-aes256-sha256-sha384-sha512-sha1-aesxcbc"},
	},
	{
		// Android's built-in IKEv2/IPsec client (Android 11 and later),
		// AOSP services/core/java/com/android/server/connectivity/
		// VpnIkev2Utils.java getIkeSaProposals and getChildSaProposals with
		// the default allowed algorithms, no PFS. AES-CTR, AES-GCM with 8-
		// and 12-byte ICVs and AES-CMAC are left out: the catalogue lacks
		// them and no preset offers them, so they cannot change a selection.
		Name: "Android built-in IKEv2",
		IKE: []string{
			"aes256-aes192-aes128-sha512-sha384-sha256-aesxcbc-prfsha512-prfsha384-prfsha256-prfaesxcbc-prfsha1-modp4096-x25519-modp3072-modp2048",
			"chacha20poly1305-aes256gcm16-aes192gcm16-aes128gcm16-prfsha512-prfsha384-prfsha256-prfaesxcbc-prfsha1-modp4096-x25519-modp3072-modp2048",
		},
		ESP: []string{"aes256-aes192-aes128-sha512-sha384-sha256", "aes256gcm16-aes192gcm16-aes128gcm16"},
	},
}

// outcome is what a gateway preset selects for a client: the IKE proposal,
// the ESP proposal without PFS and with PFS group ECP256; "" means rejected.
type outcome struct{ ike, esp, espPFS string }

func TestClientFamiliesAgainstPresets(t *testing.T) {
	// Expected from RFC 8247/8221 and each family's documented proposals:
	// Modern takes no SHA-1 and no SHOULD NOT group, Compatible adds SHA-1,
	// Legacy the MODP 1024 that stock Windows needs.
	winDefaultLegacyESP := outcome{esp: "aes256-sha1", espPFS: "aes256-sha1"}
	want := map[string]map[Preset]outcome{
		"Windows 10 default": {
			PresetModern:     {},
			PresetCompatible: {"", "aes256-sha1", "aes256-sha1"},
			PresetLegacy:     {"aes256-sha256-prfsha256-modp1024", winDefaultLegacyESP.esp, winDefaultLegacyESP.espPFS},
		},
		// Its AEAD proposal wins over the CBC one it sends second.
		"Windows 11 default": {
			PresetModern:     {},
			PresetCompatible: {"", "aes256-sha1", "aes256-sha1"},
			PresetLegacy:     {"aes256gcm16-prfsha256-modp1024", winDefaultLegacyESP.esp, winDefaultLegacyESP.espPFS},
		},
		// IKE meets Modern, its SHA-1-only ESP needs Compatible.
		"Windows with NegotiateDH2048_AES256=2": {
			PresetModern:     {"aes256-sha256-prfsha256-modp2048", "", ""},
			PresetCompatible: {"aes256-sha256-prfsha256-modp2048", "aes256-sha1", "aes256-sha1"},
			PresetLegacy:     {"aes256-sha256-prfsha256-modp2048", "aes256-sha1", "aes256-sha1"},
		},
		// PFS on the client side needs PFS on the gateway: the profile sets
		// PfsGroup from the pool, so this policy meets a pool with PFS.
		"Windows with ikegate policy": {
			PresetModern:     {"aes256gcm16-prfsha256-ecp256", "", "aes256gcm16-ecp256"},
			PresetCompatible: {"aes256gcm16-prfsha256-ecp256", "", "aes256gcm16-ecp256"},
			PresetLegacy:     {"aes256gcm16-prfsha256-ecp256", "", "aes256gcm16-ecp256"},
		},
		"Windows with ikegate policy, no PFS": {
			PresetModern:     {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", ""},
			PresetCompatible: {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", "aes256gcm16"},
			PresetLegacy:     {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", "aes256gcm16"},
		},
		// P-256 in its second proposal wins over MODP 2048 in its first.
		"iOS 16 built-in, no profile": {
			PresetModern:     {"aes256-sha256-prfsha256-ecp256", "aes256-sha256", "aes256-sha256-ecp256"},
			PresetCompatible: {"aes256-sha256-prfsha256-ecp256", "aes256-sha256", "aes256-sha256-ecp256"},
			PresetLegacy:     {"aes256-sha256-prfsha256-ecp256", "aes256-sha256", "aes256-sha256-ecp256"},
		},
		// macOS sends no group when rekeying: a Modern pool with PFS loses it.
		"macOS 13 built-in, no profile": {
			PresetModern:     {"aes256-sha256-prfsha256-modp2048", "aes256-sha256", ""},
			PresetCompatible: {"aes256-sha256-prfsha256-modp2048", "aes256-sha256", "aes256-sha256"},
			PresetLegacy:     {"aes256-sha256-prfsha256-modp2048", "aes256-sha256", "aes256-sha256"},
		},
		"Apple with ikegate profile": {
			PresetModern:     {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", ""},
			PresetCompatible: {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", "aes256gcm16"},
			PresetLegacy:     {"aes256gcm16-prfsha256-ecp256", "aes256gcm16", "aes256gcm16"},
		},
		// Modern with PFS rejects the app's defaults at rekey: its .sswan
		// profile must then carry ESP proposals with the group.
		"strongSwan app defaults": {
			PresetModern:     {"aes256gcm16-prfsha256-x25519", "aes256gcm16", ""},
			PresetCompatible: {"aes256gcm16-prfsha256-x25519", "aes256gcm16", "aes256gcm16"},
			PresetLegacy:     {"aes256gcm16-prfsha256-x25519", "aes256gcm16", "aes256gcm16"},
		},
		"Android built-in IKEv2": {
			PresetModern:     {"aes256gcm16-prfsha256-x25519", "aes256gcm16", ""},
			PresetCompatible: {"aes256gcm16-prfsha256-x25519", "aes256gcm16", "aes256gcm16"},
			PresetLegacy:     {"aes256gcm16-prfsha256-x25519", "aes256gcm16", "aes256gcm16"},
		},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-40s %-11s %-34s %-14s %s\n", "client", "preset", "IKE", "ESP", "ESP with PFS ecp256")
	for _, c := range clientFamilies {
		for _, p := range Presets {
			t.Run(c.Name+"/"+string(p), func(t *testing.T) {
				for _, tok := range append(append([]string(nil), c.IKE...), c.ESP...) {
					if _, err := Parse(ProtoESP, tok); err != nil && !strings.Contains(err.Error(), "PRF") {
						if _, err2 := Parse(ProtoIKE, tok); err2 != nil {
							t.Fatalf("Client data does not parse: %v / %v", err, err2)
						}
					}
				}
				ike := mustPreset(t, func() ([]string, error) { return IKE(p) })
				esp := mustPreset(t, func() ([]string, error) { return ESP(p, "") })
				espPFS := mustPreset(t, func() ([]string, error) { return ESP(p, ECP256) })
				var got outcome
				got.ike, _ = Negotiate(ike, c.IKE)
				got.esp, _ = NegotiateESP(esp, c.ESP)
				got.espPFS, _ = NegotiateESP(espPFS, c.ESP)
				w, ok := want[c.Name][p]
				if !ok {
					t.Fatalf("No expectation for %s", c.Name)
				}
				if got != w {
					t.Errorf("Negotiated %+v, want %+v", got, w)
				}
				fmt.Fprintf(&table, "%-40s %-11s %-34s %-14s %s\n", c.Name, p, orDash(got.ike), orDash(got.esp), orDash(got.espPFS))
			})
		}
	}
	t.Logf("Negotiated proposals (- = rejected):\n%s", table.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mustPreset(t *testing.T, f func() ([]string, error)) []string {
	t.Helper()
	out, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPresetsAdmitTheirFamilies pins which of the ten families each preset
// admits, as the preset docs promise: a family is admitted when its IKE_SA
// and a CHILD_SA that rekeys come up on a pool without PFS or on one with
// PFS group ECP256 (the PFS setting ikegate's Windows policy follows). The
// ikegate profiles are made for the gateway and must meet every preset.
func TestPresetsAdmitTheirFamilies(t *testing.T) {
	profiles := []string{"Windows with ikegate policy", "Windows with ikegate policy, no PFS", "Apple with ikegate profile"}
	modern := []string{
		"Windows with ikegate policy", "Windows with ikegate policy, no PFS",
		"iOS 16 built-in, no profile", "macOS 13 built-in, no profile", "Apple with ikegate profile",
		"strongSwan app defaults", "Android built-in IKEv2",
	}
	// Compatible: every family whose stock defaults avoid SHOULD NOT groups.
	compatible := append([]string{"Windows with NegotiateDH2048_AES256=2"}, modern...)
	want := map[Preset][]string{
		PresetModern:     modern,
		PresetCompatible: compatible,
		PresetLegacy:     append([]string{"Windows 10 default", "Windows 11 default"}, compatible...),
	}
	for _, p := range Presets {
		ike := mustPreset(t, func() ([]string, error) { return IKE(p) })
		esp := mustPreset(t, func() ([]string, error) { return ESP(p, "") })
		espPFS := mustPreset(t, func() ([]string, error) { return ESP(p, ECP256) })
		var admitted []string
		for _, c := range clientFamilies {
			_, ikeOK := Negotiate(ike, c.IKE)
			_, espOK := NegotiateESP(esp, c.ESP)
			_, pfsOK := NegotiateESP(espPFS, c.ESP)
			if ikeOK && (espOK || pfsOK) {
				admitted = append(admitted, c.Name)
			} else if slices.Contains(profiles, c.Name) {
				t.Errorf("Preset %s refuses %s", p, c.Name)
			}
		}
		slices.Sort(admitted)
		slices.Sort(want[p])
		if diff := cmp.Diff(want[p], admitted); diff != "" {
			t.Errorf("Preset %s admits (-want +got):\n%s", p, diff)
		}
		t.Logf("Preset %s admits %d of %d families", p, len(admitted), len(clientFamilies))
	}
}

// TestEachClientGetsTheStrongestItOffers: among all algorithm combinations
// a client offers and a preset accepts, charon's selection must rank
// highest, weakest algorithm first (so AES-GCM with MODP 1024 beats
// AES-CBC with MODP 1024, which beats 3DES with it).
func TestEachClientGetsTheStrongestItOffers(t *testing.T) {
	for _, p := range Presets {
		ike := mustPreset(t, func() ([]string, error) { return IKE(p) })
		esp := mustPreset(t, func() ([]string, error) { return ESP(p, "") })
		for _, c := range clientFamilies {
			for _, set := range []struct {
				proto           Protocol
				gateway, client []string
			}{{ProtoIKE, ike, c.IKE}, {ProtoESP, esp, c.ESP}} {
				got, ok := negotiate(set.proto, set.gateway, set.client, false)
				if !ok {
					continue
				}
				var best []Strength
				for _, single := range singletons(t, set.proto, set.client) {
					if _, ok := negotiate(set.proto, set.gateway, []string{single}, false); ok {
						if r := rankOf(t, set.proto, single); slices.Compare(r, best) > 0 {
							best = r
						}
					}
				}
				if r := rankOf(t, set.proto, got); slices.Compare(r, best) != 0 {
					t.Errorf("Preset %s, %s, %s: selected %s (%v), but the client offers one ranked %v", p, c.Name, set.proto, got, r, best)
				}
			}
		}
	}
}

// singletons expands proposals into every combination of one algorithm per
// transform type.
func singletons(t *testing.T, proto Protocol, tokens []string) []string {
	t.Helper()
	var out []string
	for _, tok := range tokens {
		pr, err := Parse(proto, tok)
		if err != nil {
			t.Fatal(err)
		}
		combos := []Proposal{{Protocol: proto}}
		for _, k := range []Kind{KindEncryption, KindIntegrity, KindPRF, KindDH} {
			list := *pr.list(k)
			if len(list) == 0 {
				continue
			}
			var next []Proposal
			for _, c := range combos {
				for _, a := range list {
					n := c
					*n.list(k) = []Algorithm{a}
					next = append(next, n)
				}
			}
			combos = next
		}
		for _, c := range combos {
			out = append(out, c.String())
		}
	}
	return out
}

// rankOf lists a proposal's algorithm strengths weakest first.
func rankOf(t *testing.T, proto Protocol, tok string) []Strength {
	t.Helper()
	pr, err := Parse(proto, tok)
	if err != nil {
		t.Fatal(err)
	}
	var r []Strength
	for _, l := range [][]Algorithm{pr.Encryption, pr.Integrity, pr.PRF, pr.DH} {
		for _, a := range l {
			r = append(r, a.Strength)
		}
	}
	slices.Sort(r)
	return r
}

// The initial CHILD_SA ignores DH groups, so a PFS mismatch passes at first
// and fails at the first rekey; diagnose relies on telling the two apart.
func TestPFSMismatchOnlyAtRekey(t *testing.T) {
	gw, err := ESP(PresetModern, "")
	if err != nil {
		t.Fatal(err)
	}
	client := []string{"aes256gcm16-ecp256"}
	if got, ok := NegotiateESPInitial(gw, client); !ok || got != "aes256gcm16" {
		t.Errorf("Initial CHILD_SA: got %q, %v; want aes256gcm16", got, ok)
	}
	if got, ok := NegotiateESP(gw, client); ok {
		t.Errorf("Rekey accepted %q despite the PFS mismatch", got)
	}
}

// ClientFamilies exposes the client data to the external tests that run
// real charons (an external package, as charontest imports this package).
var ClientFamilies = clientFamilies

// ClientFamily is the exported name of clientFamily for external tests.
type ClientFamily = clientFamily

package profile_test

import (
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/ikegate/ikegate/internal/profile"
	"github.com/ikegate/ikegate/internal/proposals"
)

// Apple's schema (apple/device-management, mdm/profiles/com.apple.vpn.managed.yaml),
// as an oracle: values each SA parameter may take, and the strongSwan keyword
// of each.
var (
	appleEncryption = map[string]string{"AES-128": "aes128", "AES-256": "aes256", "AES-128-GCM": "aes128gcm16", "AES-256-GCM": "aes256gcm16", "ChaCha20Poly1305": "chacha20poly1305", "DES": "des", "3DES": "3des"}
	appleIntegrity  = map[string]string{"SHA1-96": "sha1", "SHA2-256": "sha256", "SHA2-384": "sha384", "SHA2-512": "sha512"}
	appleDH         = map[uint64]string{1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096", 17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521", 31: "x25519", 32: "x448"}
	appleDPD        = []string{"None", "Low", "Medium", "High"}
)

func appleProfile(t *testing.T, in profile.Input) map[string]any {
	t.Helper()
	out, err := profile.Apple(in)
	if err != nil {
		t.Fatalf("Apple: %v", err)
	}
	var top map[string]any
	if _, err := plist.Unmarshal(out, &top); err != nil {
		t.Fatalf("The profile does not parse as a property list: %v", err)
	}
	return top
}

func requireKeys(t *testing.T, what string, d map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := d[k]; !ok {
			t.Errorf("%s lacks the required key %s", what, k)
		}
	}
}

// payloads returns the profile's payloads by type.
func payloads(t *testing.T, top map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, p := range top["PayloadContent"].([]any) {
		d := p.(map[string]any)
		requireKeys(t, "payload", d, "PayloadIdentifier", "PayloadType", "PayloadUUID", "PayloadVersion", "PayloadDisplayName")
		out[d["PayloadType"].(string)] = d
	}
	return out
}

// appleProposals reads back the proposals the device will send.
func appleProposals(t *testing.T, ike2 map[string]any) (ike, esp string) {
	t.Helper()
	sa := func(key string, child bool) string {
		d, ok := ike2[key].(map[string]any)
		if !ok {
			t.Fatalf("IKEv2 lacks %s", key)
		}
		enc, ok := appleEncryption[d["EncryptionAlgorithm"].(string)]
		if !ok {
			t.Fatalf("%s.EncryptionAlgorithm %v is not one of Apple's", key, d["EncryptionAlgorithm"])
		}
		if life := d["LifeTimeInMinutes"].(uint64); life < 10 || life > 1440 {
			t.Errorf("%s.LifeTimeInMinutes %d is outside 10-1440", key, life)
		}
		parts := []string{enc}
		a, _ := proposals.Lookup(enc)
		if h, ok := d["IntegrityAlgorithm"].(string); ok {
			tok, known := appleIntegrity[h]
			if !known {
				t.Fatalf("%s.IntegrityAlgorithm %q is not one of Apple's", key, h)
			}
			if !a.AEAD {
				parts = append(parts, tok)
			}
			if !child {
				parts = append(parts, "prf"+tok)
			}
		} else if !a.AEAD {
			t.Fatalf("%s: a classic cipher without IntegrityAlgorithm", key)
		}
		if g, ok := d["DiffieHellmanGroup"].(uint64); ok && (!child || ike2["EnablePFS"].(uint64) == 1) {
			tok, known := appleDH[g]
			if !known {
				t.Fatalf("%s.DiffieHellmanGroup %d is not one of Apple's", key, g)
			}
			parts = append(parts, tok)
		}
		return strings.Join(parts, "-")
	}
	return sa("IKESecurityAssociationParameters", false), sa("ChildSecurityAssociationParameters", true)
}

// TestAppleProfileCarriesEveryRequiredKey parses each profile back and
// checks Apple's required keys, the enum values and that what the device
// will propose is what the gateway takes, at IKE_AUTH and at every rekey.
func TestAppleProfileCarriesEveryRequiredKey(t *testing.T) {
	for _, sc := range profileScenarios {
		t.Run(sc.name, func(t *testing.T) {
			in := input(t, seed(t, sc.mods...), sc.opts)
			top := appleProfile(t, in)
			requireKeys(t, "profile", top, "PayloadContent", "PayloadDisplayName", "PayloadIdentifier", "PayloadType", "PayloadUUID", "PayloadVersion")
			if top["PayloadType"] != "Configuration" {
				t.Errorf("PayloadType = %v", top["PayloadType"])
			}
			ps := payloads(t, top)
			root, ok := ps["com.apple.security.root"]
			if !ok {
				t.Fatal("No com.apple.security.root payload")
			}
			blk, _ := pem.Decode(in.CAPEM)
			if string(root["PayloadContent"].([]byte)) != string(blk.Bytes) {
				t.Error("The root payload does not hold the gateway's CA")
			}
			vpn, ok := ps["com.apple.vpn.managed"]
			if !ok {
				t.Fatal("No com.apple.vpn.managed payload")
			}
			requireKeys(t, "VPN payload", vpn, "UserDefinedName", "VPNType", "IKEv2")
			if vpn["VPNType"] != "IKEv2" {
				t.Errorf("VPNType = %v", vpn["VPNType"])
			}
			ike2 := vpn["IKEv2"].(map[string]any)
			requireKeys(t, "IKEv2", ike2, "RemoteAddress", "LocalIdentifier", "RemoteIdentifier", "AuthenticationMethod")
			if ike2["RemoteAddress"] != in.Dial || ike2["RemoteIdentifier"] != "vpn.example.com" || ike2["LocalIdentifier"] != "jimp@example.com" {
				t.Errorf("Addresses and identities: %v, %v, %v", ike2["RemoteAddress"], ike2["RemoteIdentifier"], ike2["LocalIdentifier"])
			}
			if ike2["AuthenticationMethod"] != "None" || ike2["ExtendedAuthEnabled"] != uint64(1) {
				t.Errorf("EAP needs AuthenticationMethod None and ExtendedAuthEnabled 1, got %v and %v", ike2["AuthenticationMethod"], ike2["ExtendedAuthEnabled"])
			}
			if !slices.Contains(appleDPD, ike2["DeadPeerDetectionRate"].(string)) {
				t.Errorf("DeadPeerDetectionRate %v", ike2["DeadPeerDetectionRate"])
			}
			if _, ok := ike2["AuthPassword"]; ok {
				t.Error("A password was written although none was given")
			}
			ike, esp := appleProposals(t, ike2)
			if _, ok := proposals.Negotiate(in.IKEProposals, []string{ike}); !ok {
				t.Errorf("The gateway refuses the IKE proposal the device sends: %s, gateway %v", ike, in.IKEProposals)
			}
			if _, ok := proposals.NegotiateESP(in.ESPProposals, []string{esp}); !ok {
				t.Errorf("The gateway refuses the ESP proposal the device sends when rekeying: %s, gateway %v", esp, in.ESPProposals)
			}
			wantPFS := !slices.ContainsFunc(in.ESPProposals, func(p string) bool { return !strings.Contains(p, "ecp") || strings.Contains(p, "modpnone") })
			if got := ike2["EnablePFS"] == uint64(1); got != wantPFS {
				t.Errorf("EnablePFS = %v with ESP proposals %v", got, in.ESPProposals)
			}
		})
	}
}

// TestAppleIdentifiersAreStablePerUser: a profile built again (even after
// the gateway's proposals changed) replaces the installed one; another
// user's profile does not.
func TestAppleIdentifiersAreStablePerUser(t *testing.T) {
	ids := func(in profile.Input) []string {
		top := appleProfile(t, in)
		out := []string{top["PayloadIdentifier"].(string), top["PayloadUUID"].(string)}
		for _, p := range top["PayloadContent"].([]any) {
			d := p.(map[string]any)
			out = append(out, d["PayloadIdentifier"].(string), d["PayloadUUID"].(string))
		}
		return out
	}
	base := input(t, seed(t), profile.Options{})
	first := ids(base)
	changed := input(t, seed(t, ikePreset("Compatible"), esp("Compatible", "ECP256")), profile.Options{})
	if got := ids(changed); !slices.Equal(got, first) {
		t.Errorf("Identifiers changed with the proposals:\n%v\n%v", first, got)
	}
	other := base
	other.User, other.Identity = "alice", "alice@example.com"
	for _, id := range ids(other) {
		if slices.Contains(first, id) && strings.Count(id, "-") == 4 {
			t.Errorf("Another user's profile shares UUID %s", id)
		}
	}
	if ids(other)[0] == first[0] {
		t.Error("Another user's profile has the same PayloadIdentifier")
	}
}

func TestApplePasswordOnlyWhenGiven(t *testing.T) {
	in := input(t, seed(t), profile.Options{Password: "s3cr'et"})
	ike2 := payloads(t, appleProfile(t, in))["com.apple.vpn.managed"]["IKEv2"].(map[string]any)
	if ike2["AuthPassword"] != "s3cr'et" {
		t.Errorf("AuthPassword = %v, want the password given", ike2["AuthPassword"])
	}
}

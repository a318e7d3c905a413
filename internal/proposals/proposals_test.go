package proposals

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCatalogueIsConsistent(t *testing.T) {
	tokens := map[string]bool{}
	names := map[Kind]map[string]bool{}
	charon := map[string]bool{}
	for _, a := range Catalogue() {
		if tokens[a.Token] {
			t.Errorf("Token %s listed twice", a.Token)
		}
		tokens[a.Token] = true
		if names[a.Kind] == nil {
			names[a.Kind] = map[string]bool{}
		}
		if names[a.Kind][a.Name] {
			t.Errorf("%s name %s listed twice", a.Kind, a.Name)
		}
		names[a.Kind][a.Name] = true
		if charon[a.Charon] {
			t.Errorf("charon name %s listed twice", a.Charon)
		}
		charon[a.Charon] = true
		if a.Why == "" {
			t.Errorf("%s has no explanation", a.Token)
		}
		if a.AEAD && a.Kind != KindEncryption {
			t.Errorf("%s is AEAD but not a cipher", a.Token)
		}
	}
	for _, e := range []Encryption{AES128, AES192, AES256, AES128GCM16, AES192GCM16, AES256GCM16, ChaCha20Poly1305, TripleDES, DES, NullEncryption} {
		if _, err := e.Algorithm(); err != nil {
			t.Error(err)
		}
	}
	for _, i := range []Integrity{SHA1, SHA256, SHA384, SHA512, MD5, AESXCBC} {
		if _, err := i.Algorithm(); err != nil {
			t.Error(err)
		}
	}
	for _, p := range []PRF{PRFSHA1, PRFSHA256, PRFSHA384, PRFSHA512, PRFAESXCBC, PRFMD5} {
		if _, err := p.Algorithm(); err != nil {
			t.Error(err)
		}
	}
	groups := map[DHGroup]int{
		MODP768: 1, MODP1024: 2, MODP1536: 5, MODP2048: 14, MODP3072: 15, MODP4096: 16,
		MODP6144: 17, MODP8192: 18, ECP256: 19, ECP384: 20, ECP521: 21, Curve25519: 31, Curve448: 32, NoDH: 0,
	}
	for g, iana := range groups {
		a, err := g.Algorithm()
		if err != nil {
			t.Error(err)
			continue
		}
		if a.IANA != iana {
			t.Errorf("%s: IANA group %d, want %d", g, a.IANA, iana)
		}
	}
	if got := len(Names(KindDH)); got != len(groups) {
		t.Errorf("Names(KindDH) has %d entries, the test knows %d", got, len(groups))
	}
}

func TestStrengthClasses(t *testing.T) {
	byClass := map[Strength][]string{}
	for _, a := range Catalogue() {
		if a.Strength < StrengthAcceptable {
			byClass[a.Strength] = append(byClass[a.Strength], a.Token)
		}
	}
	for _, l := range byClass {
		slices.Sort(l)
	}
	// RFC 8247 and RFC 8221: MUST NOT is Forbidden, SHOULD NOT (and 3DES)
	// Insecure, MUST- Deprecated.
	want := map[Strength][]string{
		StrengthForbidden:  {"des", "md5", "modp768", "null", "prfmd5"},
		StrengthInsecure:   {"3des", "modp1024", "modp1536"},
		StrengthDeprecated: {"prfsha1", "sha1"},
	}
	if diff := cmp.Diff(want, byClass); diff != "" {
		t.Errorf("Weak algorithms by class (-want +got):\n%s", diff)
	}
	for tok, want := range map[string]Strength{
		"aes256gcm16": StrengthModern, "chacha20poly1305": StrengthModern, "x25519": StrengthModern, "ecp256": StrengthModern,
		"aes256": StrengthAcceptable, "modp2048": StrengthAcceptable, "aesxcbc": StrengthAcceptable,
	} {
		if a, _ := Lookup(tok); a.Strength != want {
			t.Errorf("%s is %v, want %v", tok, a.Strength, want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		proto    Protocol
		in       string
		want     string
		strength Strength
		err      string
	}{
		{ProtoIKE, "aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519", StrengthModern, ""},
		// charon derives the PRF from the integrity algorithm.
		{ProtoIKE, "aes256-sha256-modp2048", "aes256-sha256-prfsha256-modp2048", StrengthAcceptable, ""},
		{ProtoIKE, "3des-sha1-modp1024", "3des-sha1-prfsha1-modp1024", StrengthInsecure, ""},
		// With AEAD the integrity keywords only lend their PRFs.
		{ProtoIKE, "aes128gcm16-sha256-ecp256", "aes128gcm16-prfsha256-ecp256", StrengthModern, ""},
		{ProtoIKE, "aes256-sha2_256-curve25519!", "aes256-sha256-prfsha256-x25519", StrengthAcceptable, ""},
		{ProtoIKE, "aes256gcm16-x25519", "", 0, "PRF is mandatory"},
		{ProtoIKE, "aes256-prfsha256-x25519", "", 0, "needs an integrity algorithm"},
		{ProtoIKE, "aes256gcm16-prfsha256", "", 0, "DH group is mandatory"},
		{ProtoIKE, "aes256gcm16-aes256-sha256-x25519", "", 0, "cannot share a proposal"},
		{ProtoIKE, "aes256-sha256-modp1023", "", 0, `"modp1023" not recognized`},
		{ProtoIKE, "sha256-modp2048", "", 0, "encryption algorithm is mandatory"},
		{ProtoESP, "aes256gcm16", "aes256gcm16", StrengthModern, ""},
		{ProtoESP, "aes256-sha256-modp2048-modpnone", "aes256-sha256-modp2048-modpnone", StrengthAcceptable, ""},
		{ProtoESP, "aes256gcm16-prfsha256", "aes256gcm16", StrengthModern, ""},
		{ProtoESP, "aes128gcm16-esn-noesn", "aes128gcm16-esn-noesn", StrengthModern, ""},
		{ProtoESP, "aes128", "", 0, "needs an integrity algorithm"},
		{ProtoIKE, "", "", 0, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.proto.String()+"/"+tc.in, func(t *testing.T) {
			p, err := Parse(tc.proto, tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := p.Strength(); got != tc.strength {
				t.Errorf("Strength = %v, want %v", got, tc.strength)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name  string
		proto Protocol
		c     Choice
		want  []string
		err   string
	}{
		{
			name: "AEAD IKE", proto: ProtoIKE,
			c:    Choice{Encryption: []Encryption{AES256GCM16, ChaCha20Poly1305}, PRF: []PRF{PRFSHA384}, DH: []DHGroup{Curve25519, ECP256}},
			want: []string{"aes256gcm16-chacha20poly1305-prfsha384-x25519-ecp256"},
		},
		{
			name: "AEAD and classic split into two proposals", proto: ProtoIKE,
			c: Choice{
				Encryption: []Encryption{AES256, AES256GCM16},
				Integrity:  []Integrity{SHA256},
				PRF:        []PRF{PRFSHA256},
				DH:         []DHGroup{MODP2048},
			},
			want: []string{"aes256gcm16-prfsha256-modp2048", "aes256-sha256-prfsha256-modp2048"},
		},
		{
			name: "classic IKE without PRF leaves it to charon", proto: ProtoIKE,
			c:    Choice{Encryption: []Encryption{AES128}, Integrity: []Integrity{SHA256}, DH: []DHGroup{ECP256}},
			want: []string{"aes128-sha256-ecp256"},
		},
		{
			name: "AEAD IKE needs a PRF", proto: ProtoIKE,
			c:   Choice{Encryption: []Encryption{AES128GCM16}, DH: []DHGroup{ECP256}},
			err: "AEAD IKE proposal needs a PRF",
		},
		{
			name: "AEAD takes no integrity", proto: ProtoESP,
			c:   Choice{Encryption: []Encryption{AES128GCM16}, Integrity: []Integrity{SHA256}},
			err: "AEAD ciphers take no integrity",
		},
		{
			name: "classic needs integrity", proto: ProtoESP,
			c:   Choice{Encryption: []Encryption{AES256}},
			err: "need an integrity algorithm",
		},
		{
			name: "IKE needs DH", proto: ProtoIKE,
			c:   Choice{Encryption: []Encryption{AES256GCM16}, PRF: []PRF{PRFSHA256}},
			err: "at least one DH group",
		},
		{
			name: "ESP takes no PRF", proto: ProtoESP,
			c:   Choice{Encryption: []Encryption{AES256GCM16}, PRF: []PRF{PRFSHA256}},
			err: "take no PRF",
		},
		{
			name: "ESP with optional PFS", proto: ProtoESP,
			c:    Choice{Encryption: []Encryption{AES256GCM16}, DH: []DHGroup{ECP256, NoDH}},
			want: []string{"aes256gcm16-ecp256-modpnone"},
		},
		{
			name: "unknown and duplicate names", proto: ProtoIKE,
			c:   Choice{Encryption: []Encryption{"AES257", AES256GCM16, AES256GCM16}, PRF: []PRF{PRFSHA256}, DH: []DHGroup{ECP256}},
			err: "unknown encryption \"AES257\"",
		},
		{
			name: "nothing chosen", proto: ProtoESP,
			err: "at least one encryption algorithm",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := build(tc.proto, tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, tok := range got {
				if _, err := Parse(tc.proto, tok); err != nil {
					t.Errorf("Built proposal does not parse: %v", err)
				}
			}
		})
	}
}

func TestPresets(t *testing.T) {
	modern := []string{
		"aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521-x448",
		"aes256-aes128-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521",
		"aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-modp4096-modp3072-modp2048",
		"aes256-aes128-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-modp4096-modp3072-modp2048",
	}
	compatible := append(slices.Clone(modern), "aes256-aes128-sha1-prfsha1-x25519-ecp256-ecp384-ecp521-modp4096-modp3072-modp2048")
	wantIKE := map[Preset][]string{
		PresetModern:     modern,
		PresetCompatible: compatible,
		PresetLegacy: append(slices.Clone(compatible),
			"aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-prfsha1-modp1536-modp1024",
			"aes256-aes128-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-modp1536-modp1024",
			"aes256-aes128-sha1-prfsha1-modp1536-modp1024",
			"3des-sha256-sha1-prfsha256-prfsha1-ecp256-modp2048-modp1536-modp1024",
		),
	}
	wantStrength := map[Preset]Strength{PresetModern: StrengthAcceptable, PresetCompatible: StrengthDeprecated, PresetLegacy: StrengthInsecure}
	for _, p := range Presets {
		ike, err := IKE(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantIKE[p], ike); diff != "" {
			t.Errorf("IKE(%s) (-want +got):\n%s", p, diff)
		}
		for _, pfs := range []DHGroup{"", ECP256, Curve25519, MODP2048} {
			esp, err := ESP(p, pfs)
			if err != nil {
				t.Fatalf("ESP(%s, %q): %v", p, pfs, err)
			}
			weakest := StrengthModern
			for _, set := range []struct {
				proto  Protocol
				tokens []string
			}{{ProtoIKE, ike}, {ProtoESP, esp}} {
				for _, tok := range set.tokens {
					pr, err := Parse(set.proto, tok)
					if err != nil {
						t.Fatalf("Preset %s proposal %q: %v", p, tok, err)
					}
					weakest = min(weakest, pr.Strength())
				}
			}
			want := wantStrength[p]
			if pfs != "" {
				g, _ := pfs.Algorithm()
				want = min(want, g.Strength)
			}
			if weakest != want {
				t.Errorf("Preset %s (PFS %q): weakest %v, want %v", p, pfs, weakest, want)
			}
			if got := Insecure(append(ike, esp...)) != nil; got != p.RequiresInsecureOptIn() {
				t.Errorf("Preset %s: Insecure()=%v but RequiresInsecureOptIn=%v", p, Insecure(append(ike, esp...)), p.RequiresInsecureOptIn())
			}
		}
	}
	if _, err := IKE("Strong"); err == nil {
		t.Error("IKE accepted an unknown preset")
	}
}

func TestESPPresetPFS(t *testing.T) {
	tests := []struct {
		preset Preset
		pfs    DHGroup
		want   []string
		err    string
	}{
		{PresetModern, "", []string{"aes256gcm16-aes128gcm16-chacha20poly1305", "aes256-aes128-sha256-sha384-sha512"}, ""},
		{PresetModern, Curve25519, []string{"aes256gcm16-aes128gcm16-chacha20poly1305-x25519", "aes256-aes128-sha256-sha384-sha512-x25519"}, ""},
		{PresetCompatible, ECP256, []string{
			"aes256gcm16-aes128gcm16-chacha20poly1305-ecp256-modpnone",
			"aes256-aes128-sha256-sha384-sha512-ecp256-modpnone",
			"aes256-aes128-sha1-ecp256-modpnone",
		}, ""},
		{PresetLegacy, MODP1024, []string{
			"aes256gcm16-aes128gcm16-chacha20poly1305-modp1024-modpnone",
			"aes256-aes128-sha256-sha384-sha512-modp1024-modpnone",
			"aes256-aes128-sha1-modp1024-modpnone",
			"3des-sha256-sha1-modp1024-modpnone",
		}, ""},
		{PresetLegacy, MODP768, nil, "forbidden"},
		{PresetModern, MODP1024, nil, "insecure"},
		{PresetCompatible, MODP1536, nil, "insecure"},
		{PresetModern, NoDH, nil, "leave it empty"},
		{PresetModern, "ECP255", nil, "unknown DH group"},
	}
	for _, tc := range tests {
		got, err := ESP(tc.preset, tc.pfs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ESP(%s, %q) error %v, want %q", tc.preset, tc.pfs, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ESP(%s, %q): %v", tc.preset, tc.pfs, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ESP(%s, %q) (-want +got):\n%s", tc.preset, tc.pfs, diff)
		}
	}
}

func TestInsecureAndForbidden(t *testing.T) {
	legacy, err := IKE(PresetLegacy)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in                  []string
		insecure, forbidden []string
	}{
		{legacy, []string{"modp1536", "modp1024", "3des"}, nil},
		{[]string{"aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048", "aes256-sha1-prfsha1-ecp256"}, nil, nil},
		{[]string{"3des-md5-modp768!", "des-sha-modp1024", "null-sha1"}, []string{"3des", "modp1024"}, []string{"md5", "modp768", "des", "null"}},
		{[]string{"aes256-sha256-unknownalg"}, nil, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.insecure, Insecure(tc.in)); diff != "" {
			t.Errorf("Insecure(%q) (-want +got):\n%s", tc.in, diff)
		}
		if diff := cmp.Diff(tc.forbidden, Forbidden(tc.in)); diff != "" {
			t.Errorf("Forbidden(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestNegotiatePrefersGateway(t *testing.T) {
	// The client prefers CBC and MODP; the gateway's order wins, per
	// algorithm inside the first matching pair of proposals.
	gw := []string{"aes256gcm16-prfsha256-x25519-ecp256", "aes256-aes128-sha256-sha384-prfsha256-prfsha384-ecp256-modp2048"}
	client := []string{"aes128-sha384-modp2048-ecp256", "aes128gcm16-prfsha256-ecp256"}
	// The first gateway proposal (AEAD) meets only client proposal 2, which
	// lacks aes256gcm16, so the second decides; the client's PRF is derived
	// from its integrity algorithm.
	if got, ok := Negotiate(gw, client); !ok || got != "aes128-sha384-prfsha384-ecp256" {
		t.Errorf("Negotiate = %q, %v", got, ok)
	}
	if got, ok := Negotiate([]string{"aes128gcm16-prfsha256-ecp256"}, client); !ok || got != "aes128gcm16-prfsha256-ecp256" {
		t.Errorf("Negotiate = %q, %v", got, ok)
	}
	if got, ok := Negotiate([]string{"aes256gcm16-prfsha256-x25519"}, []string{"aes256gcm16-prfsha384-x25519"}); ok {
		t.Errorf("Negotiate matched %q without a common PRF", got)
	}
	if _, ok := Negotiate([]string{"bogus"}, []string{"bogus"}); ok {
		t.Error("Negotiate matched unparsable proposals")
	}
	// ESN must be agreed like any transform.
	if got, ok := NegotiateESP([]string{"aes256gcm16-esn"}, []string{"aes256gcm16"}); ok {
		t.Errorf("NegotiateESP agreed on %q between ESN and no ESN", got)
	}
	if got, ok := NegotiateESP([]string{"aes256gcm16-esn-noesn"}, []string{"aes256gcm16-noesn-esn"}); !ok || got != "aes256gcm16-esn" {
		t.Errorf("NegotiateESP = %q, %v; want aes256gcm16-esn", got, ok)
	}
}

func TestParseCharon(t *testing.T) {
	got, err := ParseCharon("IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024, IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519,ESP:AES_GCM_16_128/NO_EXT_SEQ")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.Protocol.String()+":"+p.String())
	}
	want := []string{"IKE:aes256-sha1-prfsha1-modp1024", "IKE:aes256gcm16-prfsha256-x25519", "ESP:aes128gcm16"}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"AES_CBC_256/HMAC_SHA1_96", "AH:HMAC_SHA1_96", "IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_224"} {
		if _, err := ParseCharon(bad); err == nil {
			t.Errorf("ParseCharon(%q) accepted", bad)
		}
	}
}

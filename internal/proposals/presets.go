package proposals

import (
	"fmt"
	"slices"
)

// Preset is a named algorithm policy a gateway offers its clients.
type Preset string

const (
	// PresetModern (the default) offers no SHA-1 and nothing that needs an
	// opt-in: AES-GCM and ChaCha20-Poly1305 with SHA-2 PRFs, then AES-CBC
	// with SHA-2 HMACs, each with elliptic-curve groups (Curve25519 and P-256
	// first) before MODP 2048-4096. Admitted as they come: the strongSwan
	// app (Android, Linux NetworkManager), Android's built-in IKEv2 client,
	// iOS 16 and macOS 13 without a profile (AES-256-CBC/SHA2-256 with P-256
	// or MODP 2048). Stock Windows needs its PowerShell profile (it proposes
	// MODP 1024 for IKE and SHA-1 for ESP); every family connects with its
	// ikegate profile. With a PFS group Modern requires it at every rekey, so
	// macOS and the strongSwan app need their profiles then (see ESP).
	PresetModern Preset = "Modern"
	// PresetCompatible adds SHA-1 as PRF and integrity (MUST- in RFC 8247
	// and RFC 8221), after everything Modern offers: Windows with the
	// NegotiateDH2048_AES256 registry value (AES-256 with MODP 2048, but ESP
	// with SHA-1 only) connects without a profile. Stock Windows 10 and 11
	// still fail: they propose only MODP 1024 for IKE, which needs Legacy.
	PresetCompatible Preset = "Compatible"
	// PresetLegacy adds 3DES and the SHOULD NOT groups MODP 1024 (group 2)
	// and MODP 1536 (group 5) after everything Compatible offers, in
	// proposals of their own, so that every client gets the strongest
	// algorithms it offers: stock Windows 11 gets AES-GCM with MODP 1024,
	// stock Windows 10 AES-256-CBC/SHA2-256 with MODP 1024, and 3DES is
	// chosen only by a client that offers nothing else. It must be opted
	// into: these algorithms are within reach of well-funded attackers.
	PresetLegacy Preset = "Legacy"
)

// Presets lists the presets from strictest to most permissive.
var Presets = []Preset{PresetModern, PresetCompatible, PresetLegacy}

// RequiresInsecureOptIn reports whether a preset offers Insecure algorithms.
func (p Preset) RequiresInsecureOptIn() bool { return p == PresetLegacy }

// As responder charon takes the first of its own proposals that any client
// proposal matches, and inside it its own order of algorithms. So the
// proposals are ordered strongest first, and a weaker algorithm gets a
// proposal of its own after the stronger ones rather than a place in a
// stronger proposal: a client offering P-256 and MODP 2048 in separate
// proposals (iOS) gets P-256, and one offering AES-GCM and 3DES gets AES-GCM.
var (
	aead       = []Encryption{AES256GCM16, AES128GCM16, ChaCha20Poly1305}
	cbc        = []Encryption{AES256, AES128}
	sha2       = []Integrity{SHA256, SHA384, SHA512}
	prfSHA2    = []PRF{PRFSHA256, PRFSHA384, PRFSHA512}
	ecGroups   = []DHGroup{Curve25519, ECP256, ECP384, ECP521}
	modpGroups = []DHGroup{MODP4096, MODP3072, MODP2048}
	weakGroups = []DHGroup{MODP1536, MODP1024}

	modernIKE = []Choice{
		{Encryption: aead, PRF: prfSHA2, DH: append(slices.Clone(ecGroups), Curve448)},
		{Encryption: cbc, Integrity: sha2, PRF: prfSHA2, DH: ecGroups},
		{Encryption: aead, PRF: prfSHA2, DH: modpGroups},
		{Encryption: cbc, Integrity: sha2, PRF: prfSHA2, DH: modpGroups},
	}
	sha1IKE = []Choice{
		{Encryption: cbc, Integrity: []Integrity{SHA1}, PRF: []PRF{PRFSHA1}, DH: append(slices.Clone(ecGroups), modpGroups...)},
	}
	legacyIKE = []Choice{
		{Encryption: aead, PRF: append(slices.Clone(prfSHA2), PRFSHA1), DH: weakGroups},
		{Encryption: cbc, Integrity: sha2, PRF: prfSHA2, DH: weakGroups},
		{Encryption: cbc, Integrity: []Integrity{SHA1}, PRF: []PRF{PRFSHA1}, DH: weakGroups},
		{Encryption: []Encryption{TripleDES}, Integrity: []Integrity{SHA256, SHA1}, PRF: []PRF{PRFSHA256, PRFSHA1}, DH: append([]DHGroup{ECP256, MODP2048}, weakGroups...)},
	}

	modernESP = []Choice{{Encryption: aead}, {Encryption: cbc, Integrity: sha2}}
	sha1ESP   = []Choice{{Encryption: cbc, Integrity: []Integrity{SHA1}}}
	legacyESP = []Choice{{Encryption: []Encryption{TripleDES}, Integrity: []Integrity{SHA256, SHA1}}}

	presetIKE = map[Preset][]Choice{
		PresetModern:     modernIKE,
		PresetCompatible: slices.Concat(modernIKE, sha1IKE),
		PresetLegacy:     slices.Concat(modernIKE, sha1IKE, legacyIKE),
	}
	presetESP = map[Preset][]Choice{
		PresetModern:     modernESP,
		PresetCompatible: slices.Concat(modernESP, sha1ESP),
		PresetLegacy:     slices.Concat(modernESP, sha1ESP, legacyESP),
	}
	errPresets = fmt.Errorf("known presets: %v", Presets)
)

// IKE returns the IKE proposals of a preset, most preferred first.
func IKE(p Preset) ([]string, error) {
	choices, ok := presetIKE[p]
	if !ok {
		return nil, fmt.Errorf("unknown preset %q; %w", p, errPresets)
	}
	var out []string
	for _, c := range choices {
		tokens, err := BuildIKE(c)
		if err != nil {
			return nil, fmt.Errorf("preset %s: %w", p, err)
		}
		out = append(out, tokens...)
	}
	return out, nil
}

// ESP returns the ESP proposals of a preset with PFS group pfs ("" for no
// PFS). Modern requires PFS when a group is given; Compatible and Legacy
// make it optional (NoDH), because macOS proposes no group when rekeying
// while iOS does, and a required group would break macOS clients at their
// first rekey.
func ESP(p Preset, pfs DHGroup) ([]string, error) {
	choices, ok := presetESP[p]
	if !ok {
		return nil, fmt.Errorf("unknown preset %q; %w", p, errPresets)
	}
	if pfs == NoDH {
		return nil, fmt.Errorf("PFS group %s: leave it empty for no PFS", pfs)
	}
	if pfs != "" {
		a, err := pfs.Algorithm()
		if err != nil {
			return nil, err
		}
		if a.Strength == StrengthForbidden {
			return nil, fmt.Errorf("PFS group %s is forbidden (%s)", pfs, a.Why)
		}
		if a.Strength == StrengthInsecure && !p.RequiresInsecureOptIn() {
			return nil, fmt.Errorf("PFS group %s is insecure (%s) and preset %s does not allow it", pfs, a.Why, p)
		}
	}
	var out []string
	for _, c := range choices {
		if pfs != "" {
			c.DH = []DHGroup{pfs}
			if p != PresetModern {
				c.DH = append(c.DH, NoDH)
			}
		}
		tokens, err := BuildESP(c)
		if err != nil {
			return nil, fmt.Errorf("preset %s: %w", p, err)
		}
		out = append(out, tokens...)
	}
	return slices.Clip(out), nil
}

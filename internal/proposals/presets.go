package proposals

import (
	"fmt"
	"slices"
)

// Preset is a named algorithm policy a gateway offers its clients.
type Preset string

const (
	// PresetModern (the default) offers only Modern algorithms: AES-GCM
	// and ChaCha20-Poly1305 with SHA-2 PRFs and elliptic-curve groups,
	// Curve25519 and P-256 first. The strongSwan app on Android and Linux
	// (NetworkManager) connect as they are; Apple devices connect with the
	// .mobileconfig profile ikegate generates, Windows after the
	// Set-VpnConnectionIPsecConfiguration policy of its PowerShell profile.
	PresetModern Preset = "Modern"
	// PresetCompatible adds AES-CBC with SHA-2 HMACs and MODP 2048-4096, for
	// clients set up by hand: Apple's built-in IKEv2 client without a
	// profile (AES-256-CBC/SHA2-256 with MODP 2048 or P-256). Stock Windows
	// still fails: it proposes only MODP 1024 for IKE (unless the
	// NegotiateDH2048_AES256 registry value is set) and only SHA-1 for ESP,
	// so Windows needs the PowerShell profile's policy under every preset
	// but Legacy.
	PresetCompatible Preset = "Compatible"
	// PresetLegacy adds the seed's 3DES, SHA-1 and DH group 2 (MODP 1024)
	// and group 5 (MODP 1536) after everything Compatible offers, so that
	// unconfigured Windows and old devices connect. It must be opted into:
	// these algorithms are within reach of well-funded attackers.
	PresetLegacy Preset = "Legacy"
)

// Presets lists the presets from strictest to most permissive.
var Presets = []Preset{PresetModern, PresetCompatible, PresetLegacy}

// RequiresInsecureOptIn reports whether a preset offers Insecure algorithms.
func (p Preset) RequiresInsecureOptIn() bool { return p == PresetLegacy }

var (
	modernAEAD = Choice{
		Encryption: []Encryption{AES256GCM16, AES128GCM16, ChaCha20Poly1305},
		PRF:        []PRF{PRFSHA256, PRFSHA384, PRFSHA512},
		DH:         []DHGroup{Curve25519, ECP256, ECP384, ECP521, Curve448},
	}
	// Separate proposals for elliptic-curve and MODP groups: charon takes
	// the first of its own proposals any client proposal matches, so a
	// client offering P-256 and MODP 2048 in separate proposals (iOS)
	// gets P-256.
	cbcECP = Choice{
		Encryption: []Encryption{AES256, AES128},
		Integrity:  []Integrity{SHA256, SHA384, SHA512},
		PRF:        []PRF{PRFSHA256, PRFSHA384, PRFSHA512},
		DH:         []DHGroup{Curve25519, ECP256, ECP384, ECP521},
	}
	cbcMODP = Choice{
		Encryption: []Encryption{AES256, AES128},
		Integrity:  []Integrity{SHA256, SHA384, SHA512},
		PRF:        []PRF{PRFSHA256, PRFSHA384, PRFSHA512},
		DH:         []DHGroup{MODP2048, MODP3072, MODP4096},
	}
	legacyIKE = Choice{
		Encryption: []Encryption{AES256, AES128, TripleDES},
		Integrity:  []Integrity{SHA256, SHA384, SHA1},
		PRF:        []PRF{PRFSHA256, PRFSHA384, PRFSHA1},
		DH:         []DHGroup{MODP2048, MODP1536, MODP1024},
	}

	espAEAD    = Choice{Encryption: []Encryption{AES256GCM16, AES128GCM16, ChaCha20Poly1305}}
	espCBC     = Choice{Encryption: []Encryption{AES256, AES128}, Integrity: []Integrity{SHA256, SHA384, SHA512}}
	espLegacy  = Choice{Encryption: []Encryption{AES256, AES128, TripleDES}, Integrity: []Integrity{SHA256, SHA1}}
	presetIKE  = map[Preset][]Choice{PresetModern: {modernAEAD}, PresetCompatible: {modernAEAD, cbcECP, cbcMODP}, PresetLegacy: {modernAEAD, cbcECP, cbcMODP, legacyIKE}}
	presetESP  = map[Preset][]Choice{PresetModern: {espAEAD}, PresetCompatible: {espAEAD, espCBC}, PresetLegacy: {espAEAD, espCBC, espLegacy}}
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

package swan

import (
	"fmt"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/proposals"
)

// apiEncryption maps the API's cipher names onto the catalogue's where they differ.
func apiEncryption(in []v1alpha1.EncryptionAlgorithm) []proposals.Encryption {
	out := make([]proposals.Encryption, len(in))
	for i, e := range in {
		out[i] = proposals.Encryption(e)
		if e == "3DES" {
			out[i] = proposals.TripleDES
		}
	}
	return out
}

// onlyAEAD reports whether every cipher is an AEAD: the API lets such a
// proposal name integrity algorithms, which charon would not use, so they
// are dropped rather than refused.
func onlyAEAD(enc []proposals.Encryption) bool {
	for _, e := range enc {
		if a, err := e.Algorithm(); err != nil || !a.AEAD {
			return false
		}
	}
	return true
}

// prfFor is the PRF the API uses for an integrity algorithm when a proposal
// names no PRF.
var prfFor = map[v1alpha1.IntegrityAlgorithm]proposals.PRF{
	"SHA256":  proposals.PRFSHA256,
	"SHA384":  proposals.PRFSHA384,
	"SHA512":  proposals.PRFSHA512,
	"SHA1":    proposals.PRFSHA1,
	"MD5":     proposals.PRFMD5,
	"AESXCBC": proposals.PRFAESXCBC,
}

// ikeProposals returns the IKE proposal strings of a preset or of explicit
// proposals (which win), and an error for a combination charon cannot use.
// Whether the algorithms may be used is algorithmPolicy's to say.
func ikeProposals(preset v1alpha1.ProposalPreset, props []v1alpha1.IKEProposal) ([]string, error) {
	if len(props) == 0 {
		return presetIKE(preset)
	}
	var out []string
	for _, p := range props {
		c := proposals.Choice{Encryption: apiEncryption(p.Encryption)}
		for _, i := range p.Integrity {
			c.Integrity = append(c.Integrity, proposals.Integrity(i))
		}
		if onlyAEAD(c.Encryption) {
			c.Integrity = nil
		}
		for _, f := range p.PRF {
			c.PRF = append(c.PRF, proposals.PRF(f))
		}
		if len(c.PRF) == 0 {
			for _, i := range p.Integrity {
				if f, ok := prfFor[i]; ok {
					c.PRF = append(c.PRF, f)
				}
			}
			if len(c.PRF) == 0 {
				c.PRF = []proposals.PRF{proposals.PRFSHA256}
			}
		}
		for _, g := range p.DHGroups {
			c.DH = append(c.DH, proposals.DHGroup(g))
		}
		tokens, err := proposals.BuildIKE(c)
		if err != nil {
			return nil, err
		}
		out = append(out, tokens...)
	}
	return out, nil
}

// espProposals is ikeProposals for CHILD_SAs; a PFS group other than None is
// added to every proposal.
func espProposals(preset v1alpha1.ProposalPreset, props []v1alpha1.ESPProposal, pfs v1alpha1.PFSGroup) ([]string, error) {
	var dh []proposals.DHGroup
	if pfs != "" && pfs != v1alpha1.PFSNone {
		dh = []proposals.DHGroup{proposals.DHGroup(pfs)}
	}
	if len(props) == 0 {
		return presetESP(preset, dh)
	}
	var out []string
	for _, p := range props {
		c := proposals.Choice{Encryption: apiEncryption(p.Encryption), DH: dh}
		for _, i := range p.Integrity {
			c.Integrity = append(c.Integrity, proposals.Integrity(i))
		}
		if onlyAEAD(c.Encryption) {
			c.Integrity = nil
		}
		tokens, err := proposals.BuildESP(c)
		if err != nil {
			return nil, err
		}
		out = append(out, tokens...)
	}
	return out, nil
}

// algorithmPolicy says why proposals may not be used, or "" when they may,
// after RFC 8247 (IKEv2) and RFC 8221 (ESP): MUST NOT algorithms (DES, MD5,
// MODP 768) never, SHOULD NOT groups (MODP 1024, 1536) and 3DES only with
// allowInsecureAlgorithms. SHA-1 (MUST-) needs no opt-in.
func algorithmPolicy(what string, tokens []string, optIn bool) string {
	if bad := proposals.Forbidden(tokens); len(bad) > 0 {
		return fmt.Sprintf("%s use %s, which RFC 8247 and RFC 8221 forbid (MUST NOT); not even allowInsecureAlgorithms allows them", what, strings.Join(bad, ", "))
	}
	if bad := proposals.Insecure(tokens); len(bad) > 0 && !optIn {
		return fmt.Sprintf("%s use %s, which RFC 8247 and RFC 8221 advise against (SHOULD NOT), without allowInsecureAlgorithms", what, strings.Join(bad, ", "))
	}
	return ""
}

func preset(p v1alpha1.ProposalPreset) proposals.Preset {
	if p == "" {
		return proposals.PresetModern
	}
	return proposals.Preset(p)
}

func presetIKE(p v1alpha1.ProposalPreset) ([]string, error) {
	return proposals.IKE(preset(p))
}

// presetESP returns a preset's ESP proposals with PFS group dh (none if
// empty). The catalogue refuses an insecure PFS group outside Legacy; the
// API accepts it with allowInsecureAlgorithms, which the caller checks on
// the returned proposals, so it is added here the way the catalogue adds
// secure ones.
func presetESP(p v1alpha1.ProposalPreset, dh []proposals.DHGroup) ([]string, error) {
	var pfs proposals.DHGroup
	if len(dh) > 0 {
		pfs = dh[0]
	}
	tokens, err := proposals.ESP(preset(p), pfs)
	if err == nil || pfs == "" {
		return tokens, err
	}
	// A forbidden group is added too, so that algorithmPolicy names it.
	a, aerr := pfs.Algorithm()
	if aerr != nil || a.Strength > proposals.StrengthInsecure {
		return nil, err
	}
	base, err := proposals.ESP(preset(p), "")
	if err != nil {
		return nil, err
	}
	suffix := "-" + a.Token
	if preset(p) != proposals.PresetModern {
		none, _ := proposals.NoDH.Algorithm()
		suffix += "-" + none.Token
	}
	out := make([]string, len(base))
	for i, t := range base {
		out[i] = t + suffix
	}
	return out, nil
}

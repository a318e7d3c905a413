package proposals

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Protocol is what a proposal negotiates: the IKE_SA or an ESP CHILD_SA.
type Protocol int

// Protocols.
const (
	ProtoIKE Protocol = iota
	ProtoESP
)

func (p Protocol) String() string {
	if p == ProtoIKE {
		return "IKE"
	}
	return "ESP"
}

// Proposal is one parsed proposal: per transform type, algorithms in
// preference order.
type Proposal struct {
	Protocol   Protocol
	Encryption []Algorithm
	Integrity  []Algorithm
	PRF        []Algorithm
	DH         []Algorithm
	ESN        []Algorithm
}

// integPRF maps an integrity algorithm to the PRF charon assumes for an IKE
// proposal that names none.
var integPRF = map[string]string{
	"sha1":    "prfsha1",
	"sha256":  "prfsha256",
	"sha384":  "prfsha384",
	"sha512":  "prfsha512",
	"md5":     "prfmd5",
	"aesxcbc": "prfaesxcbc",
}

// Parse reads a strongSwan proposal string ("aes256gcm16-prfsha256-x25519")
// the way charon does: an IKE proposal without PRF takes the PRFs of its
// integrity algorithms, AEAD proposals drop integrity, ESP proposals drop
// PRFs and default to no ESN. A trailing "!" (strict flag) is ignored.
func Parse(proto Protocol, token string) (Proposal, error) {
	p := Proposal{Protocol: proto}
	token = strings.TrimSuffix(strings.TrimSpace(token), "!")
	if token == "" {
		return p, errors.New("empty proposal")
	}
	for _, kw := range strings.Split(token, "-") {
		a, ok := Lookup(kw)
		if !ok {
			return p, fmt.Errorf("proposal %q: algorithm %q not recognized", token, kw)
		}
		list := p.list(a.Kind)
		if !slices.ContainsFunc(*list, func(b Algorithm) bool { return b.Token == a.Token }) {
			*list = append(*list, a)
		}
	}
	if len(p.Encryption) == 0 {
		return p, fmt.Errorf("proposal %q: an encryption algorithm is mandatory", token)
	}
	aead := 0
	for _, e := range p.Encryption {
		if e.AEAD {
			aead++
		}
	}
	if aead > 0 && aead < len(p.Encryption) {
		return p, fmt.Errorf("proposal %q: AEAD and classic encryption algorithms cannot share a proposal", token)
	}
	if proto == ProtoIKE {
		if len(p.PRF) == 0 {
			for _, i := range p.Integrity {
				a := byToken[integPRF[i.Token]]
				if !slices.ContainsFunc(p.PRF, func(b Algorithm) bool { return b.Token == a.Token }) {
					p.PRF = append(p.PRF, a)
				}
			}
		}
		if len(p.PRF) == 0 {
			return p, fmt.Errorf("proposal %q: a PRF is mandatory in IKE proposals", token)
		}
		p.DH = slices.DeleteFunc(p.DH, func(a Algorithm) bool { return a.Name == string(NoDH) })
		if len(p.DH) == 0 {
			return p, fmt.Errorf("proposal %q: a DH group is mandatory in IKE proposals", token)
		}
		if len(p.ESN) > 0 {
			return p, fmt.Errorf("proposal %q: ESN applies to ESP only", token)
		}
	} else {
		p.PRF = nil
		if len(p.ESN) == 0 {
			p.ESN = []Algorithm{byToken["noesn"]}
		}
	}
	if aead > 0 {
		p.Integrity = nil
	} else if len(p.Integrity) == 0 {
		return p, fmt.Errorf("proposal %q: classic encryption needs an integrity algorithm", token)
	}
	return p, nil
}

func (p *Proposal) list(k Kind) *[]Algorithm {
	switch k {
	case KindEncryption:
		return &p.Encryption
	case KindIntegrity:
		return &p.Integrity
	case KindPRF:
		return &p.PRF
	case KindDH:
		return &p.DH
	default:
		return &p.ESN
	}
}

// String is the proposal in strongSwan syntax; noesn, charon's default, is
// left out.
func (p Proposal) String() string {
	var kw []string
	for _, l := range [][]Algorithm{p.Encryption, p.Integrity, p.PRF, p.DH, p.ESN} {
		for _, a := range l {
			if a.Token == "noesn" && len(p.ESN) == 1 {
				continue
			}
			kw = append(kw, a.Token)
		}
	}
	return strings.Join(kw, "-")
}

// Strength is the class of the proposal's weakest algorithm.
func (p Proposal) Strength() Strength {
	s := StrengthModern
	for _, l := range [][]Algorithm{p.Encryption, p.Integrity, p.PRF, p.DH} {
		for _, a := range l {
			s = min(s, a.Strength)
		}
	}
	return s
}

// Insecure names the algorithms that need the allowInsecureAlgorithms
// opt-in (strongSwan keywords, each once, in order of appearance). It
// reports what is written, so that an API error can quote it; unknown
// keywords are left to Parse.
func Insecure(tokens []string) []string { return ofStrength(tokens, StrengthInsecure) }

// Forbidden names the MUST NOT algorithms in proposal strings, which no
// opt-in allows, like Insecure.
func Forbidden(tokens []string) []string { return ofStrength(tokens, StrengthForbidden) }

func ofStrength(tokens []string, s Strength) []string {
	var out []string
	for _, t := range tokens {
		for _, kw := range strings.Split(strings.TrimSuffix(strings.TrimSpace(t), "!"), "-") {
			a, ok := Lookup(kw)
			if ok && a.Strength == s && !slices.Contains(out, a.Token) {
				out = append(out, a.Token)
			}
		}
	}
	return out
}

// Choice is a structured algorithm selection, as the API carries it, in
// preference order.
type Choice struct {
	Encryption []Encryption
	Integrity  []Integrity
	PRF        []PRF
	DH         []DHGroup
}

// BuildIKE turns c into IKE proposal strings. AEAD and classic ciphers
// cannot share a proposal, so a choice with both yields two: the AEAD one
// (with the PRFs and groups) first, then the classic one (with integrity).
// An AEAD proposal needs a PRF, a classic one an integrity algorithm, and
// IKE always needs a DH group.
func BuildIKE(c Choice) ([]string, error) { return build(ProtoIKE, c) }

// BuildESP turns c into ESP proposal strings; DH groups are the PFS groups
// (none for no PFS, NoDH to make PFS optional), and PRFs do not apply.
func BuildESP(c Choice) ([]string, error) { return build(ProtoESP, c) }

func build(proto Protocol, c Choice) ([]string, error) {
	var errs []error
	var aead, classic, integ, prf, dh []Algorithm
	resolve := func(k Kind, names []string, into *[]Algorithm) {
		seen := map[string]bool{}
		for _, n := range names {
			a, err := lookupName(k, n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if seen[n] {
				errs = append(errs, fmt.Errorf("%s %s listed twice", k, n))
				continue
			}
			seen[n] = true
			*into = append(*into, a)
		}
	}
	var enc []Algorithm
	resolve(KindEncryption, toStrings(c.Encryption), &enc)
	resolve(KindIntegrity, toStrings(c.Integrity), &integ)
	resolve(KindPRF, toStrings(c.PRF), &prf)
	resolve(KindDH, toStrings(c.DH), &dh)
	for _, e := range enc {
		if e.AEAD {
			aead = append(aead, e)
		} else {
			classic = append(classic, e)
		}
	}
	if len(enc) == 0 && len(c.Encryption) == 0 {
		errs = append(errs, errors.New("at least one encryption algorithm is required"))
	}
	if len(integ) > 0 && len(classic) == 0 && len(aead) > 0 {
		errs = append(errs, errors.New("AEAD ciphers take no integrity algorithm; remove it or add a classic cipher"))
	}
	if len(classic) > 0 && len(integ) == 0 {
		errs = append(errs, errors.New("classic (non-AEAD) ciphers need an integrity algorithm"))
	}
	switch proto {
	case ProtoIKE:
		if len(aead) > 0 && len(prf) == 0 {
			errs = append(errs, errors.New("an AEAD IKE proposal needs a PRF"))
		}
		if len(dh) == 0 {
			errs = append(errs, errors.New("IKE needs at least one DH group"))
		}
		if slices.ContainsFunc(dh, func(a Algorithm) bool { return a.Name == string(NoDH) }) {
			errs = append(errs, errors.New("IKE cannot do without a DH group"))
		}
	case ProtoESP:
		if len(prf) > 0 {
			errs = append(errs, errors.New("ESP proposals take no PRF"))
		}
		if len(dh) == 1 && dh[0].Name == string(NoDH) {
			errs = append(errs, errors.New("DH group None alone is the same as no PFS groups"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	if len(aead) > 0 {
		out = append(out, Proposal{Protocol: proto, Encryption: aead, PRF: prf, DH: dh}.String())
	}
	if len(classic) > 0 {
		out = append(out, Proposal{Protocol: proto, Encryption: classic, Integrity: integ, PRF: prf, DH: dh}.String())
	}
	return out, nil
}

func toStrings[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// Negotiate mimics charon as IKE responder with its default
// prefer_configured_proposals: the gateway's proposals are tried in order,
// each against the client's in order, and the first pair with an algorithm
// in common for every transform type wins; within it the gateway's order
// picks each algorithm. It returns the selected proposal in strongSwan
// syntax. Unparsable proposals are skipped, as charon skips them.
func Negotiate(gateway, client []string) (string, bool) {
	return negotiate(ProtoIKE, gateway, client, false)
}

// NegotiateESP is Negotiate for ESP proposals as exchanged in
// CREATE_CHILD_SA (rekeying, or further CHILD_SAs), where PFS groups must
// match: a side without DH group matches only one that lists none or NoDH.
func NegotiateESP(gateway, client []string) (string, bool) {
	return negotiate(ProtoESP, gateway, client, false)
}

// negotiateESPInitial is NegotiateESP for the CHILD_SA created with
// IKE_AUTH, whose keys come from the IKE_SA: DH groups are ignored, which is
// why a PFS mismatch only shows when that CHILD_SA is first rekeyed.
func negotiateESPInitial(gateway, client []string) (string, bool) {
	return negotiate(ProtoESP, gateway, client, true)
}

func negotiate(proto Protocol, gateway, client []string, skipDH bool) (string, bool) {
	parse := func(tokens []string) []Proposal {
		var out []Proposal
		for _, t := range tokens {
			if p, err := Parse(proto, t); err == nil {
				out = append(out, p)
			}
		}
		return out
	}
	cl := parse(client)
	for _, g := range parse(gateway) {
		for _, c := range cl {
			if sel, ok := selectAlgos(g, c, skipDH); ok {
				return sel.String(), true
			}
		}
	}
	return "", false
}

func selectAlgos(own, other Proposal, skipDH bool) (Proposal, bool) {
	sel := Proposal{Protocol: own.Protocol}
	var ok bool
	if sel.Encryption, ok = selectAlgo(own.Encryption, other.Encryption, false); !ok {
		return sel, false
	}
	if len(sel.Encryption) == 0 || !sel.Encryption[0].AEAD {
		if sel.Integrity, ok = selectAlgo(own.Integrity, other.Integrity, false); !ok {
			return sel, false
		}
	}
	if own.Protocol == ProtoIKE {
		if sel.PRF, ok = selectAlgo(own.PRF, other.PRF, false); !ok {
			return sel, false
		}
	}
	if !skipDH {
		if sel.DH, ok = selectAlgo(own.DH, other.DH, own.Protocol == ProtoESP); !ok {
			return sel, false
		}
	}
	if sel.ESN, ok = selectAlgo(own.ESN, other.ESN, false); !ok {
		return sel, false
	}
	return sel, true
}

// selectAlgo picks own's first algorithm that other has too. Two empty lists
// match with nothing selected; with optional (ESP DH groups) an empty list
// also matches a list containing NoDH.
func selectAlgo(own, other []Algorithm, optional bool) ([]Algorithm, bool) {
	hasNone := func(l []Algorithm) bool {
		return slices.ContainsFunc(l, func(a Algorithm) bool { return a.Name == string(NoDH) })
	}
	switch {
	case len(own) == 0 && len(other) == 0:
		return nil, true
	case len(own) == 0:
		return nil, optional && hasNone(other)
	case len(other) == 0:
		return nil, optional && hasNone(own)
	}
	for _, a := range own {
		for _, b := range other {
			if a.Token == b.Token {
				if a.Name == string(NoDH) {
					return nil, true
				}
				return []Algorithm{a}, true
			}
		}
	}
	return nil, false
}

// parseCharon reads proposals as charon prints them in its log and in
// swanctl output, e.g. "IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024,
// IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519" or
// "ESP:AES_GCM_16_256/NO_EXT_SEQ", so that what a peer sent can be compared
// with what a gateway offers.
func parseCharon(s string) ([]Proposal, error) {
	var out []Proposal
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		proto, algs, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("proposal %q lacks a protocol prefix", part)
		}
		var pr Protocol
		switch proto {
		case "IKE":
			pr = ProtoIKE
		case "ESP":
			pr = ProtoESP
		default:
			return nil, fmt.Errorf("proposal %q: protocol %s not supported", part, proto)
		}
		var kws []string
		for _, name := range strings.Split(algs, "/") {
			a, ok := byCharon[name]
			if !ok {
				return nil, fmt.Errorf("proposal %q: algorithm %s not in the catalogue", part, name)
			}
			kws = append(kws, a.Token)
		}
		p, err := Parse(pr, strings.Join(kws, "-"))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

var byCharon = func() map[string]Algorithm {
	m := make(map[string]Algorithm, len(catalogue))
	for _, a := range catalogue {
		m[a.Charon] = a
	}
	return m
}()

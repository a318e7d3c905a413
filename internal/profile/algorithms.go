package profile

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ikegate/ikegate/internal/proposals"
)

// A dialect is what one client OS can be told to propose: per transform,
// the catalogue's strongSwan keyword and the OS's own name for it. Insecure
// algorithms are left out on purpose: a generated profile never configures
// one, even for a gateway that would accept it.
type dialect struct {
	name string
	// ikeEnc, hash and ikeDH are the IKE_SA settings; the OS uses one hash
	// as integrity (classic ciphers) and as PRF.
	ikeEnc, hash, ikeDH []term
	// espEnc, espInteg and pfs are the CHILD_SA settings; an integrity
	// term with an empty token stands for "none" (AEAD ciphers).
	espEnc, espInteg, pfs []term
	// pfsGroups picks the PFS groups the OS may be set to for a pool's PFS
	// policy; a nil entry is "no PFS".
	pfsGroups func(d dialect, p PFS) []*term
}

// term is one algorithm: strongSwan keyword and the OS's value.
type term struct {
	token string
	value string
}

// ikeOffer is one IKE proposal a client sends, with the values that make
// its OS send it.
type ikeOffer struct {
	token         string
	enc, hash, dh term
	aead          bool
}

// espOffer is one ESP proposal a client sends (as in CREATE_CHILD_SA, with
// its PFS group if any).
type espOffer struct {
	token      string
	enc, integ term
	pfs        *term
	aead       bool
}

func isAEAD(token string) bool {
	a, ok := proposals.Lookup(token)
	return ok && a.AEAD
}

// ikeOffers lists every IKE proposal the dialect can make.
func (d dialect) ikeOffers() []ikeOffer {
	var out []ikeOffer
	for _, e := range d.ikeEnc {
		for _, h := range d.hash {
			for _, g := range d.ikeDH {
				o := ikeOffer{enc: e, hash: h, dh: g, aead: isAEAD(e.token)}
				if o.aead {
					o.token = strings.Join([]string{e.token, "prf" + h.token, g.token}, "-")
				} else {
					o.token = strings.Join([]string{e.token, h.token, "prf" + h.token, g.token}, "-")
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// groups returns the dialect's PFS groups, with "no PFS" first if none is set.
func (d dialect) groups(none bool) []*term {
	var out []*term
	if none {
		out = append(out, nil)
	}
	for i := range d.pfs {
		out = append(out, &d.pfs[i])
	}
	return out
}

// espOffers lists every ESP proposal the dialect can make with the PFS
// groups given.
func (d dialect) espOffers(groups []*term) []espOffer {
	var out []espOffer
	for _, e := range d.espEnc {
		aead := isAEAD(e.token)
		for _, in := range d.espInteg {
			if aead && in.token != "" || !aead && in.token == "" {
				continue
			}
			for _, g := range groups {
				parts := []string{e.token}
				if in.token != "" {
					parts = append(parts, in.token)
				}
				if g != nil {
					parts = append(parts, g.token)
				}
				out = append(out, espOffer{token: strings.Join(parts, "-"), enc: e, integ: in, pfs: g, aead: aead})
			}
		}
	}
	return out
}

// best returns the offer the gateway prefers among those it accepts: the
// one matching the gateway's earliest proposal and, inside it, the
// gateway's earliest algorithms, since the gateway's proposals are ordered
// strongest first and charon as responder picks by its own order.
func best[T any](proto proposals.Protocol, gateway []string, offers []T, token func(T) string) (T, bool) {
	var zero T
	parsed := make([]*proposals.Proposal, len(gateway))
	for i, g := range gateway {
		if p, err := proposals.Parse(proto, g); err == nil {
			parsed[i] = &p
		}
	}
	var found bool
	var bestRank []int
	var bestOffer T
	for _, o := range offers {
		r, ok := rank(proto, gateway, parsed, token(o))
		if ok && (!found || slices.Compare(r, bestRank) < 0) {
			found, bestRank, bestOffer = true, r, o
		}
	}
	if !found {
		return zero, false
	}
	return bestOffer, true
}

func rank(proto proposals.Protocol, gateway []string, parsed []*proposals.Proposal, offer string) ([]int, bool) {
	c, err := proposals.Parse(proto, offer)
	if err != nil {
		return nil, false
	}
	for i, g := range gateway {
		if parsed[i] == nil || !accepts(proto, g, offer) {
			continue
		}
		p := parsed[i]
		return []int{i, index(p.Encryption, c.Encryption), index(p.Integrity, c.Integrity), index(p.PRF, c.PRF), index(p.DH, c.DH)}, true
	}
	return nil, false
}

// accepts reports whether the gateway's proposal takes the client's: for
// ESP as in a CREATE_CHILD_SA, where PFS groups must agree, because a CHILD_SA
// that comes up with IKE_AUTH but fails its first rekey does not work.
func accepts(proto proposals.Protocol, gateway, client string) bool {
	if proto == proposals.ProtoIKE {
		_, ok := proposals.Negotiate([]string{gateway}, []string{client})
		return ok
	}
	_, ok := proposals.NegotiateESP([]string{gateway}, []string{client})
	return ok
}

// index is the position of the client's algorithm in the gateway's list;
// a client without one (no PFS) ranks where the gateway lists "none".
func index(gateway, client []proposals.Algorithm) int {
	if len(client) == 0 {
		return max(0, slices.IndexFunc(gateway, func(a proposals.Algorithm) bool { return a.Name == string(proposals.NoDH) }))
	}
	return slices.IndexFunc(gateway, func(a proposals.Algorithm) bool { return a.Token == client[0].Token })
}

// PFS is what the gateway's ESP proposals say about PFS.
type PFS int

// PFS policies of a pool's ESP proposals.
const (
	PFSNone     PFS = iota // no proposal has a DH group
	PFSOptional            // some have a group, but "none" is accepted too
	PFSRequired            // every proposal requires a group
)

func pfsPolicy(esp []string) PFS {
	groups, none := false, false
	for _, t := range esp {
		p, err := proposals.Parse(proposals.ProtoESP, t)
		if err != nil {
			continue
		}
		if len(p.DH) == 0 {
			none = true
		}
		for _, a := range p.DH {
			if a.Name == string(proposals.NoDH) {
				none = true
			} else {
				groups = true
			}
		}
	}
	switch {
	case !groups:
		return PFSNone
	case none:
		return PFSOptional
	default:
		return PFSRequired
	}
}

// names lists the API names of a dialect's terms, for messages that say
// what a gateway could add.
func names(ts ...[]term) string {
	var out []string
	for _, l := range ts {
		for _, t := range l {
			if t.token == "" {
				continue
			}
			if a, ok := proposals.Lookup(t.token); ok && !slices.Contains(out, a.Name) {
				out = append(out, a.Name)
			}
		}
	}
	return strings.Join(out, ", ")
}

// ikeFix says what would let the dialect meet the gateway's IKE proposals.
func (d dialect) ikeFix(gateway []string) error {
	hint := ""
	for _, p := range proposals.Presets {
		if p.RequiresInsecureOptIn() {
			continue
		}
		if tokens, err := proposals.IKE(p); err == nil {
			if _, ok := best(proposals.ProtoIKE, tokens, d.ikeOffers(), func(o ikeOffer) string { return o.token }); ok {
				hint = fmt.Sprintf("set spec.ike.preset %s on the VPNGateway or add", p)
				break
			}
		}
	}
	if hint == "" {
		hint = "add"
	}
	return fmt.Errorf("%s cannot propose any of this gateway's IKE proposals (%s); %s a proposal to spec.ike.proposals with encryption from %s, PRF from %s and DH groups from %s",
		d.name, strings.Join(gateway, ", "), hint, names(d.ikeEnc), prfNames(d.hash), names(d.ikeDH))
}

// espFix says what would let the dialect meet the pool's ESP proposals.
func (d dialect) espFix(pool string, esp []string, groups []*term) error {
	pfs := slices.ContainsFunc(groups, func(t *term) bool { return t != nil })
	var group proposals.DHGroup
	if pfs {
		for _, t := range esp {
			if p, err := proposals.Parse(proposals.ProtoESP, t); err == nil && len(p.DH) > 0 && p.DH[0].Name != string(proposals.NoDH) {
				group = proposals.DHGroup(p.DH[0].Name)
				break
			}
		}
	}
	hint := ""
	for _, p := range proposals.Presets {
		if p.RequiresInsecureOptIn() {
			continue
		}
		if tokens, err := proposals.ESP(p, group); err == nil {
			offers := d.espOffers(d.pfsGroups(d, pfsPolicy(tokens)))
			if _, ok := best(proposals.ProtoESP, tokens, offers, func(o espOffer) string { return o.token }); ok {
				hint = fmt.Sprintf("set spec.esp.preset %s on MobilePool %s or add", p, pool)
				break
			}
		}
	}
	if hint == "" {
		hint = "add"
	}
	msg := fmt.Sprintf("%s cannot propose any of the ESP proposals of MobilePool %s (%s); %s a proposal to spec.esp.proposals with encryption from %s and integrity from %s",
		d.name, pool, strings.Join(esp, ", "), hint, names(d.espEnc), names(d.espInteg))
	if pfs {
		msg += fmt.Sprintf(", and a PFS group from %s (spec.esp.pfsGroup)", names(d.pfs))
	}
	return fmt.Errorf("%s", msg)
}

func prfNames(hash []term) string {
	var prfs []term
	for _, h := range hash {
		prfs = append(prfs, term{token: "prf" + h.token})
	}
	return names(prfs)
}

// chosen is the pair of proposals a dialect sends.
type chosen struct {
	ike ikeOffer
	esp espOffer
}

// choose picks the dialect's IKE and ESP settings for in, or says why none
// works. Every user of a pool gets the same answer, and working it out
// negotiates every combination the OS can send, so answers are kept (see
// choices).
func (d dialect) choose(in Input) (chosen, error) {
	key := choiceKey{d.name, in.Pool, strings.Join(in.IKEProposals, ","), strings.Join(in.ESPProposals, ",")}
	if r, ok := choices.get(key); ok {
		return r.c, r.err
	}
	c, err := d.work(in)
	choices.put(key, choice{c, err})
	return c, err
}

// work is choose without the memory.
func (d dialect) work(in Input) (chosen, error) {
	groups := d.pfsGroups(d, pfsPolicy(in.ESPProposals))
	var c chosen
	var ok bool
	if c.ike, ok = best(proposals.ProtoIKE, in.IKEProposals, d.ikeOffers(), func(o ikeOffer) string { return o.token }); !ok {
		return c, d.ikeFix(in.IKEProposals)
	}
	if c.esp, ok = best(proposals.ProtoESP, in.ESPProposals, d.espOffers(groups), func(o espOffer) string { return o.token }); !ok {
		return c, d.espFix(in.Pool, in.ESPProposals, groups)
	}
	return c, nil
}

// choiceKey is what a dialect's choice depends on.
type choiceKey struct{ dialect, pool, ike, esp string }

type choice struct {
	c   chosen
	err error
}

// choiceCache remembers choices for the proposal sets seen; a gateway has
// a handful, so the bound only guards against a caller with thousands.
type choiceCache struct {
	mu sync.Mutex
	m  map[choiceKey]choice
}

const maxChoices = 1024

var choices = &choiceCache{m: map[choiceKey]choice{}}

func (c *choiceCache) get(k choiceKey) (choice, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	return r, ok
}

func (c *choiceCache) put(k choiceKey, r choice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxChoices {
		clear(c.m)
	}
	c.m[k] = r
}

package diagnose

import (
	"slices"
	"strings"
)

// proposal is one proposal as proposal.c's printf hook prints it: "%N:"
// (the protocol) and each transform name joined by "/", key sizes appended
// as "_%u" (proposal_printf_hook, print_alg). A list (%#P) joins proposals
// with ", ".
type proposal struct {
	protocol string
	// by class, in the order printed
	transforms map[string][]string
}

func parseProposals(s string) []proposal {
	var out []proposal
	for _, p := range strings.Split(s, ", ") {
		proto, algs, ok := strings.Cut(strings.TrimSpace(p), ":")
		if !ok || proto == "" {
			continue
		}
		pr := proposal{protocol: proto, transforms: map[string][]string{}}
		for _, alg := range strings.Split(algs, "/") {
			if alg == "" {
				continue
			}
			c := transformClass(alg)
			pr.transforms[c] = append(pr.transforms[c], alg)
		}
		out = append(out, pr)
		if len(out) == MaxValues {
			break
		}
	}
	return out
}

// transformClass names the class of a transform from the enum names
// strongSwan prints (crypters.c, signers.c, prfs.c, key_exchange.c or
// diffie_hellman.c); unknown ones print as "UNKNOWN_<type>_<alg>" with the
// IKEv2 transform type number.
func transformClass(alg string) string {
	switch {
	case strings.HasPrefix(alg, "UNKNOWN_"):
		switch strings.SplitN(strings.TrimPrefix(alg, "UNKNOWN_"), "_", 2)[0] {
		case "2":
			return TransformPRF
		case "3":
			return TransformIntegrity
		case "4":
			return TransformDH
		case "5":
			return TransformESN
		}
		return TransformEncryption
	case strings.HasPrefix(alg, "PRF_"):
		return TransformPRF
	case strings.HasPrefix(alg, "HMAC_"), strings.HasPrefix(alg, "AES_XCBC"), strings.HasPrefix(alg, "AES_CMAC"),
		strings.HasPrefix(alg, "CAMELLIA_XCBC"), alg == "DES_MAC", alg == "KPDK_MD5",
		strings.HasSuffix(alg, "_GMAC") && !strings.HasPrefix(alg, "NULL_"):
		return TransformIntegrity
	case len(alg) > 3 && strings.HasPrefix(alg, "KE") && alg[2] >= '1' && alg[2] <= '7' && alg[3] == '_':
		// 6.x prints additional key exchanges (RFC 9370) as "KE%d_%N".
		return TransformAKE + " " + alg[2:3]
	case strings.HasPrefix(alg, "MODP_"), strings.HasPrefix(alg, "ECP_"), strings.HasPrefix(alg, "CURVE_"),
		strings.HasPrefix(alg, "NTRU_"), strings.HasPrefix(alg, "NEWHOPE"), strings.HasPrefix(alg, "ML_KEM"), alg == "KE_NONE":
		return TransformDH
	case alg == "NO_EXT_SEQ", alg == "EXT_SEQ":
		return TransformESN
	}
	return TransformEncryption
}

// isNone reports the key exchange NONE: 5.9's diffie_hellman names print
// it as MODP_NONE, 6.x's key_exchange names as KE_NONE (KE1_KE_NONE for an
// additional one).
func isNone(alg string) bool {
	return alg == "MODP_NONE" || strings.HasSuffix(alg, "KE_NONE")
}

// isAEAD reports encryption algorithms that bring their own integrity, for
// which proposal.c's select_algos skips the integrity transform.
func isAEAD(alg string) bool {
	for _, p := range []string{"AES_GCM_", "AES_CCM_", "CAMELLIA_CCM_", "CHACHA20_POLY1305", "NULL_AES_GMAC"} {
		if strings.HasPrefix(alg, p) {
			return true
		}
	}
	return false
}

var classOrder = []string{TransformEncryption, TransformIntegrity, TransformPRF, TransformDH, TransformESN,
	TransformAKE + " 1", TransformAKE + " 2", TransformAKE + " 3", TransformAKE + " 4", TransformAKE + " 5", TransformAKE + " 6", TransformAKE + " 7"}

// failingClasses is select_algos for one configured and one received
// proposal: the classes that have no common algorithm. skipKE leaves the
// key exchange out, as IKE_AUTH's CHILD_SA does (PROPOSAL_SKIP_KE).
func failingClasses(c, r proposal, skipKE bool) []string {
	var failing []string
	aead := false
	for _, class := range classOrder {
		if (class == TransformDH || strings.HasPrefix(class, TransformAKE)) && skipKE || class == TransformIntegrity && aead {
			continue
		}
		a, b := c.transforms[class], r.transforms[class]
		if len(a) == 0 && len(b) == 0 {
			continue
		}
		// A missing key exchange matches a proposed NONE (select_algo's optional).
		if (class == TransformDH || strings.HasPrefix(class, TransformAKE)) && (len(a) == 0 && slices.ContainsFunc(b, isNone) || len(b) == 0 && slices.ContainsFunc(a, isNone)) {
			continue
		}
		common := ""
		for _, x := range a {
			if slices.Contains(b, x) {
				common = x
				break
			}
		}
		if common == "" {
			failing = append(failing, class)
			continue
		}
		if class == TransformEncryption && isAEAD(common) {
			aead = true
		}
	}
	return failing
}

// mismatchedTransforms names the transform classes that kept every pair of
// configured and received proposals apart: those failing in the pairs that
// came closest (fewest failing classes), in IKEv2's transform order.
func mismatchedTransforms(configured, received []proposal, skipKE bool) []string {
	best := -1
	seen := map[string]bool{}
	for _, c := range configured {
		for _, r := range received {
			if c.protocol != r.protocol {
				continue
			}
			f := failingClasses(c, r, skipKE)
			switch {
			case best == -1 || len(f) < best:
				best = len(f)
				seen = map[string]bool{}
				fallthrough
			case len(f) == best:
				for _, class := range f {
					seen[class] = true
				}
			}
		}
	}
	var out []string
	for _, class := range classOrder {
		if seen[class] {
			out = append(out, class)
		}
	}
	return out
}

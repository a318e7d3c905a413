// Package proposals is ikegate's catalogue of IKEv2 and ESP algorithms: their
// strongSwan keywords, the enum names the API uses, IANA numbers and a
// strength class after RFC 8247 (IKEv2) and RFC 8221 (ESP). On top of it sit
// the presets a VPNGateway chooses from (Modern, Compatible, Legacy), a
// builder that turns structured choices into strongSwan proposal strings,
// and a model of charon's proposal selection to tell which clients a
// gateway accepts.
//
// Everything here is pure: no daemon is asked, so the API server, the
// manager and the kubectl plugin all reach the same verdict.
package proposals

import "fmt"

// Kind is the transform type an algorithm negotiates.
type Kind int

// Transform types, in the order strongSwan prints them in a proposal.
const (
	KindEncryption Kind = iota
	KindIntegrity
	KindPRF
	KindDH
	KindESN
)

func (k Kind) String() string {
	switch k {
	case KindEncryption:
		return "encryption"
	case KindIntegrity:
		return "integrity"
	case KindPRF:
		return "PRF"
	case KindDH:
		return "DH group"
	case KindESN:
		return "ESN"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Strength classifies an algorithm. The order matters: a proposal is as
// strong as its weakest algorithm.
type Strength int

const (
	// Forbidden algorithms are MUST NOT in RFC 8247 (IKEv2) or RFC 8221
	// (ESP): DES, MD5 in every role, MODP 768. No opt-in allows them.
	StrengthForbidden Strength = iota
	// Insecure algorithms are SHOULD NOT (MODP 1024 and 1536) or kept only
	// for legacy peers (3DES, with its 64-bit block). A gateway offers them
	// only with the allowInsecureAlgorithms opt-in.
	StrengthInsecure
	// Deprecated algorithms are MUST- (SHA-1 as PRF and as integrity): still
	// required for interoperability by the RFCs and allowed without opt-in,
	// but left out of the Modern preset.
	StrengthDeprecated
	// Acceptable algorithms are sound but not the first choice: CBC
	// ciphers with HMAC, AES-XCBC, finite-field groups of 2048 bits and up.
	StrengthAcceptable
	// Modern algorithms are the recommended choice: AEAD ciphers, SHA-2
	// HMACs and PRFs, elliptic-curve groups.
	StrengthModern
)

func (s Strength) String() string {
	switch s {
	case StrengthForbidden:
		return "Forbidden"
	case StrengthInsecure:
		return "Insecure"
	case StrengthDeprecated:
		return "Deprecated"
	case StrengthAcceptable:
		return "Acceptable"
	case StrengthModern:
		return "Modern"
	}
	return fmt.Sprintf("Strength(%d)", int(s))
}

// Encryption is the API's name for an encryption algorithm.
type Encryption string

// Encryption algorithms.
const (
	AES128           Encryption = "AES128" // AES-CBC
	AES192           Encryption = "AES192"
	AES256           Encryption = "AES256"
	AES128GCM16      Encryption = "AES128GCM16"
	AES192GCM16      Encryption = "AES192GCM16"
	AES256GCM16      Encryption = "AES256GCM16"
	ChaCha20Poly1305 Encryption = "ChaCha20Poly1305"
	TripleDES        Encryption = "TripleDES"
	DES              Encryption = "DES"
	NullEncryption   Encryption = "Null"
)

// Integrity is the API's name for an integrity (HMAC/MAC) algorithm.
type Integrity string

// Integrity algorithms.
const (
	SHA1    Integrity = "SHA1"
	SHA256  Integrity = "SHA256"
	SHA384  Integrity = "SHA384"
	SHA512  Integrity = "SHA512"
	MD5     Integrity = "MD5"
	AESXCBC Integrity = "AESXCBC"
)

// PRF is the API's name for an IKE pseudo-random function.
type PRF string

// PRFs.
const (
	PRFSHA1    PRF = "PRFSHA1"
	PRFSHA256  PRF = "PRFSHA256"
	PRFSHA384  PRF = "PRFSHA384"
	PRFSHA512  PRF = "PRFSHA512"
	PRFAESXCBC PRF = "PRFAESXCBC"
	PRFMD5     PRF = "PRFMD5"
)

// DHGroup is the API's name for a Diffie-Hellman group (key exchange method).
type DHGroup string

// DH groups.
const (
	MODP768    DHGroup = "MODP768"
	MODP1024   DHGroup = "MODP1024"
	MODP1536   DHGroup = "MODP1536"
	MODP2048   DHGroup = "MODP2048"
	MODP3072   DHGroup = "MODP3072"
	MODP4096   DHGroup = "MODP4096"
	MODP6144   DHGroup = "MODP6144"
	MODP8192   DHGroup = "MODP8192"
	ECP256     DHGroup = "ECP256"
	ECP384     DHGroup = "ECP384"
	ECP521     DHGroup = "ECP521"
	Curve25519 DHGroup = "Curve25519"
	Curve448   DHGroup = "Curve448"
	// NoDH in an ESP proposal makes PFS optional (strongSwan's modpnone).
	NoDH DHGroup = "None"
)

// Algorithm is one entry of the catalogue.
type Algorithm struct {
	Kind Kind
	// Name is the API enum value (Encryption, Integrity, PRF or DHGroup).
	Name string
	// Token is strongSwan's keyword.
	Token string
	// Charon is how charon prints it in logs ("selected proposal:
	// IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519").
	Charon string
	// IANA is the IKEv2 transform ID; for DH groups the group number.
	IANA int
	// KeyBits is the key length attribute for variable-length ciphers.
	KeyBits int
	// AEAD marks combined-mode ciphers, which take no integrity algorithm.
	AEAD     bool
	Strength Strength
	// Why explains the strength class, for API docs and Insecure warnings.
	Why string
}

// catalogue is ordered by kind, then by preference within a kind.
var catalogue = []Algorithm{
	{KindEncryption, string(AES256GCM16), "aes256gcm16", "AES_GCM_16_256", 20, 256, true, StrengthModern, "AES-GCM with 16-byte ICV: RFC 8247 SHOULD, RFC 8221 MUST"},
	{KindEncryption, string(AES192GCM16), "aes192gcm16", "AES_GCM_16_192", 20, 192, true, StrengthModern, "AES-GCM with 16-byte ICV"},
	{KindEncryption, string(AES128GCM16), "aes128gcm16", "AES_GCM_16_128", 20, 128, true, StrengthModern, "AES-GCM with 16-byte ICV: RFC 8221 MUST"},
	{KindEncryption, string(ChaCha20Poly1305), "chacha20poly1305", "CHACHA20_POLY1305", 28, 0, true, StrengthModern, "ChaCha20-Poly1305 (RFC 7634): RFC 8247 and RFC 8221 SHOULD"},
	{KindEncryption, string(AES256), "aes256", "AES_CBC_256", 12, 256, false, StrengthAcceptable, "AES-CBC: RFC 8247 MUST, needs a separate HMAC"},
	{KindEncryption, string(AES192), "aes192", "AES_CBC_192", 12, 192, false, StrengthAcceptable, "AES-CBC, needs a separate HMAC"},
	{KindEncryption, string(AES128), "aes128", "AES_CBC_128", 12, 128, false, StrengthAcceptable, "AES-CBC: RFC 8247 MUST, needs a separate HMAC"},
	{KindEncryption, string(TripleDES), "3des", "3DES_CBC", 3, 0, false, StrengthInsecure, "3DES: 64-bit block (Sweet32), RFC 8247 MAY and RFC 8221 SHOULD NOT; only with allowInsecureAlgorithms"},
	{KindEncryption, string(DES), "des", "DES_CBC", 2, 0, false, StrengthForbidden, "DES: 56-bit key, RFC 8247 and RFC 8221 MUST NOT"},
	{KindEncryption, string(NullEncryption), "null", "NULL", 11, 0, false, StrengthForbidden, "no encryption at all: RFC 8247 MUST NOT for IKE, and ikegate never runs ESP without confidentiality"},

	{KindIntegrity, string(SHA256), "sha256", "HMAC_SHA2_256_128", 12, 0, false, StrengthModern, "HMAC-SHA2-256-128: RFC 8247 and RFC 8221 MUST"},
	{KindIntegrity, string(SHA384), "sha384", "HMAC_SHA2_384_192", 13, 0, false, StrengthModern, "HMAC-SHA2-384-192"},
	{KindIntegrity, string(SHA512), "sha512", "HMAC_SHA2_512_256", 14, 0, false, StrengthModern, "HMAC-SHA2-512-256: RFC 8247 SHOULD"},
	{KindIntegrity, string(AESXCBC), "aesxcbc", "AES_XCBC_96", 5, 0, false, StrengthAcceptable, "AES-XCBC-96: RFC 8247 MAY, 96-bit tag"},
	{KindIntegrity, string(SHA1), "sha1", "HMAC_SHA1_96", 2, 0, false, StrengthDeprecated, "HMAC-SHA1-96: MUST- in RFC 8247 and RFC 8221 (on its way out); in Compatible and Legacy, never in Modern"},
	{KindIntegrity, string(MD5), "md5", "HMAC_MD5_96", 1, 0, false, StrengthForbidden, "HMAC-MD5-96: RFC 8247 and RFC 8221 MUST NOT"},

	{KindPRF, string(PRFSHA256), "prfsha256", "PRF_HMAC_SHA2_256", 5, 0, false, StrengthModern, "PRF-HMAC-SHA2-256: RFC 8247 MUST"},
	{KindPRF, string(PRFSHA384), "prfsha384", "PRF_HMAC_SHA2_384", 6, 0, false, StrengthModern, "PRF-HMAC-SHA2-384"},
	{KindPRF, string(PRFSHA512), "prfsha512", "PRF_HMAC_SHA2_512", 7, 0, false, StrengthModern, "PRF-HMAC-SHA2-512: RFC 8247 SHOULD"},
	{KindPRF, string(PRFAESXCBC), "prfaesxcbc", "PRF_AES128_XCBC", 4, 0, false, StrengthAcceptable, "PRF-AES128-XCBC: RFC 8247 SHOULD"},
	{KindPRF, string(PRFSHA1), "prfsha1", "PRF_HMAC_SHA1", 2, 0, false, StrengthDeprecated, "PRF-HMAC-SHA1: MUST- in RFC 8247 (on its way out); in Compatible and Legacy, never in Modern"},
	{KindPRF, string(PRFMD5), "prfmd5", "PRF_HMAC_MD5", 1, 0, false, StrengthForbidden, "PRF-HMAC-MD5: RFC 8247 MUST NOT"},

	{KindDH, string(Curve25519), "x25519", "CURVE_25519", 31, 0, false, StrengthModern, "Curve25519 (RFC 8031): RFC 8247 SHOULD"},
	{KindDH, string(ECP256), "ecp256", "ECP_256", 19, 0, false, StrengthModern, "NIST P-256: RFC 8247 SHOULD"},
	{KindDH, string(ECP384), "ecp384", "ECP_384", 20, 0, false, StrengthModern, "NIST P-384"},
	{KindDH, string(ECP521), "ecp521", "ECP_521", 21, 0, false, StrengthModern, "NIST P-521"},
	{KindDH, string(Curve448), "x448", "CURVE_448", 32, 0, false, StrengthModern, "Curve448 (RFC 8031)"},
	{KindDH, string(MODP2048), "modp2048", "MODP_2048", 14, 0, false, StrengthAcceptable, "2048-bit MODP: RFC 8247 MUST, slow and about 112-bit strength"},
	{KindDH, string(MODP3072), "modp3072", "MODP_3072", 15, 0, false, StrengthAcceptable, "3072-bit MODP: RFC 8247 MAY, slow"},
	{KindDH, string(MODP4096), "modp4096", "MODP_4096", 16, 0, false, StrengthAcceptable, "4096-bit MODP: RFC 8247 MAY, slow"},
	{KindDH, string(MODP6144), "modp6144", "MODP_6144", 17, 0, false, StrengthAcceptable, "6144-bit MODP: very slow"},
	{KindDH, string(MODP8192), "modp8192", "MODP_8192", 18, 0, false, StrengthAcceptable, "8192-bit MODP: RFC 8247 MAY, very slow"},
	{KindDH, string(MODP1536), "modp1536", "MODP_1536", 5, 0, false, StrengthInsecure, "1536-bit MODP (group 5): RFC 8247 SHOULD NOT; only with allowInsecureAlgorithms"},
	{KindDH, string(MODP1024), "modp1024", "MODP_1024", 2, 0, false, StrengthInsecure, "1024-bit MODP (group 2): RFC 8247 SHOULD NOT, within reach of nation states; only with allowInsecureAlgorithms"},
	{KindDH, string(MODP768), "modp768", "MODP_768", 1, 0, false, StrengthForbidden, "768-bit MODP (group 1): RFC 8247 MUST NOT"},
	{KindDH, string(NoDH), "modpnone", "MODP_NONE", 0, 0, false, StrengthModern, "no PFS: accepted in ESP proposals to make the DH group optional"},

	{KindESN, "NoESN", "noesn", "NO_EXT_SEQ", 0, 0, false, StrengthModern, "32-bit sequence numbers"},
	{KindESN, "ESN", "esn", "EXT_SEQ", 1, 0, false, StrengthModern, "extended (64-bit) sequence numbers"},
}

// aliases are further keywords strongSwan accepts for catalogue entries.
var aliases = map[string]string{
	"aes":          "aes128",
	"aes128gcm128": "aes128gcm16",
	"aes192gcm128": "aes192gcm16",
	"aes256gcm128": "aes256gcm16",
	"sha":          "sha1",
	"sha2_256":     "sha256",
	"sha2_384":     "sha384",
	"sha2_512":     "sha512",
	"prfsha":       "prfsha1",
	"curve25519":   "x25519",
	"curve448":     "x448",
}

var byToken, byName = func() (map[string]Algorithm, map[Kind]map[string]Algorithm) {
	t := make(map[string]Algorithm, len(catalogue))
	n := map[Kind]map[string]Algorithm{}
	for _, a := range catalogue {
		t[a.Token] = a
		if n[a.Kind] == nil {
			n[a.Kind] = map[string]Algorithm{}
		}
		n[a.Kind][a.Name] = a
	}
	for alias, token := range aliases {
		t[alias] = t[token]
	}
	return t, n
}()

// Lookup finds an algorithm by strongSwan keyword (or one of its aliases).
func Lookup(token string) (Algorithm, bool) {
	a, ok := byToken[token]
	return a, ok
}

// Names lists the API enum values of one kind, in preference order; the API
// package mirrors them in its validation markers.
func Names(k Kind) []string {
	var out []string
	for _, a := range catalogue {
		if a.Kind == k {
			out = append(out, a.Name)
		}
	}
	return out
}

func lookupName(k Kind, name string) (Algorithm, error) {
	a, ok := byName[k][name]
	if !ok {
		return Algorithm{}, fmt.Errorf("unknown %s %q", k, name)
	}
	return a, nil
}

// Encryption, Integrity, PRF and DHGroup resolve an API enum value.
func (e Encryption) Algorithm() (Algorithm, error) { return lookupName(KindEncryption, string(e)) }
func (i Integrity) Algorithm() (Algorithm, error)  { return lookupName(KindIntegrity, string(i)) }
func (p PRF) Algorithm() (Algorithm, error)        { return lookupName(KindPRF, string(p)) }
func (g DHGroup) Algorithm() (Algorithm, error)    { return lookupName(KindDH, string(g)) }

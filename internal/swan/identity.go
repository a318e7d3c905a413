package swan

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// A VPNUser's identity becomes the owner of its EAP secret. charon picks the
// secret for a login by matching the identity the client sends against every
// owner (mem_cred.c has_owner, credential_manager.c get_shared), so an owner
// that is a pattern lends its password to every identity it matches, and two
// owners charon holds equal make one user's password another's. The functions
// here follow strongSwan's src/libstrongswan/utils/identification.c
// (identification_create_from_string, equals and matches of each type).

// Kinds of identity, as identification.c types them.
const (
	kindAny     = "any"
	kindFQDN    = "fqdn"
	kindEmail   = "email" // ID_RFC822_ADDR, also ID_USER_FQDN
	kindDN      = "dn"
	kindKeyID   = "keyid"
	kindIPv4    = "ipv4"
	kindIPv6    = "ipv6"
	kindSubnet  = "subnet"
	kindRange   = "range"
	kindNumeric = "numeric" // the {N}: form: any type by number
	kindRegex   = "regex"   // a prefixed ^...$ since strongSwan 6.0.2
	kindBinary  = "binary"  // the other prefixed types, compared byte for byte
)

// identityPrefixes are identification.c's prefixes, tried case-insensitively
// in this order; regex marks those that strongSwan 6.0.2 and later read as a
// regular expression when the rest is ^...$.
var identityPrefixes = []struct {
	prefix, kind string
	regex        bool
}{
	{"ipv4:", kindBinary + "4", false},
	{"ipv6:", kindBinary + "6", false},
	{"ipv4net:", kindSubnet, false},
	{"ipv6net:", kindSubnet, false},
	{"ipv4range:", kindRange, false},
	{"ipv6range:", kindRange, false},
	{"rfc822:", kindEmail, true},
	{"email:", kindEmail, true},
	{"userfqdn:", kindEmail, true},
	{"fqdn:", kindFQDN, true},
	{"dns:", kindFQDN, true},
	{"asn1dn:", kindBinary + "dn", true},
	{"asn1gn:", kindBinary + "gn", false},
	{"xmppaddr:", kindBinary + "xmpp", false},
	{"keyid:", kindKeyID, false},
	{"uri:", kindBinary + "uri", false},
}

// anyIdentities are the strings identification.c turns into ID_ANY.
var anyIdentities = []string{"%any", "%any6", "0.0.0.0", "*", "::", "0::0"}

// identityKey is the form of an identity under which two identities are equal
// exactly when charon holds them equal: e-mail addresses and FQDNs compare
// case-insensitively (strncasecmp, ASCII only), so do DN values that are
// PrintableStrings or e-mail addresses; everything else compares byte for byte.
// The different spellings of one identity (jim@example.com, email:jim@example.com,
// @@jim@example.com) share a key.
func identityKey(id string) string {
	kind, enc := parseIdentity(id)
	switch kind {
	case kindFQDN, kindEmail:
		enc = foldASCII(enc)
	}
	return kind + ":" + enc
}

// userIdentityProblem says why id cannot own a user's secret on a gateway
// whose own identity is gatewayID, with the condition reason, or "" when it can.
func userIdentityProblem(id, gatewayID string) (reason, why string) {
	if why := identityPattern(id); why != "" {
		return v1alpha1.ReasonInvalidSpec, "must be literal: " + why
	}
	// get_shared ranks a secret that matches the gateway's identity just below
	// one that matches the client's: it would be offered to every client
	// whose identity owns no secret (unknown, disabled and expired users).
	if identityKey(id) == identityKey(gatewayID) {
		return v1alpha1.ReasonDuplicateIdentity, "is the gateway's own identity; charon would take its password for any identity without a secret"
	}
	return "", ""
}

// identityPattern says why charon would read id as a pattern, or as something
// other than one literal identity, and is "" when it does not.
func identityPattern(id string) string {
	if strings.Contains(id, "*") {
		return "charon treats '*' as a wildcard matching other users' identities"
	}
	if strings.HasPrefix(id, "%") {
		return "charon treats %any and %any6 as any identity"
	}
	switch kind, _ := parseIdentity(id); kind {
	case kindAny:
		return "charon treats " + id + " as any identity"
	case kindSubnet, kindRange:
		return "charon treats an address range as matching every address identity in it"
	case kindNumeric:
		return "the {N}: form hands charon a raw identity type, which can be any identity or an address range"
	case kindRegex:
		return "strongSwan 6.0.2 and later treat a prefixed ^...$ as a regular expression"
	}
	return ""
}

// parseIdentity returns the kind charon gives id and its encoding as a string.
func parseIdentity(id string) (kind, enc string) {
	lower := foldASCII(id)
	for _, p := range identityPrefixes {
		if !strings.HasPrefix(lower, p.prefix) {
			continue
		}
		rest := id[len(p.prefix):]
		if p.regex && len(rest) >= 2 && rest[0] == '^' && rest[len(rest)-1] == '$' {
			return kindRegex, rest
		}
		if strings.HasPrefix(rest, "#") {
			return p.kind, fromHex(rest[1:])
		}
		return p.kind, rest
	}
	if n, ok := numericType(id); ok {
		return kindNumeric, n
	}
	if strings.Contains(id, "=") {
		if dn, ok := dnKey(id); ok {
			return kindDN, dn
		}
		return kindKeyID, id
	}
	if !strings.Contains(id, "@") {
		if id == "" || slices.Contains(anyIdentities, id) {
			return kindAny, ""
		}
		v6 := strings.Contains(id, ":")
		if kind, enc, ok := ipIdentity(id, v6); ok {
			return kind, enc
		}
		if v6 {
			return kindKeyID, id
		}
		return kindFQDN, id
	}
	switch {
	case strings.HasPrefix(id, "@#"):
		return kindKeyID, fromHex(id[2:])
	case strings.HasPrefix(id, "@@"):
		return kindEmail, id[2:]
	case strings.HasPrefix(id, "@"):
		return kindFQDN, id[1:]
	}
	return kindEmail, id
}

// numericType recognises "{N}:" (N as strtoul with base 0 reads it).
func numericType(id string) (string, bool) {
	if !strings.HasPrefix(id, "{") {
		return "", false
	}
	end := strings.Index(id, "}:")
	if end < 0 {
		return "", false
	}
	if _, err := strconv.ParseUint(id[1:end], 0, 64); err != nil {
		return "", false
	}
	return id, true
}

// ipIdentity is create_ip_address_from_string: an address, or with "/" a
// subnet, or else with "-" a range, when the part before is an address.
func ipIdentity(id string, v6 bool) (kind, enc string, ok bool) {
	head, kind := id, kindIPv4
	if v6 {
		kind = kindIPv6
	}
	if i := strings.IndexByte(id, '/'); i >= 0 {
		head, kind = id[:i], kindSubnet
	} else if i := strings.IndexByte(id, '-'); i >= 0 {
		head, kind = id[:i], kindRange
	}
	// A string with ':' goes to inet_pton(AF_INET6), one without to AF_INET.
	a, err := netip.ParseAddr(head)
	if err != nil || a.Zone() != "" || a.Is6() != v6 {
		return "", "", false
	}
	if kind == kindIPv4 || kind == kindIPv6 {
		return kind, string(a.AsSlice()), true
	}
	// A range or subnet need not parse for the point made here: charon may
	// read it as one, so it is never a literal identity. Compared as written.
	return kind, id, true
}

// fromHex is chunk_from_hex: optional 0x, ':' separators ignored, an odd
// count padded with a leading zero, anything but a hex digit read as 0.
func fromHex(s string) string {
	s = strings.TrimPrefix(s, "0x")
	s = strings.ReplaceAll(s, ":", "")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		out[i] = nibble(s[2*i])<<4 | nibble(s[2*i+1])
	}
	return string(out)
}

func nibble(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// foldASCII lowers ASCII letters only, as strncasecmp does in the C locale.
func foldASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// dnAttributes are atodn's attribute names (x501rdns), matched
// case-insensitively, with the OID each stands for; aliases share it.
var dnAttributes = map[string]string{
	"nd": "nd", "uid": "uid", "dc": "dc", "cn": "cn", "sn": "sn",
	"serialnumber": "serialnumber", "c": "c", "l": "l", "st": "st", "street": "street",
	"o": "o", "ou": "ou", "organizationidentifier": "organizationidentifier",
	"t": "t", "d": "d", "postaladdress": "postaladdress", "postalcode": "postalcode",
	"n": "n", "g": "g", "i": "i", "dnqualifier": "dnqualifier", "dmdname": "dmdname",
	"pseudonym": "pseudonym", "id": "id", "en": "en", "employeenumber": "en",
	"e": "e", "email": "e", "emailaddress": "e",
	"un": "un", "unstructuredname": "un", "ua": "ua", "unstructuredaddress": "ua",
	"tcgid": "tcgid",
}

// dnMaxRDNs is atodn's RDN_MAX: a longer DN is no DN to charon.
const dnMaxRDNs = 20

// printableString is ASN.1 PrintableString's alphabet (asn1_is_printablestring).
const printableString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"

// dnKey is atodn followed by equals_dn: RDNs split at ',' (or at '/' when the
// DN starts with one), blanks around names and values dropped, attribute
// aliases merged; values compare case-insensitively when they are
// PrintableStrings or e-mail addresses (rdn_equals), as written otherwise.
// It reports false where atodn fails and charon makes a key ID of the string.
func dnKey(s string) (string, bool) {
	sep := ","
	if strings.HasPrefix(s, "/") {
		sep, s = "/", s[1:]
	}
	var rdns []string
	parts := strings.Split(s, sep)
	for i, part := range parts {
		part = strings.TrimLeft(part, " ")
		if part == "" && i == len(parts)-1 {
			break // a trailing separator ends the DN
		}
		if part == "" {
			return "", false // atodn reads the separator as an attribute name
		}
		end := strings.IndexAny(part, " =")
		if end < 0 {
			return "", false // an attribute name without a value
		}
		oid, ok := dnAttributes[foldASCII(part[:end])]
		if !ok {
			return "", false
		}
		value := strings.TrimRight(strings.TrimLeft(part[end:], " ="), " ")
		if oid == "e" || strings.Trim(value, printableString) == "" && oid != "un" {
			value = foldASCII(value)
		}
		rdns = append(rdns, oid+"="+value)
	}
	if len(rdns) > dnMaxRDNs {
		return "", false
	}
	// Neither names nor the values kept here hold a NUL.
	return strings.Join(rdns, "\x00"), true
}

package swan

import "testing"

// TestIdentityKeyFollowsCharonsEquality pairs identities that charon's
// identification_t equals() holds equal, or not, as identification.c reads
// them: the key must agree in both directions.
func TestIdentityKeyFollowsCharonsEquality(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		// RFC822 and FQDN: strncasecmp, ASCII letters only.
		{"alice@example.com", "ALICE@example.com", true},
		{"alice@example.com", "Alice@EXAMPLE.COM", true},
		{"vpn.example.com", "VPN.Example.Com", true},
		{"jörg@example.com", "JÖRG@example.com", false},
		{"jörg@example.com", "JöRG@example.com", true},
		{"alice@example.com", "alice@example.org", false},
		{"alice@example.com", "alice@example.com.", false},
		// One identity, several spellings.
		{"alice@example.com", "email:alice@example.com", true},
		{"alice@example.com", "RFC822:ALICE@example.com", true},
		{"alice@example.com", "userfqdn:alice@example.com", true},
		{"alice@example.com", "@@alice@example.com", true},
		{"alice@example.com", "email:#616c696365406578616d706c652e636f6d", true},
		{"vpn.example.com", "@vpn.example.com", true},
		{"vpn.example.com", "fqdn:vpn.example.com", true},
		{"vpn.example.com", "dns:VPN.example.com", true},
		{"jimp", "fqdn:jimp", true},
		// Types differ: an FQDN is never an e-mail address.
		{"alice@example.com", "fqdn:alice@example.com", false},
		{"@alice@example.com", "alice@example.com", false},
		{"jimp", "email:jimp", false},
		// Addresses compare as binary addresses.
		{"192.0.2.1", "192.0.2.1", true},
		{"2001:db8::1", "2001:DB8:0::1", true},
		{"2001:db8::1", "2001:db8::2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", false},
		// Key IDs compare byte for byte.
		{"@#0a0b", "@#0A0B", true},
		{"@#0a0b", "keyid:#0a0b", true},
		{"keyid:abc", "keyid:ABC", false},
		{"x:y", "X:Y", false},
		// DNs: PrintableString and e-mail values ignore case, the rest does not.
		{"CN=Alice, O=Example", "cn=alice,o=example", true},
		{"CN=Alice, O=Example", "CN = Alice ,O= Example ", true},
		{"/CN=Alice/O=Example", "CN=Alice, O=Example", true},
		{"E=alice@example.com", "emailAddress=ALICE@example.com", true},
		{"CN=Alice_1", "CN=alice_1", false}, // '_' is no PrintableString: UTF8String
		{"CN=Jörg", "CN=jörg", false},
		{"UN=Alice", "unstructuredName=alice", false}, // IA5String, not an e-mail
		{"CN=Alice, O=Example", "O=Example, CN=Alice", false},
		{"CN=Alice, O=Example", "CN=Alice", false},
		{"CN=Alice", "CN=Alice Smith", false},
		// Not a DN to atodn: a key ID of the string.
		{"XX=Alice", "xx=alice", false},
		{"CN=Alice,,O=Example", "CN=Alice,O=Example", false},
	}
	for _, tc := range cases {
		if got := identityKey(tc.a) == identityKey(tc.b); got != tc.same {
			t.Errorf("identityKey(%q) == identityKey(%q) is %v, want %v (keys %q, %q)", tc.a, tc.b, got, tc.same, identityKey(tc.a), identityKey(tc.b))
		}
	}
}

// TestIdentityPatternRefusesWhatCharonMatchesAsMany lists the identities
// charon would read as matching more than one identity (or as a raw type),
// and literal ones at the edge of each rule.
func TestIdentityPatternRefusesWhatCharonMatchesAsMany(t *testing.T) {
	cases := []struct {
		id      string
		pattern bool
	}{
		{"*", true},
		{"*@example.com", true},
		{"*.example.com", true},
		{"al*ce@example.com", true},
		{"CN=*, O=Example", true},
		{"email:*@example.com", true},
		{"%any", true},
		{"%any6", true},
		{"%anything", true},
		{"0.0.0.0", true},
		{"::", true},
		{"0::0", true},
		{"10.0.0.0/8", true},
		{"10.0.0.0/", true}, // atoi("") is 0: the whole IPv4 space
		{"10.0.0.1-10.0.0.9", true},
		{"2001:db8::/32", true},
		{"::ffff:10.0.0.0/104", true},
		{"ipv4net:#0a000000ff000000", true},
		{"IPv6Range:#00", true},
		{"{0}:", true},
		{"{0x4}:#0a000000ff000000", true},
		{"email:^.*@example\\.com$", true},
		{"ASN1DN:^CN=.*$", true},

		{"alice@example.com", false},
		{"jimp", false},
		{"vpn.example.com", false},
		{"192.0.2.1", false},
		{"2001:db8::1", false},
		{"0.0.0.1", false},
		{"a-b.example.com", false},
		{"site/a", false},                  // no address before the '/': an FQDN
		{"10.0.0.1-gw@example.com", false}, // '@': an e-mail address
		{"CN=10.0.0.0/8", false},           // '=': a DN
		{"email:^not-a-regex", false},
		{"keyid:^x$", false}, // keyid: has no regular expressions
		{"{x}:y", false},
		{"CN=Alice, O=Example", false},
	}
	for _, tc := range cases {
		why := identityPattern(tc.id)
		if (why != "") != tc.pattern {
			t.Errorf("identityPattern(%q) = %q, want a pattern: %v", tc.id, why, tc.pattern)
		}
	}
}

func TestUserIdentityProblemRefusesTheGatewaysIdentity(t *testing.T) {
	for _, id := range []string{"vpn.example.com", "VPN.example.com", "@vpn.example.com", "fqdn:vpn.example.com"} {
		if _, why := userIdentityProblem(id, "vpn.example.com"); why == "" {
			t.Errorf("user identity %q accepted on gateway vpn.example.com", id)
		}
	}
	for _, id := range []string{"vpn@example.com", "vpn.example.org", "jimp"} {
		if _, why := userIdentityProblem(id, "vpn.example.com"); why != "" {
			t.Errorf("user identity %q refused on gateway vpn.example.com: %s", id, why)
		}
	}
}

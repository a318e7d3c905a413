package radiusd

import (
	"bytes"
	"encoding/hex"
	"testing"

	"layeh.com/radius/rfc2759"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyMSCHAPv2KnownAnswers checks the verification and derivations
// from an NT hash against the test vectors of RFC 2759 section 9.2 and
// RFC 3079 section 3.5.3 (which share their inputs).
func TestVerifyMSCHAPv2KnownAnswers(t *testing.T) {
	var auth, peer [16]byte
	copy(auth[:], unhex(t, "5B5D7C7D7B3F2F3E3C2C602132262628"))
	copy(peer[:], unhex(t, "21402324255E262A28295F2B3A337C7E"))
	var hash [16]byte
	copy(hash[:], unhex(t, "44EBBA8D5312B8D611474411F56989AE"))
	pw, _ := rfc2759.ToUTF16([]byte("clientPass"))
	if got := rfc2759.NTPasswordHash(pw); !bytes.Equal(got, hash[:]) {
		t.Fatalf("NT hash of clientPass %x, want %x", got, hash)
	}
	r := msResponse{PeerChallenge: peer, Name: "User"}
	copy(r.NTResponse[:], unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"))

	keys, ok := verifyMSCHAPv2(hash, auth, r)
	if !ok {
		t.Fatal("The RFC 2759 NT-Response did not verify")
	}
	if want := "S=407A5589115FD0D6209F510FE9C04566932CDA56"; keys.AuthResponse != want {
		t.Errorf("Authenticator response %s, want %s", keys.AuthResponse, want)
	}
	// RFC 3079's SendStartKey128 is the authenticator's send key, the
	// second half of MS-MPPE-Recv-Key (MSK octets 16-31).
	if len(keys.Recv) != 32 || !bytes.Equal(keys.Recv[16:], unhex(t, "8B7CDC149B993A1BA118CB153F56DCCB")) {
		t.Errorf("MS-MPPE-Recv-Key %x does not end in RFC 3079's send key", keys.Recv)
	}
	if !bytes.Equal(keys.Send, make([]byte, 32)) {
		t.Errorf("MS-MPPE-Send-Key %x, want the 32 zero octets ending the MSK", keys.Send)
	}

	for name, mutate := range map[string]func(*msResponse, *[16]byte){
		"other user name": func(r *msResponse, _ *[16]byte) { r.Name = "Other" },
		"other hash":      func(_ *msResponse, h *[16]byte) { h[0] ^= 1 },
		"flipped bit":     func(r *msResponse, _ *[16]byte) { r.NTResponse[23] ^= 0x80 },
		"other challenge": func(r *msResponse, _ *[16]byte) { r.PeerChallenge[0] ^= 1 },
	} {
		r2, h2 := r, hash
		mutate(&r2, &h2)
		if _, ok := verifyMSCHAPv2(h2, auth, r2); ok {
			t.Errorf("%s: a wrong NT-Response verified", name)
		}
	}
}

func TestChallengeUser(t *testing.T) {
	for in, want := range map[string]string{"user": "user", `DOM\user`: "user", `a\b\c`: `b\c`, "u@example.com": "u@example.com"} {
		if got := challengeUser(in); got != want {
			t.Errorf("challengeUser(%q) = %q, want %q", in, got, want)
		}
	}
}

// rfcToUTF16 is the NT hash of password as RFC 2759 computes it.
func rfcToUTF16(password string) ([]byte, error) {
	u, err := rfc2759.ToUTF16([]byte(password))
	return rfc2759.NTPasswordHash(u), err
}

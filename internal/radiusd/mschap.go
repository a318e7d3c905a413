package radiusd

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"
)

// RFC 2759 section 8.7 constants of GenerateAuthenticatorResponse: the
// library computes it only from a cleartext password, we hold the NT hash.
var (
	authMagic1 = []byte("Magic server to client signing constant")
	authMagic2 = []byte("Pad to make it do more than one iteration")
)

// msKeys is what a verified MS-CHAPv2 Response yields for the NAS.
type msKeys struct {
	// AuthResponse is "S=" and 40 upper-case hex digits.
	AuthResponse string
	// Recv and Send are the values of MS-MPPE-Recv-Key and MS-MPPE-Send-Key.
	Recv, Send []byte
}

// verifyMSCHAPv2 checks the peer's NT-Response against the NT hash of the
// user's password (RFC 2759 GenerateNTResponse with the hash in place of
// the password) and derives the authenticator response and the MPPE keys.
func verifyMSCHAPv2(ntHash [16]byte, authChallenge [challengeLen]byte, r msResponse) (msKeys, bool) {
	challenge := rfc2759.ChallengeHash(r.PeerChallenge[:], authChallenge[:], []byte(challengeUser(r.Name)))
	want := rfc2759.ChallengeResponse(challenge, ntHash[:])
	if subtle.ConstantTimeCompare(want, r.NTResponse[:]) != 1 {
		return msKeys{}, false
	}
	hashHash := rfc2759.NTPasswordHash(ntHash[:])

	h := sha1.New()
	h.Write(hashHash)
	h.Write(r.NTResponse[:])
	h.Write(authMagic1)
	digest := h.Sum(nil)
	h.Reset()
	h.Write(digest)
	h.Write(challenge)
	h.Write(authMagic2)
	auth := "S=" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)))

	// The EAP MSK is MasterReceiveKey | MasterSendKey | 32 zero octets
	// (RFC 3079 keys as the authenticator derives them; charon's
	// eap-mschapv2 peer computes the same), and the NAS joins it back as
	// MS-MPPE-Recv-Key | MS-MPPE-Send-Key (RFC 3748 MSK split, charon's
	// radius_socket decrypt_msk).
	master := rfc3079.GetMasterKey(hashHash, r.NTResponse[:])
	recv, _ := rfc3079.GetAsymmetricStartKey(master, rfc3079.KeyLength128Bit, false)
	send, _ := rfc3079.GetAsymmetricStartKey(master, rfc3079.KeyLength128Bit, true)
	return msKeys{
		AuthResponse: auth,
		Recv:         append(recv, send...),
		Send:         make([]byte, 32),
	}, true
}

// challengeUser is the user name MS-CHAPv2 hashes: without a Windows
// domain ("DOMAIN\user" hashes "user"; RFC 2759 section 8.2), as peers do.
func challengeUser(name string) string {
	if i := strings.IndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

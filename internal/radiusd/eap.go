package radiusd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EAP packet codes (RFC 3748 section 4).
const (
	eapRequest  = 1
	eapResponse = 2
	eapSuccess  = 3
	eapFailure  = 4
)

// EAP method types this server speaks (RFC 3748 section 5,
// draft-kamath-pppext-eap-mschapv2).
const (
	eapTypeIdentity = 1
	eapTypeNak      = 3
	eapTypeMSCHAPv2 = 26
)

// EAP-MSCHAPv2 OpCodes (draft-kamath-pppext-eap-mschapv2 section 2).
const (
	opChallenge = 1
	opResponse  = 2
	opSuccess   = 3
	opFailure   = 4
)

// Field sizes of MS-CHAPv2 (RFC 2759 section 4).
const (
	challengeLen     = 16
	responseValueLen = 49 // Peer-Challenge(16) Reserved(8) NT-Response(24) Flags(1)
	ntResponseLen    = 24
)

// authenticatorName is the Name of our Challenge: RFC 2759 lets the
// authenticator pick any; the peer does not use it in any computation.
const authenticatorName = "ikegate"

// eapPacket is one EAP packet: for Request and Response packets Type and
// Data (what follows the Type octet) are set.
type eapPacket struct {
	Code       byte
	Identifier byte
	Type       byte
	Data       []byte
}

var errShortEAP = errors.New("EAP packet too short")

// parseEAP reads an EAP packet as reassembled from EAP-Message attributes.
// Bytes past the EAP Length are padding and ignored (RFC 3748 section 4.1).
func parseEAP(b []byte) (eapPacket, error) {
	if len(b) < 4 {
		return eapPacket{}, errShortEAP
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 4 || n > len(b) {
		return eapPacket{}, fmt.Errorf("EAP length %d does not fit %d octets", n, len(b))
	}
	p := eapPacket{Code: b[0], Identifier: b[1]}
	switch p.Code {
	case eapRequest, eapResponse:
		if n < 5 {
			return eapPacket{}, errShortEAP
		}
		p.Type, p.Data = b[4], b[5:n]
	case eapSuccess, eapFailure:
		if n != 4 {
			return eapPacket{}, fmt.Errorf("EAP code %d with length %d", p.Code, n)
		}
	default:
		return eapPacket{}, fmt.Errorf("unknown EAP code %d", p.Code)
	}
	return p, nil
}

// encode is the packet in wire format.
func (p eapPacket) encode() []byte {
	if p.Code == eapSuccess || p.Code == eapFailure {
		return []byte{p.Code, p.Identifier, 0, 4}
	}
	b := make([]byte, 5+len(p.Data))
	b[0], b[1] = p.Code, p.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[4] = p.Type
	copy(b[5:], p.Data)
	return b
}

// msHeader prefixes an MS-CHAPv2 packet's body: OpCode, MS-CHAPv2-ID and
// MS-Length, which counts from the OpCode on (the EAP length minus 5).
func msHeader(op, msID byte, body []byte) []byte {
	b := make([]byte, 4+len(body))
	b[0], b[1] = op, msID
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	copy(b[4:], body)
	return b
}

// challengeRequest is the EAP-Request carrying an MS-CHAPv2 Challenge.
func challengeRequest(eapID, msID byte, challenge [challengeLen]byte) eapPacket {
	body := make([]byte, 0, 1+challengeLen+len(authenticatorName))
	body = append(body, challengeLen)
	body = append(body, challenge[:]...)
	body = append(body, authenticatorName...)
	return eapPacket{Code: eapRequest, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: msHeader(opChallenge, msID, body)}
}

// successRequest is the EAP-Request carrying an MS-CHAPv2 Success with the
// authenticator response ("S=<40 hex digits>") the peer checks us by.
func successRequest(eapID, msID byte, authResponse string) eapPacket {
	msg := authResponse + " M=Welcome"
	return eapPacket{Code: eapRequest, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: msHeader(opSuccess, msID, []byte(msg))}
}

// msResponse is a peer's MS-CHAPv2 Response.
type msResponse struct {
	MSID          byte
	PeerChallenge [challengeLen]byte
	NTResponse    [ntResponseLen]byte
	Name          string
}

// parseMSCHAPv2Response reads the Type-Data of an EAP-Response of type
// MSCHAPv2 with OpCode Response.
func parseMSCHAPv2Response(data []byte) (msResponse, error) {
	if len(data) < 4+1+responseValueLen {
		return msResponse{}, errors.New("MS-CHAPv2 Response too short")
	}
	if data[0] != opResponse {
		return msResponse{}, fmt.Errorf("MS-CHAPv2 OpCode %d, want Response", data[0])
	}
	if msLen := int(binary.BigEndian.Uint16(data[2:4])); msLen != len(data) {
		return msResponse{}, fmt.Errorf("MS-Length %d, packet holds %d", msLen, len(data))
	}
	if data[4] != responseValueLen {
		return msResponse{}, fmt.Errorf("MS-CHAPv2 Value-Size %d", data[4])
	}
	v := data[5 : 5+responseValueLen]
	r := msResponse{MSID: data[1], Name: string(data[5+responseValueLen:])}
	copy(r.PeerChallenge[:], v[:challengeLen])
	copy(r.NTResponse[:], v[challengeLen+8:challengeLen+8+ntResponseLen])
	return r, nil
}

// isMSCHAPv2Op reports whether p is an EAP-Response of type MSCHAPv2 whose
// OpCode is op (a peer's Success or Failure acknowledgement is the bare
// OpCode).
func isMSCHAPv2Op(p eapPacket, op byte) bool {
	return p.Code == eapResponse && p.Type == eapTypeMSCHAPv2 && len(p.Data) >= 1 && p.Data[0] == op
}

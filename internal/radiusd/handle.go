package radiusd

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc6911"
	"layeh.com/radius/vendors/microsoft"
)

// handle answers one datagram and says when to send the answer (the zero
// time: at once), or returns nil to drop it.
func (s *Server) handle(b []byte, source netip.Addr) ([]byte, time.Time) {
	reply, sess := s.answer(b, source)
	if sess == nil {
		return reply, time.Time{}
	}
	return reply, sess.replyAt
}

// answer is handle's reply, with the session it belongs to once there is
// one (the caller reads its replyAt; it is set before the reply).
func (s *Server) answer(b []byte, source netip.Addr) ([]byte, *session) {
	if len(b) < 20 {
		return nil, nil
	}
	if n := int(binary.BigEndian.Uint16(b[2:4])); n >= 20 && n <= len(b) {
		b = b[:n]
	} else {
		return nil, nil
	}
	switch radius.Code(b[0]) {
	case radius.CodeAccessRequest:
	case radius.CodeAccountingRequest:
		return s.account(b), nil
	default:
		return nil, nil
	}
	// Every EAP request carries a Message-Authenticator (RFC 3579 3.2);
	// checking it first means a forged packet costs one HMAC and no memory.
	if !validRequest(b, s.opts.Secret) {
		return nil, nil
	}
	req, err := radius.Parse(b, s.opts.Secret)
	if err != nil {
		return nil, nil
	}
	msg, err := parseEAP(rfc2869.EAPMessage_Get(req))
	if err != nil {
		return nil, nil
	}
	state := rfc2865.State_Get(req)
	if state == nil {
		return s.begin(req, msg, source), nil
	}
	sess, ok := s.pending.get(s.now(), state, source)
	if !ok {
		return nil, nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.lastReply != nil && sess.lastAuth == req.Authenticator {
		return sess.lastReply, sess
	}
	var reply []byte
	switch sess.step {
	case awaitResponse:
		reply = s.verify(req, msg, sess)
	case awaitSuccess:
		reply = s.accept(req, msg, sess)
	default:
		return nil, nil
	}
	sess.lastAuth, sess.lastReply = req.Authenticator, reply
	if sess.step == finished {
		s.pending.finish(s.now(), sess)
	}
	return reply, sess
}

// begin answers an EAP-Response/Identity with our MS-CHAPv2 Challenge and
// a State naming the new session.
func (s *Server) begin(req *radius.Packet, msg eapPacket, source netip.Addr) []byte {
	if msg.Code != eapResponse || msg.Type != eapTypeIdentity {
		return nil
	}
	if len(msg.Data) == 0 {
		// No user has an empty name. Refused at once, with no state kept:
		// dropped, charon would retransmit for seconds before failing the
		// client.
		return s.refuse(req, msg.Identifier, "", "empty EAP identity")
	}
	sess, ok := s.pending.add(s.now(), source)
	if !ok {
		return nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.identity = string(msg.Data)
	sess.eapID, sess.msID = msg.Identifier+1, msg.Identifier+1
	if _, err := rand.Read(sess.challenge[:]); err != nil {
		return nil
	}
	resp := req.Response(radius.CodeAccessChallenge)
	eap := challengeRequest(sess.eapID, sess.msID, sess.challenge)
	if rfc2869.EAPMessage_Set(resp, eap.encode()) != nil || rfc2865.State_Set(resp, []byte(sess.state)) != nil {
		return nil
	}
	reply := s.sign(resp)
	sess.lastAuth, sess.lastReply = req.Authenticator, reply
	s.challenges.Add(1)
	return reply
}

// verify checks the peer's MS-CHAPv2 Response and answers with our
// Success (the authenticator response) or rejects the login.
func (s *Server) verify(req *radius.Packet, msg eapPacket, sess *session) []byte {
	if msg.Identifier != sess.eapID {
		return nil
	}
	if !isMSCHAPv2Op(msg, opResponse) {
		// A Nak for another method, or garbage: this server has one method.
		return s.reject(req, sess, "peer did not answer the MS-CHAPv2 challenge")
	}
	r, err := parseMSCHAPv2Response(msg.Data)
	if err != nil || r.MSID != sess.msID {
		return s.reject(req, sess, "malformed MS-CHAPv2 response")
	}
	// The name in the response is the one hashed; it must be the identity
	// whose hash we check, or one user's hash would vouch for another name.
	if r.Name != sess.identity {
		return s.reject(req, sess, "MS-CHAPv2 name differs from the EAP identity")
	}
	hash, ok := s.opts.Users.NTHash(sess.identity)
	if !ok {
		return s.reject(req, sess, "unknown user")
	}
	keys, ok := verifyMSCHAPv2(hash, sess.challenge, r)
	if !ok {
		if s.opts.FailureDelay > 0 {
			sess.replyAt = s.now().Add(s.opts.FailureDelay)
		}
		return s.reject(req, sess, "wrong password")
	}
	sess.keys = keys
	sess.eapID++
	resp := req.Response(radius.CodeAccessChallenge)
	eap := successRequest(sess.eapID, sess.msID, keys.AuthResponse)
	if rfc2869.EAPMessage_Set(resp, eap.encode()) != nil || rfc2865.State_Set(resp, []byte(sess.state)) != nil {
		return nil
	}
	sess.step = awaitSuccess
	s.challenges.Add(1)
	return s.sign(resp)
}

// accept answers the peer's acknowledgement of our Success with
// Access-Accept: EAP-Success, the MPPE keys and the user's policy. A user
// removed since its response was verified is refused.
func (s *Server) accept(req *radius.Packet, msg eapPacket, sess *session) []byte {
	if msg.Identifier != sess.eapID {
		return nil
	}
	if !isMSCHAPv2Op(msg, opSuccess) {
		return s.reject(req, sess, "peer did not acknowledge the MS-CHAPv2 success")
	}
	if _, ok := s.opts.Users.NTHash(sess.identity); !ok {
		return s.reject(req, sess, "user removed during login")
	}
	resp := req.Response(radius.CodeAccessAccept)
	eap := eapPacket{Code: eapSuccess, Identifier: msg.Identifier}
	if rfc2869.EAPMessage_Set(resp, eap.encode()) != nil ||
		microsoft.MSMPPERecvKey_Add(resp, sess.keys.Recv) != nil ||
		microsoft.MSMPPESendKey_Add(resp, sess.keys.Send) != nil ||
		rfc2865.UserName_SetString(resp, sess.identity) != nil {
		return nil
	}
	if pu, ok := s.opts.Users.(PolicyUsers); ok && !addPolicy(resp, pu.Policy(sess.identity)) {
		return nil
	}
	sess.step = finished
	sess.keys = msKeys{}
	s.accepts.Add(1)
	s.log.V(1).Info("RADIUS login accepted", "identity", sess.identity)
	return s.sign(resp)
}

func addPolicy(resp *radius.Packet, p Policy) bool {
	// eap_radius.c process_cfg_attributes hands either to the "radius"
	// pool (eap_radius_provider.c).
	switch {
	case p.Address.Is4():
		if rfc2865.FramedIPAddress_Set(resp, net.IP(p.Address.AsSlice())) != nil {
			return false
		}
	case p.Address.Is6():
		if rfc6911.FramedIPv6Address_Set(resp, net.IP(p.Address.AsSlice())) != nil {
			return false
		}
	}
	if p.Class != "" {
		if rfc2865.Class_SetString(resp, p.Class) != nil {
			return false
		}
	}
	return true
}

// reject ends the login with Access-Reject carrying EAP-Failure.
func (s *Server) reject(req *radius.Packet, sess *session, why string) []byte {
	sess.step = finished
	sess.keys = msKeys{}
	return s.refuse(req, sess.eapID, sess.identity, why)
}

// refuse answers req with Access-Reject carrying EAP-Failure eapID.
func (s *Server) refuse(req *radius.Packet, eapID uint8, identity, why string) []byte {
	resp := req.Response(radius.CodeAccessReject)
	eap := eapPacket{Code: eapFailure, Identifier: eapID}
	if rfc2869.EAPMessage_Set(resp, eap.encode()) != nil {
		return nil
	}
	s.rejects.Add(1)
	s.log.V(1).Info("RADIUS login refused", "identity", identity, "reason", why)
	return s.sign(resp)
}

// sign encodes a reply with its Message-Authenticator (HMAC-MD5 over the
// reply with the request's authenticator, RFC 3579 3.2) and then its
// Response Authenticator.
func (s *Server) sign(resp *radius.Packet) []byte {
	var zero [16]byte
	if rfc2869.MessageAuthenticator_Set(resp, zero[:]) != nil {
		return nil
	}
	raw, err := resp.MarshalBinary()
	if err != nil {
		return nil
	}
	mac := hmac.New(md5.New, s.opts.Secret)
	mac.Write(raw)
	if rfc2869.MessageAuthenticator_Set(resp, mac.Sum(nil)) != nil {
		return nil
	}
	b, err := resp.Encode()
	if err != nil {
		return nil
	}
	return b
}

// validRequest reports whether b, an Access-Request cut to its Length,
// carries exactly one Message-Authenticator and it is right for secret.
func validRequest(b, secret []byte) bool {
	at := messageAuthenticatorAt(b)
	if at < 0 {
		return false
	}
	zeroed := append([]byte(nil), b...)
	clear(zeroed[at : at+16])
	mac := hmac.New(md5.New, secret)
	mac.Write(zeroed)
	return hmac.Equal(mac.Sum(nil), b[at:at+16])
}

// messageAuthenticatorAt is the offset of the value of the one
// Message-Authenticator in packet b, or -1 if there is none, more than
// one, or the attributes are malformed.
func messageAuthenticatorAt(b []byte) int {
	at := -1
	for i := 20; i < len(b); {
		if i+2 > len(b) {
			return -1
		}
		t, l := radius.Type(b[i]), int(b[i+1])
		if l < 2 || i+l > len(b) {
			return -1
		}
		if t == rfc2869.MessageAuthenticator_Type {
			if l != 18 || at >= 0 {
				return -1
			}
			at = i + 2
		}
		i += l
	}
	return at
}

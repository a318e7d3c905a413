package radiusd

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// nas plays charon's eap-radius plugin and an EAP-MSCHAPv2 peer against a
// Server's handler, checking the authenticity of every reply the way the
// plugin does.
type nas struct {
	t      testing.TB
	s      *Server
	secret []byte
	src    netip.Addr
	state  []byte
	// lastAt is when the server would send its last reply (zero: at once).
	lastAt time.Time
}

func newNAS(t testing.TB, s *Server) *nas {
	return &nas{t: t, s: s, secret: s.opts.Secret, src: netip.MustParseAddr("127.0.0.1")}
}

// encodeRequest signs an Access-Request carrying eap (and our State) with
// secret.
func (n *nas) encodeRequest(eap []byte, secret []byte) (*radius.Packet, []byte) {
	n.t.Helper()
	req := radius.New(radius.CodeAccessRequest, secret)
	if err := rfc2869.EAPMessage_Set(req, eap); err != nil {
		n.t.Fatal(err)
	}
	if n.state != nil {
		_ = rfc2865.State_Set(req, n.state)
	}
	_ = rfc2869.MessageAuthenticator_Set(req, make([]byte, 16))
	raw, err := req.MarshalBinary()
	if err != nil {
		n.t.Fatal(err)
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(raw)
	_ = rfc2869.MessageAuthenticator_Set(req, mac.Sum(nil))
	b, err := req.Encode()
	if err != nil {
		n.t.Fatal(err)
	}
	return req, b
}

// send hands b to the server and checks and parses its reply; nil when
// the server dropped the request.
func (n *nas) send(req *radius.Packet, b []byte) *radius.Packet {
	n.t.Helper()
	reply, sendAt := n.s.handle(b, n.src)
	n.lastAt = sendAt
	if reply == nil {
		return nil
	}
	if !radius.IsAuthenticResponse(reply, b, n.secret) {
		n.t.Fatal("Reply has a wrong Response Authenticator")
	}
	at := messageAuthenticatorAt(reply)
	if at < 0 {
		n.t.Fatal("Reply has no Message-Authenticator")
	}
	signed := append([]byte(nil), reply...)
	copy(signed[4:20], req.Authenticator[:])
	clear(signed[at : at+16])
	mac := hmac.New(md5.New, n.secret)
	mac.Write(signed)
	if !hmac.Equal(mac.Sum(nil), reply[at:at+16]) {
		n.t.Fatal("Reply has a wrong Message-Authenticator")
	}
	resp, err := radius.Parse(reply, n.secret)
	if err != nil {
		n.t.Fatal(err)
	}
	n.state = rfc2865.State_Get(resp)
	return resp
}

func (n *nas) exchange(eap eapPacket) (*radius.Packet, *radius.Packet) {
	n.t.Helper()
	req, b := n.encodeRequest(eap.encode(), n.secret)
	return req, n.send(req, b)
}

// replyEAP is the EAP packet of a reply of the wanted code.
func replyEAP(t testing.TB, resp *radius.Packet, code radius.Code) eapPacket {
	t.Helper()
	if resp == nil {
		t.Fatalf("No reply, want %v", code)
	}
	if resp.Code != code {
		t.Fatalf("Reply %v, want %v", resp.Code, code)
	}
	p, err := parseEAP(rfc2869.EAPMessage_Get(resp))
	if err != nil {
		t.Fatalf("EAP in %v: %v", code, err)
	}
	return p
}

// login is what a peer with password sees; the last request and reply.
type login struct {
	authChallenge, peerChallenge [16]byte
	ntResponse                   []byte
	req, resp                    *radius.Packet
}

// identity sends the EAP-Identity and returns the server's challenge.
func (n *nas) identity(identity string) (byte, [16]byte, byte) {
	n.t.Helper()
	_, resp := n.exchange(eapPacket{Code: eapResponse, Identifier: 7, Type: eapTypeIdentity, Data: []byte(identity)})
	ch := replyEAP(n.t, resp, radius.CodeAccessChallenge)
	if ch.Code != eapRequest || ch.Type != eapTypeMSCHAPv2 || len(ch.Data) < 4+1+16 || ch.Data[0] != opChallenge || ch.Data[4] != 16 {
		n.t.Fatalf("Not an MS-CHAPv2 Challenge: %+v", ch)
	}
	if n.state == nil {
		n.t.Fatal("Challenge without State")
	}
	var c [16]byte
	copy(c[:], ch.Data[5:21])
	return ch.Identifier, c, ch.Data[1]
}

// respond answers the challenge as user with password and returns the
// server's reply.
func (n *nas) respond(l *login, eapID, msID byte, user, password string) *radius.Packet {
	n.t.Helper()
	if _, err := rand.Read(l.peerChallenge[:]); err != nil {
		n.t.Fatal(err)
	}
	var err error
	l.ntResponse, err = rfc2759.GenerateNTResponse(l.authChallenge[:], l.peerChallenge[:], []byte(user), []byte(password))
	if err != nil {
		n.t.Fatal(err)
	}
	body := []byte{responseValueLen}
	body = append(body, l.peerChallenge[:]...)
	body = append(body, make([]byte, 8)...)
	body = append(body, l.ntResponse...)
	body = append(body, 0)
	body = append(body, user...)
	l.req, l.resp = n.exchange(eapPacket{Code: eapResponse, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: msHeader(opResponse, msID, body)})
	return l.resp
}

// loginUntilSuccess runs a login up to the server's MS-CHAPv2 Success and
// checks the authenticator response in it.
func (n *nas) loginUntilSuccess(user, password string) (*login, byte) {
	n.t.Helper()
	l := &login{}
	eapID, c, msID := n.identity(user)
	l.authChallenge = c
	succ := replyEAP(n.t, n.respond(l, eapID, msID, user, password), radius.CodeAccessChallenge)
	if !isMSCHAPv2Op(eapPacket{Code: eapResponse, Type: succ.Type, Data: succ.Data}, opSuccess) || succ.Code != eapRequest {
		n.t.Fatalf("Not an MS-CHAPv2 Success: %+v", succ)
	}
	want, _ := rfc2759.GenerateAuthenticatorResponse(l.authChallenge[:], l.peerChallenge[:], l.ntResponse, []byte(user), []byte(password))
	if msg := string(succ.Data[4:]); !strings.HasPrefix(msg, want+" ") {
		n.t.Fatalf("Success message %q, want authenticator response %s", msg, want)
	}
	return l, succ.Identifier
}

func (n *nas) ack(l *login, eapID byte) *radius.Packet {
	n.t.Helper()
	l.req, l.resp = n.exchange(eapPacket{Code: eapResponse, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: []byte{opSuccess}})
	return l.resp
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

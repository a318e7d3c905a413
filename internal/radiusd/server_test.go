package radiusd

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3079"
	"layeh.com/radius/vendors/microsoft"
)

func newTestServer(t *testing.T, users Users, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Addr: "127.0.0.1:0", Secret: []byte("s3cret"), Users: users}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

func testUsers() *Map {
	m := &Map{}
	m.Set("alice", User{NTHash: ntHashOf("alice-pass"), Policy: Policy{Address: netip.MustParseAddr("10.3.201.7"), Class: "engineering"}})
	m.Set("bob", User{NTHash: ntHashOf("bob-pass")})
	return m
}

func ntHashOf(password string) [16]byte {
	u, _ := rfcToUTF16(password)
	var h [16]byte
	copy(h[:], u)
	return h
}

func TestNewRefusesWhatItCannotServeSafely(t *testing.T) {
	for name, opts := range map[string]Options{
		"not loopback": {Addr: "0.0.0.0:0", Secret: []byte("x"), Users: &Map{}},
		"a name":       {Addr: "localhost:0", Secret: []byte("x"), Users: &Map{}},
		"no secret":    {Addr: "127.0.0.1:0", Users: &Map{}},
		"no users":     {Addr: "127.0.0.1:0", Secret: []byte("x")},
	} {
		if s, err := New(opts); err == nil {
			s.conn.Close()
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
	wild, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	if s, err := New(Options{Conn: wild, Secret: []byte("x"), Users: &Map{}}); err == nil {
		s.conn.Close()
		t.Error("New accepted a socket bound to every address")
	}
}

// TestReplaceSwapsTheWholeSet: after Replace only the new users exist.
func TestReplaceSwapsTheWholeSet(t *testing.T) {
	m := testUsers()
	m.Replace(map[string]User{"carol": {NTHash: ntHashOf("carol-pass")}})
	if _, ok := m.NTHash("alice"); ok || m.Len() != 1 {
		t.Errorf("alice still there after Replace (%d users)", m.Len())
	}
	if h, ok := m.NTHash("carol"); !ok || h != ntHashOf("carol-pass") {
		t.Error("carol missing after Replace")
	}
}

// TestLogin is a whole EAP-MSCHAPv2 login: the Access-Accept carries
// EAP-Success, the MPPE keys the peer derives its MSK from (decrypted as
// the NAS does), and the user's policy.
func TestLogin(t *testing.T) {
	s := newTestServer(t, testUsers(), nil)
	n := newNAS(t, s)
	l, eapID := n.loginUntilSuccess("alice", "alice-pass")
	accept := n.ack(l, eapID)
	if p := replyEAP(t, accept, radius.CodeAccessAccept); p.Code != eapSuccess || p.Identifier != eapID {
		t.Fatalf("Access-Accept carries %+v, want EAP-Success %d", p, eapID)
	}
	recv, err := microsoft.MSMPPERecvKey_Lookup(accept, l.req)
	if err != nil {
		t.Fatal(err)
	}
	send, err := microsoft.MSMPPESendKey_Lookup(accept, l.req)
	if err != nil {
		t.Fatal(err)
	}
	// The peer's MSK: its receive and send keys as RFC 3079's server
	// computes them, then 32 zero octets.
	pr, _ := rfc3079.MakeKey(l.ntResponse, []byte("alice-pass"), false)
	ps, _ := rfc3079.MakeKey(l.ntResponse, []byte("alice-pass"), true)
	mustEqual(t, "MS-MPPE-Recv-Key", recv, append(pr, ps...))
	mustEqual(t, "MS-MPPE-Send-Key", send, make([]byte, 32))
	if ip := rfc2865.FramedIPAddress_Get(accept); ip.String() != "10.3.201.7" {
		t.Errorf("Framed-IP-Address %v, want 10.3.201.7", ip)
	}
	if c := rfc2865.Class_GetString(accept); c != "engineering" {
		t.Errorf("Class %q, want engineering", c)
	}
	if st := s.Stats(); st.Accepts != 1 || st.Challenges != 2 || st.Rejects != 0 {
		t.Errorf("Stats %+v", st)
	}

	// bob has no policy: no policy attributes.
	l, eapID = n.loginUntilSuccess("bob", "bob-pass")
	accept = n.ack(l, eapID)
	replyEAP(t, accept, radius.CodeAccessAccept)
	if _, err := rfc2865.FramedIPAddress_Lookup(accept); err == nil {
		t.Error("Framed-IP-Address for a user without an address")
	}
	if _, err := rfc2865.Class_Lookup(accept); err == nil {
		t.Error("Class for a user without a group")
	}
}

func TestRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		identity, name, password string
	}{
		"wrong password":       {"alice", "alice", "bob-pass"},
		"unknown user":         {"carol", "carol", "carol-pass"},
		"name is not identity": {"alice", "bob", "bob-pass"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, testUsers(), nil)
			n := newNAS(t, s)
			l := &login{}
			eapID, c, msID := n.identity(tc.identity)
			l.authChallenge = c
			if p := replyEAP(t, n.respond(l, eapID, msID, tc.name, tc.password), radius.CodeAccessReject); p.Code != eapFailure {
				t.Fatalf("Access-Reject carries %+v, want EAP-Failure", p)
			}
			if st := s.Stats(); st.Rejects != 1 || st.Accepts != 0 {
				t.Errorf("Stats %+v", st)
			}
		})
	}
}

// TestUserChangesTakeEffectAtOnce: removed between its verified response
// and the final acknowledgement, a user is refused; added, it logs in.
func TestUserChangesTakeEffectAtOnce(t *testing.T) {
	users := testUsers()
	s := newTestServer(t, users, nil)
	n := newNAS(t, s)
	l, eapID := n.loginUntilSuccess("bob", "bob-pass")
	users.Delete("bob")
	replyEAP(t, n.ack(l, eapID), radius.CodeAccessReject)

	users.Set("carol", User{NTHash: ntHashOf("carol-pass")})
	l, eapID = n.loginUntilSuccess("carol", "carol-pass")
	replyEAP(t, n.ack(l, eapID), radius.CodeAccessAccept)
}

// TestRetransmissionGetsTheSameReply: charon resends a request it got no
// answer to; the session has moved on, the answer must not.
func TestRetransmissionGetsTheSameReply(t *testing.T) {
	s := newTestServer(t, testUsers(), nil)
	n := newNAS(t, s)
	_, eapID := n.loginUntilSuccess("alice", "alice-pass")
	_, b := n.encodeRequest(eapPacket{Code: eapResponse, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: []byte{opSuccess}}.encode(), n.secret)
	first := s.replyNow(b, n.src)
	again := s.replyNow(b, n.src)
	if first == nil || string(first) != string(again) {
		t.Fatal("A retransmitted request got another reply")
	}
	if st := s.Stats(); st.Accepts != 1 {
		t.Errorf("Accepts %d, want 1: the retransmission was counted as a login", st.Accepts)
	}
}

// TestDropped: what is not signed with the secret, not for a session of
// its sender, or not an Access-Request gets no answer and no state.
func TestDropped(t *testing.T) {
	s := newTestServer(t, testUsers(), nil)
	n := newNAS(t, s)
	identity := eapPacket{Code: eapResponse, Identifier: 1, Type: eapTypeIdentity, Data: []byte("alice")}.encode()

	_, b := n.encodeRequest(identity, []byte("other secret"))
	if s.replyNow(b, n.src) != nil {
		t.Error("Answered a request signed with another secret")
	}
	req := radius.New(radius.CodeAccessRequest, n.secret)
	_ = rfc2865.UserName_SetString(req, "alice")
	unsigned, _ := req.Encode()
	if s.replyNow(unsigned, n.src) != nil {
		t.Error("Answered a request without Message-Authenticator")
	}
	_, b = n.encodeRequest(identity, n.secret)
	b[len(b)-1] ^= 1
	if s.replyNow(b, n.src) != nil {
		t.Error("Answered a request altered after signing")
	}
	acct := append([]byte(nil), b...)
	acct[0] = byte(radius.CodeAccountingRequest)
	if s.replyNow(acct, n.src) != nil {
		t.Error("Answered an Accounting-Request on the authentication port")
	}
	if got, _ := s.pending.len(); got != 0 {
		t.Errorf("%d sessions after bad requests", got)
	}

	// A session's State from another source, or an unknown State.
	eapID, _, _ := n.identity("alice")
	state := n.state
	n.src = netip.MustParseAddr("127.0.0.2")
	ack := eapPacket{Code: eapResponse, Identifier: eapID, Type: eapTypeMSCHAPv2, Data: []byte{opSuccess}}
	if _, resp := n.exchange(ack); resp != nil {
		t.Error("Answered a State sent from another source")
	}
	n.src, n.state = netip.MustParseAddr("127.0.0.1"), []byte("no such state!!!")
	if _, resp := n.exchange(ack); resp != nil {
		t.Error("Answered an unknown State")
	}
	n.state = state
	if _, resp := n.exchange(eapPacket{Code: eapResponse, Identifier: eapID + 1, Type: eapTypeMSCHAPv2, Data: []byte{opSuccess}}); resp != nil {
		t.Error("Answered an EAP identifier the session did not ask for")
	}
}

// TestFloodIsBounded: logins begun and never finished fill the table only
// up to its bounds, per source and in all; they expire, and then new
// logins are served again.
func TestFloodIsBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	s := newTestServer(t, testUsers(), func(o *Options) { o.MaxPending, o.MaxPendingPerSource, o.PendingTTL = 64, 16, time.Minute })
	s.now = func() time.Time { return now }
	n := newNAS(t, s)
	identity := eapPacket{Code: eapResponse, Identifier: 1, Type: eapTypeIdentity, Data: []byte("mallory")}.encode()
	flood := func(src string, count int) (answered int) {
		n.src = netip.MustParseAddr(src)
		for range count {
			n.state = nil
			_, b := n.encodeRequest(identity, n.secret)
			if s.replyNow(b, n.src) != nil {
				answered++
			}
		}
		return answered
	}
	if got := flood("127.0.0.1", 1000); got != 16 {
		t.Errorf("One source began %d logins, want its bound 16", got)
	}
	for i := 2; i <= 10; i++ {
		flood(fmt.Sprintf("127.0.0.%d", i), 100)
	}
	if got, _ := s.pending.len(); got != 64 {
		t.Errorf("%d sessions held, want the bound 64", got)
	}
	now = now.Add(time.Minute)
	if got := flood("127.0.0.1", 1); got != 1 {
		t.Error("No login served after the flood's sessions expired")
	}
	if got, _ := s.pending.len(); got != 1 {
		t.Errorf("%d sessions held after expiry, want 1", got)
	}
}

// TestAnsweredLoginsFreeTheirSlots: a finished login no longer counts as
// in progress, so a small bound still serves any number of logins in a
// row; the answered ones kept for retransmissions stay bounded too.
func TestAnsweredLoginsFreeTheirSlots(t *testing.T) {
	s := newTestServer(t, testUsers(), func(o *Options) { o.MaxPending = 4 })
	n := newNAS(t, s)
	for i := range 10 {
		n.state = nil
		if i%3 == 2 {
			l := &login{}
			eapID, c, msID := n.identity("bob")
			l.authChallenge = c
			replyEAP(t, n.respond(l, eapID, msID, "bob", "wrong"), radius.CodeAccessReject)
			continue
		}
		l, eapID := n.loginUntilSuccess("bob", "bob-pass")
		replyEAP(t, n.ack(l, eapID), radius.CodeAccessAccept)
	}
	if st := s.Stats(); st.Accepts != 7 || st.Rejects != 3 || st.Pending != 0 || st.Answered != 4 {
		t.Errorf("Stats %+v, want 7 accepts, 3 rejects, none pending and the bound of 4 answered", st)
	}
}

// TestEmptyIdentityIsRefusedAtOnce: an empty EAP identity gets an
// Access-Reject straight away (charon would otherwise retransmit for
// seconds before failing the client), and no login is kept for it.
func TestEmptyIdentityIsRefusedAtOnce(t *testing.T) {
	s := newTestServer(t, testUsers(), nil)
	n := newNAS(t, s)
	_, resp := n.exchange(eapPacket{Code: eapResponse, Identifier: 7, Type: eapTypeIdentity})
	if p := replyEAP(t, resp, radius.CodeAccessReject); p.Code != eapFailure || p.Identifier != 7 {
		t.Fatalf("Access-Reject carries %+v, want EAP-Failure 7", p)
	}
	if st := s.Stats(); st.Rejects != 1 || st.Pending != 0 || st.Answered != 0 {
		t.Errorf("Stats %+v, want one reject and no login kept", st)
	}
}

// replyNow is handle's reply without its send time.
func (s *Server) replyNow(b []byte, source netip.Addr) []byte {
	reply, _ := s.handle(b, source)
	return reply
}

// TestAWrongPasswordIsAnsweredLate: the reject of a wrong password, and of
// its retransmission, waits FailureDelay; a right password and an unknown
// user are answered at once.
func TestAWrongPasswordIsAnsweredLate(t *testing.T) {
	now := time.Unix(1e9, 0)
	s := newTestServer(t, testUsers(), func(o *Options) { o.FailureDelay = 3 * time.Second })
	s.now = func() time.Time { return now }
	n := newNAS(t, s)
	l := &login{}
	eapID, c, msID := n.identity("alice")
	l.authChallenge = c
	replyEAP(t, n.respond(l, eapID, msID, "alice", "wrong"), radius.CodeAccessReject)
	if want := now.Add(3 * time.Second); !n.lastAt.Equal(want) {
		t.Errorf("The wrong password's reject is sent at %v, want %v", n.lastAt, want)
	}
	n.state = nil
	_, eapID = n.loginUntilSuccess("alice", "alice-pass")
	if !n.lastAt.IsZero() {
		t.Errorf("The right password's challenge waits until %v", n.lastAt)
	}
	_ = eapID
	n.state = nil
	l = &login{}
	eapID, c, msID = n.identity("carol")
	l.authChallenge = c
	replyEAP(t, n.respond(l, eapID, msID, "carol", "carol-pass"), radius.CodeAccessReject)
	if !n.lastAt.IsZero() {
		t.Errorf("The unknown user's reject waits until %v", n.lastAt)
	}
}

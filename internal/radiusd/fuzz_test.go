package radiusd

import (
	"net/netip"
	"testing"
)

// FuzzParseEAP: any octets either parse into a packet that encodes back to
// its own prefix, or fail; never a panic.
func FuzzParseEAP(f *testing.F) {
	f.Add(eapPacket{Code: eapResponse, Identifier: 1, Type: eapTypeIdentity, Data: []byte("alice")}.encode())
	f.Add(eapPacket{Code: eapSuccess, Identifier: 2}.encode())
	f.Add(challengeRequest(3, 3, [16]byte{1}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseEAP(b)
		if err != nil {
			return
		}
		enc := p.encode()
		if string(enc) != string(b[:len(enc)]) {
			t.Fatalf("parse/encode of %x gave %x", b, enc)
		}
		_, _ = parseMSCHAPv2Response(p.Data)
	})
}

// FuzzHandle: a request signed with the secret but otherwise arbitrary
// gets an answer or is dropped; never a panic.
func FuzzHandle(f *testing.F) {
	f.Add([]byte{2, 1, 0, 10, 1, 'a', 'l', 'i', 'c', 'e'}, []byte(nil))
	f.Add([]byte{2, 1, 0, 6, 26, 3}, []byte("0123456789abcdef"))
	s, err := New(Options{Addr: "127.0.0.1:0", Secret: []byte("s3cret"), Users: testUsers()})
	if err != nil {
		f.Fatal(err)
	}
	defer s.conn.Close()
	f.Fuzz(func(t *testing.T, eap, state []byte) {
		if len(eap) > 2000 || len(state) > 200 {
			return
		}
		n := &nas{t: t, s: s, secret: s.opts.Secret, src: netip.MustParseAddr("127.0.0.1"), state: state}
		_, b := n.encodeRequest(eap, n.secret)
		_ = s.replyNow(b, n.src)
		_ = s.replyNow(b[:len(b)/2], n.src)
	})
}

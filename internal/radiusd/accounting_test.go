package radiusd

import (
	"net"
	"net/netip"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

func accountingRequest(t *testing.T, secret []byte, status rfc2866.AcctStatusType) []byte {
	t.Helper()
	req := radius.New(radius.CodeAccountingRequest, secret)
	if rfc2866.AcctStatusType_Set(req, status) != nil || rfc2866.AcctSessionID_SetString(req, "sess-1") != nil ||
		rfc2865.UserName_SetString(req, "alice") != nil || rfc2865.FramedIPAddress_Set(req, net.IPv4(10, 3, 200, 9)) != nil {
		t.Fatal("Building the accounting request")
	}
	b, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAccounting: charon's Start and Stop reach Options.Accounting with
// the session's identity, id and address and are acknowledged with a
// signed Accounting-Response; a record not signed with the secret is
// dropped unseen.
func TestAccounting(t *testing.T) {
	var got []AccountingRecord
	s := newTestServer(t, testUsers(), func(o *Options) { o.Accounting = func(r AccountingRecord) { got = append(got, r) } })
	src := netip.MustParseAddr("127.0.0.1")
	for _, st := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_Stop} {
		b := accountingRequest(t, s.opts.Secret, st)
		reply := s.replyNow(b, src)
		if reply == nil || radius.Code(reply[0]) != radius.CodeAccountingResponse || !radius.IsAuthenticResponse(reply, b, s.opts.Secret) {
			t.Fatalf("Status %v: reply %x, want a signed Accounting-Response", st, reply)
		}
	}
	want := []AccountingRecord{
		{Status: AccountingStart, SessionID: "sess-1", Identity: "alice", Address: netip.MustParseAddr("10.3.200.9")},
		{Status: AccountingStop, SessionID: "sess-1", Identity: "alice", Address: netip.MustParseAddr("10.3.200.9")},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Records %+v, want %+v", got, want)
	}
	if reply := s.replyNow(accountingRequest(t, []byte("wrong"), rfc2866.AcctStatusType_Value_Start), src); reply != nil || len(got) != 2 {
		t.Errorf("A record signed with another secret was answered (%x) or passed on", reply)
	}
	if st := s.Stats(); st.Accounted != 2 {
		t.Errorf("Stats %+v, want 2 accounted", st)
	}
}

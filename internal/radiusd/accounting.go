package radiusd

import (
	"net/netip"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// AccountingStatus is a record's Acct-Status-Type (RFC 2866 5.1).
type AccountingStatus int

// The statuses charon's eap-radius plugin sends (accounting = yes).
const (
	AccountingStart   AccountingStatus = AccountingStatus(rfc2866.AcctStatusType_Value_Start)
	AccountingStop    AccountingStatus = AccountingStatus(rfc2866.AcctStatusType_Value_Stop)
	AccountingInterim AccountingStatus = AccountingStatus(rfc2866.AcctStatusType_Value_InterimUpdate)
)

// AccountingRecord is one accounting request of charon's: a session of
// identity began, goes on, or ended.
type AccountingRecord struct {
	Status AccountingStatus
	// SessionID is charon's Acct-Session-Id, the same in a session's
	// Start, updates and Stop.
	SessionID string
	Identity  string
	// Address is the session's virtual IP (Framed-IP-Address), if any.
	Address netip.Addr
}

// account answers an Accounting-Request: records signed with the secret
// (the Request Authenticator of RFC 2866 3) are passed to
// Options.Accounting and acknowledged; others are dropped.
func (s *Server) account(b []byte) []byte {
	if !radius.IsAuthenticRequest(b, s.opts.Secret) {
		return nil
	}
	req, err := radius.Parse(b, s.opts.Secret)
	if err != nil {
		return nil
	}
	status, err := rfc2866.AcctStatusType_Lookup(req)
	if err != nil {
		return nil
	}
	rec := AccountingRecord{
		Status:    AccountingStatus(status),
		SessionID: rfc2866.AcctSessionID_GetString(req),
		Identity:  rfc2865.UserName_GetString(req),
	}
	if ip := rfc2865.FramedIPAddress_Get(req); ip != nil {
		if a, ok := netip.AddrFromSlice(ip); ok {
			rec.Address = a.Unmap()
		}
	}
	if s.opts.Accounting != nil {
		s.opts.Accounting(rec)
	}
	reply, err := req.Response(radius.CodeAccountingResponse).Encode()
	if err != nil {
		return nil
	}
	s.accounted.Add(1)
	return reply
}

package diagnose

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Alert types of the error-notify plugin
// (src/libcharon/plugins/error_notify/error_notify_msg.h, 5.9.8 and 6.0).
const (
	AlertRadiusNotResponding  = 1
	AlertLocalAuthFailed      = 2
	AlertPeerAuthFailed       = 3
	AlertParseErrorHeader     = 4
	AlertParseErrorBody       = 5
	AlertRetransmitTimeout    = 6
	AlertHalfOpenTimeout      = 7
	AlertProposalMismatchIKE  = 8
	AlertProposalMismatchESP  = 9
	AlertTSMismatch           = 10
	AlertInstallChildSAFailed = 11
	AlertInstallPolicyFailed  = 12
	AlertUniqueReplace        = 13
	AlertUniqueKeep           = 14
	AlertVIPFailure           = 15
	AlertAuthorizationFailed  = 16
	AlertCertExpired          = 17
	AlertCertRevoked          = 18
	AlertNoIssuerCert         = 19
	AlertRetransmitSend       = 20
	AlertRetransmitCleared    = 21
	AlertRetransmitReceive    = 22
	AlertPeerAddrFailed       = 23
	AlertPeerInitUnreachable  = 24
	AlertInvalidIKESPI        = 25
	AlertTSNarrowed           = 26
	AlertKeepOnChildSAFailure = 27
	AlertIKESAExpired         = 28
	AlertCertValidationFailed = 29
	AlertUntrustedRootCert    = 30
	AlertCertExceededPathLen  = 31
	AlertCertPolicyViolation  = 32
)

// The error_notify_msg_t struct is packed: int type; char str[384];
// char name[64]; char id[256]; char ip[60]. error_notify_listener.c fills
// type with htonl, so it is big-endian on the wire; the strings are
// NUL-terminated (snprintf) within their fields.
const (
	alertStrLen  = 384
	alertNameLen = 64
	alertIDLen   = 256
	alertIPLen   = 60
	// AlertSize is the size of one message on the socket.
	AlertSize = 4 + alertStrLen + alertNameLen + alertIDLen + alertIPLen
)

// Alert is one error-notify message. Strings are cleaned.
type Alert struct {
	// Time is when the alert was read (the message carries none).
	Time time.Time
	Type int
	// Text is charon's description ("the received IKE_SA proposals did not match: ...").
	Text string
	// Connection is the peer config's name, if one was selected.
	Connection string
	// PeerID is the peer's EAP identity if it had one, else its IKE identity.
	PeerID string
	// Peer is the peer's address and port ("192.0.2.2[500]").
	Peer string
}

// DecodeAlert decodes one error-notify message of exactly AlertSize bytes.
func DecodeAlert(b []byte) (Alert, error) {
	if len(b) != AlertSize {
		return Alert{}, fmt.Errorf("error-notify message of %d bytes, want %d", len(b), AlertSize)
	}
	field := func(off, n int) string {
		f := b[off : off+n]
		if i := bytes.IndexByte(f, 0); i >= 0 {
			f = f[:i]
		}
		return Clean(string(f))
	}
	t := int32(binary.BigEndian.Uint32(b[:4]))
	off := 4
	a := Alert{Type: int(t), Text: cleanN(field(off, alertStrLen), alertStrLen)}
	off += alertStrLen
	a.Connection = field(off, alertNameLen)
	off += alertNameLen
	a.PeerID = field(off, alertIDLen)
	off += alertIDLen
	a.Peer = field(off, alertIPLen)
	return a, nil
}

// AlertReader reads alerts from a connection to charon's error-notify
// socket (a unix stream socket; charon writes each message whole with
// write_all).
type AlertReader struct {
	conn net.Conn
	buf  [AlertSize]byte
	now  func() time.Time
}

// NewAlertReader reads alerts from conn.
func NewAlertReader(conn net.Conn) *AlertReader {
	return &AlertReader{conn: conn, now: time.Now}
}

// Read blocks until the next alert. It returns io.EOF when charon closed
// the socket at a message boundary.
func (r *AlertReader) Read() (Alert, error) {
	if _, err := io.ReadFull(r.conn, r.buf[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Alert{}, fmt.Errorf("error-notify socket closed within a message: %w", err)
		}
		return Alert{}, err
	}
	a, err := DecodeAlert(r.buf[:])
	a.Time = r.now()
	return a, err
}

// Close closes the connection.
func (r *AlertReader) Close() error { return r.conn.Close() }

// alertKinds maps the alerts that end (or doom) an attempt to a reason and
// the phase they belong to; "" phase means the attempt's current one.
var alertKinds = map[int]struct {
	reason string
	phase  Phase
}{
	AlertPeerAuthFailed:       {ReasonAuthenticationFailed, PhaseIKEAuth},
	AlertLocalAuthFailed:      {ReasonAuthenticationFailed, PhaseIKEAuth},
	AlertAuthorizationFailed:  {ReasonAuthenticationFailed, PhaseIKEAuth},
	AlertRetransmitTimeout:    {ReasonPeerUnreachable, ""},
	AlertHalfOpenTimeout:      {ReasonPeerUnreachable, PhaseIKESAInit},
	AlertPeerInitUnreachable:  {ReasonPeerUnreachable, PhaseIKESAInit},
	AlertProposalMismatchIKE:  {ReasonProposalMismatch, PhaseIKESAInit},
	AlertProposalMismatchESP:  {ReasonProposalMismatch, ""},
	AlertTSMismatch:           {ReasonTrafficSelectorMismatch, ""},
	AlertUniqueReplace:        {ReasonDuplicateLogin, PhaseLiveness},
	AlertUniqueKeep:           {ReasonDuplicateLogin, PhaseIKEAuth},
	AlertVIPFailure:           {ReasonPoolExhausted, PhaseIKEAuth},
	AlertCertExpired:          {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertCertRevoked:          {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertNoIssuerCert:         {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertCertValidationFailed: {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertUntrustedRootCert:    {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertCertExceededPathLen:  {ReasonCertificateInvalid, PhaseIKEAuth},
	AlertCertPolicyViolation:  {ReasonCertificateInvalid, PhaseIKEAuth},
}

// Alert takes one error-notify alert and returns the Failure it reports,
// if it reports one that the log has not reported already. An alert joins
// the attempt last seen with its peer address and identity, so what the
// log said about that IKE_SA (proposals, identities) completes it, and a
// failure that both the log and an alert report is returned once.
func (c *Correlator) Alert(al Alert) (Failure, bool) {
	kind, ok := alertKinds[al.Type]
	if !ok {
		return Failure{}, false
	}
	peer := hostOnly(al.Peer)
	a := c.alertAttempt(peer, al.PeerID)
	if a != nil && al.Type == AlertProposalMismatchIKE && a.exchange != "" && a.exchange != "IKE_SA_INIT" {
		// An IKE proposal is refused in IKE_SA_INIT: the alert is about an
		// attempt whose log lines were missed or came earlier (a
		// retransmitting client), never about one already past it, which
		// knows no identity yet only when the alert has none either.
		a = nil
	}
	if a == nil {
		a = &attempt{remote: peer, conn: al.Connection, reported: map[Phase]bool{}}
	}
	a.time = al.Time
	if al.PeerID != "" {
		a.eapID = al.PeerID
	}
	phase := kind.phase
	if phase == "" {
		phase = a.childPhase()
		if kind.reason == ReasonPeerUnreachable {
			phase = a.requestPhase()
		}
	}
	var f *Failure
	switch al.Type {
	case AlertProposalMismatchIKE, AlertProposalMismatchESP:
		if a.received == "" {
			_, list, _ := strings.Cut(al.Text, "did not match: ")
			a.received = list
		}
		f = a.proposalMismatch(phase, a.exchange == "IKE_AUTH", al.Text)
	default:
		f = a.fail(phase, kind.reason, al.Text)
		// charon raises certificate alerts when it checks the peer's.
		f.PeerCertificate = kind.reason == ReasonCertificateInvalid
	}
	if f.Connection == "" {
		f.Connection = al.Connection
	}
	return c.finish(a, f)
}

// alertAttempt is the attempt an alert is about: the latest from the
// peer's address whose identity is the alert's. Several users share an
// address behind a NAT, or log in from one client one after another; an
// alert joined to another user's IKE_SA would name the wrong user and
// overwrite that IKE_SA's identity, so the address alone does not do.
func (c *Correlator) alertAttempt(peer, peerID string) *attempt {
	if peer == "" {
		return nil
	}
	if peerID == "%any" {
		peerID = ""
	}
	if a := c.attempts[c.byRemote[peer]]; a != nil && a.isPeer(peerID) {
		return a
	}
	var best *attempt
	for _, a := range c.attempts {
		if hostOnly(a.remote) == peer && a.isPeer(peerID) && (best == nil || a.seq > best.seq) {
			best = a
		}
	}
	return best
}

// isPeer reports whether the attempt is of the peer with this identity (as
// charon's alerts give it: the EAP identity, else the IKE one); an attempt
// that knows no identity yet may be anyone's.
func (a *attempt) isPeer(id string) bool {
	if id == "" || a.eapID == "" && a.remoteID == "" {
		return true
	}
	return a.eapID == id || a.eapID == "" && a.remoteID == id
}

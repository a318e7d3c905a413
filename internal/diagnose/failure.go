// Package diagnose turns what charon says about one IKE_SA attempt into one
// Failure: the phase it failed in, a reason from api/v1alpha1's condition
// reasons, the peer, and the values of both sides.
//
// It is pure: it reads log events (VICI `log` events, or lines of charon's
// file log or syslog) and error-notify alerts that a caller hands it, and
// never opens a socket or calls the API. The agent feeds a Correlator from
// its VICI session and the error-notify socket (Reader); kubectl-ikegate
// feeds it a saved log (ParseLine).
//
// The parser is written against the format strings of strongSwan 5.9.8 (and
// the 6.0 ones where they differ), each quoted with its source file next to
// the pattern that matches it (signals.go). Only lines charon logs at level 1
// or lower are relied on: VICI's log stream carries nothing above level 1
// (vici_logger.c get_level), so the transform that failed to match is derived
// from the level-1 "received proposals" / "configured proposals" pair rather
// than from the level-2 "no acceptable ENCRYPTION_ALGORITHM found".
//
// Every string taken from the network (identities, EAP names, addresses) is
// bounded and stripped of control characters (Clean) before it enters a
// Failure, so a Failure can go to an Event, a status or a log line as it is.
package diagnose

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Phase is the step of an IKE_SA's life a failure happened in.
type Phase string

// Phases, in the order an IKE_SA goes through them.
const (
	PhaseIKESAInit Phase = "IKE_SA_INIT"
	PhaseIKEAuth   Phase = "IKE_AUTH"
	// PhaseChildSA is the CHILD_SA negotiated inside IKE_AUTH (or a later
	// CREATE_CHILD_SA that creates a new one): proposals, traffic selectors.
	PhaseChildSA Phase = "CHILD_SA"
	// PhaseRekey is a CREATE_CHILD_SA that rekeys an SA; a PFS mismatch shows
	// only here, since IKE_AUTH's CHILD_SA carries no key exchange.
	PhaseRekey Phase = "rekey"
	// PhaseLiveness is an established IKE_SA whose peer stopped answering
	// (DPD, retransmits of INFORMATIONALs) or that was replaced.
	PhaseLiveness Phase = "liveness"
)

// Reasons this package sets that api/v1alpha1 has too; aliases keep one
// spelling for the condition, the Event and the metric label.
const (
	ReasonProposalMismatch        = v1alpha1.ReasonProposalMismatch
	ReasonAuthenticationFailed    = v1alpha1.ReasonAuthenticationFailed
	ReasonIdentityMismatch        = v1alpha1.ReasonIdentityMismatch
	ReasonTrafficSelectorMismatch = v1alpha1.ReasonTrafficSelectorMismatch
	ReasonPeerUnreachable         = v1alpha1.ReasonPeerUnreachable
	ReasonDisabled                = v1alpha1.ReasonDisabled
	ReasonExpired                 = v1alpha1.ReasonExpired
	ReasonPSKMismatch             = v1alpha1.ReasonPSKMismatch
	ReasonUnknownUser             = v1alpha1.ReasonUnknownUser
	ReasonCredentialsPending      = v1alpha1.ReasonCredentialsPending
	ReasonPoolExhausted           = v1alpha1.ReasonPoolExhausted
	ReasonCertificateInvalid      = v1alpha1.ReasonCertificateInvalid
	ReasonNATMismatch             = v1alpha1.ReasonNATMismatch
	ReasonDuplicateLogin          = v1alpha1.ReasonDuplicateLogin
	ReasonNoConnection            = v1alpha1.ReasonNoConnection
)

// Transform classes of an IKE or ESP proposal, as a person names them.
const (
	TransformEncryption = "encryption"
	TransformIntegrity  = "integrity"
	TransformPRF        = "PRF"
	TransformDH         = "DH group"
	TransformESN        = "extended sequence numbers"
	// TransformAKE is followed by the number of the additional key
	// exchange (strongSwan 6: "additional key exchange 1").
	TransformAKE = "additional key exchange"
)

// Failure is one failed attempt (or one established IKE_SA lost), with what
// both sides had. Every string in it has been through Clean.
type Failure struct {
	// Time is when charon logged the decisive line; zero if the source had no
	// time (VICI events carry none: the caller stamps them).
	Time time.Time
	// IKESA is charon's unique id of the IKE_SA; 0 when the log had no
	// ike_name prefix.
	IKESA uint32
	// Connection is charon's connection (peer config) name, if one was selected.
	Connection string
	Phase      Phase
	Reason     string
	// Remote is the peer's address ("198.51.100.7" or "198.51.100.7[4500]").
	Remote string
	// RemoteID is the identity the peer authenticated with, or tried to: the
	// EAP identity where there was one, else its IKE identity.
	RemoteID string
	// LocalID is the identity of this side the peer asked for (IDr) or that
	// this side used.
	LocalID string
	// Offered and Configured are the two sides' values of what failed to
	// match: proposals (IKE:AES_CBC_256/HMAC_SHA2_256_128/...), traffic
	// selectors, identities. Empty when charon did not log them.
	Offered, Configured []string
	// Transforms name the transform classes with no match (TransformDH, ...)
	// for a ProposalMismatch.
	Transforms []string
	// Detail is charon's own words for the decisive event, cleaned.
	Detail string
	// PeerCertificate marks a CertificateInvalid about the peer's
	// certificate, which this side did not accept; false when the peer
	// refused this side's. The CAs this side trusts are then the other
	// half of the story, which the log does not print.
	PeerCertificate bool
}

// Limits on strings taken from the network. Identities are bounded like the
// error-notify struct bounds them (char id[256]); values lists so that a
// client offering hundreds of proposals cannot bloat a status.
const (
	MaxString = 256
	MaxValues = 16
)

// Clean bounds s to MaxString bytes (on a rune boundary, marking the cut
// with "...") and replaces control and other non-printing characters with
// '?', so a client-chosen identity cannot forge log lines, terminal escapes
// or an Event's layout.
func Clean(s string) string {
	return cleanN(s, MaxString)
}

func cleanN(s string, limit int) string {
	if len(s) > 4*limit {
		s = s[:4*limit] // the rest is cut below anyway; bounds the work
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) <= limit {
		return s
	}
	cut := limit - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// cleanList cleans each value and keeps at most MaxValues.
func cleanList(vs []string) []string {
	if len(vs) == 0 {
		return nil
	}
	if len(vs) > MaxValues {
		vs = vs[:MaxValues]
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = Clean(v)
	}
	return out
}

package diagnose

import (
	"net/netip"
	"regexp"
	"strings"
)

// signal is one format string of charon's: the pattern that matches what it
// prints, and what a match does to the attempt. A handler returning a
// Failure has decided the attempt failed; one returning nil noted context.
type signal struct {
	re     *regexp.Regexp
	handle func(c *Correlator, a *attempt, m []string) *Failure
}

// signals are charon 5.9.8's level 0 and 1 messages about IKE_SA setup and
// loss. Each is quoted from its source; %Y prints an identity, %H an
// address, %#H an address with its port, %N an enum name, %#P a proposal
// list, %#R a traffic selector list.
var signals = []signal{
	// --- context ---

	// src/libcharon/sa/ikev2/tasks/ike_init.c: DBG0 "%H is initiating an IKE_SA"
	{re(`^(\S+) is initiating an IKE_SA$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.remote = m[1]
		return nil
	}},
	// ike_init.c: DBG0 "initiating IKE_SA %s[%d] to %H"
	{re(`^initiating IKE_SA (.*)\[\d+\] to (\S+)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.conn, a.remote = m[1], m[2]
		return nil
	}},
	// src/libcharon/encoding/message.c: DBG1 "parsed %s" and "generating %s",
	// the message summarised by get_string as "%N %s %u [" (exchange,
	// request/response, message ID), " %N" per payload, "(%N)" per notify
	// (notify_type_short_names), " ]".
	{re(`^(parsed|generating) (\S+) (request|response) (\d+) \[(.*)\]$`), func(c *Correlator, a *attempt, m []string) *Failure {
		return a.message(c, m[1] == "parsed", m[2], m[3] == "request", m[4], m[5])
	}},
	// src/libstrongswan/crypto/proposal/proposal.c proposal_select: DBG1
	// "received proposals: %#P" and "configured proposals: %#P" when nothing
	// matched (at DBG2 when something did).
	{re(`^received proposals: (.*)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.received = m[1]
		return nil
	}},
	{re(`^configured proposals: (.*)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.configured = m[1]
		return nil
	}},
	// src/libcharon/sa/ikev2/tasks/ike_auth.c: DBG1 "looking for peer configs
	// matching %H[%Y]...%H[%Y]" (me, my_id, other, other_id)
	{re(`^looking for peer configs matching ([^\[\]]*)\[(.*)\]\.\.\.([^\[\]]*)\[(.*)\]$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.localID, a.remote, a.remoteID = m[2], m[3], m[4]
		return nil
	}},
	// ike_auth.c: DBG1 "selected peer config '%s'"
	{re(`^selected peer config '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.conn = m[1]
		return nil
	}},
	// src/libcharon/sa/ikev2/authenticators/eap_authenticator.c: DBG1
	// "received EAP identity '%Y'"
	{re(`^received EAP identity '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[1]
		return nil
	}},
	// src/libcharon/plugins/eap_mschapv2/eap_mschapv2.c: DBG1 "EAP-MS-CHAPv2 username: '%Y'"
	{re(`^EAP-MS-CHAPv2 username: '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[1]
		return nil
	}},
	// authenticators/psk_authenticator.c, eap_authenticator.c: DBG1
	// "authentication of '%Y' (myself) with %N"; pubkey_authenticator.c:
	// "authentication of '%Y' (myself) with %N %s" (successful/failed)
	{re(`^authentication of '(.*)' \(myself\) with (.*)$`), func(c *Correlator, a *attempt, m []string) *Failure {
		a.localID = m[1]
		switch {
		case strings.Contains(m[2], "pre-shared key"):
			a.localAuth = "psk"
		case strings.HasPrefix(m[2], "EAP"):
			a.localAuth = "eap"
		default:
			a.localAuth = "pubkey"
		}
		c.noteLocalID(m[1])
		return nil
	}},
	// src/libcharon/sa/ike_sa.c: DBG1 "remote host is behind NAT"
	{re(`^remote host is behind NAT$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		a.behindNAT = true
		return nil
	}},
	// src/libcharon/sa/ikev2/tasks/ike_establish.c (5.9.8: ike_auth.c):
	// DBG0 "IKE_SA %s[%d] established between %H[%Y]...%H[%Y]"
	{re(`^IKE_SA (.*)\[\d+\] established between ([^\[\]]*)\[(.*)\]\.\.\.([^\[\]]*)\[(.*)\]$`), func(c *Correlator, a *attempt, m []string) *Failure {
		a.established = true
		a.conn, a.localID, a.remote, a.remoteID = m[1], m[3], m[4], m[5]
		c.noteLocalID(m[3])
		return nil
	}},
	// src/libstrongswan/credentials/credential_manager.c: DBG1 "%s certificate
	// invalid (valid from %T to %T)", "no issuer certificate found for \"%Y\"",
	// "  self-signed certificate \"%Y\" is not trusted"
	{re(`^(\S+ certificate invalid \(valid from .* to .*\))$`), certProblem},
	{re(`^(no issuer certificate found for ".*")$`), certProblem},
	{re(`^\s*(self-signed certificate ".*" is not trusted)$`), certProblem},
	// ike_auth.c: DBG1 "selected peer config '%s' unacceptable: %s"
	{re(`^selected peer config '.*' unacceptable: (.*)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.unacceptable = m[1]
		return nil
	}},

	// --- verdicts ---

	// ike_init.c: DBG1 "received proposals unacceptable"
	{re(`^received proposals unacceptable$`), func(c *Correlator, a *attempt, _ []string) *Failure {
		return a.proposalMismatch(PhaseIKESAInit, false, "the peer's IKE proposals match none configured")
	}},
	// src/libcharon/sa/ikev2/tasks/child_create.c: DBG1 "no acceptable
	// proposal found" (also ike_init.c, for the IKE_SA)
	{re(`^no acceptable proposal found$`), func(c *Correlator, a *attempt, _ []string) *Failure {
		if a.exchange == "IKE_SA_INIT" {
			return a.proposalMismatch(PhaseIKESAInit, false, "the peer's IKE proposals match none configured")
		}
		return a.proposalMismatch(a.childPhase(), a.exchange == "IKE_AUTH", "the peer's ESP proposals match none configured")
	}},
	// src/libcharon/sa/ikev2/task_manager_v2.c: DBG1 "no IKE config found for
	// %H...%H, sending %N"
	{re(`^no IKE config found for (\S+)\.\.\.(\S+), sending \S+$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.remote = m[2]
		return a.fail(PhaseIKESAInit, ReasonNoConnection, "no connection is loaded for "+m[1]+"..."+m[2])
	}},
	// ike_auth.c: DBG1 "no matching peer config found"
	{re(`^no matching peer config found$`), func(c *Correlator, a *attempt, _ []string) *Failure {
		return c.identityMismatch(a)
	}},
	// ike_auth.c: DBG1 "no alternative config found" after a selected config
	// was found unacceptable (constraints, authentication round mismatch)
	{re(`^no alternative config found$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		return a.fail(PhaseIKEAuth, ReasonAuthenticationFailed, "the peer's authentication does not satisfy the connection: "+a.unacceptable)
	}},
	// ike_auth.c: DBG1 "received IDr %Y, but require %Y"
	{re(`^received IDr (.*), but require (.*)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		f := a.fail(PhaseIKEAuth, ReasonIdentityMismatch, "the peer answered with another identity than the one required")
		f.Offered, f.Configured = []string{m[1]}, []string{m[2]}
		return f
	}},
	// eap_mschapv2.c: DBG1 "EAP-MS-CHAPv2 verification failed, retry (%d)"
	// and "EAP-MS-CHAPv2 verification failed"
	{re(`^EAP-MS-CHAPv2 verification failed(?:, retry \(\d+\))?$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		return a.fail(PhaseIKEAuth, ReasonAuthenticationFailed, "wrong password: the client's EAP-MS-CHAPv2 response did not verify")
	}},
	// eap_mschapv2.c: DBG1 "no EAP key found for hosts '%Y' - '%Y'" (server, user)
	{re(`^no EAP key found for hosts '(.*)' - '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[2]
		return a.fail(PhaseIKEAuth, ReasonUnknownUser, "the gateway has no password for this EAP identity")
	}},
	// src/libcharon/plugins/eap_radius/eap_radius.c: DBG1 "RADIUS authentication of '%Y' failed"
	{re(`^RADIUS authentication of '(.*)' failed$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[1]
		return a.fail(PhaseIKEAuth, ReasonAuthenticationFailed, "the RADIUS server rejected the login")
	}},
	// eap_authenticator.c: DBG1 "EAP method %N failed for peer %Y"
	{re(`^EAP method (\S+) failed for peer (.*)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		if a.remoteID == "" {
			a.remoteID = m[2]
		}
		return a.fail(PhaseIKEAuth, ReasonAuthenticationFailed, m[1]+" authentication failed")
	}},
	// psk_authenticator.c: DBG1 "tried %d shared key%s for '%Y' - '%Y', but
	// MAC mismatched" (my_id, other_id)
	{re(`^tried \d+ shared keys? for '(.*)' - '(.*)', but MAC mismatched$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.localID, a.remoteID = m[1], m[2]
		return a.fail(PhaseIKEAuth, ReasonPSKMismatch, "the peer's pre-shared key differs from this side's")
	}},
	// psk_authenticator.c: DBG1 "no shared key found for '%Y' - '%Y'"
	{re(`^no shared key found for '(.*)' - '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.localID, a.remoteID = m[1], m[2]
		return a.fail(PhaseIKEAuth, ReasonPSKMismatch, "no pre-shared key is configured for these identities")
	}},
	// src/libcharon/sa/ikev2/authenticators/pubkey_authenticator.c: DBG1
	// "no trusted %N public key found for '%Y'"
	{re(`^no trusted (\S+) public key found for '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.remoteID = m[2]
		detail := "the peer's " + m[1] + " certificate does not verify against the trusted CAs"
		if a.certProblem != "" {
			detail += ": " + a.certProblem
		}
		f := a.fail(PhaseIKEAuth, ReasonCertificateInvalid, detail)
		f.PeerCertificate = true
		return f
	}},
	// child_create.c: DBG1 "traffic selectors %#R === %#R unacceptable"
	// (this->tsr, this->tsi: the networks asked for on this side, then the
	// peer's own)
	{re(`^traffic selectors (.*) === (.*) unacceptable$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		f := a.fail(a.childPhase(), ReasonTrafficSelectorMismatch, "no child of the connection routes the networks the peer asked for")
		f.Offered = []string{m[1] + " (from " + m[2] + ")"}
		return f
	}},
	// src/libcharon/sa/ikev2/tasks/ike_config.c: DBG1 "no virtual IP found for
	// %H requested by '%Y'" and "no virtual IP found, sending %N"
	{re(`^no virtual IP found for (\S+) requested by '(.*)'$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[2]
		f := a.fail(PhaseIKEAuth, ReasonPoolExhausted, "no address is left in the client's pool")
		f.Offered = []string{m[1]}
		return f
	}},
	{re(`^no virtual IP found, sending \S+$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		return a.fail(PhaseIKEAuth, ReasonPoolExhausted, "no address is left in the client's pool")
	}},
	// task_manager_v2.c: DBG1 "giving up after %d retransmits"
	{re(`^giving up after (\d+) retransmits$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		phase := a.requestPhase()
		detail := "the peer did not answer " + a.lastRequest + " after " + m[1] + " retransmits"
		if phase == PhaseLiveness {
			detail = "dead peer: no answer to " + a.lastRequest + " (DPD) after " + m[1] + " retransmits"
		}
		return a.fail(phase, ReasonPeerUnreachable, detail)
	}},
	// ike_sa.c: DBG1 "establishing IKE_SA failed, peer not responding"
	{re(`^establishing IKE_SA failed, peer not responding$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		return a.fail(a.requestPhase(), ReasonPeerUnreachable, "the peer did not respond")
	}},
	// src/libcharon/processing/jobs/delete_ike_sa_job.c: DBG1 "deleting half
	// open IKE_SA with %H after timeout"
	{re(`^deleting half open IKE_SA with (\S+) after timeout$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.remote = m[1]
		phase := PhaseIKESAInit
		if a.exchange == "IKE_AUTH" {
			phase = PhaseIKEAuth
		}
		return a.fail(phase, ReasonPeerUnreachable, "half-open timeout: the peer started but never completed the IKE_SA")
	}},
	// src/libcharon/sa/ike_sa_manager.c: DBG1 "deleting duplicate IKE_SA for
	// peer '%Y' due to uniqueness policy"
	{re(`^deleting duplicate IKE_SA for peer '(.*)' due to uniqueness policy$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[1]
		return a.fail(PhaseLiveness, ReasonDuplicateLogin, "a new login with the same identity replaced the existing session")
	}},
	// ike_sa_manager.c: DBG1 "destroying duplicate IKE_SA for peer '%Y',
	// received INITIAL_CONTACT", logged for the old IKE_SA (the client
	// logged in again and said it holds no other SA)
	{re(`^destroying duplicate IKE_SA for peer '(.*)', received INITIAL_CONTACT$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		a.eapID = m[1]
		return a.fail(PhaseLiveness, ReasonDuplicateLogin, "a new login with the same identity (INITIAL_CONTACT) replaced this session")
	}},
	// ike_auth.c: DBG1 "canceling IKE_SA setup due to uniqueness policy"
	{re(`^canceling IKE_SA setup due to uniqueness policy$`), func(_ *Correlator, a *attempt, _ []string) *Failure {
		return a.fail(PhaseIKEAuth, ReasonDuplicateLogin, "refused: the identity already has a session and the connection keeps it")
	}},
	// child_create.c: DBG1 "received %N notify, no CHILD_SA built"; ike_init.c,
	// ike_auth.c, child_create.c: DBG1 "received %N notify error" (notify_type_names)
	{re(`^received (\S+) notify(?:, no CHILD_SA built| error)$`), func(_ *Correlator, a *attempt, m []string) *Failure {
		return a.notified(m[1])
	}},
}

func re(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func certProblem(_ *Correlator, a *attempt, m []string) *Failure {
	a.certProblem = m[1]
	return nil
}

// Notify types as message.c prints them in a summary (short names) and as
// the "received %N notify" lines print them (long names), mapped to what
// the peer refused.
var notifyReasons = map[string]string{
	"NO_PROP": ReasonProposalMismatch, "NO_PROPOSAL_CHOSEN": ReasonProposalMismatch,
	"TS_UNACCEPT": ReasonTrafficSelectorMismatch, "TS_UNACCEPTABLE": ReasonTrafficSelectorMismatch,
	"AUTH_FAILED": ReasonAuthenticationFailed, "AUTHENTICATION_FAILED": ReasonAuthenticationFailed,
	"INT_ADDR_FAIL": ReasonPoolExhausted, "INTERNAL_ADDRESS_FAILURE": ReasonPoolExhausted,
}

// notifyPattern finds notifies in a message summary: " N(NO_PROP)".
var notifyPattern = regexp.MustCompile(`\bN\(([A-Z_]+)\)`)

// hostOnly strips the "[port]" of a %#H address.
func hostOnly(h string) string {
	if i := strings.IndexByte(h, '['); i > 0 {
		return h[:i]
	}
	return h
}

// isAddress reports identities that are IP addresses (ID_IPV4_ADDR, ID_IPV6_ADDR).
func isAddress(id string) bool {
	_, err := netip.ParseAddr(id)
	return err == nil
}

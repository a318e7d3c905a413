package diagnose

import "strings"

// Advice says in a sentence what to change so that the attempt succeeds,
// on the side that must change. It uses only the Failure's (cleaned) values.
func (f Failure) Advice() string {
	switch f.Reason {
	case ReasonProposalMismatch:
		what := "proposals"
		if len(f.Transforms) > 0 {
			what = strings.Join(f.Transforms, ", ")
		}
		switch f.Phase {
		case PhaseIKESAInit:
			return "make the client's IKE proposal share " + what + " with the gateway's (or choose a gateway preset that accepts it)"
		case PhaseRekey:
			if strings.Contains(what, TransformDH) {
				return "set the same PFS (DH group) for ESP on both sides, or none on both"
			}
		}
		return "make the client's ESP proposal share " + what + " with the gateway's"
	case ReasonAuthenticationFailed:
		return "check the password (or credentials) the client uses for " + orUnknown(f.RemoteID)
	case ReasonUnknownUser:
		return "create a VPNUser for " + orUnknown(f.RemoteID) + ", or correct the username on the client"
	case ReasonCredentialsPending:
		return "check that the passwordSecretRef of the VPNUser " + orUnknown(f.RemoteID) + " names a Secret holding its password; the gateway loads it within seconds"
	case ReasonDisabled:
		return "enable the VPNUser " + orUnknown(f.RemoteID) + " if the login is wanted"
	case ReasonExpired:
		return "extend expiresAt of the VPNUser " + orUnknown(f.RemoteID) + " if the login is wanted"
	case ReasonIdentityMismatch:
		if len(f.Offered) > 0 && len(f.Configured) > 0 {
			return "set the client's remote ID to " + strings.Join(f.Configured, " or ") + " (it asked for " + f.Offered[0] + ")"
		}
		return "make the peer's identities match a Tunnel or the gateway's identity"
	case ReasonNATMismatch:
		return "set the peer's local ID explicitly (a name, or its public address) instead of its private address"
	case ReasonTrafficSelectorMismatch:
		return "make the networks the client asks for match the gateway's routed networks (pool localNetworks), or the Tunnel's"
	case ReasonPSKMismatch:
		return "use the same pre-shared key on both sides"
	case ReasonCertificateInvalid:
		return "give the side that refused the certificate the CA that issued it, and check the certificate's validity and names"
	case ReasonPoolExhausted:
		return "enlarge the MobilePool or end stale sessions"
	case ReasonPeerUnreachable:
		return "check that the peer is up and UDP 500/4500 pass between the two sides"
	case ReasonDuplicateLogin:
		return "give each device its own identity, or accept that a new login ends the old session"
	case ReasonNoConnection:
		return "the gateway serves no connection: check that it has a valid, enabled user or tunnel"
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "the user"
	}
	return s
}

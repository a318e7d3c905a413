package v1alpha1

// Condition types. Every kind has Ready; the others say which part is not.
const (
	// ConditionReady summarises the object: True when everything it needs works.
	ConditionReady = "Ready"
	// ConditionCertificateReady (VPNGateway): the server certificate is issued
	// and matches the spec. (VPNUser with certificate.issue): the user's client
	// certificate is issued into status.certificateSecretName.
	ConditionCertificateReady = "CertificateReady"
	// ConditionWorkloadReady (VPNGateway): the gateway pods run and are ready.
	ConditionWorkloadReady = "WorkloadReady"
	// ConditionConfigApplied (all kinds): every gateway pod's charon holds this object's configuration.
	ConditionConfigApplied = "ConfigApplied"
	// ConditionValid (all kinds): references resolve and the object does not
	// conflict with others of its gateway (internal/swan's Build reports no
	// problem for it).
	ConditionValid = "Valid"
	// ConditionEstablished (Tunnel; written by the agents): True when the
	// IKE_SA is established and every child's CHILD_SA is installed, False
	// (ReasonConnecting) otherwise. A Tunnel is Ready only when Established.
	ConditionEstablished = "Established"
	// ConditionConnected (VPNUser, Tunnel; written by the agents): False with
	// the failure's reason when the member's latest attempt failed, True once
	// it connects again. Absent until an attempt of the member failed.
	ConditionConnected = "Connected"
	// ConditionAddressesAvailable (MobilePool): False once the gateway pods'
	// leases reach PoolNearlyFullPercent of the addresses the pool hands out
	// (status.size), so that it shows before a client is refused an address.
	ConditionAddressesAvailable = "AddressesAvailable"
	// ConditionProfileReady (VPNUser): the Secret in status.profileSecretName
	// holds a client profile of every format for the gateway as it is now.
	ConditionProfileReady = "ProfileReady"
)

// PoolNearlyFullPercent is the share of a pool's addresses in use from
// which its AddressesAvailable condition is False.
const PoolNearlyFullPercent = 90

// Event reasons.
const (
	// EventReasonSessionReplaced (VPNUser): a new login exceeded the user's
	// maxSessions and the gateway ended the user's oldest session with a
	// DELETE; the message names that device.
	EventReasonSessionReplaced = "SessionReplaced"
)

// Condition reasons.
const (
	// ReasonReady: everything checked is fine.
	ReasonReady = "Ready"
	// ReasonReconciling: work is in progress and no fault is known.
	ReasonReconciling = "Reconciling"

	// ReasonIssuerNotFound: the issuerRef names an issuer that does not exist.
	ReasonIssuerNotFound = "IssuerNotFound"
	// ReasonIssuerNotReady: the issuer exists but is not Ready.
	ReasonIssuerNotReady = "IssuerNotReady"
	// ReasonCertificatePending: cert-manager has not issued the certificate yet.
	ReasonCertificatePending = "CertificatePending"
	// ReasonCertificateFailed: cert-manager reports that issuance failed.
	ReasonCertificateFailed = "CertificateFailed"
	// ReasonSANMismatch: the issued certificate lacks a hostname or address of the spec.
	ReasonSANMismatch = "SANMismatch"
	// ReasonCertificateExpiring: the certificate is past its renewal time and not renewed.
	ReasonCertificateExpiring = "CertificateExpiring"
	// ReasonCannotIssue (VPNUser CertificateReady): certificate.issue is set but
	// ikegate cannot issue a certificate the gateway would accept: the
	// gateway's clientAuth.clientCA is not its own CA (Secret <gateway>-ca),
	// the only CA ikegate holds an Issuer for, or the identity has no SAN type
	// (a distinguished name). Nothing is issued; the message says which.
	ReasonCannotIssue = "CannotIssue"

	// ReasonProfileUnavailable (VPNUser ProfileReady): one or more profile
	// formats could not be built; the message names each and why (the
	// preflight of internal/profile), and the formats that work are written.
	ReasonProfileUnavailable = "ProfileUnavailable"

	// ReasonPodsUnavailable: fewer gateway pods are ready than requested.
	ReasonPodsUnavailable = "PodsUnavailable"
	// ReasonNoNodesSelected: the node selector matches no node.
	ReasonNoNodesSelected = "NoNodesSelected"
	// ReasonPolicyDenied (VPNGateway CertificateReady and WorkloadReady): the
	// gateway asks for what the manager's policy (set by whoever installed
	// ikegate) does not allow: its namespace, host network, a node label or
	// toleration, an issuer or a load balancer annotation. The manager
	// creates and changes nothing for it; the message names the setting.
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonRollingOut: gateway pods are being replaced with a new template.
	ReasonRollingOut = "RollingOut"

	// ReasonReconcileError: the manager could not write an object the gateway
	// needs; the message carries the API server's answer.
	ReasonReconcileError = "ReconcileError"
	// ReasonApplyFailed: charon refused a configuration the agent loaded.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonApplyPending: the agents have not yet applied the current generation.
	ReasonApplyPending = "ApplyPending"

	// ReasonGatewayNotReady (Ready of MobilePool, VPNUser, Tunnel): the object is
	// valid but its gateway is not Ready, so clients cannot use it yet.
	ReasonGatewayNotReady = "GatewayNotReady"
	// ReasonGatewayNotFound: gatewayRef names no VPNGateway.
	ReasonGatewayNotFound = "GatewayNotFound"
	// ReasonSecretNotFound: a referenced Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyNotFound: the Secret exists but lacks the referenced key.
	ReasonSecretKeyNotFound = "SecretKeyNotFound"
	// ReasonSecretInvalid: the Secret's value cannot be used (empty, malformed hash or PEM).
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonPoolOverlap: two pools of a gateway share addresses.
	ReasonPoolOverlap = "PoolOverlap"
	// ReasonPoolOverlapsLocalNetwork: a pool overlaps a network clients reach through it.
	ReasonPoolOverlapsLocalNetwork = "PoolOverlapsLocalNetwork"
	// ReasonInsecureAlgorithm: an insecure algorithm is used without the opt-in.
	ReasonInsecureAlgorithm = "InsecureAlgorithm"
	// ReasonDuplicateIdentity: another VPNUser of the gateway has the same identity.
	ReasonDuplicateIdentity = "DuplicateIdentity"
	// ReasonNoPool: no MobilePool of the gateway selects the user.
	ReasonNoPool = "NoPool"
	// ReasonUnsupportedAuth: the object's authentication does not fit the gateway's method.
	ReasonUnsupportedAuth = "UnsupportedAuth"
	// ReasonDisabled: the user is disabled.
	ReasonDisabled = "Disabled"
	// ReasonExpired: the user's expiresAt has passed.
	ReasonExpired = "Expired"
	// ReasonAddressOutsidePool: a static address is not in the user's pool.
	ReasonAddressOutsidePool = "AddressOutsidePool"

	// ReasonWrongGateway: the object's gatewayRef names another gateway.
	ReasonWrongGateway = "WrongGateway"
	// ReasonPoolUnused: a pool selects no user of a gateway whose users are its VPNUsers.
	ReasonPoolUnused = "PoolUnused"
	// ReasonPoolConflict: a user is selected by pools of different user groups,
	// or the pools of one user group disagree on what their clients get.
	ReasonPoolConflict = "PoolConflict"
	// ReasonAddressInUse: another VPNUser of the gateway has the same staticAddress.
	ReasonAddressInUse = "AddressInUse"
	// ReasonInvalidSpec: a value the API server would refuse, met offline (kubectl-ikegate render).
	ReasonInvalidSpec = "InvalidSpec"

	// ReasonProposalMismatch: the peers share no proposal (diagnosed from charon's log).
	ReasonProposalMismatch = "ProposalMismatch"
	// ReasonAuthenticationFailed: the peer failed authentication.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonIdentityMismatch: an identity did not match what the peer expected.
	ReasonIdentityMismatch = "IdentityMismatch"
	// ReasonTrafficSelectorMismatch: the peers' networks do not match.
	ReasonTrafficSelectorMismatch = "TrafficSelectorMismatch"
	// ReasonPeerUnreachable: the peer does not answer.
	ReasonPeerUnreachable = "PeerUnreachable"
	// ReasonPSKMismatch: the peers' pre-shared keys differ.
	ReasonPSKMismatch = "PSKMismatch"
	// ReasonUnknownUser: the gateway has no credentials for the identity a client sent.
	ReasonUnknownUser = "UnknownUser"
	// ReasonCredentialsPending: the identity is an enabled VPNUser's, but
	// the gateway pod does not hold its password yet.
	ReasonCredentialsPending = "CredentialsPending"
	// ReasonPoolExhausted: the client's address pool had no address left for
	// it; as the reason of a MobilePool's AddressesAvailable condition: every
	// address is leased.
	ReasonPoolExhausted = "PoolExhausted"
	// ReasonPoolNearlyFull (AddressesAvailable of MobilePool): at least
	// PoolNearlyFullPercent of the pool's addresses are leased.
	ReasonPoolNearlyFull = "PoolNearlyFull"
	// ReasonAddressesAvailable (AddressesAvailable of MobilePool): less than
	// PoolNearlyFullPercent of the pool's addresses are leased.
	ReasonAddressesAvailable = "AddressesAvailable"
	// ReasonCertificateInvalid: a certificate did not verify (untrusted, expired, revoked).
	ReasonCertificateInvalid = "CertificateInvalid"
	// ReasonNATMismatch: behind NAT, the peer's identity is its private address, not the one expected.
	ReasonNATMismatch = "NATMismatch"
	// ReasonDuplicateLogin: a new login with the same identity replaced a session.
	ReasonDuplicateLogin = "DuplicateLogin"
	// ReasonNoConnection: charon had no connection for the peer's address at all.
	ReasonNoConnection = "NoConnection"
	// ReasonNoConnections (Ready of VPNGateway): charon on a gateway pod
	// holds no connection at all, e.g. the only user is disabled or no
	// MobilePool was accepted, so every client is refused.
	ReasonNoConnections = "NoConnections"
	// ReasonConnected: the member connected after a failed attempt.
	ReasonConnected = "Connected"
	// ReasonConnecting: the tunnel is being established.
	ReasonConnecting = "Connecting"
)

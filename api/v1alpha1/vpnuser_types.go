package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VPNUserSpec is one mobile user of a gateway (the seed's EAP "Pre-Shared Keys" entry).
// +kubebuilder:validation:XValidation:rule="self.gatewayRef == oldSelf.gatewayRef",message="gatewayRef is immutable; create a new VPNUser for another gateway",fieldPath=`.gatewayRef`
// +kubebuilder:validation:XValidation:rule="self.identity == oldSelf.identity",message="identity is immutable: it is the name the user's devices log in with; create a new VPNUser",fieldPath=`.identity`
// +kubebuilder:validation:XValidation:rule="has(self.passwordSecretRef) != has(self.certificate)",message="set exactly one of passwordSecretRef (EAP-MSCHAPv2) or certificate (EAP-TLS or public key)",fieldPath=`.passwordSecretRef`
type VPNUserSpec struct {
	// GatewayRef is the VPNGateway the user connects to.
	GatewayRef GatewayReference `json:"gatewayRef"`

	// Identity the user logs in with (EAP identity), e.g. jimp@example.com. It
	// must name one identity: charon matches the identity a client sends against
	// the owners of its secrets, so a pattern would lend this user's password to
	// other identities. charon compares e-mail addresses and DNS names ignoring
	// case: ALICE@example.com logs in as alice@example.com, and two users whose
	// identities differ only in case are refused as duplicates.
	// +kubebuilder:validation:XValidation:rule="!self.contains('*')",message="identity must be literal: charon treats '*' as a wildcard matching other users' identities"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('%') && !(self in ['0.0.0.0', '::', '0::0'])",message="identity must be literal: charon treats %any, %any6, 0.0.0.0 and :: as any identity"
	// +kubebuilder:validation:XValidation:rule="self.contains('@') || self.contains('=') || !(self.contains('/') || self.contains('-')) || !(isIP(self.split(self.contains('/') ? '/' : '-')[0]) || self.split(self.contains('/') ? '/' : '-')[0].matches('^[0-9A-Fa-f.]*:[0-9A-Fa-f.:]*$'))",message="identity must be literal: charon treats an address followed by / or - (10.0.0.0/8, 10.0.0.1-10.0.0.9) as a range matching every address identity in it"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i)(ipv4net|ipv6net|ipv4range|ipv6range):') && !self.matches('^[{][^}]*[}]:')",message="identity must be literal: charon treats ipv4net:, ipv6net:, ipv4range: and ipv6range: as address ranges, and {N}: as a raw identity type that can be any identity"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i)(rfc822|email|userfqdn|fqdn|dns|asn1dn):\\\\^.*\\\\$$')",message="identity must be literal: strongSwan 6.0.2 and later treat a prefixed ^...$ as a regular expression"
	Identity Identity `json:"identity"`

	// PasswordSecretRef selects the user's password in a Secret. The key may hold
	// the plain password, or, when the key is named "nthash", the 32 hex digits of
	// the NT hash (MD4 of the UTF-16LE password) so no plain password needs to
	// exist in the cluster. The gateway only ever receives the NT hash.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// Certificate authenticates the user with a client certificate whose subject
	// or SAN carries the identity (gateways with EAPTLS or PublicKey).
	// +optional
	Certificate *UserCertificate `json:"certificate,omitempty"`

	// Disabled refuses new logins and disconnects the user's sessions.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// ExpiresAt disables the user from this time on.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// StaticAddress is a fixed virtual address for this user, from its pool.
	// +optional
	StaticAddress IPAddress `json:"staticAddress,omitempty"`

	// MaxSessions is how many devices (IKE_SAs) the user may have connected
	// at once to one gateway pod; unset takes the gateway's
	// clientAuth.maxSessionsPerUser. A login beyond it replaces the oldest
	// session: that device receives a DELETE and the VPNUser a
	// SessionReplaced Event. A user with a staticAddress has that one
	// address only, so one session whatever this says: on EAPMSCHAPv2
	// gateways, whose agent hands the address out, another device's login
	// replaces the session; on others, while one device holds the address,
	// another gets none (INTERNAL_ADDRESS_FAILURE, no session).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	MaxSessions *int32 `json:"maxSessions,omitempty"`
}

// UserCertificate configures certificate-based authentication of a user.
type UserCertificate struct {
	// Issue asks ikegate to issue a client certificate from the gateway's CA into
	// the Secret named in status.certificateSecretName.
	// +optional
	Issue bool `json:"issue,omitempty"`
	// Duration of an issued certificate.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="certificate.duration must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="8760h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// Session is one live IKE_SA of a user on one gateway replica.
type Session struct {
	// Gateway pod holding the session.
	Pod string `json:"pod"`
	// RemoteAddress and RemotePort the client connects from; with several
	// devices behind one NAT the port tells them apart.
	RemoteAddress string `json:"remoteAddress"`
	RemotePort    int32  `json:"remotePort"`
	// IKEIdentity is the IKE identity the device sent (IDi), which may differ
	// from the EAP identity the session is counted under: a device's own
	// address, a host name or a certificate subject.
	// +optional
	IKEIdentity string `json:"ikeIdentity,omitempty"`
	// VirtualAddresses assigned to the device from the pool.
	// +optional
	VirtualAddresses []string `json:"virtualAddresses,omitempty"`
	// EstablishedAt is when the IKE_SA was established.
	EstablishedAt metav1.Time `json:"establishedAt"`
	// IKEProposal negotiated, e.g. AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519.
	// +optional
	IKEProposal string `json:"ikeProposal,omitempty"`
	// ESPProposal negotiated for the CHILD_SAs.
	// +optional
	ESPProposal string `json:"espProposal,omitempty"`
	// Traffic over the session's CHILD_SAs.
	TrafficCounters `json:",inline"`
}

// VPNUserStatus is the observed state of a user.
type VPNUserStatus struct {
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// SessionCount is the number of live sessions.
	// +optional
	SessionCount int32 `json:"sessionCount,omitempty"`
	// Sessions are the user's live sessions, reported by the gateway pods.
	// +optional
	// +listType=map
	// +listMapKey=pod
	// +listMapKey=remoteAddress
	// +listMapKey=remotePort
	// +kubebuilder:validation:MaxItems=64
	Sessions []Session `json:"sessions,omitempty"`
	// CertificateSecretName holds the user's issued client certificate.
	// +optional
	CertificateSecretName string `json:"certificateSecretName,omitempty"`
	// ProfileSecretName holds the user's generated client profiles.
	// +optional
	ProfileSecretName string `json:"profileSecretName,omitempty"`
}

// VPNUser is a mobile user allowed to connect to a VPNGateway.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpnuser,categories=ikegate
// +kubebuilder:printcolumn:name="Identity",type=string,JSONPath=`.spec.identity`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gatewayRef.name`,priority=1
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessionCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VPNUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VPNUserSpec   `json:"spec"`
	Status VPNUserStatus `json:"status,omitempty"`
}

// VPNUserList is a list of VPNUsers.
// +kubebuilder:object:root=true
type VPNUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VPNUser `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VPNUser{}, &VPNUserList{})
}

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// TunnelSpec is a site-to-site IPsec connection to a remote gateway.
// +kubebuilder:validation:XValidation:rule="self.gatewayRef == oldSelf.gatewayRef",message="gatewayRef is immutable; create a new Tunnel for another gateway",fieldPath=`.gatewayRef`
// +kubebuilder:validation:XValidation:rule="has(self.auth.psk) != has(self.auth.certificate)",message="auth needs exactly one of psk or certificate",fieldPath=`.auth`
// +kubebuilder:validation:XValidation:rule="self.ikeVersion == 2 || !has(self.ike.mobike) || !self.ike.mobike",message="ike.mobike needs ikeVersion 2",fieldPath=`.ike.mobike`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || self.ike.preset != 'Legacy'",message="ike.preset Legacy offers 3DES, MODP1024 and MODP1536 (DH groups 2 and 5), which RFC 8247 and RFC 8221 advise against (SHOULD NOT); set allowInsecureAlgorithms: true to accept them",fieldPath=`.ike.preset`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || !has(self.ike.proposals) || self.ike.proposals.all(p, !p.encryption.exists(e, e == '3DES') && !p.dhGroups.exists(g, g in ['MODP1024', 'MODP1536']))",message="ike.proposals use 3DES, MODP1024 or MODP1536 (DH groups 2 and 5), which RFC 8247 advises against (SHOULD NOT); set allowInsecureAlgorithms: true to accept them",fieldPath=`.ike.proposals`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || self.children.all(c, c.esp.preset != 'Legacy' && !(c.esp.pfsGroup in ['MODP1024', 'MODP1536']) && (!has(c.esp.proposals) || c.esp.proposals.all(p, !p.encryption.exists(e, e == '3DES'))))",message="children[].esp uses what RFC 8221 and RFC 8247 advise against (SHOULD NOT: Legacy preset, 3DES, or PFS group MODP1024, MODP1536); set allowInsecureAlgorithms: true to accept them",fieldPath=`.children`
// +kubebuilder:validation:XValidation:rule="self.children.map(c, c.localNetworks.size() * c.remoteNetworks.size()).sum() <= 1024",message="children pair at most 1024 local with remote networks in all (the sum over children of localNetworks x remoteNetworks): charon installs policies and the firewall rules for each pair",fieldPath=`.children`
type TunnelSpec struct {
	// GatewayRef is the VPNGateway that carries this tunnel.
	GatewayRef GatewayReference `json:"gatewayRef"`

	// IKEVersion is 2 (default) or 1 for peers that only speak IKEv1.
	// IKEv1 has no AEAD ciphers for IKE, so it needs ike.preset Compatible
	// or ike.proposals without them (the Modern preset is refused); the
	// gateway uses Main Mode only and refuses a peer's Aggressive Mode,
	// whose first message exposes a hash of the pre-shared key to offline
	// guessing.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Enum=1;2
	IKEVersion int32 `json:"ikeVersion,omitempty"`

	// Remote is the peer gateway.
	Remote TunnelRemote `json:"remote"`

	// LocalAddress is the gateway address the tunnel's IKE and ESP packets
	// leave from and arrive at (charon's local_addrs), for a gateway with
	// several spec.addresses whose peer expects one of them; it must be one
	// of the gateway's addresses. Default: all of the gateway's addresses,
	// the first of the peer's family used to initiate; none on a gateway
	// without addresses (charon then takes the routed source address, which
	// a peer that checks it may refuse).
	// +optional
	LocalAddress IPAddress `json:"localAddress,omitempty"`

	// LocalIdentity is the identity this side presents; default: the gateway's.
	// +optional
	LocalIdentity Identity `json:"localIdentity,omitempty"`

	// Auth is how both sides authenticate.
	Auth TunnelAuth `json:"auth"`

	// IKE holds the tunnel's Phase 1 settings.
	// +optional
	// +kubebuilder:default={}
	IKE TunnelIKE `json:"ike,omitempty"`

	// Children are the tunnel's CHILD_SAs (Phase 2 entries). Traffic passes
	// between the local and remote networks of one child only; over all
	// children at most 1024 such pairs, so the gateway's firewall holds at
	// most 2,048 forward rules for a tunnel (one per pair and direction).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.name == x.name))",message="children must not repeat a name"
	Children []TunnelChild `json:"children"`

	// AllowInsecureAlgorithms accepts 3DES and DH groups 2 and 5 (MODP1024,
	// MODP1536), which RFC 8247 and RFC 8221 advise against (SHOULD NOT). What
	// they forbid (MUST NOT: DES, MD5, MODP768) is refused even with it; SHA-1
	// (MUST-) needs no opt-in.
	// +optional
	AllowInsecureAlgorithms bool `json:"allowInsecureAlgorithms,omitempty"`
}

// TunnelRemote is the peer of a site-to-site tunnel.
type TunnelRemote struct {
	// Addresses of the peer: IP addresses or DNS names.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(a, isIP(a) || a.matches('^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?[.])*[A-Za-z]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$'))",message="remote.addresses must be IP addresses or DNS names such as 203.0.113.5, 2001:db8::5 or vpn.example.net"
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="remote.addresses must not repeat an address"
	Addresses []string `json:"addresses"`
	// Identity the peer presents; default: its first address.
	// +optional
	Identity Identity `json:"identity,omitempty"`
}

// TunnelAuth authenticates a tunnel with a pre-shared key or certificates.
type TunnelAuth struct {
	// PSK is a pre-shared key in a Secret.
	// +optional
	PSK *PSKAuth `json:"psk,omitempty"`
	// Certificate authenticates with the gateway's certificate and the peer's,
	// which must chain to PeerCA.
	// +optional
	Certificate *CertificateAuth `json:"certificate,omitempty"`
}

// PSKAuth selects a pre-shared key.
type PSKAuth struct {
	SecretRef SecretKeyReference `json:"secretRef"`
}

// CertificateAuth selects the CA the peer's certificate chains to.
type CertificateAuth struct {
	// PeerCARef selects a PEM CA bundle in a Secret.
	PeerCARef SecretKeyReference `json:"peerCARef"`
}

// TunnelIKE is the Phase 1 configuration of a tunnel.
// +kubebuilder:validation:XValidation:rule="!(self.lifetime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.rekeyTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.rekeyTime) || duration(self.rekeyTime) < duration(self.lifetime))",message="ike.rekeyTime must be shorter than ike.lifetime"
// +kubebuilder:validation:XValidation:rule="!(self.lifetime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.reauthTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.reauthTime) || duration(self.reauthTime) == duration('0s') || duration(self.reauthTime) < duration(self.lifetime))",message="ike.reauthTime must be 0s (off) or shorter than ike.lifetime"
type TunnelIKE struct {
	// +optional
	// +kubebuilder:default=Modern
	Preset ProposalPreset `json:"preset,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Proposals []IKEProposal `json:"proposals,omitempty"`
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.lifetime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="8h"
	// +kubebuilder:validation:XValidation:rule="!(self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (duration(self) >= duration('10m') && duration(self) <= duration('168h'))",message="ike.lifetime must be between 10m and 168h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.rekeyTime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	RekeyTime *metav1.Duration `json:"rekeyTime,omitempty"`
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.reauthTime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	ReauthTime *metav1.Duration `json:"reauthTime,omitempty"`
	// DPD is dead peer detection. What charon does with a dead peer's
	// children follows each child's startAction unless action says
	// otherwise: with the default Clear, a Start child is restarted at once
	// (charon's dpd_action = restart) and a Trap child is trapped again
	// (dpd_action = trap), so the tunnel comes back without a person; only
	// a None child is cleared. Trap and None apply as written; Restart
	// restarts every child.
	// +optional
	// +kubebuilder:default={}
	DPD DPDSettings `json:"dpd,omitempty"`
	// MOBIKE for peers that change address (IKEv2 only).
	// +optional
	MOBIKE *bool `json:"mobike,omitempty"`
}

// StartAction is what happens to a CHILD_SA when the configuration loads.
// +kubebuilder:validation:Enum=Start;Trap;None
type StartAction string

// CloseAction is what happens when the peer closes a CHILD_SA.
// +kubebuilder:validation:Enum=None;Trap;Start
type CloseAction string

// TunnelChild is one CHILD_SA of a tunnel: local and remote networks and Phase 2.
type TunnelChild struct {
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="children[].localNetworks must not repeat a network"
	LocalNetworks []CIDR `json:"localNetworks"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="children[].remoteNetworks must not repeat a network"
	RemoteNetworks []CIDR `json:"remoteNetworks"`
	// +optional
	// +kubebuilder:default={}
	ESP ESPSettings `json:"esp,omitempty"`
	// StartAction: Start brings the tunnel up at once and keeps it up: the
	// gateway retries forever (charon's keyingtries = 0, each try following
	// charon's retransmission backoff, so a peer unreachable at load time is
	// reached once it answers), restarts the child when DPD declares the
	// peer dead and when the peer closes it (see closeAction and ike.dpd).
	// Trap installs policies and brings the tunnel up on the first packet,
	// and again on the next packet after a failure or close. None waits for
	// the peer to initiate. Whatever the action, a new IKE_SA from the same
	// peer replaces the older one (charon's unique = replace), so a peer
	// that keeps re-initiating leaves one IKE_SA, not many.
	// +optional
	// +kubebuilder:default=Trap
	StartAction StartAction `json:"startAction,omitempty"`
	// CloseAction when the peer closes the CHILD_SA (or the IKE_SA under it).
	// With the default None a Start child is started again and a Trap child
	// trapped again, as if Start or Trap were given; a None child stays
	// closed. Start and Trap apply as written.
	// +optional
	// +kubebuilder:default=None
	CloseAction CloseAction `json:"closeAction,omitempty"`
}

// TunnelChildStatus is the state of one child.
type TunnelChildStatus struct {
	Name string `json:"name"`
	// State as charon reports it: INSTALLED, REKEYING, ... or Down.
	State string `json:"state"`
	// +optional
	ESPProposal string `json:"espProposal,omitempty"`
	// LocalTS and RemoteTS are the traffic selectors the child negotiated.
	// +optional
	// +listType=atomic
	LocalTS []string `json:"localTS,omitempty"`
	// +optional
	// +listType=atomic
	RemoteTS []string `json:"remoteTS,omitempty"`
	// InstalledAt is when the child's current CHILD_SA was installed: its
	// last rekey, or its setup.
	// +optional
	InstalledAt *metav1.Time `json:"installedAt,omitempty"`
	// +optional
	TrafficCounters `json:",inline"`
}

// TunnelFailure is the tunnel's last diagnosed failure.
type TunnelFailure struct {
	// Reason is a condition reason such as ProposalMismatch or PSKMismatch.
	Reason string `json:"reason"`
	// Message names both sides' values and the fix.
	Message string      `json:"message"`
	At      metav1.Time `json:"at"`
}

// Phase1Status is the tunnel's IKE_SA state.
type Phase1Status struct {
	// State: ESTABLISHED, CONNECTING, ... or Down.
	State string `json:"state"`
	// +optional
	EstablishedAt *metav1.Time `json:"establishedAt,omitempty"`
	// +optional
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// +optional
	IKEProposal string `json:"ikeProposal,omitempty"`
}

// TunnelStatus is the observed state of a tunnel.
type TunnelStatus struct {
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Phase1 *Phase1Status `json:"phase1,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=name
	Children []TunnelChildStatus `json:"children,omitempty"`
	// ChildrenUp summarises installed children, e.g. "1/1".
	// +optional
	ChildrenUp string `json:"childrenUp,omitempty"`
	// LastFailure is the last failure the agents diagnosed for this tunnel;
	// it stays after the tunnel comes up.
	// +optional
	LastFailure *TunnelFailure `json:"lastFailure,omitempty"`
}

// Tunnel is a site-to-site IPsec connection of a VPNGateway.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpntun,categories=ikegate
// +kubebuilder:printcolumn:name="Remote",type=string,JSONPath=`.spec.remote.addresses[0]`
// +kubebuilder:printcolumn:name="Phase1",type=string,JSONPath=`.status.phase1.state`
// +kubebuilder:printcolumn:name="Established",type=string,JSONPath=`.status.conditions[?(@.type=="Established")].status`
// +kubebuilder:printcolumn:name="Children",type=string,JSONPath=`.status.childrenUp`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tunnel struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TunnelSpec   `json:"spec"`
	Status TunnelStatus `json:"status,omitempty"`
}

// TunnelList is a list of Tunnels.
// +kubebuilder:object:root=true
type TunnelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tunnel `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Tunnel{}, &TunnelList{})
}

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VPNGatewaySpec is one IKEv2 gateway: its names, certificate, Phase 1 settings,
// how clients authenticate, how it is exposed and its data plane.
// +kubebuilder:validation:XValidation:rule="self.hostnames[0] == oldSelf.hostnames[0]",message="hostnames[0] is immutable: it is the certificate CN and the remote identity every client is configured with; add a new hostname or create a new VPNGateway",fieldPath=`.hostnames`
// +kubebuilder:validation:XValidation:rule="has(self.certificate.issuerRef) == has(oldSelf.certificate.issuerRef) && (!has(self.certificate.issuerRef) || self.certificate.issuerRef == oldSelf.certificate.issuerRef)",message="certificate.issuerRef is immutable: changing the CA breaks every client that trusts the current one; create a new VPNGateway",fieldPath=`.certificate.issuerRef`
// +kubebuilder:validation:XValidation:rule="self.exposure.type == oldSelf.exposure.type",message="exposure.type is immutable: switching between HostNetwork and LoadBalancer changes the address clients dial",fieldPath=`.exposure.type`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || self.ike.preset != 'Legacy'",message="ike.preset Legacy offers 3DES, MODP1024 and MODP1536 (DH groups 2 and 5), which RFC 8247 and RFC 8221 advise against (SHOULD NOT); set allowInsecureAlgorithms: true to accept them",fieldPath=`.ike.preset`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || !has(self.ike.proposals) || self.ike.proposals.all(p, !p.encryption.exists(e, e == '3DES') && !p.dhGroups.exists(g, g in ['MODP1024', 'MODP1536']))",message="ike.proposals use 3DES, MODP1024 or MODP1536 (DH groups 2 and 5), which RFC 8247 advises against (SHOULD NOT); set allowInsecureAlgorithms: true to accept them",fieldPath=`.ike.proposals`
// +kubebuilder:validation:XValidation:rule="self.clientAuth.method != 'EAPRADIUS' || has(self.clientAuth.radius)",message="clientAuth.radius is required when clientAuth.method is EAPRADIUS",fieldPath=`.clientAuth.radius`
// +kubebuilder:validation:XValidation:rule="!(self.clientAuth.method in ['EAPTLS', 'PublicKey']) || has(self.clientAuth.clientCA)",message="clientAuth.clientCA is required when clientAuth.method is EAPTLS or PublicKey",fieldPath=`.clientAuth.clientCA`
type VPNGatewaySpec struct {
	// Hostnames clients dial. The first is the certificate's common name and the
	// gateway's default IKE identity (clients' "remote ID"); all become DNS SANs.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="hostnames must not repeat a name"
	Hostnames []Hostname `json:"hostnames"`

	// Addresses clients may dial; each becomes an IP SAN of the certificate and a
	// local address the gateway answers IKE on.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="addresses must not repeat an address"
	Addresses []IPAddress `json:"addresses,omitempty"`

	// LocalIdentity overrides the IKE identity the gateway presents (default: hostnames[0]).
	// It must be contained in the certificate.
	// +optional
	LocalIdentity Identity `json:"localIdentity,omitempty"`

	// Certificate of the gateway, issued by cert-manager.
	// +optional
	// +kubebuilder:default={}
	Certificate GatewayCertificate `json:"certificate,omitempty"`

	// IKE holds the Phase 1 (IKE_SA) settings for mobile clients.
	// +optional
	// +kubebuilder:default={}
	IKE IKESettings `json:"ike,omitempty"`

	// ClientAuth says how mobile clients authenticate.
	// +optional
	// +kubebuilder:default={}
	ClientAuth ClientAuth `json:"clientAuth,omitempty"`

	// Exposure says how the gateway is reached from outside the cluster.
	// +optional
	// +kubebuilder:default={}
	Exposure Exposure `json:"exposure,omitempty"`

	// Dataplane selects where ESP is processed: Kernel (XFRM, the production
	// default) or Userspace (charon's kernel-libipsec over a TUN device, for
	// kernels without ESP support).
	// +optional
	// +kubebuilder:default=Kernel
	Dataplane Dataplane `json:"dataplane,omitempty"`

	// Firewall configures the gateway's host firewall (nftables).
	// +optional
	// +kubebuilder:default={}
	Firewall GatewayFirewall `json:"firewall,omitempty"`

	// Logging sets charon's log level per subsystem.
	// +optional
	Logging Logging `json:"logging,omitempty"`

	// AllowInsecureAlgorithms accepts what RFC 8247 advises against (SHOULD NOT:
	// DH groups 2 and 5 = MODP1024, MODP1536) and 3DES in this gateway's IKE
	// proposals, as the Legacy preset needs. Only for clients that cannot do
	// better (stock Windows proposes MODP1024 only); anyone recording the traffic
	// may decrypt it later. What RFC 8247 forbids (MUST NOT: DES, MD5, MODP768)
	// is refused even with it; SHA-1 (MUST-) needs no opt-in.
	// +optional
	AllowInsecureAlgorithms bool `json:"allowInsecureAlgorithms,omitempty"`

	// Resources of the gateway pods' containers.
	// +optional
	Resources GatewayResources `json:"resources,omitempty"`
}

// GatewayCertificate describes the gateway's server certificate.
// +kubebuilder:validation:XValidation:rule="!(self.duration.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.renewBefore.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.renewBefore) || !has(self.duration) || duration(self.renewBefore) < duration(self.duration))",message="certificate.renewBefore must be shorter than certificate.duration"
type GatewayCertificate struct {
	// IssuerRef is a cert-manager Issuer or ClusterIssuer. When absent, ikegate
	// bootstraps a CA for this gateway (self-signed Issuer, CA Certificate, CA Issuer).
	// A ClusterIssuer must be one the manager's policy lists (Helm value
	// policy.clusterIssuers), an Issuer needs policy.namespaceIssuers.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`
	// PrivateKey of the server certificate.
	// +optional
	// +kubebuilder:default={}
	PrivateKey PrivateKeySpec `json:"privateKey,omitempty"`
	// Duration of the server certificate (the seed's "lifetime").
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="certificate.duration must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:XValidation:rule="!(self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (duration(self) >= duration('1h'))",message="certificate.duration must be at least 1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Duration *metav1.Duration `json:"duration,omitempty"`
	// RenewBefore is how long before expiry the certificate is renewed.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="certificate.renewBefore must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="360h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
}

// IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind is Issuer (same namespace) or ClusterIssuer.
	// +optional
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	Kind string `json:"kind,omitempty"`
	// Group of the issuer; cert-manager.io unless an external issuer is used.
	// +optional
	// +kubebuilder:default=cert-manager.io
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group,omitempty"`
}

// KeyAlgorithm is a private key algorithm.
// +kubebuilder:validation:Enum=RSA;ECDSA;Ed25519
type KeyAlgorithm string

// PrivateKeySpec is a key algorithm and size.
// +kubebuilder:validation:XValidation:rule="!has(self.algorithm) || !has(self.size) || self.algorithm != 'RSA' || self.size in [2048, 3072, 4096]",message="privateKey.size for RSA must be 2048, 3072 or 4096"
// +kubebuilder:validation:XValidation:rule="!has(self.algorithm) || !has(self.size) || self.algorithm != 'ECDSA' || self.size in [256, 384, 521]",message="privateKey.size for ECDSA must be 256, 384 or 521"
// +kubebuilder:validation:XValidation:rule="!has(self.algorithm) || !has(self.size) || self.algorithm != 'Ed25519' || self.size == 0",message="privateKey.size must be omitted for Ed25519"
type PrivateKeySpec struct {
	// +optional
	// +kubebuilder:default=ECDSA
	Algorithm KeyAlgorithm `json:"algorithm,omitempty"`
	// Size in bits (RSA) or curve size (ECDSA); defaults to 256 for ECDSA and 3072 for RSA.
	// +optional
	Size int32 `json:"size,omitempty"`
}

// IKESettings are Phase 1 settings.
// +kubebuilder:validation:XValidation:rule="!(self.lifetime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.rekeyTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.rekeyTime) || duration(self.rekeyTime) < duration(self.lifetime))",message="ike.rekeyTime must be shorter than ike.lifetime"
// +kubebuilder:validation:XValidation:rule="!(self.lifetime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.reauthTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.reauthTime) || duration(self.reauthTime) == duration('0s') || duration(self.reauthTime) < duration(self.lifetime))",message="ike.reauthTime must be 0s (off) or shorter than ike.lifetime"
type IKESettings struct {
	// Version of IKE for mobile clients. Only IKEv2 carries EAP and virtual
	// addresses; IKEv1 is available for site-to-site Tunnels.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Enum=2
	Version int32 `json:"version,omitempty"`
	// Preset selects the IKE proposals unless proposals is set, strongest first.
	// Modern (default): AEAD, then AES-CBC with SHA-2; admits the strongSwan app,
	// Android's built-in client, iOS and macOS as they come, and Windows and
	// every other family with its ikegate profile. Compatible adds SHA-1: also
	// Windows with NegotiateDH2048_AES256 (8 of the 10 families tried). Legacy
	// adds 3DES and MODP1024/MODP1536 for stock Windows 10 and 11 (all 10) and
	// needs allowInsecureAlgorithms.
	// +optional
	// +kubebuilder:default=Modern
	Preset ProposalPreset `json:"preset,omitempty"`
	// Proposals replace the preset when set, most preferred first.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Proposals []IKEProposal `json:"proposals,omitempty"`
	// Lifetime is the hard lifetime of an IKE_SA (the seed's 28800 s).
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.lifetime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="8h"
	// +kubebuilder:validation:XValidation:rule="!(self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (duration(self) >= duration('10m') && duration(self) <= duration('168h'))",message="ike.lifetime must be between 10m and 168h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`
	// RekeyTime is when the IKE_SA is rekeyed; defaults to 90% of lifetime.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.rekeyTime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	RekeyTime *metav1.Duration `json:"rekeyTime,omitempty"`
	// ReauthTime is when clients must authenticate again; 0s (default) never.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="ike.reauthTime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	ReauthTime *metav1.Duration `json:"reauthTime,omitempty"`
	// MOBIKE lets clients change address (Wi-Fi to mobile) without reconnecting.
	// +optional
	// +kubebuilder:default=true
	MOBIKE *bool `json:"mobike,omitempty"`
	// DPD is dead peer detection.
	// +optional
	// +kubebuilder:default={}
	DPD DPDSettings `json:"dpd,omitempty"`
	// Fragmentation of IKE messages (RFC 7383); Yes also accepts proprietary fragments.
	// +optional
	// +kubebuilder:default=Yes
	// +kubebuilder:validation:Enum=Yes;Accept;Force;No
	Fragmentation string `json:"fragmentation,omitempty"`
	// ForceEncapsulation sends ESP in UDP even when no NAT is detected, for networks
	// that drop plain ESP.
	// +optional
	ForceEncapsulation bool `json:"forceEncapsulation,omitempty"`
}

// ClientAuthMethod is how mobile clients authenticate.
// +kubebuilder:validation:Enum=EAPMSCHAPv2;EAPRADIUS;EAPTLS;PublicKey
type ClientAuthMethod string

const (
	ClientAuthEAPMSCHAPv2 ClientAuthMethod = "EAPMSCHAPv2"
	ClientAuthEAPRADIUS   ClientAuthMethod = "EAPRADIUS"
	ClientAuthEAPTLS      ClientAuthMethod = "EAPTLS"
	ClientAuthPublicKey   ClientAuthMethod = "PublicKey"
)

// ClientAuth configures client authentication.
type ClientAuth struct {
	// Method: EAPMSCHAPv2 (VPNUsers with passwords), EAPRADIUS (a RADIUS server
	// decides), EAPTLS or PublicKey (client certificates from clientCA).
	// +optional
	// +kubebuilder:default=EAPMSCHAPv2
	Method ClientAuthMethod `json:"method,omitempty"`
	// RADIUS servers for EAPRADIUS.
	// +optional
	RADIUS *RADIUSSettings `json:"radius,omitempty"`
	// ClientCA is the CA bundle client certificates must chain to, for EAPTLS and PublicKey.
	// +optional
	ClientCA *SecretKeyReference `json:"clientCA,omitempty"`
	// MaxSessionsPerUser is how many devices one identity may have connected
	// at once to one gateway pod, unless its VPNUser sets maxSessions (with
	// EAPRADIUS, where identities need no VPNUser, it applies to all). Each
	// device gets its own virtual address and its own entry in the user's
	// status.sessions. A login beyond the limit replaces the identity's
	// oldest session: the gateway sends that device a DELETE and records a
	// SessionReplaced Event on the VPNUser. Unset is 4.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	MaxSessionsPerUser int32 `json:"maxSessionsPerUser,omitempty"`
}

// RADIUSSettings configure the EAP-RADIUS back end.
type RADIUSSettings struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.name == x.name))",message="radius.servers must not repeat a name"
	Servers []RADIUSServer `json:"servers"`
	// Accounting sends RADIUS accounting records.
	// +optional
	Accounting bool `json:"accounting,omitempty"`
	// NASIdentifier sent to the servers.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	NASIdentifier string `json:"nasIdentifier,omitempty"`
}

// RADIUSServer is one RADIUS server.
type RADIUSServer struct {
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Address is an IP address or DNS name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address"`
	// +optional
	// +kubebuilder:default=1812
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	AuthPort int32 `json:"authPort,omitempty"`
	// +optional
	// +kubebuilder:default=1813
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	AccountingPort int32 `json:"accountingPort,omitempty"`
	// SecretRef selects the shared secret.
	SecretRef SecretKeyReference `json:"secretRef"`
}

// ExposureType says how a gateway is reachable.
// +kubebuilder:validation:Enum=HostNetwork;LoadBalancer
type ExposureType string

const (
	ExposureHostNetwork  ExposureType = "HostNetwork"
	ExposureLoadBalancer ExposureType = "LoadBalancer"
)

// Exposure configures the gateway workload's reachability and placement.
type Exposure struct {
	// Type: HostNetwork (pods on the selected nodes answer on the nodes' addresses;
	// only where the manager's policy.hostNetwork allows it) or LoadBalancer (a
	// Service for UDP 500 and 4500).
	// +optional
	// +kubebuilder:default=HostNetwork
	Type ExposureType `json:"type,omitempty"`
	// Replicas of the gateway.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	Replicas int32 `json:"replicas,omitempty"`
	// NodeSelector chooses the nodes gateway pods run on, among those the
	// manager's policy.nodeSelector selects (it may add labels, not change them).
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the gateway pods; each must name a taint key the
	// manager's policy.tolerationKeys lists.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// LoadBalancer settings when type is LoadBalancer.
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`
	// ReturnPath says how traffic from the LAN finds the replica that holds
	// a client. Every replica serves its own slices of each pool (see
	// status.returnRoutes and MobilePool status.replicas). Masquerade: client
	// traffic leaves each replica with the address of its node, so the LAN
	// needs no route to the pools (works anywhere; the LAN sees node
	// addresses, not clients). Routed: client addresses are kept, and the
	// LAN must route each replica's slices to the node that runs it, as
	// status.returnRoutes lists (the agent announces nothing itself). Unset
	// keeps the firewall's masquerade settings and routes whole pools, which
	// serves one replica only.
	// +optional
	ReturnPath ReturnPath `json:"returnPath,omitempty"`
}

// ReturnPath is how LAN traffic reaches the replica that holds a client.
// +kubebuilder:validation:Enum=Masquerade;Routed
type ReturnPath string

const (
	ReturnPathMasquerade ReturnPath = "Masquerade"
	ReturnPathRouted     ReturnPath = "Routed"
)

// LoadBalancerSettings tune the gateway's LoadBalancer Service.
type LoadBalancerSettings struct {
	// Annotations for the Service (cloud load balancer settings); each key
	// must be one the manager's policy.loadBalancerAnnotations allows.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// LoadBalancerClass of the Service.
	// +optional
	LoadBalancerClass *string `json:"loadBalancerClass,omitempty"`
}

// Dataplane selects the ESP implementation.
// +kubebuilder:validation:Enum=Kernel;Userspace
type Dataplane string

const (
	DataplaneKernel    Dataplane = "Kernel"
	DataplaneUserspace Dataplane = "Userspace"
)

// DefaultMSSClamp is the TCP MSS of IPv4 SYNs through the tunnels by default
// (IPv6 SYNs get 20 less). It fits the worst ESP encapsulation a client may
// negotiate over a 1500-byte path: outer IPv6 40 + UDP 8 + ESP header 8 +
// CBC IV 16 + ICV 32 leave 1396, CBC padding and the 2-byte trailer leave a
// 1390-byte inner packet, minus 40 bytes of IPv4 and TCP headers: 1350.
const DefaultMSSClamp = 1350

// GatewayFirewall configures the gateway's nftables table.
type GatewayFirewall struct {
	// Enabled installs the gateway's firewall table.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// MSSClamp is the TCP maximum segment size set on IPv4 SYNs through the
	// tunnels (IPv6 SYNs get 20 less), so large packets are not fragmented or
	// dropped. The default 1350 fits ESP in UDP over a 1500-byte path with the
	// largest overhead a client may negotiate (IPv6 outer header, AES-CBC,
	// SHA-512 ICV): 1500 - 40 - 8 - 8 - 16 - 32, padded, leaves a 1390-byte
	// inner packet, minus 40 bytes of IPv4 and TCP headers. The seed's 1400
	// only fits AES-GCM over IPv4. 0 turns clamping off.
	// +optional
	// +kubebuilder:default=1350
	// +kubebuilder:validation:XValidation:rule="self == 0 || (self >= 536 && self <= 1460)",message="firewall.mssClamp must be 0 (off) or between 536 and 1460"
	MSSClamp *int32 `json:"mssClamp,omitempty"`
	// Masquerade rewrites the source of client traffic to the gateway's address
	// (for LANs without a route back to the pools); pools may override it.
	// +optional
	Masquerade bool `json:"masquerade,omitempty"`
}

// LogLevel is a charon log level: Silent (-1), Basic (0), Audit (1), Control
// (2) or Diagnostic (3). Private (level 4, key material) is never offered, and
// Diagnostic stops short of decrypted payloads unless
// Logging.UnsafeLogDecryptedPayloads says otherwise.
// +kubebuilder:validation:Enum=Silent;Basic;Audit;Control;Diagnostic
type LogLevel string

// Logging sets charon log levels per subsystem (the seed's "IPsec Logging Controls").
type Logging struct {
	// Default level for subsystems not named here.
	// +optional
	Default LogLevel `json:"default,omitempty"`
	// +optional
	Daemon LogLevel `json:"daemon,omitempty"`
	// +optional
	Manager LogLevel `json:"manager,omitempty"`
	// IKE is the IKE_SA subsystem.
	// +optional
	IKE LogLevel `json:"ike,omitempty"`
	// Child is the CHILD_SA subsystem.
	// +optional
	Child LogLevel `json:"child,omitempty"`
	// +optional
	Job LogLevel `json:"job,omitempty"`
	// Config is the configuration backend.
	// +optional
	Config LogLevel `json:"config,omitempty"`
	// +optional
	Kernel LogLevel `json:"kernel,omitempty"`
	// +optional
	Network LogLevel `json:"network,omitempty"`
	// +optional
	ASN LogLevel `json:"asn,omitempty"`
	// +optional
	Encoding LogLevel `json:"encoding,omitempty"`
	// +optional
	TLS LogLevel `json:"tls,omitempty"`
	// +optional
	ESP LogLevel `json:"esp,omitempty"`
	// +optional
	Library LogLevel `json:"library,omitempty"`
	// UnsafeLogDecryptedPayloads lets Diagnostic reach the subsystems (ike,
	// enc, cfg, tls, esp, lib, asn) where charon logs decrypted IKE payloads,
	// EAP exchanges (MS-CHAPv2 responses, against which passwords can be
	// guessed offline), whole RADIUS messages and what PSK authentication
	// signs. Without it those subsystems stay at Control (2) whatever level
	// is asked for. For a lab, never for real users' logins.
	// +optional
	UnsafeLogDecryptedPayloads bool `json:"unsafeLogDecryptedPayloads,omitempty"`
}

// GatewayResources are the containers' resource requirements.
type GatewayResources struct {
	// +optional
	Charon corev1.ResourceRequirements `json:"charon,omitempty"`
	// +optional
	Agent corev1.ResourceRequirements `json:"agent,omitempty"`
}

// VPNGateway is an IKEv2 VPN gateway. Its name becomes part of the names and
// label values of the objects made for it (StatefulSet <name>-gateway, whose
// pods carry a 63-character revision label), hence the limit.
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40",message="metadata.name of a VPNGateway must be at most 40 characters: it prefixes the gateway's StatefulSet, pods and labels"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpngw,categories=ikegate
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.spec.hostnames[0]`
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessions`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VPNGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VPNGatewaySpec   `json:"spec"`
	Status VPNGatewayStatus `json:"status,omitempty"`
}

// VPNGatewayList is a list of VPNGateways.
// +kubebuilder:object:root=true
type VPNGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VPNGateway `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VPNGateway{}, &VPNGatewayList{})
}

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Hostname is a DNS name clients use to reach a gateway.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\\\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a lower-case DNS name such as vpn.example.com"
type Hostname string

// IPAddress is an IPv4 or IPv6 address.
// +kubebuilder:validation:MaxLength=45
// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address such as 198.51.100.10 or 2001:db8::1"
type IPAddress string

// CIDR is a network in CIDR notation, written as its network address.
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a network in CIDR notation such as 10.3.0.0/24 or 2001:db8::/64"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || string(cidr(self).masked()) == self",message="must be written as its network address, e.g. 10.3.0.0/24 rather than 10.3.0.1/24"
type CIDR string

// Identity is an IKE or EAP identity: an FQDN, an e-mail address, an IP address or
// a distinguished name.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=255
// +kubebuilder:validation:XValidation:rule="!self.matches('[[:cntrl:]]')",message="must not contain control characters"
// +kubebuilder:validation:XValidation:rule="self.trim() == self",message="must not start or end with white space"
type Identity string

// DomainName is a DNS domain sent to clients.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^([A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?\\\\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$')",message="must be a DNS domain such as example.com"
type DomainName string

// GatewayReference names a VPNGateway in the same namespace.
type GatewayReference struct {
	// Name of the VPNGateway.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference selects one key of a Secret in the same namespace. The
// manager copies what it references into the gateway's credentials Secrets
// under the data key "nthash_<name>_<key>" or "value_<name>_<key>", and a
// Secret data key holds at most 253 characters, hence the limit on both
// together.
// +kubebuilder:validation:XValidation:rule="size(self.name) + size(self.key) <= 245",message="name and key together must be at most 245 characters: the gateway's credentials Secret stores the value under a key made of both"
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ProposalPreset is a named set of proposals ikegate keeps current, ordered
// strongest first so that each client gets the strongest algorithms it offers.
// Modern (the default) offers AES-GCM and ChaCha20-Poly1305, then AES-CBC with
// SHA-2, with Curve25519 and the NIST curves before MODP 2048-4096, and no SHA-1;
// it admits as they come the strongSwan app (Android, Linux), Android's built-in
// IKEv2 client, iOS and macOS (16/13 defaults), and every client with the profile
// ikegate generates for it (Windows included). Compatible adds SHA-1 (RFC 8247
// MUST-) and admits Windows set to NegotiateDH2048_AES256 as well: every family
// tried whose stock defaults avoid SHOULD NOT groups (8 of 10). Legacy adds 3DES
// and MODP 1024 and 1536 (DH groups 2 and 5, RFC 8247 SHOULD NOT) in proposals of
// their own, after the stronger ones, for stock Windows 10 and 11 (which propose
// MODP 1024 only), and requires allowInsecureAlgorithms. What RFC 8247 and RFC
// 8221 forbid (DES, MD5, MODP 768) no preset offers and no opt-in allows.
// +kubebuilder:validation:Enum=Modern;Compatible;Legacy
type ProposalPreset string

const (
	PresetModern     ProposalPreset = "Modern"
	PresetCompatible ProposalPreset = "Compatible"
	PresetLegacy     ProposalPreset = "Legacy"
)

// EncryptionAlgorithm is an IKE or ESP cipher. AES-GCM and ChaCha20-Poly1305 are
// AEAD ciphers and take no integrity algorithm. 3DES (RFC 8221 SHOULD NOT)
// needs allowInsecureAlgorithms.
// +kubebuilder:validation:Enum=AES128;AES192;AES256;AES128GCM16;AES192GCM16;AES256GCM16;ChaCha20Poly1305;3DES
type EncryptionAlgorithm string

// IntegrityAlgorithm is an integrity (hash) algorithm. MD5 is forbidden (RFC 8247
// and RFC 8221 MUST NOT) and refused; SHA1 is MUST- and allowed.
// +kubebuilder:validation:Enum=SHA256;SHA384;SHA512;AESXCBC;SHA1;MD5
type IntegrityAlgorithm string

// PRFAlgorithm is an IKE pseudo-random function. PRFMD5 is forbidden (RFC 8247
// MUST NOT) and refused; PRFSHA1 is MUST- and allowed.
// +kubebuilder:validation:Enum=PRFSHA256;PRFSHA384;PRFSHA512;PRFAESXCBC;PRFSHA1;PRFMD5
type PRFAlgorithm string

// DHGroup is a Diffie-Hellman group. MODP768 (group 1) is forbidden (RFC 8247
// MUST NOT) and refused; MODP1024 and MODP1536 (groups 2 and 5) are SHOULD NOT
// and need allowInsecureAlgorithms.
// +kubebuilder:validation:Enum=Curve25519;Curve448;ECP256;ECP384;ECP521;MODP2048;MODP3072;MODP4096;MODP6144;MODP8192;MODP1536;MODP1024;MODP768
type DHGroup string

// PFSGroup is a DH group for Perfect Forward Secrecy of CHILD_SAs, or None.
// +kubebuilder:validation:Enum=None;Curve25519;Curve448;ECP256;ECP384;ECP521;MODP2048;MODP3072;MODP4096;MODP6144;MODP8192;MODP1536;MODP1024;MODP768
type PFSGroup string

// PFSNone disables PFS for CHILD_SA rekeying.
const PFSNone PFSGroup = "None"

// IKEProposal is one IKE proposal as structured algorithm choices.
// +kubebuilder:validation:XValidation:rule="(!has(self.integrity) || !self.integrity.exists(i, i == 'MD5')) && (!has(self.prf) || !self.prf.exists(f, f == 'PRFMD5')) && !self.dhGroups.exists(g, g == 'MODP768')",message="MD5, PRFMD5 and MODP768 (DH group 1) are forbidden by RFC 8247 (MUST NOT); not even allowInsecureAlgorithms allows them"
// +kubebuilder:validation:XValidation:rule="self.encryption.all(e, e in ['AES128GCM16','AES192GCM16','AES256GCM16','ChaCha20Poly1305']) || (has(self.integrity) && size(self.integrity) > 0)",message="a proposal with a non-AEAD cipher (AES128, AES192, AES256, 3DES) needs at least one integrity algorithm"
type IKEProposal struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Encryption []EncryptionAlgorithm `json:"encryption"`
	// Integrity algorithms; required for non-AEAD ciphers.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Integrity []IntegrityAlgorithm `json:"integrity,omitempty"`
	// PRF algorithms; when empty, the PRFs matching the integrity algorithms (or PRFSHA256 for AEAD) are used.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	PRF []PRFAlgorithm `json:"prf,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	DHGroups []DHGroup `json:"dhGroups"`
}

// ESPProposal is one ESP (Phase 2) proposal as structured algorithm choices.
// +kubebuilder:validation:XValidation:rule="!has(self.integrity) || !self.integrity.exists(i, i == 'MD5')",message="MD5 is forbidden by RFC 8221 (MUST NOT); not even allowInsecureAlgorithms allows it"
// +kubebuilder:validation:XValidation:rule="self.encryption.all(e, e in ['AES128GCM16','AES192GCM16','AES256GCM16','ChaCha20Poly1305']) || (has(self.integrity) && size(self.integrity) > 0)",message="a proposal with a non-AEAD cipher (AES128, AES192, AES256, 3DES) needs at least one integrity algorithm"
type ESPProposal struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Encryption []EncryptionAlgorithm `json:"encryption"`
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Integrity []IntegrityAlgorithm `json:"integrity,omitempty"`
}

// ESPSettings are the Phase 2 (CHILD_SA) settings.
// +kubebuilder:validation:XValidation:rule="!has(self.pfsGroup) || self.pfsGroup != 'MODP768'",message="pfsGroup MODP768 (DH group 1) is forbidden by RFC 8247 (MUST NOT); not even allowInsecureAlgorithms allows it",fieldPath=`.pfsGroup`
// +kubebuilder:validation:XValidation:rule="!(self.lifetime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && self.rekeyTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (!has(self.rekeyTime) || duration(self.rekeyTime) < duration(self.lifetime))",message="esp.rekeyTime must be shorter than esp.lifetime"
type ESPSettings struct {
	// Preset selects the ESP proposals unless proposals is set, strongest first.
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
	Proposals []ESPProposal `json:"proposals,omitempty"`
	// PFSGroup adds a DH exchange to CHILD_SA creation and rekeying (the seed's
	// "PFS key group"). None keeps the keys derived from the IKE_SA. With the
	// Modern preset the group is required, so macOS without its ikegate profile
	// (it proposes no group when rekeying) loses its tunnel at the first rekey;
	// Compatible and Legacy accept a rekey without the group too.
	// +optional
	// +kubebuilder:default=None
	PFSGroup PFSGroup `json:"pfsGroup,omitempty"`
	// Lifetime is the hard lifetime of a CHILD_SA (the seed's Phase 2 "Life Time", 3600 s).
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="esp.lifetime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="!(self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (duration(self) >= duration('5m') && duration(self) <= duration('24h'))",message="esp.lifetime must be between 5m and 24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`
	// RekeyTime is when a CHILD_SA is rekeyed; defaults to 90% of lifetime.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="esp.rekeyTime must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	RekeyTime *metav1.Duration `json:"rekeyTime,omitempty"`
}

// DPDAction is what charon does when a peer stops answering dead peer detection.
// +kubebuilder:validation:Enum=Clear;Trap;Restart;None
type DPDAction string

// DPDSettings configure dead peer detection.
type DPDSettings struct {
	// Delay between liveness checks when no traffic was seen; 0s disables DPD.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="dpd.delay must be a duration such as 8h or 90m"
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="!(self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')) || (duration(self) >= duration('0s') && duration(self) <= duration('1h'))",message="dpd.delay must be between 0s and 1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Delay *metav1.Duration `json:"delay,omitempty"`
	// Action when the peer is dead.
	// +optional
	// +kubebuilder:default=Clear
	Action DPDAction `json:"action,omitempty"`
}

// PeerSessionCounters are traffic counters of one CHILD_SA.
type TrafficCounters struct {
	BytesIn    int64 `json:"bytesIn"`
	BytesOut   int64 `json:"bytesOut"`
	PacketsIn  int64 `json:"packetsIn"`
	PacketsOut int64 `json:"packetsOut"`
}

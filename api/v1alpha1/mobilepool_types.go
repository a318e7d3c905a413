package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// MobilePoolSpec is a group of mobile clients: the addresses they get, the networks
// they reach, what they are told (DNS, WINS, banner), Phase 2 settings and what the
// firewall lets them do.
// +kubebuilder:validation:XValidation:rule="self.gatewayRef == oldSelf.gatewayRef",message="gatewayRef is immutable; create a new MobilePool for another gateway",fieldPath=`.gatewayRef`
// +kubebuilder:validation:XValidation:rule="(has(self.localNetworks) && size(self.localNetworks) > 0) != (has(self.fullTunnel) && self.fullTunnel)",message="set exactly one of localNetworks (split tunnel: only these networks go through the VPN) or fullTunnel: true (all traffic goes through the VPN)",fieldPath=`.localNetworks`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || self.esp.preset != 'Legacy'",message="esp.preset Legacy offers 3DES, which RFC 8221 advises against (SHOULD NOT); set allowInsecureAlgorithms: true to accept it",fieldPath=`.esp.preset`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || !(self.esp.pfsGroup in ['MODP1024', 'MODP1536'])",message="esp.pfsGroup MODP1024 and MODP1536 (DH groups 2 and 5) are SHOULD NOT in RFC 8247; set allowInsecureAlgorithms: true to accept them",fieldPath=`.esp.pfsGroup`
// +kubebuilder:validation:XValidation:rule="(has(self.allowInsecureAlgorithms) && self.allowInsecureAlgorithms) || !has(self.esp.proposals) || self.esp.proposals.all(p, !p.encryption.exists(e, e == '3DES'))",message="esp.proposals use 3DES, which RFC 8221 advises against (SHOULD NOT); set allowInsecureAlgorithms: true to accept it",fieldPath=`.esp.proposals`
// +kubebuilder:validation:XValidation:rule="!has(self.localNetworks) || self.localNetworks.all(n, !isCIDR(n) || [self.addresses.?ipv4.orValue('-'), self.addresses.?ipv6.orValue('-')].all(a, !isCIDR(a) || !(cidr(n).containsCIDR(a) || cidr(a).containsCIDR(n))))",message="addresses must not overlap localNetworks: a client's own address would also be a destination behind the gateway",fieldPath=`.addresses`
type MobilePoolSpec struct {
	// GatewayRef is the VPNGateway this pool belongs to.
	GatewayRef GatewayReference `json:"gatewayRef"`

	// Addresses handed to clients (the seed's "Virtual Address Pool"). A pool
	// hands out every address of its prefixes but the network address and
	// the last one: a /24 serves 254 clients, a /30 two, an IPv6 prefix at
	// most 2^31 - 2 (charon's limit of one pool: of a /64 it serves the first
	// /97); users' staticAddresses come out of that number. Each device of a
	// user holds an address of its own. Every address carries the pool's DNS,
	// domain and split attributes: the gateway hands the prefix to charon as
	// an address range, because strongSwan 5.9.8 sends a subnet pool's
	// attributes to every address but the last it hands out.
	Addresses PoolAddresses `json:"addresses"`

	// LocalNetworks are the networks reached through the VPN (split include).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="localNetworks must not repeat a network"
	LocalNetworks []CIDR `json:"localNetworks,omitempty"`

	// FullTunnel sends all client traffic through the VPN (0.0.0.0/0 and ::/0).
	// +optional
	FullTunnel bool `json:"fullTunnel,omitempty"`

	// DNS settings pushed to clients.
	// +optional
	DNS *DNSSettings `json:"dns,omitempty"`

	// WINSServers pushed to clients (NetBIOS name servers, IPv4 only).
	// +optional
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:XValidation:rule="self.all(a, ip(a).family() == 4)",message="winsServers must be IPv4 addresses"
	WINSServers []IPAddress `json:"winsServers,omitempty"`

	// Banner is shown by clients that support it (Cisco Unity banner) after connecting.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x09\\\\x0b-\\\\x1f\\\\x7f]')",message="banner must not contain control characters other than newlines"
	Banner string `json:"banner,omitempty"`

	// ESP holds Phase 2 (CHILD_SA) settings.
	// +optional
	// +kubebuilder:default={}
	ESP ESPSettings `json:"esp,omitempty"`

	// Firewall is what clients of this pool may reach; everything else is dropped and counted.
	// +optional
	// +kubebuilder:default={}
	Firewall PoolFirewall `json:"firewall,omitempty"`

	// UserSelector chooses which VPNUsers of the gateway draw addresses from this
	// pool, by label. Absent selects every user not selected by another pool.
	// +optional
	UserSelector *metav1.LabelSelector `json:"userSelector,omitempty"`

	// AllowInsecureAlgorithms accepts 3DES and PFS groups 2 and 5 (MODP1024,
	// MODP1536) in esp, which RFC 8221 and RFC 8247 advise against (SHOULD NOT).
	// What they forbid (MUST NOT: DES, MD5, MODP768) is refused even with it;
	// SHA-1 (MUST-) needs no opt-in.
	// +optional
	AllowInsecureAlgorithms bool `json:"allowInsecureAlgorithms,omitempty"`
}

// PoolAddresses are the pool's address ranges, one per family.
// +kubebuilder:validation:XValidation:rule="has(self.ipv4) || has(self.ipv6)",message="addresses needs ipv4, ipv6 or both"
// +kubebuilder:validation:XValidation:rule="has(self.ipv4) == has(oldSelf.ipv4) && (!has(self.ipv4) || self.ipv4 == oldSelf.ipv4)",message="addresses.ipv4 is immutable: connected clients hold addresses from it; create a new pool",fieldPath=`.ipv4`
// +kubebuilder:validation:XValidation:rule="has(self.ipv6) == has(oldSelf.ipv6) && (!has(self.ipv6) || self.ipv6 == oldSelf.ipv6)",message="addresses.ipv6 is immutable: connected clients hold addresses from it; create a new pool",fieldPath=`.ipv6`
type PoolAddresses struct {
	// IPv4 pool, a prefix between /8 and /30 such as 10.3.200.0/24.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() == 4",message="addresses.ipv4 must be an IPv4 network such as 10.3.200.0/24"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || (cidr(self).prefixLength() >= 8 && cidr(self).prefixLength() <= 30)",message="addresses.ipv4 prefix length must be between /8 and /30"
	IPv4 CIDR `json:"ipv4,omitempty"`
	// IPv6 pool, a prefix between /64 and /126 such as fd00:3::/112.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() == 6",message="addresses.ipv6 must be an IPv6 network such as fd00:3::/112"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 6 || (cidr(self).prefixLength() >= 64 && cidr(self).prefixLength() <= 126)",message="addresses.ipv6 prefix length must be between /64 and /126"
	IPv6 CIDR `json:"ipv6,omitempty"`
}

// DNSSettings are the DNS attributes pushed to clients.
type DNSSettings struct {
	// Servers clients use for name resolution.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="dns.servers must not repeat an address"
	Servers []IPAddress `json:"servers,omitempty"`
	// DefaultDomain appended to short names.
	// +optional
	DefaultDomain DomainName `json:"defaultDomain,omitempty"`
	// SplitDomains are resolved through the VPN's DNS servers only (split DNS);
	// sent as RFC 8598 INTERNAL_DNS_DOMAIN and as Cisco Unity split DNS.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y == x))",message="dns.splitDomains must not repeat a domain"
	SplitDomains []DomainName `json:"splitDomains,omitempty"`
}

// Protocol of a firewall rule.
// +kubebuilder:validation:Enum=Any;TCP;UDP;ICMP
type Protocol string

const (
	ProtocolAny  Protocol = "Any"
	ProtocolTCP  Protocol = "TCP"
	ProtocolUDP  Protocol = "UDP"
	ProtocolICMP Protocol = "ICMP"
)

// PoolFirewall is a pool's firewall policy: default deny, these allowed.
type PoolFirewall struct {
	// Allow lists destinations clients may reach.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Allow []AllowRule `json:"allow,omitempty"`
	// Masquerade overrides the gateway's firewall.masquerade for this pool.
	// +optional
	Masquerade *bool `json:"masquerade,omitempty"`
}

// AllowRule allows traffic to a destination.
// +kubebuilder:validation:XValidation:rule="!has(self.ports) || size(self.ports) == 0 || self.protocol in ['TCP', 'UDP']",message="ports are only allowed with protocol TCP or UDP"
type AllowRule struct {
	// To is the destination network.
	To CIDR `json:"to"`
	// Protocol allowed.
	// +optional
	// +kubebuilder:default=Any
	Protocol Protocol `json:"protocol,omitempty"`
	// Ports allowed (TCP and UDP only); empty allows every port.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Ports []PortRange `json:"ports,omitempty"`
}

// PortRange is a port or an inclusive range.
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || self.endPort >= self.port",message="endPort must not be lower than port"
type PortRange struct {
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort int32 `json:"endPort,omitempty"`
}

// MobilePoolStatus is the observed state of a pool.
type MobilePoolStatus struct {
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Leased is the number of addresses currently handed out.
	// +optional
	Leased int32 `json:"leased,omitempty"`
	// Size is the number of addresses the pool can hand out: 2^(host bits) - 2
	// per family, at most 2^31 - 2 (see spec.addresses).
	// +optional
	Size int64 `json:"size,omitempty"`
	// Replicas are the gateway's current pods with the slices of the pool
	// each serves and the addresses it leased, when the gateway runs more
	// than one replica.
	// +optional
	// +listType=map
	// +listMapKey=pod
	// +kubebuilder:validation:MaxItems=16
	Replicas []PoolReplica `json:"replicas,omitempty"`
}

// PoolReplica is one gateway replica's share of a MobilePool.
type PoolReplica struct {
	// Pod is the gateway pod.
	Pod string `json:"pod"`
	// Slices are the address prefixes it hands out of (one family after the other).
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Slices []string `json:"slices"`
	// Leased addresses on it, online clients only.
	// +optional
	Leased int32 `json:"leased,omitempty"`
}

// MobilePool is a pool of mobile clients of a VPNGateway.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vpnpool,categories=ikegate
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gatewayRef.name`
// +kubebuilder:printcolumn:name="IPv4",type=string,JSONPath=`.spec.addresses.ipv4`
// +kubebuilder:printcolumn:name="IPv6",type=string,JSONPath=`.spec.addresses.ipv6`,priority=1
// +kubebuilder:printcolumn:name="Leased",type=integer,JSONPath=`.status.leased`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MobilePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MobilePoolSpec   `json:"spec"`
	Status MobilePoolStatus `json:"status,omitempty"`
}

// MobilePoolList is a list of MobilePools.
// +kubebuilder:object:root=true
type MobilePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MobilePool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MobilePool{}, &MobilePoolList{})
}

package v1alpha1

// The API server applies the defaults of the kubebuilder markers, but objects
// that never passed through it (manifests read by kubectl-ikegate render,
// objects built in tests, objects written before a default was added) arrive
// with the zero value. These methods are the one place that reads a zero
// value as its default, so every consumer reads a field the same way.

// EffectiveClientAuthMethod is the client authentication method; an empty
// method is EAPMSCHAPv2, the marker's default.
func (s *VPNGatewaySpec) EffectiveClientAuthMethod() ClientAuthMethod {
	if s.ClientAuth.Method == "" {
		return ClientAuthEAPMSCHAPv2
	}
	return s.ClientAuth.Method
}

// UsesLocalUsers reports whether clients log in with the passwords of the
// gateway's VPNUsers (EAPMSCHAPv2), so that only a VPNUser's identity may
// hold a session. With the other methods a RADIUS server or a CA decides.
func (s *VPNGatewaySpec) UsesLocalUsers() bool {
	return s.EffectiveClientAuthMethod() == ClientAuthEAPMSCHAPv2
}

// OnlyVPNUsers reports whether only the gateway's VPNUsers may hold
// sessions: with EAPMSCHAPv2 by their passwords, with EAPTLS and PublicKey by
// their certificates' identities (a certificate of the client CA is not
// enough: a disabled, expired or deleted user's certificate stays valid).
// With EAPRADIUS the RADIUS server decides who logs in.
func (s *VPNGatewaySpec) OnlyVPNUsers() bool {
	return s.EffectiveClientAuthMethod() != ClientAuthEAPRADIUS
}

// UsesRADIUS reports whether a RADIUS server authenticates the clients: the
// method is EAPRADIUS and servers are configured (the API requires them;
// without them there is nothing to ask).
func (s *VPNGatewaySpec) UsesRADIUS() bool {
	return s.EffectiveClientAuthMethod() == ClientAuthEAPRADIUS && s.ClientAuth.RADIUS != nil
}

// EffectiveReplicas is the number of gateway pods; below 1 is 1.
func (s *VPNGatewaySpec) EffectiveReplicas() int32 {
	return max(1, s.Exposure.Replicas)
}

// HostNetwork reports whether the gateway pods use their nodes' network
// (exposure.type HostNetwork, the default) rather than a LoadBalancer Service.
func (s *VPNGatewaySpec) HostNetwork() bool {
	return s.Exposure.Type != ExposureLoadBalancer
}

// EffectiveDataplane is where ESP is processed; empty is Kernel.
func (s *VPNGatewaySpec) EffectiveDataplane() Dataplane {
	if s.Dataplane == "" {
		return DataplaneKernel
	}
	return s.Dataplane
}

// UserspaceDataplane reports whether charon processes ESP itself
// (kernel-libipsec over a TUN device).
func (s *VPNGatewaySpec) UserspaceDataplane() bool {
	return s.EffectiveDataplane() == DataplaneUserspace
}

// FirewallEnabled reports whether the gateway's nftables table is installed;
// unset is enabled.
func (s *VPNGatewaySpec) FirewallEnabled() bool {
	return s.Firewall.Enabled == nil || *s.Firewall.Enabled
}

// EffectiveMSSClamp is the MSS of IPv4 SYNs through the tunnels: unset is
// DefaultMSSClamp, 0 turns clamping off.
func (f *GatewayFirewall) EffectiveMSSClamp() int32 {
	if f.MSSClamp == nil {
		return DefaultMSSClamp
	}
	return *f.MSSClamp
}

// EffectiveMOBIKE reports whether clients may change address without
// reconnecting; unset is on.
func (s *IKESettings) EffectiveMOBIKE() bool {
	return s.MOBIKE == nil || *s.MOBIKE
}

// EffectiveMasquerade reports whether the pool's client traffic is
// masqueraded: always on a Masquerade return path and never on a Routed
// one (the gateway's choice for all its replicas), else the pool's own
// setting, else its gateway's.
func (s *MobilePoolSpec) EffectiveMasquerade(gw *VPNGatewaySpec) bool {
	switch gw.Exposure.ReturnPath {
	case ReturnPathMasquerade:
		return true
	case ReturnPathRouted:
		return false
	}
	if s.Firewall.Masquerade != nil {
		return *s.Firewall.Masquerade
	}
	return gw.Firewall.Masquerade
}

// EffectiveProtocol is the protocol the rule allows; empty is Any.
func (r *AllowRule) EffectiveProtocol() Protocol {
	if r.Protocol == "" {
		return ProtocolAny
	}
	return r.Protocol
}

// LastPort is the inclusive end of the range; without endPort the range is
// the one port.
func (r PortRange) LastPort() int32 {
	if r.EndPort == 0 {
		return r.Port
	}
	return r.EndPort
}

// CertManagerGroup is the API group of cert-manager's own issuers.
const CertManagerGroup = "cert-manager.io"

// EffectiveKind is the issuer's kind; empty is Issuer.
func (r *IssuerReference) EffectiveKind() string {
	if r.Kind == "" {
		return "Issuer"
	}
	return r.Kind
}

// EffectiveGroup is the issuer's API group; empty is cert-manager.io.
func (r *IssuerReference) EffectiveGroup() string {
	if r.Group == "" {
		return CertManagerGroup
	}
	return r.Group
}

// The key algorithms of PrivateKeySpec.
const (
	KeyAlgorithmRSA     KeyAlgorithm = "RSA"
	KeyAlgorithmECDSA   KeyAlgorithm = "ECDSA"
	KeyAlgorithmEd25519 KeyAlgorithm = "Ed25519"
)

// EffectiveAlgorithm is the key algorithm; empty (or unknown) is ECDSA.
func (k PrivateKeySpec) EffectiveAlgorithm() KeyAlgorithm {
	switch k.Algorithm {
	case KeyAlgorithmRSA, KeyAlgorithmEd25519:
		return k.Algorithm
	}
	return KeyAlgorithmECDSA
}

// EffectiveSize is the key size in bits: 3072 for RSA and 256 for ECDSA when
// unset, and 0 for Ed25519, whose size is fixed.
func (k PrivateKeySpec) EffectiveSize() int32 {
	switch k.EffectiveAlgorithm() {
	case KeyAlgorithmEd25519:
		return 0
	case KeyAlgorithmRSA:
		if k.Size == 0 {
			return 3072
		}
	default:
		if k.Size == 0 {
			return 256
		}
	}
	return k.Size
}

// DefaultMaxSessionsPerUser is clientAuth.maxSessionsPerUser when unset: a
// laptop, a phone and a tablet, with one to spare for a device that
// reconnects before the gateway noticed its old session was dead.
const DefaultMaxSessionsPerUser = 4

// EffectiveMaxSessionsPerUser is the gateway's limit of sessions per
// identity; unset is DefaultMaxSessionsPerUser.
func (s *VPNGatewaySpec) EffectiveMaxSessionsPerUser() int32 {
	if s.ClientAuth.MaxSessionsPerUser <= 0 {
		return DefaultMaxSessionsPerUser
	}
	return s.ClientAuth.MaxSessionsPerUser
}

// EffectiveMaxSessions is the user's limit of sessions: its own maxSessions,
// else the gateway's.
func (s *VPNUserSpec) EffectiveMaxSessions(gw *VPNGatewaySpec) int32 {
	if s.MaxSessions != nil && *s.MaxSessions > 0 {
		return *s.MaxSessions
	}
	return gw.EffectiveMaxSessionsPerUser()
}

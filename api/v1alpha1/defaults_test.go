package v1alpha1

import (
	"testing"

	"k8s.io/utils/ptr"
)

func TestDefaultsOfZeroValues(t *testing.T) {
	on, off := ptr.To(true), ptr.To(false)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"empty client auth method is EAPMSCHAPv2", (&VPNGatewaySpec{}).EffectiveClientAuthMethod(), ClientAuthEAPMSCHAPv2},
		{"a set method is kept", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPTLS}}).EffectiveClientAuthMethod(), ClientAuthEAPTLS},
		{"empty method uses local users", (&VPNGatewaySpec{}).UsesLocalUsers(), true},
		{"EAPMSCHAPv2 uses local users", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPMSCHAPv2}}).UsesLocalUsers(), true},
		{"EAPRADIUS does not use local users", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPRADIUS}}).UsesLocalUsers(), false},
		{"PublicKey does not use local users", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthPublicKey}}).UsesLocalUsers(), false},
		{"EAPMSCHAPv2 admits only VPNUsers", (&VPNGatewaySpec{}).OnlyVPNUsers(), true},
		{"EAPTLS admits only VPNUsers", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPTLS}}).OnlyVPNUsers(), true},
		{"PublicKey admits only VPNUsers", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthPublicKey}}).OnlyVPNUsers(), true},
		{"EAPRADIUS leaves it to RADIUS", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPRADIUS}}).OnlyVPNUsers(), false},
		{"EAPRADIUS with servers uses RADIUS", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPRADIUS, RADIUS: &RADIUSSettings{}}}).UsesRADIUS(), true},
		{"EAPRADIUS without servers does not", (&VPNGatewaySpec{ClientAuth: ClientAuth{Method: ClientAuthEAPRADIUS}}).UsesRADIUS(), false},
		{"servers without EAPRADIUS do not", (&VPNGatewaySpec{ClientAuth: ClientAuth{RADIUS: &RADIUSSettings{}}}).UsesRADIUS(), false},
		{"no replicas is one", (&VPNGatewaySpec{}).EffectiveReplicas(), int32(1)},
		{"negative replicas is one", (&VPNGatewaySpec{Exposure: Exposure{Replicas: -2}}).EffectiveReplicas(), int32(1)},
		{"replicas are kept", (&VPNGatewaySpec{Exposure: Exposure{Replicas: 3}}).EffectiveReplicas(), int32(3)},
		{"empty exposure is host network", (&VPNGatewaySpec{}).HostNetwork(), true},
		{"LoadBalancer is not host network", (&VPNGatewaySpec{Exposure: Exposure{Type: ExposureLoadBalancer}}).HostNetwork(), false},
		{"empty dataplane is Kernel", (&VPNGatewaySpec{}).EffectiveDataplane(), DataplaneKernel},
		{"empty dataplane is not userspace", (&VPNGatewaySpec{}).UserspaceDataplane(), false},
		{"Userspace dataplane", (&VPNGatewaySpec{Dataplane: DataplaneUserspace}).UserspaceDataplane(), true},
		{"unset firewall is enabled", (&VPNGatewaySpec{}).FirewallEnabled(), true},
		{"firewall enabled", (&VPNGatewaySpec{Firewall: GatewayFirewall{Enabled: on}}).FirewallEnabled(), true},
		{"firewall disabled", (&VPNGatewaySpec{Firewall: GatewayFirewall{Enabled: off}}).FirewallEnabled(), false},
		{"unset MSS clamp is the default", (&GatewayFirewall{}).EffectiveMSSClamp(), int32(DefaultMSSClamp)},
		{"MSS clamp 0 is off", (&GatewayFirewall{MSSClamp: ptr.To[int32](0)}).EffectiveMSSClamp(), int32(0)},
		{"unset MOBIKE is on", (&IKESettings{}).EffectiveMOBIKE(), true},
		{"MOBIKE off", (&IKESettings{MOBIKE: off}).EffectiveMOBIKE(), false},
		{"pool masquerade follows the gateway's", (&MobilePoolSpec{}).EffectiveMasquerade(&VPNGatewaySpec{Firewall: GatewayFirewall{Masquerade: true}}), true},
		{"pool masquerade overrides the gateway's on", (&MobilePoolSpec{Firewall: PoolFirewall{Masquerade: off}}).EffectiveMasquerade(&VPNGatewaySpec{Firewall: GatewayFirewall{Masquerade: true}}), false},
		{"a Masquerade return path masquerades every pool", (&MobilePoolSpec{Firewall: PoolFirewall{Masquerade: off}}).EffectiveMasquerade(&VPNGatewaySpec{Exposure: Exposure{ReturnPath: ReturnPathMasquerade}}), true},
		{"a Routed return path masquerades no pool", (&MobilePoolSpec{Firewall: PoolFirewall{Masquerade: on}}).EffectiveMasquerade(&VPNGatewaySpec{Exposure: Exposure{ReturnPath: ReturnPathRouted}, Firewall: GatewayFirewall{Masquerade: true}}), false},
		{"pool masquerade overrides the gateway's off", (&MobilePoolSpec{Firewall: PoolFirewall{Masquerade: on}}).EffectiveMasquerade(&VPNGatewaySpec{}), true},
		{"empty protocol is Any", (&AllowRule{}).EffectiveProtocol(), ProtocolAny},
		{"protocol is kept", (&AllowRule{Protocol: ProtocolUDP}).EffectiveProtocol(), ProtocolUDP},
		{"a port without endPort is one port", PortRange{Port: 53}.LastPort(), int32(53)},
		{"endPort ends the range", PortRange{Port: 1000, EndPort: 2000}.LastPort(), int32(2000)},
		{"empty issuer kind is Issuer", (&IssuerReference{}).EffectiveKind(), "Issuer"},
		{"issuer kind is kept", (&IssuerReference{Kind: "ClusterIssuer"}).EffectiveKind(), "ClusterIssuer"},
		{"empty issuer group is cert-manager's", (&IssuerReference{}).EffectiveGroup(), "cert-manager.io"},
		{"issuer group is kept", (&IssuerReference{Group: "example.com"}).EffectiveGroup(), "example.com"},
		{"empty key algorithm is ECDSA", PrivateKeySpec{}.EffectiveAlgorithm(), KeyAlgorithmECDSA},
		{"unset ECDSA size is 256", PrivateKeySpec{}.EffectiveSize(), int32(256)},
		{"ECDSA size is kept", PrivateKeySpec{Algorithm: KeyAlgorithmECDSA, Size: 384}.EffectiveSize(), int32(384)},
		{"unset RSA size is 3072", PrivateKeySpec{Algorithm: KeyAlgorithmRSA}.EffectiveSize(), int32(3072)},
		{"RSA size is kept", PrivateKeySpec{Algorithm: KeyAlgorithmRSA, Size: 4096}.EffectiveSize(), int32(4096)},
		{"Ed25519 has no size", PrivateKeySpec{Algorithm: KeyAlgorithmEd25519, Size: 256}.EffectiveSize(), int32(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

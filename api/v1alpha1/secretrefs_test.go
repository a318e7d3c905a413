package v1alpha1

import (
	"slices"
	"testing"
)

func TestSecretRefs(t *testing.T) {
	ref := func(name, key string) SecretKeyReference { return SecretKeyReference{Name: name, Key: key} }
	ca, pw, psk := ref("ca", "ca.crt"), ref("alice", "password"), ref("site", "psk")
	radius := func(secrets ...SecretKeyReference) *RADIUSSettings {
		r := &RADIUSSettings{}
		for _, s := range secrets {
			r.Servers = append(r.Servers, RADIUSServer{Name: s.Name, SecretRef: s})
		}
		return r
	}
	tests := []struct {
		name string
		obj  interface{ SecretRefs() []SecretKeyReference }
		want []SecretKeyReference
		// names are the Secrets' names as SecretNames gives them.
		names []string
	}{
		{"gateway without references", &VPNGateway{}, nil, []string{}},
		{"gateway's client CA", &VPNGateway{Spec: VPNGatewaySpec{ClientAuth: ClientAuth{ClientCA: &ca}}}, []SecretKeyReference{ca}, []string{"ca"}},
		{"gateway's client CA and RADIUS secrets, one Secret twice",
			&VPNGateway{Spec: VPNGatewaySpec{ClientAuth: ClientAuth{ClientCA: &ca, RADIUS: radius(ref("r", "a"), ref("r", "b"))}}},
			[]SecretKeyReference{ca, ref("r", "a"), ref("r", "b")}, []string{"ca", "r"}},
		{"user with a password", &VPNUser{Spec: VPNUserSpec{PasswordSecretRef: &pw}}, []SecretKeyReference{pw}, []string{"alice"}},
		{"user with a certificate", &VPNUser{Spec: VPNUserSpec{Certificate: &UserCertificate{}}}, nil, []string{}},
		{"tunnel with a PSK", &Tunnel{Spec: TunnelSpec{Auth: TunnelAuth{PSK: &PSKAuth{SecretRef: psk}}}}, []SecretKeyReference{psk}, []string{"site"}},
		{"tunnel with a peer CA", &Tunnel{Spec: TunnelSpec{Auth: TunnelAuth{Certificate: &CertificateAuth{PeerCARef: ca}}}}, []SecretKeyReference{ca}, []string{"ca"}},
		{"tunnel with both; the names come sorted",
			&Tunnel{Spec: TunnelSpec{Auth: TunnelAuth{PSK: &PSKAuth{SecretRef: psk}, Certificate: &CertificateAuth{PeerCARef: ca}}}},
			[]SecretKeyReference{psk, ca}, []string{"ca", "site"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.obj.SecretRefs()
			if !slices.Equal(got, tc.want) {
				t.Errorf("SecretRefs() = %v, want %v", got, tc.want)
			}
			if names := SecretNames(got); !slices.Equal(names, tc.names) {
				t.Errorf("SecretNames() = %v, want %v", names, tc.names)
			}
		})
	}
}

// Package gen builds the project's API objects for tests: one builder per
// kind that makes a small valid object, and modifiers that change it, in the
// manner of cert-manager's test/unit/gen. A test names only what it is about:
//
//	gen.Gateway(ns, "edge", gen.LoadBalancer, gen.WithReplicas(2))
//	gen.User(ns, "jimp", "jimp@example.com", gen.WithPassword("shared", "jimp"))
//
// Every member belongs to the gateway named Gateway unless a modifier says
// otherwise.
package gen

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// The names the builders use unless told otherwise: the seed scenario's.
const (
	Namespace   = "vpn"
	GatewayName = "vpn"
	// PasswordKey is the key of a user's password in its Secret.
	PasswordKey = "password"
	// PSKKey is the key of a tunnel's pre-shared key in its Secret.
	PSKKey = "psk"
)

func apply[T any](o T, mods []func(T)) T {
	for _, m := range mods {
		m(o)
	}
	return o
}

func meta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// Gateway is a VPNGateway answering as <name>.example.com, with nothing the
// API server would default set.
func Gateway(ns, name string, mods ...func(*v1alpha1.VPNGateway)) *v1alpha1.VPNGateway {
	return apply(&v1alpha1.VPNGateway{
		ObjectMeta: meta(ns, name),
		Spec:       v1alpha1.VPNGatewaySpec{Hostnames: []v1alpha1.Hostname{v1alpha1.Hostname(name + ".example.com")}},
	}, mods)
}

// Stored gives the object a UID and generation 1, as an object read back
// from an API server has.
func Stored[T interface {
	SetUID(types.UID)
	SetGeneration(int64)
	GetName() string
}](o T) {
	o.SetUID(types.UID("uid-" + o.GetName()))
	o.SetGeneration(1)
}

// WithAPIDefaults sets what the API server defaults on a gateway whose
// builder leaves it out: the certificate's key and lifetimes, one replica on
// the host network, the kernel data plane.
func WithAPIDefaults(gw *v1alpha1.VPNGateway) {
	gw.Spec.Certificate.PrivateKey = v1alpha1.PrivateKeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA, Size: 256}
	gw.Spec.Certificate.Duration = &metav1.Duration{Duration: 2160 * time.Hour}
	gw.Spec.Certificate.RenewBefore = &metav1.Duration{Duration: 360 * time.Hour}
	gw.Spec.Exposure.Type, gw.Spec.Exposure.Replicas = v1alpha1.ExposureHostNetwork, 1
	gw.Spec.Dataplane = v1alpha1.DataplaneKernel
}

// WithAddresses sets the addresses clients may dial.
func WithAddresses(addrs ...v1alpha1.IPAddress) func(*v1alpha1.VPNGateway) {
	return func(gw *v1alpha1.VPNGateway) { gw.Spec.Addresses = addrs }
}

// WithReplicas sets the number of gateway pods.
func WithReplicas(n int32) func(*v1alpha1.VPNGateway) {
	return func(gw *v1alpha1.VPNGateway) { gw.Spec.Exposure.Replicas = n }
}

// LoadBalancer exposes the gateway through a LoadBalancer Service.
func LoadBalancer(gw *v1alpha1.VPNGateway) { gw.Spec.Exposure.Type = v1alpha1.ExposureLoadBalancer }

// Userspace processes ESP in charon (kernel-libipsec).
func Userspace(gw *v1alpha1.VPNGateway) { gw.Spec.Dataplane = v1alpha1.DataplaneUserspace }

// WithIssuer has the server certificate issued by the named cert-manager
// Issuer.
func WithIssuer(name string) func(*v1alpha1.VPNGateway) {
	return func(gw *v1alpha1.VPNGateway) {
		gw.Spec.Certificate.IssuerRef = &v1alpha1.IssuerReference{Name: name, Kind: "Issuer"}
	}
}

// WithRADIUS authenticates clients with the servers (EAPRADIUS).
func WithRADIUS(servers ...v1alpha1.RADIUSServer) func(*v1alpha1.VPNGateway) {
	return func(gw *v1alpha1.VPNGateway) {
		gw.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPRADIUS, RADIUS: &v1alpha1.RADIUSSettings{Servers: servers}}
	}
}

// RADIUSServer is a RADIUS server whose shared secret is under key in the
// Secret named secret.
func RADIUSServer(name, address, secret, key string) v1alpha1.RADIUSServer {
	return v1alpha1.RADIUSServer{Name: name, Address: address, SecretRef: v1alpha1.SecretKeyReference{Name: secret, Key: key}}
}

// Pool is a full-tunnel MobilePool handing out addresses of ipv4.
func Pool(ns, name string, ipv4 v1alpha1.CIDR, mods ...func(*v1alpha1.MobilePool)) *v1alpha1.MobilePool {
	return apply(&v1alpha1.MobilePool{
		ObjectMeta: meta(ns, name),
		Spec: v1alpha1.MobilePoolSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: GatewayName},
			Addresses:  v1alpha1.PoolAddresses{IPv4: ipv4},
			FullTunnel: true,
		},
	}, mods)
}

// Selecting makes the pool serve the users labelled with labels.
func Selecting(labels map[string]string) func(*v1alpha1.MobilePool) {
	return func(p *v1alpha1.MobilePool) { p.Spec.UserSelector = &metav1.LabelSelector{MatchLabels: labels} }
}

// SplitTunnel routes only nets through the tunnel instead of everything.
func SplitTunnel(nets ...v1alpha1.CIDR) func(*v1alpha1.MobilePool) {
	return func(p *v1alpha1.MobilePool) { p.Spec.FullTunnel, p.Spec.LocalNetworks = false, nets }
}

// Allowing lets the pool's clients reach each network in to, any protocol
// and port.
func Allowing(to ...v1alpha1.CIDR) func(*v1alpha1.MobilePool) {
	return func(p *v1alpha1.MobilePool) {
		for _, n := range to {
			p.Spec.Firewall.Allow = append(p.Spec.Firewall.Allow, v1alpha1.AllowRule{To: n})
		}
	}
}

// WithESPPreset sets the pool's ESP proposals (and no PFS).
func WithESPPreset(preset v1alpha1.ProposalPreset) func(*v1alpha1.MobilePool) {
	return func(p *v1alpha1.MobilePool) {
		p.Spec.ESP.Preset, p.Spec.ESP.PFSGroup = preset, v1alpha1.PFSNone
	}
}

// User is a VPNUser logging in as identity with the password under
// PasswordKey in the Secret of its own name.
func User(ns, name string, identity v1alpha1.Identity, mods ...func(*v1alpha1.VPNUser)) *v1alpha1.VPNUser {
	return apply(&v1alpha1.VPNUser{
		ObjectMeta: meta(ns, name),
		Spec: v1alpha1.VPNUserSpec{
			GatewayRef:        v1alpha1.GatewayReference{Name: GatewayName},
			Identity:          identity,
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: name, Key: PasswordKey},
		},
	}, mods)
}

// WithPassword takes the user's password from key of the Secret named secret.
func WithPassword(secret, key string) func(*v1alpha1.VPNUser) {
	return func(u *v1alpha1.VPNUser) {
		u.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: secret, Key: key}
	}
}

// WithLabels sets the user's labels, which pools select users by.
func WithLabels(labels map[string]string) func(*v1alpha1.VPNUser) {
	return func(u *v1alpha1.VPNUser) { u.Labels = labels }
}

// OfGateway makes the user a member of another gateway.
func OfGateway(gateway string) func(*v1alpha1.VPNUser) {
	return func(u *v1alpha1.VPNUser) { u.Spec.GatewayRef.Name = gateway }
}

// Tunnel is a site-to-site Tunnel to 203.0.113.20 authenticated by the
// pre-shared key under PSKKey in the Secret <name>-psk, with one child
// joining 10.3.0.0/24 and 10.20.0.0/16.
func Tunnel(ns, name string, mods ...func(*v1alpha1.Tunnel)) *v1alpha1.Tunnel {
	return apply(&v1alpha1.Tunnel{
		ObjectMeta: meta(ns, name),
		Spec: v1alpha1.TunnelSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: GatewayName},
			Remote:     v1alpha1.TunnelRemote{Addresses: []string{"203.0.113.20"}, Identity: "branch.example.net"},
			Auth:       v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: name + "-psk", Key: PSKKey}}},
			Children: []v1alpha1.TunnelChild{{
				Name:           "lan",
				LocalNetworks:  []v1alpha1.CIDR{"10.3.0.0/24"},
				RemoteNetworks: []v1alpha1.CIDR{"10.20.0.0/16"},
			}},
		},
	}, mods)
}

// Secret is a Secret holding data.
func Secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: meta(ns, name), Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// TLSSecret is the Secret cert-manager writes for an issued certificate.
func TLSSecret(ns, name string, certPEM, keyPEM, caPEM []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: meta(ns, name),
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, "ca.crt": caPEM},
	}
}

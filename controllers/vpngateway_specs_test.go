package controllers

import (
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// gateway is the seed's VPNGateway as the API server stores it, with modifiers.
func gateway(mods ...func(*v1alpha1.VPNGateway)) *v1alpha1.VPNGateway {
	gw := gen.Gateway(gen.Namespace, gen.GatewayName, gen.Stored, gen.WithAPIDefaults, gen.WithAddresses("198.51.100.10"))
	for _, m := range mods {
		m(gw)
	}
	return gw
}

func TestServerCertificate(t *testing.T) {
	ours := cmmeta.IssuerReference{Name: "vpn-ca", Kind: "Issuer", Group: "cert-manager.io"}
	tests := []struct {
		name  string
		gw    *v1alpha1.VPNGateway
		check func(cmv1.CertificateSpec) cmv1.CertificateSpec
	}{
		{
			name: "seed",
			gw:   gateway(),
			check: func(s cmv1.CertificateSpec) cmv1.CertificateSpec {
				return cmv1.CertificateSpec{
					CommonName: "vpn.example.com", DNSNames: []string{"vpn.example.com"}, IPAddresses: []string{"198.51.100.10"},
					SecretName: "vpn-server-tls", Duration: &metav1.Duration{Duration: 2160 * time.Hour}, RenewBefore: &metav1.Duration{Duration: 360 * time.Hour},
					PrivateKey: &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmv1.RotationPolicyAlways},
					Usages:     []cmv1.KeyUsage{cmv1.UsageServerAuth, cmv1.UsageDigitalSignature},
					IssuerRef:  ours, SecretTemplate: s.SecretTemplate,
				}
			},
		},
		{
			name: "RSA, several names, external ClusterIssuer",
			gw: gateway(func(g *v1alpha1.VPNGateway) {
				g.Spec.Hostnames = append(g.Spec.Hostnames, "vpn.example.org")
				g.Spec.Addresses = append(g.Spec.Addresses, "2001:db8::10")
				g.Spec.Certificate.PrivateKey = v1alpha1.PrivateKeySpec{Algorithm: "RSA"}
				g.Spec.Certificate.IssuerRef = &v1alpha1.IssuerReference{Name: "corp", Kind: "ClusterIssuer"}
			}),
			check: func(s cmv1.CertificateSpec) cmv1.CertificateSpec {
				return cmv1.CertificateSpec{
					CommonName: "vpn.example.com", DNSNames: []string{"vpn.example.com", "vpn.example.org"}, IPAddresses: []string{"198.51.100.10", "2001:db8::10"},
					SecretName: "vpn-server-tls", Duration: &metav1.Duration{Duration: 2160 * time.Hour}, RenewBefore: &metav1.Duration{Duration: 360 * time.Hour},
					PrivateKey: &cmv1.CertificatePrivateKey{Algorithm: cmv1.RSAKeyAlgorithm, Size: 3072, RotationPolicy: cmv1.RotationPolicyAlways},
					Usages:     []cmv1.KeyUsage{cmv1.UsageServerAuth, cmv1.UsageDigitalSignature, cmv1.UsageKeyEncipherment},
					IssuerRef:  cmmeta.IssuerReference{Name: "corp", Kind: "ClusterIssuer", Group: "cert-manager.io"}, SecretTemplate: s.SecretTemplate,
				}
			},
		},
		{
			name: "Ed25519",
			gw: gateway(func(g *v1alpha1.VPNGateway) {
				g.Spec.Certificate.PrivateKey = v1alpha1.PrivateKeySpec{Algorithm: "Ed25519"}
			}),
			check: func(s cmv1.CertificateSpec) cmv1.CertificateSpec {
				w := s
				w.PrivateKey = &cmv1.CertificatePrivateKey{Algorithm: cmv1.Ed25519KeyAlgorithm, RotationPolicy: cmv1.RotationPolicyAlways}
				return w
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := serverCertificate(tc.gw)
			if diff := cmp.Diff(tc.check(got.Spec), got.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if got.Spec.SecretTemplate == nil || got.Spec.SecretTemplate.Labels[v1alpha1.LabelGateway] != "vpn" {
				t.Errorf("issued Secret is not labelled with its gateway: %+v", got.Spec.SecretTemplate)
			}
			if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "uid-vpn" || !*got.OwnerReferences[0].Controller {
				t.Errorf("owner references %+v", got.OwnerReferences)
			}
		})
	}
}

func TestCABootstrap(t *testing.T) {
	self, ca, issuer := caBootstrap(gateway())
	if self.Name != "vpn-selfsigned" || self.Spec.SelfSigned == nil {
		t.Errorf("self-signed issuer %s %+v", self.Name, self.Spec)
	}
	if !ca.Spec.IsCA || ca.Spec.SecretName != "vpn-ca" || ca.Spec.IssuerRef.Name != "vpn-selfsigned" {
		t.Errorf("CA certificate %+v", ca.Spec)
	}
	if issuer.Name != "vpn-ca" || issuer.Spec.CA == nil || issuer.Spec.CA.SecretName != "vpn-ca" {
		t.Errorf("CA issuer %+v", issuer.Spec)
	}
	if got := issuerRef(gateway()); got.Name != issuer.Name {
		t.Errorf("server certificate issuer %q, want the CA issuer %q", got.Name, issuer.Name)
	}
}

func TestStatefulSet(t *testing.T) {
	images := Images{Charon: "charon:1", Agent: "agent:1", PullPolicy: corev1.PullAlways}
	tests := []struct {
		name         string
		gw           *v1alpha1.VPNGateway
		nodeSelector map[string]string
		// want checks the parts a table row cares about.
		hostNetwork bool
		hostPort    int32
		tun         bool
		replicas    int32
	}{
		{name: "host network", gw: gateway(), nodeSelector: map[string]string{"edge": "true"}, hostNetwork: true, hostPort: 500, replicas: 1},
		{name: "load balancer, userspace, three replicas", gw: gateway(func(g *v1alpha1.VPNGateway) {
			g.Spec.Exposure = v1alpha1.Exposure{Type: v1alpha1.ExposureLoadBalancer, Replicas: 3}
			g.Spec.Dataplane = v1alpha1.DataplaneUserspace
		}), tun: true, replicas: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := charonConfigMap(tc.gw)
			if err != nil {
				t.Fatal(err)
			}
			sts := statefulSet(tc.gw, images, tc.nodeSelector, conf)
			p := sts.Spec.Template.Spec
			if p.HostNetwork != tc.hostNetwork || *sts.Spec.Replicas != tc.replicas {
				t.Errorf("hostNetwork %v replicas %d", p.HostNetwork, *sts.Spec.Replicas)
			}
			if diff := cmp.Diff(tc.nodeSelector, p.NodeSelector); diff != "" {
				t.Errorf("node selector (-want +got):\n%s", diff)
			}
			charon, agent := p.Containers[0], p.Containers[1]
			if charon.Image != "charon:1" || agent.Image != "agent:1" || charon.ImagePullPolicy != corev1.PullAlways || agent.ImagePullPolicy != corev1.PullAlways {
				t.Errorf("images %s %s, pull policies %s %s", charon.Image, agent.Image, charon.ImagePullPolicy, agent.ImagePullPolicy)
			}
			if charon.Ports[0].HostPort != tc.hostPort {
				t.Errorf("IKE host port %d, want %d", charon.Ports[0].HostPort, tc.hostPort)
			}
			// Both share group 65532 (the pod's fsGroup, charon's primary
			// group, so its sockets get it); the agent runs as non-root.
			wantPodSC := &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				FSGroup:        ptr.To[int64](65532),
			}
			if diff := cmp.Diff(wantPodSC, p.SecurityContext); diff != "" {
				t.Errorf("pod security context (-want +got):\n%s", diff)
			}
			wantCharonSC := &corev1.SecurityContext{
				Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				RunAsUser:      ptr.To[int64](0), RunAsGroup: ptr.To[int64](65532),
			}
			if diff := cmp.Diff(wantCharonSC, charon.SecurityContext); diff != "" {
				t.Errorf("charon security context (-want +got):\n%s", diff)
			}
			wantAgentSC := &corev1.SecurityContext{
				Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				RunAsUser:      ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), RunAsNonRoot: ptr.To(true),
			}
			if diff := cmp.Diff(wantAgentSC, agent.SecurityContext); diff != "" {
				t.Errorf("agent security context (-want +got):\n%s", diff)
			}
			// On the host network the agent's endpoints would be open on
			// every address of the node: it listens, and is probed, on the
			// loopback address only.
			listenHost := ""
			if tc.hostNetwork {
				listenHost = "127.0.0.1"
			}
			wantProbe := &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8081), Host: listenHost}},
				PeriodSeconds: 5, FailureThreshold: 2,
			}
			if diff := cmp.Diff(wantProbe, agent.ReadinessProbe); diff != "" {
				t.Errorf("agent readiness probe (-want +got):\n%s", diff)
			}
			if charon.ReadinessProbe != nil {
				t.Error("readiness must come from the agent only")
			}
			if *p.AutomountServiceAccountToken {
				t.Error("charon must not get a service account token")
			}
			var agentMounts []string
			for _, m := range agent.VolumeMounts {
				agentMounts = append(agentMounts, m.MountPath)
			}
			if diff := cmp.Diff([]string{"/run/ikegate", "/etc/ikegate/certs", "/var/run/secrets/kubernetes.io/serviceaccount"}, agentMounts); diff != "" {
				t.Errorf("agent mounts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"--vici-socket=/run/ikegate/charon.vici", "--health-addr=" + listenHost + ":8081", "--metrics-addr=" + listenHost + ":9090", "--certificate-secret=vpn-server-tls", "--error-notify-socket=/run/ikegate/charon.enfy"}, agent.Args); diff != "" {
				t.Errorf("agent args (-want +got):\n%s", diff)
			}
			var env []string
			for _, e := range agent.Env {
				env = append(env, e.Name)
			}
			if diff := cmp.Diff([]string{"POD_NAME", "POD_NAMESPACE", "GATEWAY_NAME", "NODE_ADDRESS"}, env); diff != "" {
				t.Errorf("agent env (-want +got):\n%s", diff)
			}
			hasTUN := false
			for _, m := range charon.VolumeMounts {
				hasTUN = hasTUN || m.MountPath == "/dev/net/tun"
			}
			if hasTUN != tc.tun {
				t.Errorf("TUN device mounted %v, want %v", hasTUN, tc.tun)
			}
			if charonSettings(tc.gw).UserspaceDataPlane != tc.tun {
				t.Errorf("userspace data plane %v, want %v", !tc.tun, tc.tun)
			}
			if conf.Data["strongswan.conf"] != swan.RenderStrongswanConf(charonSettings(tc.gw)) {
				t.Error("ConfigMap does not hold the rendered settings")
			}
			// The agent reads charon's alerts from the volume both share.
			if !strings.Contains(conf.Data["strongswan.conf"], "socket = unix:///run/ikegate/charon.enfy") {
				t.Errorf("strongswan.conf has no error-notify socket in the shared volume:\n%s", conf.Data["strongswan.conf"])
			}
			if sts.Spec.Template.Annotations[annotationConfHash] != confHash(conf) {
				t.Error("pod template does not carry the strongswan.conf hash")
			}
		})
	}
}

func TestConfHashFollowsSettings(t *testing.T) {
	a, _ := charonConfigMap(gateway())
	b, _ := charonConfigMap(gateway(func(g *v1alpha1.VPNGateway) { g.Spec.Logging.Child = "Diagnostic" }))
	c, _ := charonConfigMap(gateway(func(g *v1alpha1.VPNGateway) { g.Spec.Hostnames = append(g.Spec.Hostnames, "x.example.com") }))
	if confHash(a) == confHash(b) {
		t.Error("a log level change must restart charon")
	}
	if confHash(a) != confHash(c) {
		t.Error("a hostname change must not restart charon (the agent loads it over VICI)")
	}
	if !strings.Contains(b.Data["strongswan.conf"], "chd = 3") {
		t.Errorf("Diagnostic is not level 3:\n%s", b.Data["strongswan.conf"])
	}
}

func TestLoadBalancerService(t *testing.T) {
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.Exposure = v1alpha1.Exposure{Type: v1alpha1.ExposureLoadBalancer, LoadBalancer: &v1alpha1.LoadBalancerSettings{
			Annotations: map[string]string{"lb.example.com/x": "y"}, LoadBalancerClass: ptr.To("example.com/lb"),
		}}
	})
	got := loadBalancerService(gw).Spec
	want := corev1.ServiceSpec{
		Type:     corev1.ServiceTypeLoadBalancer,
		Selector: podLabels("vpn"),
		Ports: []corev1.ServicePort{
			{Name: "ike", Port: 500, TargetPort: intstr.FromInt32(500), Protocol: corev1.ProtocolUDP},
			{Name: "ike-natt", Port: 4500, TargetPort: intstr.FromInt32(4500), Protocol: corev1.ProtocolUDP},
		},
		ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		SessionAffinity:       corev1.ServiceAffinityClientIP,
		LoadBalancerClass:     ptr.To("example.com/lb"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service spec (-want +got):\n%s", diff)
	}
}

func TestAgentRBAC(t *testing.T) {
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.ClientAuth.RADIUS = &v1alpha1.RADIUSSettings{Servers: []v1alpha1.RADIUSServer{{Name: "r", Address: "10.0.0.2", SecretRef: v1alpha1.SecretKeyReference{Name: "radius", Key: "secret"}}}}
	})
	users := []v1alpha1.VPNUser{
		{Spec: v1alpha1.VPNUserSpec{GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}, PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "bob", Key: "password"}}},
		{Spec: v1alpha1.VPNUserSpec{GatewayRef: v1alpha1.GatewayReference{Name: "other"}, PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "eve", Key: "password"}}},
		{Spec: v1alpha1.VPNUserSpec{GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}, PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "bob", Key: "nthash"}}},
	}
	tunnels := []v1alpha1.Tunnel{{Spec: v1alpha1.TunnelSpec{GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}, Auth: v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "site-b", Key: "psk"}}}}}}
	secrets := referencedSecrets(gw, users, tunnels)
	if diff := cmp.Diff([]string{"bob", "radius", "site-b", "vpn-server-tls"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	sa, role, rb := agentRBAC(gw)
	read := []string{"get", "list", "watch"}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"ikegate.io"}, Resources: []string{"vpngateways"}, ResourceNames: []string{"vpn"}, Verbs: read},
		{APIGroups: []string{"ikegate.io"}, Resources: []string{"vpngateways/status"}, ResourceNames: []string{"vpn"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"ikegate.io"}, Resources: []string{"mobilepools", "vpnusers", "tunnels"}, Verbs: read},
		{APIGroups: []string{"ikegate.io"}, Resources: []string{"mobilepools/status", "vpnusers/status", "tunnels/status"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{
			"vpn-agent-credentials-0", "vpn-agent-credentials-1", "vpn-agent-credentials-2", "vpn-agent-credentials-3",
			"vpn-agent-credentials-4", "vpn-agent-credentials-5", "vpn-agent-credentials-6", "vpn-agent-credentials-7",
			"vpn-agent-credentials-8", "vpn-agent-credentials-9", "vpn-agent-credentials-10", "vpn-agent-credentials-11",
			"vpn-agent-credentials-12", "vpn-agent-credentials-13", "vpn-agent-credentials-14", "vpn-agent-credentials-15",
			"vpn-agent-credentials-0-recent", "vpn-agent-credentials-1-recent", "vpn-agent-credentials-2-recent", "vpn-agent-credentials-3-recent",
			"vpn-agent-credentials-4-recent", "vpn-agent-credentials-5-recent", "vpn-agent-credentials-6-recent", "vpn-agent-credentials-7-recent",
			"vpn-agent-credentials-8-recent", "vpn-agent-credentials-9-recent", "vpn-agent-credentials-10-recent", "vpn-agent-credentials-11-recent",
			"vpn-agent-credentials-12-recent", "vpn-agent-credentials-13-recent", "vpn-agent-credentials-14-recent", "vpn-agent-credentials-15-recent",
			"vpn-server-tls",
		}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"vpn-tunnels"}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
	}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if rb.RoleRef.Name != role.Name || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != "vpn" {
		t.Errorf("binding %+v", rb)
	}
}

func TestCharonSettingsRADIUS(t *testing.T) {
	local := &swan.EAPRADIUS{ServersInclude: "/run/ikegate/radius/*.conf", ClassGroup: true}
	if diff := cmp.Diff(local, charonSettings(gateway()).EAPRADIUS); diff != "" {
		t.Errorf("EAP-MSCHAPv2 gateway: eap-radius for the agent's server (-want +got):\n%s", diff)
	}
	if s := charonSettings(gateway(func(g *v1alpha1.VPNGateway) { g.Spec.ClientAuth.Method = v1alpha1.ClientAuthEAPTLS })); s.EAPRADIUS != nil {
		t.Errorf("EAP-TLS gateway configures eap-radius: %+v", s.EAPRADIUS)
	}
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Spec.ClientAuth = v1alpha1.ClientAuth{Method: v1alpha1.ClientAuthEAPRADIUS, RADIUS: &v1alpha1.RADIUSSettings{
			Accounting: true,
			Servers:    []v1alpha1.RADIUSServer{{Name: "nps", Address: "10.3.0.5", SecretRef: v1alpha1.SecretKeyReference{Name: "nps", Key: "secret"}}},
		}}
	})
	want := &swan.EAPRADIUS{Accounting: true, ServersInclude: "/run/ikegate/radius/*.conf"}
	if diff := cmp.Diff(want, charonSettings(gw).EAPRADIUS); diff != "" {
		t.Errorf("eap-radius (-want +got):\n%s", diff)
	}
	conf, err := charonConfigMap(gw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf.Data["strongswan.conf"], "include /run/ikegate/radius/*.conf") || strings.Contains(conf.Data["strongswan.conf"], "10.3.0.5") {
		t.Errorf("strongswan.conf must include the agent's servers file and hold no server:\n%s", conf.Data["strongswan.conf"])
	}
}

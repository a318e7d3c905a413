package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
)

// Default images of the gateway pods; the manager's flags and
// spec.images override them.
const (
	DefaultCharonImage = "ghcr.io/ikegate/charon:v0.1.0"
	DefaultAgentImage  = "ghcr.io/ikegate/agent:v0.1.0"
)

// Images are the images the manager uses when a gateway names none.
type Images struct {
	Charon string
	Agent  string
}

// Container, volume and port names of the gateway pod.
const (
	charonContainer = "charon"
	agentContainer  = "agent"
	volVICI         = "vici"
	volRun          = "run"
	volCharonConf   = "charon-conf"
	volCerts        = "certs"
	volTUN          = "dev-tun"
	volAPIAccess    = "kube-api-access"
	portIKE         = 500
	portNATT        = 4500
	tunDevice       = "/dev/net/tun"
	saTokenDir      = "/var/run/secrets/kubernetes.io/serviceaccount"

	// annotationConfHash on the pod template restarts the pods when
	// strongswan.conf changes: charon reads it only at start. Everything else
	// (connections, secrets, the certificate) the agent loads over VICI
	// without a restart.
	annotationConfHash = "ikegate.io/strongswan-conf-hash"
)

// gatewayNames are the names of everything made for one gateway, derived
// from its name only, so cleanup finds them without reading any status.
type gatewayNames struct {
	SelfSignedIssuer string
	CA               string // CA Certificate, its Secret and the CA Issuer
	Server           string // server Certificate
	ServerSecret     string
	CAConfigMap      string
	CharonConfigMap  string
	Workload         string // StatefulSet, Service, pod name prefix
	Agent            string // ServiceAccount, Role, RoleBinding
}

func namesFor(gw string) gatewayNames {
	return gatewayNames{
		SelfSignedIssuer: gw + "-selfsigned",
		CA:               gw + "-ca",
		Server:           gw + "-server",
		ServerSecret:     credentials.ServerTLSSecretName(gw),
		CAConfigMap:      gw + "-ca-bundle",
		CharonConfigMap:  gw + "-charon",
		Workload:         gw + "-gateway",
		Agent:            gw + "-agent",
	}
}

// podNames are the pods the StatefulSet runs: ordinal 0..replicas-1.
func podNames(gw *v1alpha1.VPNGateway) []string {
	n := replicas(gw)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", namesFor(gw.Name).Workload, i)
	}
	return out
}

func replicas(gw *v1alpha1.VPNGateway) int32 {
	if gw.Spec.Exposure.Replicas < 1 {
		return 1
	}
	return gw.Spec.Exposure.Replicas
}

// commonLabels mark every object made for a gateway; the manager's cache
// only holds labelled objects of those kinds.
func commonLabels(gw string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by": "ikegate",
		v1alpha1.LabelGateway:          gw,
	}
}

func podLabels(gw string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "ikegate-gateway",
		"app.kubernetes.io/instance": gw,
		v1alpha1.LabelGateway:        gw,
	}
}

func objectMeta(gw *v1alpha1.VPNGateway, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: gw.Namespace,
		Labels:    commonLabels(gw.Name),
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion:         v1alpha1.GroupVersion.String(),
			Kind:               "VPNGateway",
			Name:               gw.Name,
			UID:                gw.UID,
			Controller:         ptr.To(true),
			BlockOwnerDeletion: ptr.To(true),
		}},
	}
}

// issuerRef is the issuer of the server certificate: the spec's, or the
// gateway's own CA Issuer.
func issuerRef(gw *v1alpha1.VPNGateway) cmmeta.IssuerReference {
	if r := gw.Spec.Certificate.IssuerRef; r != nil {
		kind, group := r.Kind, r.Group
		if kind == "" {
			kind = cmv1.IssuerKind
		}
		if group == "" {
			group = "cert-manager.io"
		}
		return cmmeta.IssuerReference{Name: r.Name, Kind: kind, Group: group}
	}
	return cmmeta.IssuerReference{Name: namesFor(gw.Name).CA, Kind: cmv1.IssuerKind, Group: "cert-manager.io"}
}

// caBootstrap is the per-gateway CA used when the spec names no issuer:
// a self-signed Issuer signs a CA Certificate whose Secret backs a CA Issuer.
func caBootstrap(gw *v1alpha1.VPNGateway) (selfSigned *cmv1.Issuer, ca *cmv1.Certificate, caIssuer *cmv1.Issuer) {
	n := namesFor(gw.Name)
	selfSigned = &cmv1.Issuer{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.IssuerKind},
		ObjectMeta: objectMeta(gw, n.SelfSignedIssuer),
		Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}},
	}
	ca = &cmv1.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.CertificateKind},
		ObjectMeta: objectMeta(gw, n.CA),
		Spec: cmv1.CertificateSpec{
			IsCA:       true,
			CommonName: fmt.Sprintf("%s VPN CA", gw.Spec.Hostnames[0]),
			SecretName: n.CA,
			// A CA outlives many server certificates; clients install it once.
			Duration:    &metav1.Duration{Duration: 10 * 365 * 24 * time.Hour},
			RenewBefore: &metav1.Duration{Duration: 365 * 24 * time.Hour},
			PrivateKey: &cmv1.CertificatePrivateKey{
				Algorithm:      cmv1.ECDSAKeyAlgorithm,
				Size:           384,
				RotationPolicy: cmv1.RotationPolicyNever,
			},
			Usages:    []cmv1.KeyUsage{cmv1.UsageCertSign, cmv1.UsageCRLSign, cmv1.UsageDigitalSignature},
			IssuerRef: cmmeta.IssuerReference{Name: n.SelfSignedIssuer, Kind: cmv1.IssuerKind, Group: "cert-manager.io"},
			SecretTemplate: &cmv1.CertificateSecretTemplate{
				Labels: commonLabels(gw.Name),
			},
		},
	}
	caIssuer = &cmv1.Issuer{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.IssuerKind},
		ObjectMeta: objectMeta(gw, n.CA),
		Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{CA: &cmv1.CAIssuer{SecretName: n.CA}}},
	}
	return selfSigned, ca, caIssuer
}

// serverCertificate is the gateway's IKE certificate: CN and first DNS SAN
// hostnames[0] (the identity clients are configured with), every hostname
// and address as SANs, serverAuth as Windows and macOS clients demand.
func serverCertificate(gw *v1alpha1.VPNGateway) *cmv1.Certificate {
	n := namesFor(gw.Name)
	spec := gw.Spec.Certificate
	dns := make([]string, len(gw.Spec.Hostnames))
	for i, h := range gw.Spec.Hostnames {
		dns[i] = string(h)
	}
	ips := make([]string, len(gw.Spec.Addresses))
	for i, a := range gw.Spec.Addresses {
		ips[i] = string(a)
	}
	c := &cmv1.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.CertificateKind},
		ObjectMeta: objectMeta(gw, n.Server),
		Spec: cmv1.CertificateSpec{
			CommonName:  dns[0],
			DNSNames:    dns,
			IPAddresses: ips,
			SecretName:  n.ServerSecret,
			Duration:    spec.Duration,
			RenewBefore: spec.RenewBefore,
			PrivateKey:  certPrivateKey(spec.PrivateKey),
			Usages:      []cmv1.KeyUsage{cmv1.UsageServerAuth, cmv1.UsageDigitalSignature},
			IssuerRef:   issuerRef(gw),
			SecretTemplate: &cmv1.CertificateSecretTemplate{
				Labels: commonLabels(gw.Name),
			},
		},
	}
	if spec.PrivateKey.Algorithm == v1alpha1.KeyAlgorithm("RSA") {
		// RSA signatures in IKE_AUTH use the key itself; TLS-style key
		// encipherment is what older Windows clients check for.
		c.Spec.Usages = append(c.Spec.Usages, cmv1.UsageKeyEncipherment)
	}
	return c
}

func certPrivateKey(k v1alpha1.PrivateKeySpec) *cmv1.CertificatePrivateKey {
	pk := &cmv1.CertificatePrivateKey{RotationPolicy: cmv1.RotationPolicyAlways}
	switch k.Algorithm {
	case "RSA":
		pk.Algorithm, pk.Size = cmv1.RSAKeyAlgorithm, int(k.Size)
		if pk.Size == 0 {
			pk.Size = 3072
		}
	case "Ed25519":
		pk.Algorithm = cmv1.Ed25519KeyAlgorithm
	default:
		pk.Algorithm, pk.Size = cmv1.ECDSAKeyAlgorithm, int(k.Size)
		if pk.Size == 0 {
			pk.Size = 256
		}
	}
	return pk
}

// caConfigMap publishes the CA bundle clients must trust.
func caConfigMap(gw *v1alpha1.VPNGateway, caPEM []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(gw, namesFor(gw.Name).CAConfigMap),
		Data:       map[string]string{"ca.crt": string(caPEM)},
	}
}

var logLevels = map[v1alpha1.LogLevel]int{
	"Silent": swan.LogSilent, "Basic": swan.LogAudit, "Audit": 1, "Control": 2, "Diagnostic": 3,
}

// charonSettings are charon's settings for a gateway pod.
func charonSettings(gw *v1alpha1.VPNGateway) swan.Settings {
	l := gw.Spec.Logging
	levels := map[string]int{}
	for sub, lv := range map[string]v1alpha1.LogLevel{
		"default": l.Default, "dmn": l.Daemon, "mgr": l.Manager, "ike": l.IKE, "chd": l.Child,
		"job": l.Job, "cfg": l.Config, "knl": l.Kernel, "net": l.Network, "asn": l.ASN,
		"enc": l.Encoding, "tls": l.TLS, "esp": l.ESP, "lib": l.Library,
	} {
		if v, ok := logLevels[lv]; ok {
			levels[sub] = v
		}
	}
	if len(levels) == 0 {
		levels = nil
	}
	var radius *swan.EAPRADIUS
	if ca := gw.Spec.ClientAuth; ca.Method == v1alpha1.ClientAuthEAPRADIUS && ca.RADIUS != nil {
		// The servers and their secrets are not in the ConfigMap: the agent
		// writes them into the shared directory this include points at.
		radius = &swan.EAPRADIUS{Accounting: ca.RADIUS.Accounting, ServersInclude: v1alpha1.RADIUSServersInclude}
	}
	return swan.Settings{
		EAPRADIUS:          radius,
		Daemon:             "charon",
		VICISocket:         v1alpha1.VICISocketURI,
		UserspaceDataPlane: gw.Spec.Dataplane == v1alpha1.DataplaneUserspace,
		// Plugins that want facilities a container does not give: HA
		// clustering needs its own segments, resolve would rewrite the pod's
		// resolv.conf, forecast and connmark need iptables.
		DisablePlugins:     []string{"ha", "resolve", "forecast", "connmark", "farp", "dhcp"},
		Log:                swan.Logging{Levels: levels, Stderr: true},
		IKESATableSize:     1024,
		IKESATableSegments: 16,
	}
}

// charonConfigMap holds strongswan.conf for the gateway pods.
func charonConfigMap(gw *v1alpha1.VPNGateway) (*corev1.ConfigMap, error) {
	s := charonSettings(gw)
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("charon settings: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(gw, namesFor(gw.Name).CharonConfigMap),
		Data:       map[string]string{v1alpha1.StrongswanConfKey: swan.RenderStrongswanConf(s)},
	}, nil
}

func confHash(cm *corev1.ConfigMap) string {
	sum := sha256.Sum256([]byte(cm.Data[v1alpha1.StrongswanConfKey]))
	return hex.EncodeToString(sum[:8])
}

// restrictedContext is what both containers run with: no privilege
// escalation, read-only root, RuntimeDefault seccomp, and of all
// capabilities only those listed.
func restrictedContext(caps ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged:               ptr.To(false),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// statefulSet runs the gateway pods. charon needs NET_ADMIN (XFRM states
// and policies, routes, the TUN device of the userspace data plane, and the
// per-socket IPsec bypass policies of its IKE sockets) and NET_BIND_SERVICE
// (UDP 500 is privileged); it needs no raw sockets since the farp and dhcp
// plugins are not loaded. The agent needs NET_ADMIN for the nftables table
// and nothing else; it reaches charon through the shared VICI socket.
func statefulSet(gw *v1alpha1.VPNGateway, images Images, charonConf *corev1.ConfigMap) *appsv1.StatefulSet {
	n := namesFor(gw.Name)
	hostNet := gw.Spec.Exposure.Type != v1alpha1.ExposureLoadBalancer
	charonImage, agentImage := images.Charon, images.Agent
	if gw.Spec.Images.Charon != "" {
		charonImage = gw.Spec.Images.Charon
	}
	if gw.Spec.Images.Agent != "" {
		agentImage = gw.Spec.Images.Agent
	}

	ports := []corev1.ContainerPort{
		{Name: "ike", ContainerPort: portIKE, Protocol: corev1.ProtocolUDP},
		{Name: "ike-natt", ContainerPort: portNATT, Protocol: corev1.ProtocolUDP},
	}
	if hostNet {
		// Declaring the host ports makes the scheduler keep two gateway pods
		// (of this or another gateway) off the same node.
		for i := range ports {
			ports[i].HostPort = ports[i].ContainerPort
		}
	}

	charonMounts := []corev1.VolumeMount{
		{Name: volRun, MountPath: "/run"},
		{Name: volVICI, MountPath: v1alpha1.VICISocketDir},
		{Name: volCharonConf, MountPath: v1alpha1.CharonConfDir, ReadOnly: true},
	}
	volumes := []corev1.Volume{
		{Name: volRun, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: volVICI, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: volCharonConf, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: n.CharonConfigMap},
		}}},
		{Name: volCerts, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: n.ServerSecret, DefaultMode: ptr.To[int32](0o400),
		}}},
		{Name: volAPIAccess, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To[int32](0o444),
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
					Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}}}},
			},
		}}},
	}
	if gw.Spec.Dataplane == v1alpha1.DataplaneUserspace {
		volumes = append(volumes, corev1.Volume{Name: volTUN, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: tunDevice, Type: ptr.To(corev1.HostPathCharDev),
		}}})
		charonMounts = append(charonMounts, corev1.VolumeMount{Name: volTUN, MountPath: tunDevice})
	}

	charon := corev1.Container{
		Name:            charonContainer,
		Image:           charonImage,
		ImagePullPolicy: gw.Spec.Images.PullPolicy,
		Command:         []string{"/usr/sbin/charon-systemd"},
		Env:             []corev1.EnvVar{{Name: "STRONGSWAN_CONF", Value: v1alpha1.CharonConfDir + "/" + v1alpha1.StrongswanConfKey}},
		Ports:           ports,
		Resources:       gw.Spec.Resources.Charon,
		VolumeMounts:    charonMounts,
		SecurityContext: restrictedContext("NET_ADMIN", "NET_BIND_SERVICE"),
	}
	agent := corev1.Container{
		Name:            agentContainer,
		Image:           agentImage,
		ImagePullPolicy: gw.Spec.Images.PullPolicy,
		Args: []string{
			"--vici-socket=" + v1alpha1.VICISocketPath,
			fmt.Sprintf("--health-addr=:%d", v1alpha1.AgentReadinessPort),
			fmt.Sprintf("--metrics-addr=:%d", v1alpha1.AgentMetricsPort),
			"--certificate-secret=" + n.ServerSecret,
		},
		Env: []corev1.EnvVar{
			{Name: v1alpha1.EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: v1alpha1.EnvPodNamespace, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
			{Name: v1alpha1.EnvGatewayName, Value: gw.Name},
		},
		Ports: []corev1.ContainerPort{
			{Name: "readyz", ContainerPort: v1alpha1.AgentReadinessPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: v1alpha1.AgentMetricsPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: v1alpha1.AgentReadinessPath, Port: intstr.FromInt32(v1alpha1.AgentReadinessPort),
			}},
			PeriodSeconds:    5,
			FailureThreshold: 2,
		},
		Resources: gw.Spec.Resources.Agent,
		VolumeMounts: []corev1.VolumeMount{
			{Name: volVICI, MountPath: v1alpha1.VICISocketDir},
			{Name: volCerts, MountPath: v1alpha1.GatewayCertDir, ReadOnly: true},
			{Name: volAPIAccess, MountPath: saTokenDir, ReadOnly: true},
		},
		SecurityContext: restrictedContext("NET_ADMIN"),
	}
	if hostNet {
		agent.Ports = nil // host ports of the agent's endpoints are not published
	}

	pod := corev1.PodSpec{
		ServiceAccountName: n.Agent,
		// Only the agent talks to the API server; charon gets no token.
		AutomountServiceAccountToken: ptr.To(false),
		HostNetwork:                  hostNet,
		NodeSelector:                 gw.Spec.Exposure.NodeSelector,
		Tolerations:                  gw.Spec.Exposure.Tolerations,
		Containers:                   []corev1.Container{charon, agent},
		Volumes:                      volumes,
		// The agent removes the gateway's nftables table on shutdown and
		// charon deletes its SAs; both need a moment.
		TerminationGracePeriodSeconds: ptr.To[int64](30),
		SecurityContext: &corev1.PodSecurityContext{
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		EnableServiceLinks: ptr.To(false),
	}
	if hostNet {
		pod.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}

	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(gw, n.Workload),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas(gw)),
			ServiceName:         n.Workload,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: podLabels(gw.Name)},
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels(gw.Name),
					Annotations: map[string]string{annotationConfHash: confHash(charonConf)},
				},
				Spec: pod,
			},
		},
	}
}

// loadBalancerService exposes UDP 500 and 4500 of LoadBalancer gateways.
// Local traffic policy keeps the clients' source addresses, which IKE's NAT
// detection and per-client SAs depend on; ClientIP affinity keeps a client's
// IKE and NAT-T packets on the pod that holds its SA.
func loadBalancerService(gw *v1alpha1.VPNGateway) *corev1.Service {
	n := namesFor(gw.Name)
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(gw, n.Workload),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: podLabels(gw.Name),
			Ports: []corev1.ServicePort{
				{Name: "ike", Port: portIKE, TargetPort: intstr.FromInt32(portIKE), Protocol: corev1.ProtocolUDP},
				{Name: "ike-natt", Port: portNATT, TargetPort: intstr.FromInt32(portNATT), Protocol: corev1.ProtocolUDP},
			},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			SessionAffinity:       corev1.ServiceAffinityClientIP,
		},
	}
	if lb := gw.Spec.Exposure.LoadBalancer; lb != nil {
		svc.Annotations = lb.Annotations
		svc.Spec.LoadBalancerClass = lb.LoadBalancerClass
	}
	return svc
}

// referencedSecrets are the Secrets of the gateway's namespace the agent must
// read: its certificate and whatever the gateway and its members reference.
func referencedSecrets(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel) []string {
	set := map[string]struct{}{namesFor(gw.Name).ServerSecret: {}}
	for _, s := range gatewaySecretRefs(gw) {
		set[s] = struct{}{}
	}
	for i := range users {
		if users[i].Spec.GatewayRef.Name != gw.Name {
			continue
		}
		for _, s := range userSecretRefs(&users[i]) {
			set[s] = struct{}{}
		}
	}
	for i := range tunnels {
		if tunnels[i].Spec.GatewayRef.Name != gw.Name {
			continue
		}
		for _, s := range tunnelSecretRefs(&tunnels[i]) {
			set[s] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// agentRBAC is the least the agent needs: read its gateway, the gateway's
// members in the namespace (the API cannot filter them by gatewayRef) and
// a fixed set of Secrets by name: the credentials shards the manager derives
// from the Secrets the gateway's objects reference (NT hashes instead of
// passwords, see package credentials) and the server certificate's. It gets
// nothing cluster-wide, no write access to any spec or Secret, and no read
// of any other Secret: not the CA's key, not a password. A Role naming every
// user's Secret would change with every user, and a watch per Secret does
// not scale; a fixed number of derived Secrets does both.
func agentRBAC(gw *v1alpha1.VPNGateway) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	n := namesFor(gw.Name)
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(gw, n.Agent),
		// Tokens come from the projected volume of the agent container only.
		AutomountServiceAccountToken: ptr.To(false),
	}
	read := []string{"get", "list", "watch"}
	group := v1alpha1.GroupVersion.Group
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: objectMeta(gw, n.Agent),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{group}, Resources: []string{"vpngateways"}, ResourceNames: []string{gw.Name}, Verbs: read},
			{APIGroups: []string{group}, Resources: []string{"vpngateways/status"}, ResourceNames: []string{gw.Name}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{group}, Resources: []string{"mobilepools", "vpnusers", "tunnels"}, Verbs: read},
			{APIGroups: []string{group}, Resources: []string{"mobilepools/status", "vpnusers/status", "tunnels/status"}, Verbs: []string{"get", "patch"}},
			// The derived credentials and the server certificate only: not the
			// CA's key, not the Secrets the gateway's objects reference.
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: append(credentials.ShardNames(gw.Name), n.ServerSecret), Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	rb := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: objectMeta(gw, n.Agent),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: n.Agent},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: n.Agent, Namespace: gw.Namespace}},
	}
	return sa, role, rb
}

// Secret references of each kind; the field indexes and the agent's Role use them.

func gatewaySecretRefs(gw *v1alpha1.VPNGateway) []string {
	var out []string
	if ca := gw.Spec.ClientAuth.ClientCA; ca != nil {
		out = append(out, ca.Name)
	}
	if r := gw.Spec.ClientAuth.RADIUS; r != nil {
		for _, s := range r.Servers {
			out = append(out, s.SecretRef.Name)
		}
	}
	return dedupe(out)
}

func userSecretRefs(u *v1alpha1.VPNUser) []string {
	if r := u.Spec.PasswordSecretRef; r != nil {
		return []string{r.Name}
	}
	return nil
}

func tunnelSecretRefs(t *v1alpha1.Tunnel) []string {
	var out []string
	if p := t.Spec.Auth.PSK; p != nil {
		out = append(out, p.SecretRef.Name)
	}
	if c := t.Spec.Auth.Certificate; c != nil {
		out = append(out, c.PeerCARef.Name)
	}
	return dedupe(out)
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// Default images of the gateway pods; the manager's flags override them.
const (
	DefaultCharonImage = "ghcr.io/ikegate/charon:v0.1.0"
	DefaultAgentImage  = "ghcr.io/ikegate/agent:v0.1.0"
)

// Images are the images of every gateway's pods. They are the manager's
// settings, never a gateway's: they run with NET_ADMIN (charon as root),
// often on the host's network, so whoever may create a VPNGateway must not
// choose what runs there.
type Images struct {
	Charon string
	Agent  string
	// PullPolicy of both; empty leaves it to the API server's default.
	PullPolicy corev1.PullPolicy
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

	// gatewayGroup is the group the gateway pod's containers share (the
	// pod's fsGroup): the kubelet gives the shared volumes this group with
	// the setgid bit, so what one container makes there the other may read
	// through the group, and neither needs CAP_DAC_OVERRIDE.
	gatewayGroup = 65532
	// agentUser is the agent's user, distroless's "nonroot" (the agent
	// image's USER).
	agentUser = 65532

	// annotationConfHash on the pod template restarts the pods when
	// strongswan.conf changes: charon reads it only at start. Everything else
	// (connections, secrets, the certificate) the agent loads over VICI
	// without a restart.
	annotationConfHash = "ikegate.io/strongswan-conf-hash"
)

// statefulSet runs the gateway pods on the nodes nodeSelector selects;
// podSpec says what runs in them.
func statefulSet(gw *v1alpha1.VPNGateway, images Images, nodeSelector map[string]string, charonConf *corev1.ConfigMap) *appsv1.StatefulSet {
	n := namesFor(gw.Name)
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(gw, n.Workload),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(gw.Spec.EffectiveReplicas()),
			ServiceName:         n.Workload,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: podLabels(gw.Name)},
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels(gw.Name),
					Annotations: map[string]string{annotationConfHash: confHash(charonConf)},
				},
				Spec: podSpec(gw, images, nodeSelector),
			},
		},
	}
}

// podSpec is a gateway pod: charon and the agent, sharing the VICI socket
// directory, on the node's network unless a LoadBalancer exposes them.
func podSpec(gw *v1alpha1.VPNGateway, images Images, nodeSelector map[string]string) corev1.PodSpec {
	hostNet := gw.Spec.HostNetwork()
	pod := corev1.PodSpec{
		ServiceAccountName: namesFor(gw.Name).Agent,
		// Only the agent talks to the API server; charon gets no token.
		AutomountServiceAccountToken: ptr.To(false),
		HostNetwork:                  hostNet,
		NodeSelector:                 nodeSelector,
		Tolerations:                  gw.Spec.Exposure.Tolerations,
		Containers:                   []corev1.Container{charon(gw, images), agent(gw, images)},
		Volumes:                      podVolumes(gw),
		// The agent drains, then removes the gateway's nftables table on
		// shutdown and charon deletes its SAs; all need a moment.
		TerminationGracePeriodSeconds: ptr.To(drainGraceSeconds),
		Affinity:                      spreadReplicas(gw),
		SecurityContext: &corev1.PodSecurityContext{
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			FSGroup:        ptr.To[int64](gatewayGroup),
		},
		EnableServiceLinks: ptr.To(false),
	}
	if hostNet {
		pod.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	return pod
}

// charon needs NET_ADMIN (XFRM states and policies, routes, the TUN device
// of the userspace data plane, and the per-socket IPsec bypass policies of
// its IKE sockets) and NET_BIND_SERVICE (UDP 500 is privileged); it needs no
// raw sockets since the farp and dhcp plugins are not loaded.
//
// It runs as root with gatewayGroup as its primary group: without
// CAP_CHOWN, charon gives the sockets it creates (VICI, error-notify; mode
// 0770) its own primary group (strongSwan's stream_service_unix.c calls
// chown(path, -1, getegid())), which must therefore be the group the agent
// is in; and it reads the agent's RADIUS servers file through that group.
func charon(gw *v1alpha1.VPNGateway, images Images) corev1.Container {
	mounts := []corev1.VolumeMount{
		{Name: volRun, MountPath: "/run"},
		{Name: volVICI, MountPath: v1alpha1.VICISocketDir},
		{Name: volCharonConf, MountPath: v1alpha1.CharonConfDir, ReadOnly: true},
	}
	if gw.Spec.UserspaceDataplane() {
		mounts = append(mounts, corev1.VolumeMount{Name: volTUN, MountPath: tunDevice})
	}
	return corev1.Container{
		Name:            charonContainer,
		Image:           images.Charon,
		ImagePullPolicy: images.PullPolicy,
		Command:         []string{"/usr/sbin/charon-systemd"},
		Env:             []corev1.EnvVar{{Name: v1alpha1.EnvStrongswanConf, Value: v1alpha1.StrongswanConfPath}},
		Ports:           ikePorts(gw.Spec.HostNetwork()),
		Resources:       gw.Spec.Resources.Charon,
		VolumeMounts:    mounts,
		SecurityContext: charonContext(),
		Lifecycle:       drainHook(),
	}
}

func charonContext() *corev1.SecurityContext {
	sc := restrictedContext("NET_ADMIN", "NET_BIND_SERVICE")
	sc.RunAsUser, sc.RunAsGroup = ptr.To[int64](0), ptr.To[int64](gatewayGroup)
	return sc
}

func ikePorts(hostNet bool) []corev1.ContainerPort {
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
	return ports
}

// agent needs NET_ADMIN for the nftables table and nothing else; it reaches
// charon through the shared VICI socket.
func agent(gw *v1alpha1.VPNGateway, images Images) corev1.Container {
	c := corev1.Container{
		Name:            agentContainer,
		Image:           images.Agent,
		ImagePullPolicy: images.PullPolicy,
		Args:            agentArgs(gw),
		Env:             agentEnv(gw),
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
		SecurityContext: agentContext(),
		Lifecycle:       drainHook(),
	}
	if gw.Spec.HostNetwork() {
		c.Ports = nil // host ports of the agent's endpoints are not published
		c.ReadinessProbe.HTTPGet.Host = v1alpha1.AgentHostNetworkListenHost
	}
	return c
}

// agentContext runs the agent as a non-root user in gatewayGroup. The
// runtime leaves NET_ADMIN in its bounding and permitted sets but, for a
// non-root user, not in the effective set of the program it starts; the
// agent image's binary carries the file capability cap_net_admin+ep,
// which the kernel applies on exec even under no_new_privs, since it stays
// within the permitted set the runtime held (docs/security.md).
func agentContext() *corev1.SecurityContext {
	sc := restrictedContext("NET_ADMIN")
	sc.RunAsUser, sc.RunAsGroup = ptr.To[int64](agentUser), ptr.To[int64](gatewayGroup)
	sc.RunAsNonRoot = ptr.To(true)
	return sc
}

func agentArgs(gw *v1alpha1.VPNGateway) []string {
	return []string{
		v1alpha1.AgentArg(v1alpha1.AgentFlagVICISocket, v1alpha1.VICISocketPath),
		v1alpha1.AgentArg(v1alpha1.AgentFlagHealthAddr, v1alpha1.AgentListenAddr(gw.Spec.HostNetwork(), v1alpha1.AgentReadinessPort)),
		v1alpha1.AgentArg(v1alpha1.AgentFlagMetricsAddr, v1alpha1.AgentListenAddr(gw.Spec.HostNetwork(), v1alpha1.AgentMetricsPort)),
		v1alpha1.AgentArg(v1alpha1.AgentFlagCertificateSecret, namesFor(gw.Name).ServerSecret),
		v1alpha1.AgentArg(v1alpha1.AgentFlagErrorNotifySocket, v1alpha1.ErrorNotifySocketPath),
	}
}

func agentEnv(gw *v1alpha1.VPNGateway) []corev1.EnvVar {
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	return []corev1.EnvVar{
		{Name: v1alpha1.EnvPodName, ValueFrom: field("metadata.name")},
		{Name: v1alpha1.EnvPodNamespace, ValueFrom: field("metadata.namespace")},
		{Name: v1alpha1.EnvGatewayName, Value: gw.Name},
		{Name: v1alpha1.EnvNodeAddress, ValueFrom: field("status.hostIP")},
	}
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

func podVolumes(gw *v1alpha1.VPNGateway) []corev1.Volume {
	n := namesFor(gw.Name)
	memory := func() corev1.VolumeSource {
		return corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}
	}
	volumes := []corev1.Volume{
		{Name: volRun, VolumeSource: memory()},
		{Name: volVICI, VolumeSource: memory()},
		{Name: volCharonConf, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: n.CharonConfigMap},
		}}},
		{Name: volCerts, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: n.ServerSecret, DefaultMode: ptr.To[int32](0o400),
		}}},
		apiAccessVolume(),
	}
	if gw.Spec.UserspaceDataplane() {
		volumes = append(volumes, corev1.Volume{Name: volTUN, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: tunDevice, Type: ptr.To(corev1.HostPathCharDev),
		}}})
	}
	return volumes
}

// apiAccessVolume is the service account token volume the kubelet would
// mount into every container, mounted into the agent's alone.
func apiAccessVolume() corev1.Volume {
	return corev1.Volume{Name: volAPIAccess, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
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
	}}}
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

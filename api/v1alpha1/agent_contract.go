package v1alpha1

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// AgentListenAddr is the address the agent serves port on. On the pod
// network that is every address of the pod, which only the cluster network
// reaches. On the host network every address of the node would serve the
// unauthenticated readiness and metrics endpoints to whatever reaches the
// node, so the agent listens on the loopback address alone: the kubelet
// probes it there from the node's own network namespace, and Prometheus
// cannot scrape it (see the chart's PodMonitor).
func AgentListenAddr(hostNetwork bool, port int) string {
	host := ""
	if hostNetwork {
		host = AgentHostNetworkListenHost
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// AgentHostNetworkListenHost is where a host-network agent listens.
const AgentHostNetworkListenHost = "127.0.0.1"

// The contract between the manager, which builds the gateway pods, and the
// agent sidecar that runs in them. Both sides import these names so a change
// moves them together.
const (
	// AgentReadinessPort serves AgentReadinessPath: 200 while charon holds
	// the gateway's mobile connections, pools and key (items charon refuses
	// alone do not count).
	AgentReadinessPort = 8081
	// AgentReadinessPath is the agent's readiness endpoint.
	AgentReadinessPath = "/readyz"
	// AgentDrainPath, on AgentReadinessPort, moves the pod's clients to the
	// other replicas (IKEv2 redirect) and answers when they left or the
	// drain timed out: the preStop hook of both containers, so that charon
	// is not stopped before its clients were moved.
	AgentDrainPath = "/drain"
	// AgentDrainTimeout bounds how long a drain waits for the redirected
	// clients to leave; the pods' termination grace period exceeds it.
	AgentDrainTimeout = 20 * time.Second
	// AgentMetricsPort serves Prometheus metrics (/metrics).
	AgentMetricsPort = 9090

	// VICISocketDir is the emptyDir the charon and agent containers share.
	VICISocketDir = "/run/ikegate"
	// VICISocketURI is where charon listens for VICI (strongswan.conf)...
	VICISocketURI = "unix://" + VICISocketPath
	// VICISocketPath ...and the path the agent connects to (--vici-socket).
	VICISocketPath = VICISocketDir + "/charon.vici"
	// ErrorNotifySocketPath, in the shared emptyDir, is where charon's
	// error-notify plugin sends its alerts (strongswan.conf
	// ErrorNotifySocketURI); the agent reads them (--error-notify-socket)
	// to diagnose failed connection attempts.
	ErrorNotifySocketPath = VICISocketDir + "/charon.enfy"
	// ErrorNotifySocketURI is ErrorNotifySocketPath as strongswan.conf names it.
	ErrorNotifySocketURI = "unix://" + ErrorNotifySocketPath
	// RADIUSDir, inside the shared emptyDir, is where the agent writes
	// charon's eap-radius servers with their shared secrets (--radius-dir):
	// an EAPRADIUS gateway's, or the agent's own server on the pod's
	// loopback that checks an EAPMSCHAPv2 gateway's users' passwords (its
	// secret made per pod at start). The gateway's strongswan.conf includes
	// RADIUSServersInclude inside the plugin's section, and the agent has
	// charon re-read it over VICI (reload-settings) when the servers change.
	RADIUSDir = VICISocketDir + "/radius"
	// AgentStateFile, in the shared emptyDir, is where the agent keeps the
	// last configuration charon accepted (mode 0600: it holds what
	// charon's memory holds), to serve it when the agent or charon restarts
	// while the API server is unreachable (--state-file).
	AgentStateFile = VICISocketDir + "/agent-state.json"
	// RADIUSServersInclude matches the files the agent writes in RADIUSDir.
	RADIUSServersInclude = RADIUSDir + "/*.conf"
	// CharonConfDir holds strongswan.conf (key StrongswanConfKey of the
	// gateway's charon ConfigMap); charon reads it through STRONGSWAN_CONF.
	CharonConfDir = "/etc/ikegate/strongswan"
	// StrongswanConfKey is the ConfigMap key and file name of strongswan.conf.
	StrongswanConfKey = "strongswan.conf"
	// StrongswanConfPath is strongswan.conf in the charon container, the
	// value of its EnvStrongswanConf.
	StrongswanConfPath = CharonConfDir + "/" + StrongswanConfKey
	// EnvStrongswanConf tells charon where strongswan.conf is.
	EnvStrongswanConf = "STRONGSWAN_CONF"
	// GatewayCertDir is where the gateway's cert-manager Secret (tls.crt,
	// tls.key, ca.crt) is mounted into the agent. The kubelet updates the files
	// in place when cert-manager renews the certificate; the agent reloads them
	// into charon over VICI, so established SAs survive a renewal.
	GatewayCertDir = "/etc/ikegate/certs"

	// Environment of the agent container.
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvGatewayName  = "GATEWAY_NAME"
	// EnvNodeAddress is the address of the pod's node (downward API
	// status.hostIP), the next hop of its pool slices on a Routed return path.
	EnvNodeAddress = "NODE_ADDRESS"
	// EnvCertificateSecret is the default of AgentFlagCertificateSecret.
	EnvCertificateSecret = "CERTIFICATE_SECRET"

	// Flags of the agent that the manager sets in the pod spec.
	AgentFlagVICISocket        = "vici-socket"
	AgentFlagHealthAddr        = "health-addr"
	AgentFlagMetricsAddr       = "metrics-addr"
	AgentFlagCertificateSecret = "certificate-secret"
	AgentFlagErrorNotifySocket = "error-notify-socket"

	// ManagerFieldOwner is the server-side apply field owner of the manager.
	ManagerFieldOwner = "ikegate-manager"
	// AgentFieldOwnerPrefix + the pod name is the field owner each agent
	// writes status with, so replicas never take each other's fields.
	AgentFieldOwnerPrefix = "ikegate-agent/"

	// LabelGateway on every object made for a gateway names the gateway.
	LabelGateway = "ikegate.io/gateway"
)

// AgentFieldOwner is the field owner of the agent in the named pod.
func AgentFieldOwner(pod string) string { return AgentFieldOwnerPrefix + pod }

// AgentArg is the command-line argument that sets one of the agent's flags.
func AgentArg(flag, value string) string { return "--" + flag + "=" + value }

// Names the manager derives from a gateway's name and the agent reads
// without being told.

// ServerTLSSecretName is the Secret cert-manager issues the gateway's server
// certificate into.
func ServerTLSSecretName(gateway string) string { return gateway + "-server-tls" }

// AgentCredentialsSecretName is the gateway's i-th credentials Secret (see
// package internal/credentials).
func AgentCredentialsSecretName(gateway string, i int) string {
	return agentCredentialsPrefix(gateway) + strconv.Itoa(i)
}

// AgentCredentialsSecretIndex is the i of AgentCredentialsSecretName that
// gives name, if one does; it does not bound i.
func AgentCredentialsSecretIndex(gateway, name string) (int, bool) {
	return ordinal(name, agentCredentialsPrefix(gateway))
}

func agentCredentialsPrefix(gateway string) string { return gateway + "-agent-credentials-" }

// AgentRecentCredentialsSecretName is the Secret with the recent changes
// of the gateway's i-th credentials Secret (see package
// internal/credentials).
func AgentRecentCredentialsSecretName(gateway string, i int) string {
	return AgentCredentialsSecretName(gateway, i) + agentRecentSuffix
}

// AgentRecentCredentialsSecretIndex is the i of
// AgentRecentCredentialsSecretName that gives name, if one does; it does
// not bound i.
func AgentRecentCredentialsSecretIndex(gateway, name string) (int, bool) {
	n, ok := strings.CutSuffix(name, agentRecentSuffix)
	if !ok {
		return 0, false
	}
	return AgentCredentialsSecretIndex(gateway, n)
}

const agentRecentSuffix = "-recent"

// Annotations of the credentials Secrets. A shard's Secret is rewritten
// whole now and then, its recent changes in between go to a small Secret
// of their own; the generations tell the agent which recent changes apply
// to which shard, as the two Secrets reach it through separate watches.
const (
	// AnnotationCredentialsGeneration counts the writes of a shard's
	// Secret whole.
	AnnotationCredentialsGeneration = "ikegate.io/credentials-generation"
	// AnnotationCredentialsBase is the generation of the shard the recent
	// changes apply to.
	AnnotationCredentialsBase = "ikegate.io/credentials-base"
)

// GatewayWorkloadName names the gateway's StatefulSet and Service; its pods
// are GatewayPodName.
func GatewayWorkloadName(gateway string) string { return gateway + "-gateway" }

// GatewayPodName is the gateway pod of the given ordinal.
func GatewayPodName(gateway string, ordinal int) string {
	return GatewayWorkloadName(gateway) + "-" + strconv.Itoa(ordinal)
}

// GatewayPodOrdinal is the ordinal of the gateway's pod named pod, if pod is
// one of the gateway's.
func GatewayPodOrdinal(gateway, pod string) (int, bool) {
	return ordinal(pod, GatewayWorkloadName(gateway)+"-")
}

// TunnelLeaseName is the coordination.k8s.io Lease through which the
// gateway's replicas elect the one that serves its Tunnels.
func TunnelLeaseName(gateway string) string { return gateway + "-tunnels" }

// AgentServiceAccountName names the agent's ServiceAccount, Role and
// RoleBinding.
func AgentServiceAccountName(gateway string) string { return gateway + "-agent" }

// ordinal parses the decimal number (no sign, no leading zero) that follows
// prefix in name.
func ordinal(name, prefix string) (int, bool) {
	n, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || strconv.Itoa(i) != n {
		return 0, false
	}
	return i, true
}

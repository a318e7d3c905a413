package v1alpha1

// The contract between the manager, which builds the gateway pods, and the
// agent sidecar that runs in them. Both sides import these names so a change
// moves them together.
const (
	// AgentReadinessPort serves AgentReadinessPath: 200 once the agent has
	// loaded the gateway's configuration into charon.
	AgentReadinessPort = 8081
	// AgentReadinessPath is the agent's readiness endpoint.
	AgentReadinessPath = "/readyz"
	// AgentMetricsPort serves Prometheus metrics (/metrics).
	AgentMetricsPort = 9090

	// VICISocketDir is the emptyDir the charon and agent containers share.
	VICISocketDir = "/run/ikegate"
	// VICISocketURI is where charon listens for VICI (strongswan.conf)...
	VICISocketURI = "unix://" + VICISocketPath
	// VICISocketPath ...and the path the agent connects to (--vici-socket).
	VICISocketPath = VICISocketDir + "/charon.vici"
	// RADIUSDir, inside the shared emptyDir, is where the agent writes the
	// eap-radius servers of an EAPRADIUS gateway with their shared secrets
	// (--radius-dir); the gateway's strongswan.conf includes
	// RADIUSServersInclude inside the plugin's section, and the agent has
	// charon re-read it over VICI (reload-settings) when the servers change.
	RADIUSDir = VICISocketDir + "/radius"
	// RADIUSServersInclude matches the files the agent writes in RADIUSDir.
	RADIUSServersInclude = RADIUSDir + "/*.conf"
	// CharonConfDir holds strongswan.conf (key StrongswanConfKey of the
	// gateway's charon ConfigMap); charon reads it through STRONGSWAN_CONF.
	CharonConfDir = "/etc/ikegate/strongswan"
	// StrongswanConfKey is the ConfigMap key and file name of strongswan.conf.
	StrongswanConfKey = "strongswan.conf"
	// GatewayCertDir is where the gateway's cert-manager Secret (tls.crt,
	// tls.key, ca.crt) is mounted into the agent. The kubelet updates the files
	// in place when cert-manager renews the certificate; the agent reloads them
	// into charon over VICI, so established SAs survive a renewal.
	GatewayCertDir = "/etc/ikegate/certs"

	// Environment of the agent container.
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvGatewayName  = "GATEWAY_NAME"

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

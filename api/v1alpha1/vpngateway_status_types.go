package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VPNGatewayStatus is the observed state of a gateway.
type VPNGatewayStatus struct {
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Sessions is the number of established client IKE_SAs over all replicas.
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// CASecretName holds the CA bundle clients must trust (also in the ConfigMap
	// named by CAConfigMapName).
	// +optional
	CAConfigMapName string `json:"caConfigMapName,omitempty"`
	// CertificateSecretName holds the server certificate and key.
	// +optional
	CertificateSecretName string `json:"certificateSecretName,omitempty"`
	// CertificateNotAfter is the server certificate's expiry.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`
	// ReadyReplicas is the number of gateway pods whose charon holds the current configuration.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Agents are the reports of the gateway pods' agents, one entry per pod,
	// each written by that pod's agent under a field owner of its own.
	// +optional
	// +listType=map
	// +listMapKey=pod
	// +kubebuilder:validation:MaxItems=64
	Agents []AgentStatus `json:"agents,omitempty"`
	// ReturnRoutes are the routes the LAN needs toward the replicas. On a
	// Routed return path: each current replica's pool slices toward the
	// node that runs it, and every user's static address (a /32 or /128)
	// toward the replica that serves it. On both return paths (none is
	// listed while returnPath is unset): the Tunnels' remote networks
	// toward the replica that holds the tunnel Lease (tunnel traffic keeps
	// its addresses). The
	// next hops are the nodes the replicas' agents report. The gateway
	// announces none of them; install them on the LAN router (static
	// routes or your routing protocol's redistribution).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=4096
	ReturnRoutes []ReturnRoute `json:"returnRoutes,omitempty"`
}

// ReturnRoute is one route the LAN must install toward a replica.
type ReturnRoute struct {
	// Destination is a slice of a MobilePool's addresses, a user's static
	// address, or a remote network of a Tunnel.
	Destination string `json:"destination"`
	// Pool is the MobilePool the destination belongs to (slices and static
	// addresses).
	// +optional
	Pool string `json:"pool,omitempty"`
	// User is the VPNUser whose static address the destination is.
	// +optional
	User string `json:"user,omitempty"`
	// Tunnel is the Tunnel whose remote network the destination is.
	// +optional
	Tunnel string `json:"tunnel,omitempty"`
	// Pod is the replica serving the destination; empty for a Tunnel's
	// network while no replica reports holding the tunnel Lease.
	Pod string `json:"pod"`
	// NextHop is the address of the pod's node; empty until its agent reported it.
	// +optional
	NextHop string `json:"nextHop,omitempty"`
}

// AgentStatus is what one gateway pod's agent last applied to its charon.
type AgentStatus struct {
	// Pod is the gateway pod.
	Pod string `json:"pod"`
	// AppliedGeneration is the VPNGateway generation that the pod's charon holds
	// the configuration of, together with the gateway's pools, users, tunnels
	// and Secrets as the agent saw them. It is only raised by an apply that
	// charon fully accepted.
	// +optional
	AppliedGeneration int64 `json:"appliedGeneration,omitempty"`
	// LastError is why the latest apply failed; empty when it succeeded.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
	// Sessions is the number of established client IKE_SAs on the pod.
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// Connections is the number of connections (one per MobilePool that
	// has users, one per Tunnel) the pod's charon holds after the latest
	// apply. 0 means charon answers every client with NO_PROPOSAL_CHOSEN:
	// the gateway is not Ready (NoConnections). Absent until the agent
	// has applied once.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Connections *int32 `json:"connections,omitempty"`
	// NodeAddress is the address of the node the pod runs on, the next hop
	// of its slices on a Routed return path.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	NodeAddress string `json:"nodeAddress,omitempty"`
	// HoldsTunnels is set while the pod holds the gateway's tunnel Lease:
	// it serves the Tunnels, and their remote networks route to its node.
	// +optional
	HoldsTunnels bool `json:"holdsTunnels,omitempty"`
	// TunnelTerm is the Lease's leaseTransitions plus one when the pod
	// took it over. A holder that died cannot clear its holdsTunnels, so
	// among the reports that claim the Lease the highest term holds it.
	// +optional
	TunnelTerm int32 `json:"tunnelTerm,omitempty"`
	// Draining is set once the pod began to move its clients away before
	// it stops: no replica sends it clients any more.
	// +optional
	Draining bool `json:"draining,omitempty"`
	// CredentialsRecent is set by an agent that applies the recent changes
	// of the credentials shards (their -recent Secrets). While a pod's
	// agent does not (an older agent, during a rolling upgrade), the
	// manager writes each change into the shard itself, the one Secret
	// such an agent reads.
	// +optional
	CredentialsRecent bool `json:"credentialsRecent,omitempty"`
	// ForeignStaticAddresses are the static addresses of users connected
	// to this pod whose pool slice another replica owns (a client that
	// cannot be redirected to that replica, or whose replica is away): the
	// LAN routes them to this pod's node instead.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	ForeignStaticAddresses []string `json:"foreignStaticAddresses,omitempty"`
	// Pools are the addresses the pod's charon has leased per MobilePool.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Pools []PoolLeases `json:"pools,omitempty"`
	// RecentFailures are the connection attempts that failed on the pod
	// lately, one entry per phase, reason and peer, newest last.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	RecentFailures []RecentFailure `json:"recentFailures,omitempty"`
}

// RecentFailure is one kind of failed attempt the agent diagnosed from
// charon's log and alerts, with how often it happened. Its values come from
// the network cleaned: bounded and without control characters.
type RecentFailure struct {
	// Phase is the step of the IKE_SA's life that failed (IKE_SA_INIT,
	// IKE_AUTH, CHILD_SA, rekey, liveness).
	// +kubebuilder:validation:MaxLength=32
	Phase string `json:"phase"`
	// Reason is one of the condition reasons (ProposalMismatch, ...).
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// Kind and Name are the object the failure was reported on: the VPNUser
	// or Tunnel of the peer, or the VPNGateway when neither is known.
	// +kubebuilder:validation:MaxLength=32
	Kind string `json:"kind"`
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Peer is the identity the peer used, or its address when it sent none.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Peer string `json:"peer,omitempty"`
	// RemoteAddress is the peer's address at the last attempt.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// Message names both sides' values and what to change.
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
	// Count is how many attempts failed this way since FirstSeen.
	Count int32 `json:"count"`
	// FirstSeen and LastSeen bound the attempts counted. LastSeen moves on
	// a bounded cadence, not with every retry.
	FirstSeen metav1.Time `json:"firstSeen"`
	LastSeen  metav1.Time `json:"lastSeen"`
}

// PoolLeases counts the addresses of one MobilePool leased on one gateway pod.
type PoolLeases struct {
	// Name of the MobilePool.
	Name string `json:"name"`
	// Leased addresses, online clients only.
	Leased int32 `json:"leased"`
	// LeasedSlices are the pool's slices (0-15) in which the pod holds
	// leases. A replica that takes over a slice on a scale-up serves it
	// only once no other replica reports leases in it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	LeasedSlices []int32 `json:"leasedSlices,omitempty"`
}

package controllers

// The manager's RBAC, shared by all its reconcilers, is these markers and
// nothing else (TestManagerRBAC holds them to the calls the manager makes):
// reads come from the informer cache (list, watch) except Secrets' data,
// which the cache does not hold (get, and list of a namespace's Secrets: see
// secretReads), objects are written with server-side apply (patch, and create
// for new ones), and owner references remove what a gateway made, so only
// what finalizers and the profiles remove is deleted. The agent's Role needs
// the manager to hold what it grants (get and status patch of the ikegate
// kinds, core Events, and get, create and update of the gateway's tunnel
// Lease, which its agents hold in turn).
// +kubebuilder:rbac:groups=ikegate.io,resources=vpngateways,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ikegate.io,resources=mobilepools;vpnusers;tunnels,verbs=get;list;watch
// +kubebuilder:rbac:groups=ikegate.io,resources=vpngateways/status;mobilepools/status;vpnusers/status;tunnels/status,verbs=get;patch
// +kubebuilder:rbac:groups=ikegate.io,resources=vpngateways/finalizers,verbs=update
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=issuers,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=clusterissuers,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=list;watch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=list;watch;create;patch

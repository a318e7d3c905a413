// Package controllers holds the manager's reconcilers.
//
// VPNGatewayReconciler (vpngateway_controller.go) makes what one gateway
// needs, in phases: the PKI (a per-gateway CA through cert-manager unless the
// spec names an issuer, the server Certificate, the CA bundle ConfigMap), the
// workload (strongswan.conf ConfigMap, StatefulSet of charon + agent pods,
// LoadBalancer Service) and the agent's ServiceAccount, Role and RoleBinding.
// The objects are pure functions of the gateway (vpngateway_specs.go) written
// with server-side apply under v1alpha1.ManagerFieldOwner; the conditions are
// pure functions of what the phases found (vpngateway_status.go).
//
// MembersReconciler (members_controller.go) is keyed by gateway: whether a
// MobilePool, VPNUser or Tunnel is valid depends on the others of its
// gateway, so one internal/swan Build per gateway (buildcache.go, shared with
// the gateway reconciler and invalidated by the event handlers in setup.go)
// decides for all of them, and each member's status is written only when its
// verdict changed.
package controllers

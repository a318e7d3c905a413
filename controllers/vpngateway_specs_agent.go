package controllers

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// referencedSecrets are the Secrets of the gateway's namespace the agent must
// read: its certificate and whatever the gateway and its members reference.
func referencedSecrets(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, tunnels []v1alpha1.Tunnel) []string {
	refs := gw.SecretRefs()
	for i := range users {
		if users[i].Spec.GatewayRef.Name == gw.Name {
			refs = append(refs, users[i].SecretRefs()...)
		}
	}
	for i := range tunnels {
		if tunnels[i].Spec.GatewayRef.Name == gw.Name {
			refs = append(refs, tunnels[i].SecretRefs()...)
		}
	}
	names := v1alpha1.SecretNames(refs)
	server := namesFor(gw.Name).ServerSecret
	if i, found := slices.BinarySearch(names, server); !found {
		names = slices.Insert(names, i, server)
	}
	return names
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
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: append(credentials.SecretNames(gw.Name), n.ServerSecret), Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			// The tunnel Lease the replicas elect a holder with. RBAC cannot
			// limit create to a name (the object has none yet when checked).
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{v1alpha1.TunnelLeaseName(gw.Name)}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
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

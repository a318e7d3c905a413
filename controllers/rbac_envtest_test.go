package controllers

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/testenv"
)

// TestManagerRBAC runs the manager as its ServiceAccount, bound to the
// ClusterRole generated from the RBAC markers (config/rbac), so a permission
// the markers lack fails here: making the agent's Role also needs every
// permission it grants (the API server refuses escalation).
func TestManagerRBAC(t *testing.T) {
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	ctx := context.Background()

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	applyFiles(t, c, filepath.Join(root, "config", "rbac", "role.yaml"))
	if err := c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ikegate-manager"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ikegate-manager"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ikegate-manager", Namespace: "ikegate-system"}},
	}); err != nil {
		t.Fatal(err)
	}
	asManager := rest.CopyConfig(cfg)
	asManager.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:ikegate-system:ikegate-manager",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:ikegate-system", "system:authenticated"},
	}
	startManager(t, asManager, s, Options{StatusWorkers: 4})

	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	const ns = "vpn"
	gw := &v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn"}}
	gwConds := func() []metav1.Condition { return gw.Status.Conditions }
	eventually(t, "CertificateReady", conditionIs(c, gw, gwConds, v1alpha1.ConditionCertificateReady, metav1.ConditionTrue, v1alpha1.ReasonReady))
	eventually(t, "the agent's RoleBinding", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-agent"}, &rbacv1.RoleBinding{})
	})
	eventually(t, "CA bundle", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vpn-ca-bundle"}, &corev1.ConfigMap{})
	})
	eventually(t, "NoNodesSelected (nodes readable)", conditionIs(c, gw, gwConds, v1alpha1.ConditionWorkloadReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodesSelected))
	user := &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}
	userConds := func() []metav1.Condition { return user.Status.Conditions }
	eventually(t, "user Valid", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))

	if err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SecretNotFound", conditionIs(c, user, userConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound))
	warningEvent(t, c, ns, "jimp", v1alpha1.ReasonSecretNotFound, "jimp")

	if err := c.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gateway finalized", gone(c, gw))
	eventually(t, "issued Secret deleted", gone(c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vpn-server-tls"}}))
}

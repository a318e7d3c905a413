package certmanagertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/poll"
)

// TestIssueAndRestart issues a certificate from a fresh self-signed Issuer,
// stops cert-manager, starts it again and does the same once more.
func TestIssueAndRestart(t *testing.T) {
	s := testenv.DefaultScheme()
	if err := cmv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	_, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}); err != nil {
		t.Fatal(err)
	}
	stop := Start(t, kubeconfig)
	issue(t, c, "first")
	stop()
	Start(t, kubeconfig)
	issue(t, c, "second")
}

func issue(t *testing.T, c client.Client, name string) {
	t.Helper()
	ctx := context.Background()
	iss := &cmv1.Issuer{ObjectMeta: metav1.ObjectMeta{Namespace: "cm", Name: name},
		Spec: cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}}}
	cert := &cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "cm", Name: name},
		Spec: cmv1.CertificateSpec{CommonName: name + ".example.com", DNSNames: []string{name + ".example.com"}, SecretName: name,
			IssuerRef: cmmeta.IssuerReference{Name: name, Kind: "Issuer"}}}
	for _, o := range []client.Object{iss, cert} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll.Eventually(t, name+": a certificate issued", 30*time.Second, func() error {
		var sec corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: "cm", Name: name}, &sec); err != nil {
			return err
		}
		if len(sec.Data["tls.crt"]) == 0 {
			_ = c.Get(ctx, client.ObjectKeyFromObject(iss), iss)
			return fmt.Errorf("Secret %s has no tls.crt (issuer status %+v)", name, iss.Status)
		}
		return nil
	})
}

package testenv_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/internal/testenv"
)

func TestStartInstallsCertManagerCRDs(t *testing.T) {
	cfg, c, kubeconfig := testenv.Start(t)
	if cfg == nil || c == nil {
		t.Fatal("Start returned nil config or client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, name := range []string{
		"certificates.cert-manager.io",
		"issuers.cert-manager.io",
		"clusterissuers.cert-manager.io",
		"certificaterequests.cert-manager.io",
	} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatalf("CRD %s not installed: %v", name, err)
		}
		established := false
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not Established", name)
		}
	}

	// The kubeconfig file works on its own.
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	kcfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	kc, err := client.New(kcfg, client.Options{Scheme: testenv.DefaultScheme()})
	if err != nil {
		t.Fatalf("client from kubeconfig: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "testenv-smoke"}}
	if err := kc.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace through kubeconfig: %v", err)
	}
	var got corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns.Name}, &got); err != nil {
		t.Fatalf("reading namespace back: %v", err)
	}
}

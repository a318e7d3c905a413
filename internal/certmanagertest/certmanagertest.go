// Package certmanagertest runs cert-manager's real controllers in the test
// process against an envtest API server, so Issuers turn Ready and
// Certificates are issued into Secrets the way a cluster does it, with no
// webhook and no image.
package certmanagertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"

	// The controllers and issuer implementations register themselves.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// Controllers are the cert-manager controllers that take a SelfSigned or CA
// Issuer (or ClusterIssuer) and a Certificate to an issued Secret.
var Controllers = []string{
	"issuers",
	"clusterissuers",
	"certificaterequests-approver",
	"certificaterequests-issuer-selfsigned",
	"certificaterequests-issuer-ca",
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
}

// ClusterResourceNamespace is where ClusterIssuers keep their Secrets.
const ClusterResourceNamespace = "cert-manager"

// Start runs the controllers against the API server of kubeconfig until the
// returned stop function is called, or t ends (pass the test, not a subtest,
// to keep them for the rest of it). Stopping and starting again plays a
// cert-manager outage.
func Start(t testing.TB, kubeconfig string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := run(ctx, kubeconfig, func(name string, err error) { t.Logf("cert-manager controller %s stopped: %v", name, err) }); err != nil {
		cancel()
		t.Fatalf("certmanagertest: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
		}
	}
	t.Cleanup(stop)
	return stop
}

func run(ctx context.Context, kubeconfig string, failed func(string, error)) error {
	factory, err := cmcontroller.NewContextFactory(ctx, cmcontroller.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   200,
		KubernetesAPIBurst: 400,
		IssuerOptions:      cmcontroller.IssuerOptions{ClusterResourceNamespace: ClusterResourceNamespace},
		CertificateOptions: cmcontroller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Second,
			CertificateRequestMaximumBackoffDuration: 5 * time.Second,
		},
	})
	if err != nil {
		return fmt.Errorf("context factory: %w", err)
	}
	known := cmcontroller.Known()
	for _, name := range Controllers {
		ctor, ok := known[name]
		if !ok {
			return fmt.Errorf("cert-manager controller %q is not registered", name)
		}
		c, err := ctor(factory)
		if err != nil {
			return fmt.Errorf("constructing %s: %w", name, err)
		}
		go func() {
			if err := c.Run(1, ctx); err != nil && ctx.Err() == nil {
				failed(name, err)
			}
		}()
	}
	// The informers the controllers asked for exist only now; starting the
	// factories earlier would start none of them.
	cmctx, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building context: %w", err)
	}
	cmctx.KubeSharedInformerFactory.Start(ctx.Done())
	cmctx.SharedInformerFactory.Start(ctx.Done())
	return nil
}

// Command manager reconciles VPNGateways, MobilePools, VPNUsers and Tunnels
// into cert-manager certificates, gateway pods and the agents' RBAC, and
// reports on each object whether it works and if not why.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/controllers"
)

type config struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderElectionNS       string
	images                 controllers.Images
	gatewayWorkers         int
	membersWorkers         int
	statusWorkers          int
	qps                    float64
	burst                  int
	// The installer's policy and the namespaces watched (policy_flags.go).
	policy          controllers.Policy
	watchNamespaces []string
}

func parseFlags(fs *flag.FlagSet, args []string, zapOpts *zap.Options) (config, error) {
	var c config
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", defaultMetricsAddr, "address of the Prometheus /metrics endpoint (HTTPS, authenticated); 0 disables it")
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader so only one of several manager replicas reconciles")
	fs.StringVar(&c.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease; default: the manager's own")
	fs.StringVar(&c.images.Charon, "charon-image", controllers.DefaultCharonImage, "charon image of every gateway pod")
	fs.StringVar(&c.images.Agent, "agent-image", controllers.DefaultAgentImage, "agent image of every gateway pod")
	fs.IntVar(&c.gatewayWorkers, "gateway-workers", controllers.DefaultGatewayWorkers, "VPNGateways reconciled at once")
	fs.IntVar(&c.membersWorkers, "members-workers", controllers.DefaultMembersWorkers, "gateways whose pools, users and tunnels are checked at once")
	fs.IntVar(&c.statusWorkers, "status-workers", controllers.DefaultStatusWorkers, "concurrent status writes while checking one gateway's members")
	fs.Float64Var(&c.qps, "kube-api-qps", 100, "API requests per second")
	fs.IntVar(&c.burst, "kube-api-burst", 200, "API request burst")
	if zapOpts != nil {
		zapOpts.BindFlags(fs)
	}
	bindPolicyFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := validatePolicyFlags(c); err != nil {
		return c, err
	}
	if c.images.Charon == "" || c.images.Agent == "" {
		return c, fmt.Errorf("--charon-image and --agent-image must not be empty")
	}
	return c, nil
}

// Scheme holds every type the manager reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, cmv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

func main() {
	zapOpts := zap.Options{}
	c, err := parseFlags(flag.CommandLine, os.Args[1:], &zapOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		ctrl.Log.Error(err, "Manager failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	rc, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("API server configuration: %w", err)
	}
	rc.QPS, rc.Burst = float32(c.qps), c.burst
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Scheme:                  Scheme(),
		Cache:                   controllers.CacheOptions(c.watchNamespaces...),
		Metrics:                 metricsOptions(c.metricsAddr),
		HealthProbeBindAddress:  c.probeAddr,
		LeaderElection:          c.leaderElect,
		LeaderElectionID:        "ikegate-manager.ikegate.io",
		LeaderElectionNamespace: c.leaderElectionNS,
		// The new leader starts at once when the old one steps down on
		// SIGTERM instead of waiting for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptrDuration(30 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{
		Images:             c.images,
		Policy:             c.policy,
		GatewayConcurrency: c.gatewayWorkers,
		MembersConcurrency: c.membersWorkers,
		StatusWorkers:      c.statusWorkers,
	}); err != nil {
		return err
	}
	// Gateway, pool and tunnel figures for the alert rules and the dashboard,
	// served with controller-runtime's own metrics.
	if err := crmetrics.Registry.Register(controllers.NewStatusCollector(mgr.GetClient())); err != nil {
		return fmt.Errorf("registering the status metrics: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the informer caches have synced: before that the manager
	// would judge objects on a partial view.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		wctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(wctx) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	ctrl.Log.Info("Starting manager", "charonImage", c.images.Charon, "agentImage", c.images.Agent)
	return mgr.Start(ctx)
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

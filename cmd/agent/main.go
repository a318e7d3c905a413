// Command agent is the sidecar of an ikegate gateway pod: it makes the pod's
// charon hold what the gateway's VPNGateway, MobilePools, VPNUsers, Tunnels
// and Secrets say, programs the gateway's nftables table, and reports
// sessions, tunnel states and metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/agent"
	"github.com/ikegate/ikegate/internal/firewall"
	"github.com/ikegate/ikegate/internal/vici"
)

type config struct {
	namespace, gateway, pod string
	nodeAddress             string
	certSecret              string
	kubeconfig              string
	viciSocket              string
	radiusDir               string
	stateFile               string
	offlineAfter            time.Duration
	radiusAddr              string
	radiusNetns             string
	errorNotify             string
	metricsAddr, healthAddr string
	firewall                bool
	firewallNetns           string
	firewallCleanup         bool
	debounce, saInterval    time.Duration
	counterInterval         time.Duration
	sessionWriteGap         time.Duration
	countsWriteGap          time.Duration
}

func main() {
	zapOpts := zap.Options{}
	// A flag set of our own: controller-runtime registers its own
	// --kubeconfig on flag.CommandLine.
	cfg := parseFlags(flag.NewFlagSet(os.Args[0], flag.ExitOnError), os.Args[1:], &zapOpts)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		ctrl.Log.Error(err, "Agent failed")
		os.Exit(1)
	}
}

// parseFlags reads flags, taking defaults from the environment the gateway
// pod's manifest sets (downward API for the pod's name and namespace).
func parseFlags(fs *flag.FlagSet, args []string, zapOpts *zap.Options) config {
	var c config
	fs.StringVar(&c.namespace, "namespace", os.Getenv(v1alpha1.EnvPodNamespace), "namespace of the gateway (env "+v1alpha1.EnvPodNamespace+")")
	fs.StringVar(&c.gateway, "gateway", os.Getenv(v1alpha1.EnvGatewayName), "name of the VPNGateway (env "+v1alpha1.EnvGatewayName+")")
	fs.StringVar(&c.pod, "pod", os.Getenv(v1alpha1.EnvPodName), "name of this pod, the status field owner (env "+v1alpha1.EnvPodName+")")
	fs.StringVar(&c.nodeAddress, "node-address", os.Getenv(v1alpha1.EnvNodeAddress), "address of this pod's node, the next hop of its pool slices on a Routed return path (env "+v1alpha1.EnvNodeAddress+")")
	fs.StringVar(&c.certSecret, v1alpha1.AgentFlagCertificateSecret, os.Getenv(v1alpha1.EnvCertificateSecret),
		"Secret with the gateway's tls.crt, tls.key and ca.crt, watched by name; default: "+v1alpha1.ServerTLSSecretName("<gateway>")+", the manager's (env "+v1alpha1.EnvCertificateSecret+")")
	fs.StringVar(&c.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file; in-cluster configuration when empty")
	fs.StringVar(&c.viciSocket, v1alpha1.AgentFlagVICISocket, v1alpha1.VICISocketPath, "charon's VICI socket")
	fs.StringVar(&c.radiusDir, "radius-dir", v1alpha1.RADIUSDir, "directory shared with charon where its RADIUS servers are written, an EAPRADIUS gateway's or the agent's own (strongswan.conf includes "+v1alpha1.RADIUSServersInclude+"); empty leaves them alone and runs no RADIUS server")
	fs.StringVar(&c.stateFile, "state-file", v1alpha1.AgentStateFile, "file in the volume shared with charon where the last applied configuration is kept (0600), served when the API server is unreachable at start; empty keeps none")
	fs.DurationVar(&c.offlineAfter, "offline-after", agent.DefaultOfflineAfter, "how long to wait for the API server at start before serving the saved configuration")
	fs.StringVar(&c.radiusAddr, "radius-listen", agent.DefaultRADIUSAddr, "loopback address of the agent's RADIUS server, which checks the passwords of an EAPMSCHAPv2 gateway's users for charon; port 0 picks one")
	fs.StringVar(&c.radiusNetns, "radius-netns", "", "network namespace file (e.g. /run/netns/x) on whose loopback the RADIUS server listens; default the agent's own")
	fs.StringVar(&c.errorNotify, v1alpha1.AgentFlagErrorNotifySocket, "", "charon's error-notify socket, whose alerts complete the diagnosis of failed connection attempts; empty diagnoses from the VICI log alone")
	fs.StringVar(&c.metricsAddr, v1alpha1.AgentFlagMetricsAddr, fmt.Sprintf(":%d", v1alpha1.AgentMetricsPort), "address of the Prometheus /metrics endpoint; empty disables it")
	fs.StringVar(&c.healthAddr, v1alpha1.AgentFlagHealthAddr, fmt.Sprintf(":%d", v1alpha1.AgentReadinessPort), "address of /healthz and "+v1alpha1.AgentReadinessPath)
	fs.BoolVar(&c.firewall, "firewall", true, "program the gateway's nftables table (when the VPNGateway enables its firewall)")
	fs.BoolVar(&c.firewallCleanup, "firewall-cleanup", true, "remove the gateway's nftables table when the agent stops for good (gateway deleted or scaled below this pod); a restart keeps it")
	fs.StringVar(&c.firewallNetns, "firewall-netns", "", "network namespace file (e.g. /run/netns/x) whose nftables to program; default the agent's own")
	fs.DurationVar(&c.debounce, "debounce", agent.DefaultDebounce, "how long a burst of changes may gather before one apply")
	fs.DurationVar(&c.saInterval, "sa-interval", agent.DefaultSAInterval, "how often live SAs are listed")
	fs.DurationVar(&c.counterInterval, "counter-interval", agent.DefaultCounterInterval, "how often traffic counters alone are written to status")
	fs.DurationVar(&c.sessionWriteGap, "session-write-gap", agent.DefaultSessionWriteGap, "least time between two writes of one user's sessions to its status")
	fs.DurationVar(&c.countsWriteGap, "counts-write-gap", agent.DefaultCountsWriteGap, "least time between two writes of this pod's report whose only change is its session counts")
	if zapOpts != nil {
		zapOpts.BindFlags(fs)
	}
	_ = fs.Parse(args)
	return c
}

func (c config) validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"namespace", c.namespace}, {"gateway", c.gateway}, {"pod", c.pod}, {v1alpha1.AgentFlagVICISocket, c.viciSocket}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", f.name))
		}
	}
	return errors.Join(errs...)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return rest.InClusterConfig()
}

func run(ctx context.Context, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	log := ctrl.Log.WithName("agent")
	ctx = ctrl.LoggerInto(ctx, log)
	rc, err := restConfig(c.kubeconfig)
	if err != nil {
		return fmt.Errorf("API server configuration: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	sess := vici.NewClient(c.viciSocket)
	defer sess.Close()
	opts := agent.Options{
		Namespace: c.namespace, Gateway: c.gateway, Pod: c.pod, NodeAddress: c.nodeAddress, CertificateSecret: c.certSecret,
		VICI: sess, Registerer: reg, RADIUSDir: c.radiusDir, RADIUSAddr: c.radiusAddr, ErrorNotifySocket: c.errorNotify,
		StateFile: c.stateFile, OfflineAfter: c.offlineAfter,
		Debounce: c.debounce, SAInterval: c.saInterval, CounterInterval: c.counterInterval,
		SessionWriteGap: c.sessionWriteGap, CountsWriteGap: c.countsWriteGap,
	}
	if c.radiusNetns != "" {
		conn, err := listenUDPIn(c.radiusNetns, c.radiusAddr)
		if err != nil {
			return fmt.Errorf("RADIUS socket: %w", err)
		}
		defer conn.Close()
		opts.RADIUSConn = conn
	}
	var fw *firewall.Applier
	if c.firewall {
		var nfOpts []nftables.ConnOption
		if c.firewallNetns != "" {
			f, err := os.Open(c.firewallNetns)
			if err != nil {
				return fmt.Errorf("opening network namespace %s: %w", c.firewallNetns, err)
			}
			defer f.Close()
			nfOpts = append(nfOpts, nftables.WithNetNSFd(int(f.Fd())))
		}
		fw, err = firewall.NewApplier(firewall.TableName(c.namespace, c.gateway), nfOpts...)
		if err != nil {
			return err
		}
		reg.MustRegister(firewall.NewCollector(fw))
		opts.Firewall = fw
	}
	a, err := agent.NewForConfig(rc, opts)
	if err != nil {
		return err
	}

	serve := func(addr string, h http.Handler) {
		srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "HTTP server failed", "addr", addr)
			}
		}()
	}
	serve(c.healthAddr, a.HealthHandler())
	if c.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		serve(c.metricsAddr, mux)
	}
	log.Info("Starting", "namespace", c.namespace, "gateway", c.gateway, "pod", c.pod, "vici", c.viciSocket, "firewall", c.firewall)
	err = a.Run(ctx)
	if fw != nil && c.firewallCleanup {
		// A table left behind on a host-network node would keep filtering for
		// a gateway that no longer runs there; one removed on every restart
		// would leave the pools unfiltered until the next agent starts.
		reader, cerr := client.New(rc, client.Options{Scheme: agent.Scheme()})
		forGood, why := true, "no API client"
		if cerr == nil {
			forGood, why = agent.StoppingForGood(context.Background(), reader, c.namespace, c.gateway, c.pod)
		}
		if forGood {
			log.Info("Removing the firewall table", "table", fw.Table(), "because", why)
			if derr := fw.Delete(); derr != nil {
				err = errors.Join(err, fmt.Errorf("removing the firewall table: %w", derr))
			}
		} else {
			log.Info("Keeping the firewall table", "table", fw.Table(), "because", why)
		}
	}
	return err
}

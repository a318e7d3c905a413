package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/certmanagertest"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

func testScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := testenv.DefaultScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, cmv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// testPolicy is the policy of the tests that set none: the examples'
// gateways run on the host network.
var testPolicy = Policy{HostNetwork: true, NamespaceIssuers: true}

// startManager runs the manager with the production cache options (watching
// the given namespaces, or all) and both controllers until the test ends; a
// zero o.Policy is testPolicy.
func startManager(t testing.TB, cfg *rest.Config, s *runtime.Scheme, o Options, watch ...string) manager.Manager {
	t.Helper()
	if reflect.DeepEqual(o.Policy, Policy{}) {
		o.Policy = testPolicy
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.InfoLevel)))
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 s,
		Cache:                  CacheOptions(watch...),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// go test -count=N starts a manager per run in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(ctx, mgr, o); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return mgr
}

// applyFiles creates every object of the YAML files (multi-document).
func applyFiles(t testing.TB, c client.Client, paths ...string) {
	t.Helper()
	for _, u := range kube.DecodeFiles(t, paths...) {
		if err := c.Create(context.Background(), u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

func exampleFiles(t testing.TB, dir string) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "examples", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", dir, err)
	}
	// The gateway file creates the namespace the others live in.
	for i, f := range files {
		if filepath.Base(f) == "gateway.yaml" {
			files[0], files[i] = files[i], files[0]
		}
	}
	return files
}

const waitTimeout = 60 * time.Second

// startSeedGateway runs an API server, cert-manager's controllers and the
// manager, and applies the seed example (gateway, pool and user "vpn",
// "staff", "jimp" in namespace "vpn"); it returns the test's client.
func startSeedGateway(t *testing.T) client.Client {
	t.Helper()
	s := testScheme(t)
	cfg, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	certmanagertest.Start(t, kubeconfig)
	startManager(t, cfg, s, Options{StatusWorkers: 4})
	applyFiles(t, c, exampleFiles(t, "pfsense-mobile")...)
	return c
}

// eventually polls cond until it returns nil or the timeout passes, then
// fails with cond's last error.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	kube.Eventually(t, what, waitTimeout, cond)
}

// conditionIs checks one condition of an object's status.
func conditionIs(c client.Client, obj client.Object, conds func() []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		got := meta.FindStatusCondition(conds(), typ)
		if got == nil {
			return fmt.Errorf("%s %s has no %s condition (has %v)", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), typ, conds())
		}
		if got.Status != status || (reason != "" && got.Reason != reason) {
			return fmt.Errorf("%s of %s is %s/%s (%q), want %s/%s", typ, obj.GetName(), got.Status, got.Reason, got.Message, status, reason)
		}
		if got.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("%s of %s observed generation %d, object is at %d", typ, obj.GetName(), got.ObservedGeneration, obj.GetGeneration())
		}
		return nil
	}
}

// condMessage returns the message of a condition (after conditionIs passed).
func condMessage(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return c.Message
	}
	return ""
}

// warningEvent waits for a Warning Event with the reason about the object
// whose note contains every one of contains.
func warningEvent(t testing.TB, c client.Client, ns, name, reason string, contains ...string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	eventually(t, fmt.Sprintf("Warning event %s on %s", reason, name), func() error {
		var list eventsv1.EventList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
	next:
		for _, e := range list.Items {
			if e.Regarding.Name != name || e.Type != "Warning" || e.Reason != reason {
				seen = append(seen, e.Regarding.Name+"/"+e.Type+"/"+e.Reason)
				continue
			}
			for _, s := range contains {
				if !strings.Contains(e.Note, s) {
					seen = append(seen, e.Note)
					continue next
				}
			}
			found = e
			return nil
		}
		return fmt.Errorf("none among %q", seen)
	})
	return found
}

func mustGet(t testing.TB, c client.Client, ns, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("getting %T %s/%s: %v", obj, ns, name, err)
	}
}

func gone(c client.Client, obj client.Object) func() error {
	return func() error {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists", obj.GetName())
	}
}

// credentialsOf is what the gateway's agent reads of the credentials shard
// that holds Secret secret's entries: the shard's Secret with its recent
// changes; and the shard's Secret itself.
func credentialsOf(ctx context.Context, c client.Client, ns, gateway, secret string) (map[string][]byte, *corev1.Secret, error) {
	i := credentials.Shard(secret)
	var shard, recent corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: credentials.ShardName(gateway, i)}, &shard); err != nil {
		return nil, nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: credentials.RecentName(gateway, i)}, &recent); err != nil {
		return nil, nil, err
	}
	return credentials.Effective(&shard, &recent), &shard, nil
}

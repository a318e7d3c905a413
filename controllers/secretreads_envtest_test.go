package controllers

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// secretRequest is one request the manager made for Secrets.
type secretRequest struct {
	verb, namespace, name string
	// metadata is set when the request asked for metadata only.
	metadata bool
	labels   string
}

// secretRequests records the manager's requests for Secrets.
type secretRequests struct {
	mu  sync.Mutex
	all []secretRequest
}

func (l *secretRequests) wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if r, ok := parseSecretRequest(req); ok {
				l.mu.Lock()
				l.all = append(l.all, r)
				l.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return out
}

func (l *secretRequests) requests() []secretRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// parseSecretRequest reads a GET of /api/v1/[namespaces/<ns>/]secrets[/<name>].
func parseSecretRequest(req *http.Request) (secretRequest, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if req.Method != http.MethodGet || len(parts) < 3 || parts[0] != "api" {
		return secretRequest{}, false
	}
	parts = parts[2:]
	var r secretRequest
	if parts[0] == "namespaces" && len(parts) > 2 {
		r.namespace, parts = parts[1], parts[2:]
	}
	if parts[0] != "secrets" {
		return secretRequest{}, false
	}
	q := req.URL.Query()
	switch {
	case q.Get("watch") == "true" || q.Get("watch") == "1":
		r.verb = "watch"
	case len(parts) > 1:
		r.verb, r.name = "get", parts[1]
	default:
		r.verb = "list"
	}
	r.metadata = strings.Contains(req.Header.Get("Accept"), "as=PartialObjectMetadata")
	r.labels = q.Get("labelSelector")
	return r, true
}

// The manager holds no Secret's data in its cache: it watches Secrets as
// metadata only, a large Secret elsewhere in the cluster is in its cache
// without its data and never read, a cold start reads the users' password
// Secrets with one list of their namespace (not one GET each), and a
// changed password is read again, alone, and reaches the credentials shard
// and the user's conditions.
func TestSecretsReadOnlyWhenReferencedAndChanged(t *testing.T) {
	s := testScheme(t)
	cfg, c, _ := testenv.Start(t, testenv.WithScheme(s))
	ctx := context.Background()
	const ns, users = "vpn", 40
	seedScale(t, c, ns, users)
	large := gen.Secret("elsewhere", "unrelated", map[string]string{"blob": strings.Repeat("x", 256<<10)})
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}, large} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var log secretRequests
	mgr := startManager(t, log.wrap(cfg), s, Options{StatusWorkers: 4})

	first := gen.User(ns, "user-00000", "user-00000@example.com")
	firstConds := func() []metav1.Condition { return first.Status.Conditions }
	eventually(t, "the first user Valid", conditionIs(c, first, firstConds, v1alpha1.ConditionValid, metav1.ConditionTrue, v1alpha1.ReasonReady))
	shardHolds := func(password string) func() error {
		return func() error {
			data, _, err := credentialsOf(ctx, c, ns, gen.GatewayName, first.Name)
			if err != nil {
				return err
			}
			if got := data[credentials.NTHashKey(first.Name, gen.PasswordKey)]; !bytes.Equal(got, swan.NTHash(password)) {
				return fmt.Errorf("the shard holds %x for the first user, want the hash of its password", got)
			}
			return nil
		}
	}
	var pw corev1.Secret
	mustGet(t, c, ns, first.Name, &pw)
	eventually(t, "the first user's hash in its credentials shard", shardHolds(string(pw.Data[gen.PasswordKey])))
	eventually(t, "every user Valid", func() error {
		var list v1alpha1.VPNUserList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, u := range list.Items {
			if c := findCond(u.Status.Conditions, v1alpha1.ConditionValid); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("user %s is not Valid: %v", u.Name, c)
			}
		}
		return nil
	})
	userGets := func() []string {
		var out []string
		for _, r := range log.requests() {
			if r.verb == "get" && !r.metadata && strings.HasPrefix(r.name, "user-") {
				out = append(out, r.name)
			}
		}
		return out
	}
	if got := userGets(); len(got) > 0 {
		t.Errorf("a cold start read password Secrets one by one: %v", got)
	}

	pw.Data[gen.PasswordKey] = []byte("a new password")
	if err := c.Update(ctx, &pw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new password's hash in the shard", shardHolds("a new password"))
	pw.Data[gen.PasswordKey] = nil
	if err := c.Update(ctx, &pw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an empty password refused", conditionIs(c, first, firstConds, v1alpha1.ConditionValid, metav1.ConditionFalse, v1alpha1.ReasonSecretInvalid))
	for _, name := range userGets() {
		if name != first.Name {
			t.Errorf("Secret %s was read again without a change", name)
		}
	}

	for _, r := range log.requests() {
		switch {
		case r.metadata:
		case r.name == large.Name || r.namespace != ns:
			t.Errorf("the manager read Secret data outside the users' namespace: %+v", r)
		case r.verb == "watch":
			t.Errorf("the manager watched Secrets with their data: %+v", r)
		case r.verb == "list" && r.labels != notOurs.String():
			t.Errorf("a list of Secrets read the manager's own (profiles, credentials): %+v", r)
		}
	}
	// The cache's own store: every Secret without its data, the large one
	// among them.
	inf, err := mgr.GetCache().GetInformer(ctx, secretMetadata())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range inf.(toolscache.SharedIndexInformer).GetStore().List() {
		m, ok := o.(*metav1.PartialObjectMetadata)
		if !ok {
			t.Fatalf("the Secret informer holds a %T", o)
		}
		found = found || (m.Namespace == large.Namespace && m.Name == large.Name)
	}
	if !found {
		t.Error("the Secret informer does not hold the large Secret's metadata")
	}
}

package kube

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Call is one API request the way RBAC authorizes it: a verb on a
// resource (with its subresource, "vpngateways/status") of an API group,
// in a namespace or cluster-wide ("").
type Call struct {
	Verb, Group, Resource, Namespace string
}

// CallLog holds the distinct resource requests made through a rest.Config
// that RecordCalls returned.
type CallLog struct {
	mu    sync.Mutex
	calls map[Call]struct{}
}

// RecordCalls returns a copy of cfg that records every resource request in
// the log, for tests that compare what a component does with what its RBAC
// grants. Discovery and other non-resource requests are not recorded.
func RecordCalls(cfg *rest.Config) (*rest.Config, *CallLog) {
	log := &CallLog{calls: map[Call]struct{}{}}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			log.add(req)
			return rt.RoundTrip(req)
		})
	})
	return out, log
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Calls are the recorded calls, sorted.
func (l *CallLog) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Call, 0, len(l.calls))
	for c := range l.calls {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Call) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Verb, b.Verb), cmp.Compare(a.Namespace, b.Namespace))
	})
	return out
}

func (l *CallLog) add(req *http.Request) {
	c, ok := parseCall(req)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[c] = struct{}{}
	// A server-side apply of an object (not a subresource) creates what does
	// not exist yet, which the API server authorizes as create; a streaming
	// list (a watch that sends the initial events) is a list on API servers
	// without it, which client-go then falls back to.
	switch q := req.URL.Query(); {
	case c.Verb == "patch" && !strings.Contains(c.Resource, "/") && strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch"):
		c.Verb = "create"
		l.calls[c] = struct{}{}
	case c.Verb == "watch" && q.Get("sendInitialEvents") == "true":
		c.Verb = "list"
		l.calls[c] = struct{}{}
	}
}

// parseCall reads a request the way the API server's RequestInfoFactory
// does: /api/v1/... for the core group, /apis/<group>/<version>/...
// otherwise, then [namespaces/<ns>/]<resource>[/<name>[/<subresource>]].
func parseCall(req *http.Request) (Call, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var c Call
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		c.Group, parts = parts[1], parts[3:]
	default:
		return Call{}, false
	}
	// namespaces/<ns>/<resource>... unless it is the Namespace's own
	// status or finalize subresource.
	if parts[0] == "namespaces" && len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
		c.Namespace, parts = parts[1], parts[2:]
	}
	c.Resource = parts[0]
	named := len(parts) > 1
	if len(parts) > 2 {
		c.Resource += "/" + parts[2]
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			c.Verb = "watch"
		case named:
			c.Verb = "get"
		default:
			c.Verb = "list"
		}
	case http.MethodPost:
		c.Verb = "create"
	case http.MethodPut:
		c.Verb = "update"
	case http.MethodPatch:
		c.Verb = "patch"
	case http.MethodDelete:
		c.Verb = "delete"
		if !named {
			c.Verb = "deletecollection"
		}
	default:
		return Call{}, false
	}
	return c, true
}

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// How Events are aggregated and rate-limited. A client retrying every
// second, or a script guessing passwords, fails the same way over and over:
// each (object, reason) is one Event whose count and message are updated
// at most every eventInterval, and all of the agent's Event writes share a
// token bucket, so the API server and etcd see a bounded write rate
// whatever charon sees (BenchmarkRetryingClient measures it).
const (
	eventInterval = 30 * time.Second
	// eventWindow ends an Event that did not repeat for this long; the
	// next failure starts a new one.
	eventWindow = 10 * time.Minute
	eventBurst  = 10
	eventRate   = 0.5 // writes per second, sustained
	// maxEventKeys bounds the (object, reason) pairs tracked; identities
	// that are no VPNUser's land on the gateway, so a guessing script
	// cannot make more of them.
	maxEventKeys = 512
	// EventComponent is the source of the agent's Events.
	EventComponent = "ikegate-agent"
)

type eventKey struct {
	kind, name, reason string
}

// eventState is one aggregated Event.
type eventState struct {
	obj     member
	reason  string
	message string
	name    string // the Event's name; "" until created
	count   int32
	first   time.Time
	last    time.Time
	written time.Time
	dirty   bool
}

// eventLimiter decides which Event writes happen. It is pure apart from
// its own state: the caller supplies the clock and does the writes.
type eventLimiter struct {
	mu     sync.Mutex
	byKey  map[eventKey]*eventState
	tokens float64
	filled time.Time
}

func newEventLimiter() *eventLimiter {
	return &eventLimiter{byKey: map[eventKey]*eventState{}, tokens: eventBurst}
}

// record notes one occurrence and returns the write it calls for now, if any.
func (l *eventLimiter) record(obj member, reason, message string, now time.Time) (eventState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := eventKey{obj.kind, obj.name, reason}
	st, ok := l.byKey[k]
	if !ok || now.Sub(st.last) > eventWindow {
		if !ok && len(l.byKey) >= maxEventKeys {
			l.evictOldest()
		}
		st = &eventState{obj: obj, reason: reason, first: now}
		l.byKey[k] = st
	}
	st.obj = obj
	st.count++
	st.last = now
	st.message = message
	st.dirty = true
	return l.take(st, now)
}

// due returns the deferred writes that may happen now.
func (l *eventLimiter) due(now time.Time) []eventState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []eventState
	for _, st := range l.byKey {
		if w, ok := l.take(st, now); ok {
			out = append(out, w)
		}
	}
	return out
}

// take decides one pending write: a new Event at once, an update once
// eventInterval has passed since the last, and either only with a token.
func (l *eventLimiter) take(st *eventState, now time.Time) (eventState, bool) {
	if !st.dirty || (st.name != "" && now.Sub(st.written) < eventInterval) {
		return eventState{}, false
	}
	l.tokens = min(eventBurst, l.tokens+now.Sub(l.filled).Seconds()*eventRate)
	l.filled = now
	if l.tokens < 1 {
		return eventState{}, false
	}
	l.tokens--
	if st.name == "" {
		st.name = eventName(st.obj, st.reason, st.first)
	}
	st.dirty = false
	st.written = now
	return *st, true
}

// failed puts a write that did not happen back, to be retried after
// eventInterval rather than at once.
func (l *eventLimiter) failed(w eventState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.byKey[eventKey{w.obj.kind, w.obj.name, w.reason}]; ok && st.name == w.name {
		st.dirty = true
	}
}

func (l *eventLimiter) evictOldest() {
	var oldest eventKey
	var at time.Time
	for k, st := range l.byKey {
		if at.IsZero() || st.last.Before(at) {
			oldest, at = k, st.last
		}
	}
	delete(l.byKey, oldest)
}

// eventName is stable for one aggregated Event, and differs between
// objects, reasons and Events begun at different times.
func eventName(obj member, reason string, first time.Time) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%s/%d", obj.kind, obj.name, reason, first.UnixNano())
	name := obj.name
	if len(name) > 200 {
		name = name[:200]
	}
	return fmt.Sprintf("%s.%x", name, h.Sum64())
}

// writeEvent creates the Event, or updates its count and message.
func (a *Agent) writeEvent(ctx context.Context, w eventState) error {
	if w.count > 1 {
		patch, err := json.Marshal(map[string]any{
			"count": w.count, "message": w.message, "lastTimestamp": metav1.NewTime(w.last),
		})
		if err != nil {
			return err
		}
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: a.opts.Namespace, Name: w.name}}
		err = a.opts.Writer.Patch(ctx, ev, client.RawPatch(types.MergePatchType, patch))
		if !apierrors.IsNotFound(err) {
			return err
		}
		// Expired (events have a TTL) or never created: create it afresh.
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.opts.Namespace, Name: w.name},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: w.obj.kind,
			Namespace: a.opts.Namespace, Name: w.obj.name, UID: w.obj.uid,
		},
		Reason: w.reason, Message: w.message, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: EventComponent, Host: a.opts.Pod},
		FirstTimestamp: metav1.NewTime(w.first), LastTimestamp: metav1.NewTime(w.last),
		Count: w.count, ReportingController: "ikegate.io/agent", ReportingInstance: a.opts.Pod,
		Action: "Connect",
	}
	err := a.opts.Writer.Create(ctx, ev)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// event reports one occurrence on obj, writing now if the limiter lets it,
// and returns the write it made.
func (a *Agent) event(ctx context.Context, obj member, reason, message string) (eventState, bool) {
	w, ok := a.events.record(obj, reason, message, a.opts.Now())
	if ok {
		a.sendEvent(ctx, w)
	}
	return w, ok
}

// flushEvents writes the aggregated updates that are due.
func (a *Agent) flushEvents(ctx context.Context) {
	for _, w := range a.events.due(a.opts.Now()) {
		a.sendEvent(ctx, w)
	}
}

func (a *Agent) sendEvent(ctx context.Context, w eventState) {
	if err := a.writeEvent(ctx, w); err != nil {
		a.events.failed(w)
		logr.FromContextOrDiscard(ctx).Error(err, "Writing an Event failed", "kind", w.obj.kind, "name", w.obj.name, "reason", w.reason)
	}
}

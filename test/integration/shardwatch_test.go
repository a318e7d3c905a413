package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
)

// shardWatch records when each data key first appeared in one of the
// gateway's credentials Secrets, as a watch of the test's saw it: the
// manager's part of a new user's way to charon.
type shardWatch struct {
	mu    sync.Mutex
	first map[string]time.Time
}

func watchShards(t testing.TB, cfg *rest.Config) *shardWatch {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Secrets(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelGateway + "=" + gatewayName})
	if err != nil {
		cancel()
		t.Fatalf("Watching the credentials Secrets: %v", err)
	}
	sw := &shardWatch{first: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || !credentials.IsShard(gatewayName, s.Name) {
				continue
			}
			now := time.Now()
			sw.mu.Lock()
			for k := range s.Data {
				if _, ok := sw.first[k]; !ok {
					sw.first[k] = now
				}
			}
			sw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return sw
}

// seen returns when key first appeared. The test's watch is a connection
// of its own and may deliver an event after the agent's informers did, so
// it waits up to within for the key.
func (w *shardWatch) seen(key string, within time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		at, ok := w.first[key]
		w.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return at, ok
		}
		time.Sleep(time.Millisecond)
	}
}

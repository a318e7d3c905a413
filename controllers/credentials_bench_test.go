package controllers

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/testenv"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// BenchmarkCredentialsBulkImport creates 10,000 users and their Secrets
// (IKEGATE_BENCH_USERS, comma-separated, overrides) into a gateway the
// manager already serves, from 32 clients at once, and counts the writes of
// each credentials shard until every user's NT hash is in its shard: each
// write reaches every gateway pod, which decodes the whole shard again, so
// the writes of a bulk import should not grow with its size.
//
//	go test -run '^$' -bench CredentialsBulkImport -benchtime 1x ./controllers/
func BenchmarkCredentialsBulkImport(b *testing.B) {
	for _, users := range gen.UserCounts(b, 10000) {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) { bulkImport(b, users) })
	}
}

func bulkImport(b *testing.B, users int) {
	s := testScheme(b)
	cfg, c, _ := testenv.Start(b, testenv.WithScheme(s))
	const ns = "bulk"
	seedGateway(b, c, ns)
	rc := rest.CopyConfig(cfg)
	rc.QPS, rc.Burst = 500, 1000
	startManager(b, rc, s, Options{StatusWorkers: 32})
	w := watchShardWrites(b, cfg, ns, gen.GatewayName)
	// The gateway's own shards first, so that only the import is counted.
	w.waitHashes(b, 0, time.Minute)
	w.reset()

	start := time.Now()
	for i := 0; i < b.N; i++ {
		seedUsers(b, c, ns, i*users, (i+1)*users)
	}
	imported := time.Since(start)
	w.waitHashes(b, b.N*users, 10*time.Minute)
	all := time.Since(start)

	writes, bytes := w.counts()
	slices.Sort(writes)
	total := 0
	for _, n := range writes {
		total += n
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "users imported\timport\tall hashes in their shards\twrites per shard min / median / max\tbytes written (MiB)\t\n")
	fmt.Fprintf(tw, "%d\t%s\t%s\t%d / %d / %d\t%.1f\t\n", b.N*users, imported.Round(10*time.Millisecond), all.Round(10*time.Millisecond),
		writes[0], writes[len(writes)/2], writes[len(writes)-1], float64(bytes)/(1<<20))
	_ = tw.Flush()
	b.ReportMetric(float64(writes[len(writes)-1]), "max-writes/shard")
	b.ReportMetric(float64(total)/float64(len(writes)), "writes/shard")
	b.ReportMetric(all.Seconds(), "s-all-hashes")
}

// shardWrites counts the writes of a gateway's credentials shards that a
// watch sees, and the NT hashes each shard holds.
type shardWrites struct {
	mu     sync.Mutex
	writes [credentials.Shards]int
	bytes  int
	hashes [credentials.Shards]int
	// changed is signalled (without blocking) on every write.
	changed chan struct{}
}

// watchShardWrites watches from the gateway's Secrets as they are now,
// and resumes where it was when the API server ends the watch (it ends
// watchers that fall behind, as a loaded test process can), so that no
// write goes uncounted.
func watchShardWrites(b *testing.B, cfg *rest.Config, ns, gateway string) *shardWrites {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	selector := metav1.ListOptions{LabelSelector: v1alpha1.LabelGateway + "=" + gateway}
	list, err := cs.CoreV1().Secrets(ns).List(ctx, selector)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	sw := &shardWrites{changed: make(chan struct{}, 1)}
	for i := range list.Items {
		if n, ok := credentials.ShardIndex(gateway, list.Items[i].Name); ok {
			sw.record(n, &list.Items[i])
		}
	}
	wt, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector.LabelSelector
			return cs.CoreV1().Secrets(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range wt.ResultChan() {
			if ev.Type == watch.Error {
				b.Errorf("Watching the credentials Secrets: %v", apierrors.FromObject(ev.Object))
				return
			}
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			if i, ok := credentials.ShardIndex(gateway, s.Name); ok {
				sw.record(i, s)
			}
		}
	}()
	b.Cleanup(func() { wt.Stop(); cancel(); <-done })
	return sw
}

func (w *shardWrites) record(i int, s *corev1.Secret) {
	hashes, size := 0, 0
	for k, v := range s.Data {
		size += len(k) + len(v)
		if len(v) == 16 {
			hashes++
		}
	}
	w.mu.Lock()
	w.writes[i]++
	w.bytes += size
	w.hashes[i] = hashes
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *shardWrites) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes, w.bytes = [credentials.Shards]int{}, 0
}

func (w *shardWrites) counts() ([]int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes[:]), w.bytes
}

// waitHashes waits until the shards hold n NT hashes together and every
// shard was written at least once.
func (w *shardWrites) waitHashes(b *testing.B, n int, within time.Duration) {
	deadline := time.After(within)
	for {
		w.mu.Lock()
		got, written := 0, 0
		for i := range w.hashes {
			got += w.hashes[i]
			if w.writes[i] > 0 || n > 0 {
				written++
			}
		}
		w.mu.Unlock()
		if got == n && written == credentials.Shards {
			return
		}
		select {
		case <-w.changed:
		case <-time.After(time.Second):
		case <-deadline:
			b.Fatalf("The shards hold %d NT hashes after %s, want %d", got, within, n)
		}
	}
}

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// planeProfileChunk is the length of each CPU profile of the API server
// taken while samples run: below its 60 s request timeout, and short
// enough to tell a slow spell of samples from the rest.
const planeProfileChunk = 20 * time.Second

// planeProfiles writes the API server's heap profile as a size's samples
// start (apiserver-heap-N.pprof) and its CPU profiles while they run, one
// per planeProfileChunk (apiserver-cpu-N-S.pprof, S the chunk's start in
// seconds since the samples started, the samples' "at"), into the
// directory IKEGATE_BENCH_CPUPROFILES names; without it, nothing. They
// show what the API server does in a slow spell (its garbage collector
// marking a large heap, the watch cache, etcd's client): the part of a
// user's readiness no code of ikegate runs.
func planeProfiles(t testing.TB, cfg *rest.Config, users int) (stop func()) {
	dir := os.Getenv("IKEGATE_BENCH_CPUPROFILES")
	if dir == "" {
		return func() {}
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(ctx context.Context, path, file string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+path, nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			return // the samples ended mid-chunk
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Logf("The API server answered %s to %s", resp.Status, path)
			return
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fetch(ctx, "/debug/pprof/heap", fmt.Sprintf("apiserver-heap-%d.pprof", users))
	first := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			at := int(time.Since(first).Seconds())
			fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(planeProfileChunk.Seconds())), fmt.Sprintf("apiserver-cpu-%d-%03d.pprof", users, at))
		}
	})
	return func() { cancel(); wg.Wait() }
}

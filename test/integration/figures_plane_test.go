package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	host := strings.TrimSuffix(cfg.Host, "/")
	// fetch reports whether it got the profile: a refusal is not asked
	// again, lest the loop below hammer the API server being measured.
	fetch := func(ctx context.Context, path, file string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, host+path, nil)
		if err != nil {
			t.Error(err)
			return false
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false // the samples ended mid-chunk
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("The API server answered %s to %s", resp.Status, path)
			return false
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			t.Error(err)
			return false
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err == nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if !fetch(ctx, "/debug/pprof/heap", fmt.Sprintf("apiserver-heap-%d.pprof", users)) {
		cancel()
		return func() {}
	}
	first := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		chunk := fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(planeProfileChunk.Seconds()))
		for ok := true; ok && ctx.Err() == nil; {
			ok = fetch(ctx, chunk, fmt.Sprintf("apiserver-cpu-%d-%03d.pprof", users, int(time.Since(first).Seconds())))
		}
	})
	return func() { cancel(); wg.Wait() }
}

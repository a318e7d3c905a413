package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/ikegate/ikegate/internal/testutil/kube"
)

// fileLogger is a logger that writes to a new file name in dir, so that the
// components' logs can be read while the demo runs without burying its
// narration. The file is closed when the test ends: open it before starting
// the component, so that its cleanup runs after the component's stop.
func fileLogger(t *testing.T, dir, name string) (logr.Logger, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return zap.New(zap.WriteTo(f)), path
}

// freeLocalAddr is a localhost address whose port is free now, for a
// server that binds it itself (the manager's metrics server takes an
// address, not a listener).
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	must(t, l.Close())
	return addr
}

// serveMetrics serves g's metrics over plain HTTP on a free localhost port
// until the test ends, as the agent's --metrics-bind-address does in the
// pod, and returns their URL.
func serveMetrics(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("agent metrics server: %v", err)
		}
	})
	return "http://" + l.Addr().String() + "/metrics"
}

// requireMetric waits until a scrape of url has a sample line starting with
// prefix (a metric name, and labels or a value if they matter).
func requireMetric(t *testing.T, what, url, prefix string) {
	t.Helper()
	kube.Eventually(t, what+" serve "+prefix, 30*time.Second, func() error {
		body, err := scrape(url)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, prefix) {
				return nil
			}
		}
		return fmt.Errorf("no sample %q at %s", prefix, url)
	})
}

func scrape(url string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// requireLogged fails unless the component wrote to its log file.
func requireLogged(t *testing.T, what, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() == 0 {
		t.Fatalf("%s wrote nothing to %s", what, path)
	}
}

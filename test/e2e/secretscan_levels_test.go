package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

// defaultLogging leaves the gateway's logging at its default.
func defaultLogging(gw *unstructured.Unstructured) {
	unstructured.RemoveNestedField(gw.Object, "spec", "logging")
}

// diagnosticLogging asks for Diagnostic in every subsystem, without the
// opt-in to decrypted payloads: the most a gateway logs without a field
// that says "unsafe".
func diagnosticLogging() v1alpha1.Logging {
	d := v1alpha1.LogLevel("Diagnostic")
	return v1alpha1.Logging{
		Default: d, Daemon: d, Manager: d, IKE: d, Child: d, Job: d, Config: d, Kernel: d,
		Network: d, ASN: d, Encoding: d, TLS: d, ESP: d, Library: d,
	}
}

// stderrLogger is the pod log's logger in a rendered strongswan.conf.
var stderrLogger = regexp.MustCompile(`(?m)^\s*stderr \{\n((?:\s*\w+ = \S+\n)*)\s*\}`)

// renderedLevels waits until the gateway's charon ConfigMap holds a
// strongswan.conf other than not (empty: any) and returns it with the
// levels of its stderr logger, which charon writes the pod's log with
// (an empty map: charon's defaults).
func renderedLevels(t *testing.T, ctx context.Context, c client.Client, not string) (string, map[string]int) {
	t.Helper()
	var conf string
	levels := map[string]int{}
	kube.Eventually(t, "the gateway's strongswan.conf is rendered", 30*time.Second, func() error {
		var cm corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName + "-charon"}, &cm); err != nil {
			return err
		}
		conf = cm.Data[v1alpha1.StrongswanConfKey]
		if conf == "" || conf == not {
			return errors.New("not rendered yet, or not changed")
		}
		return nil
	})
	m := stderrLogger.FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("The gateway's strongswan.conf has no stderr logger:\n%s", conf)
	}
	for _, line := range strings.Split(strings.TrimSpace(m[1]), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " = ")
		if k == "ike_name" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("Level %q of %s in the gateway's strongswan.conf: %v", v, k, err)
		}
		levels[k] = n
	}
	return conf, levels
}

// setLogging changes the gateway's logging.
func setLogging(t *testing.T, ctx context.Context, c client.Client, l v1alpha1.Logging) {
	t.Helper()
	gw := &v1alpha1.VPNGateway{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gatewayName}, gw))
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.Logging = l
	if err := c.Patch(ctx, gw, patch); err != nil {
		t.Fatal(fmt.Errorf("changing the gateway's logging: %w", err))
	}
}

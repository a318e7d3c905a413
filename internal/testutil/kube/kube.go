// Package kube holds small helpers for tests against a real API server.
package kube

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ikegate/ikegate/internal/testutil/poll"
)

// DecodeFiles reads every object of the (multi-document) YAML or JSON files,
// in file order, skipping empty documents.
func DecodeFiles(t testing.TB, files ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) != 0 {
				out = append(out, u)
			}
		}
	}
	return out
}

// Eventually polls cond every poll.DefaultInterval until it returns nil,
// and fails the test with cond's last error once timeout has passed.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	poll.Eventually(t, what, timeout, cond)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ikegate/ikegate/internal/apivalidation"
)

// The CRDs' validators are built once per process: compiling the CEL
// rules of four CRDs is the costly part.
var crdValidator = sync.OnceValues(apivalidation.New)

// validateManifests checks every ikegate.io document of data as the API
// server checks it on create, so that render refuses what `kubectl apply`
// would refuse, with the API server's message. Other kinds (Secrets) are
// left to the API server.
func validateManifests(ctx context.Context, data []byte, source string) error {
	v, err := crdValidator()
	if err != nil {
		return err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var errs []error
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return errors.Join(errs...)
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		// Decoded as the API server decodes JSON: integers as int64, which
		// CEL's int type needs.
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		var obj map[string]any
		if err := kjson.Unmarshal(js, &obj); err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if len(obj) == 0 || !v.Handles(u.GroupVersionKind()) {
			continue
		}
		// kubectl apply puts an object without a namespace into the
		// context's namespace; any valid one stands for it here.
		if u.GetNamespace() == "" {
			u.SetNamespace("default")
		}
		if err := v.Validate(ctx, u); err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", source, n, err))
		}
	}
}

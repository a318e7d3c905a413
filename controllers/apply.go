package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// applyObject writes obj with server-side apply under the manager's field
// owner. The typed object is sent without status and server-set metadata,
// so the manager owns exactly the fields it builds and nothing it doesn't.
func applyObject(ctx context.Context, c client.Client, obj client.Object) error {
	u, err := toApplyConfig(obj)
	if err != nil {
		return err
	}
	delete(u.Object, "status")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1alpha1.ManagerFieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// applyStatus writes only name, namespace and status: the fields the manager
// owns in the status subresource. Agents own their entries under their own
// field owners, so they must not appear in status here.
func applyStatus(ctx context.Context, c client.Client, obj client.Object) error {
	return applyStatusAs(ctx, c, obj, v1alpha1.ManagerFieldOwner)
}

// applyStatusAs is applyStatus under another of the manager's field owners,
// for a reconciler that reports on fields another one does not.
func applyStatusAs(ctx context.Context, c client.Client, obj client.Object, owner string) error {
	u, err := toApplyConfig(obj)
	if err != nil {
		return err
	}
	status, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status")
	slim := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
		"metadata":   map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()},
		"status":     status,
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(slim), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying status of %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

func toApplyConfig(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, fmt.Errorf("%T %s has no apiVersion/kind", obj, obj.GetName())
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(u.Object, "metadata", "uid")
	unstructured.RemoveNestedField(u.Object, "metadata", "generation")
	return u, nil
}

// Package apivalidation validates ikegate.io objects offline the way the
// API server does on create: the same code of k8s.io/apiextensions-apiserver
// runs over the embedded generated CRDs (OpenAPI schema, formats, list types,
// CEL rules, object metadata), after the same pruning of unknown fields and
// defaulting, so an object refused here is refused by `kubectl apply` with
// the same message, and the other way round.
package apivalidation

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/yaml"

	"github.com/ikegate/ikegate/config/crd"
)

// Validator checks objects of the kinds its CRDs define.
type Validator struct {
	kinds map[schema.GroupVersionKind]*served
}

// served is what the API server builds per CRD version to serve it.
type served struct {
	structural *structuralschema.Structural
	strategy   rest.RESTCreateStrategy
	prepare    func(context.Context, runtime.Object)
}

// New reads the CRDs embedded from config/crd/bases.
func New() (*Validator, error) {
	v := &Validator{kinds: map[schema.GroupVersionKind]*served{}}
	err := fs.WalkDir(crd.Bases, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := crd.Bases.ReadFile(p)
		if err != nil {
			return err
		}
		var c apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return v.add(&c)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded CRDs: %w", err)
	}
	return v, nil
}

// add builds the structural schema, schema validator and create strategy
// of every version, as the apiextensions-apiserver's handler does.
func (v *Validator) add(c *apiextensionsv1.CustomResourceDefinition) error {
	for _, ver := range c.Spec.Versions {
		if ver.Schema == nil {
			continue
		}
		internal := &apiextensionsinternal.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(ver.Schema, internal, nil); err != nil {
			return err
		}
		s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
		if err != nil {
			return fmt.Errorf("CRD %s version %s: %w", c.Name, ver.Name, err)
		}
		s = s.DeepCopy()
		if err := structuraldefaulting.PruneDefaults(s); err != nil {
			return err
		}
		schemaValidator, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
		if err != nil {
			return err
		}
		var status *apiextensionsinternal.CustomResourceSubresourceStatus
		if ver.Subresources != nil && ver.Subresources.Status != nil {
			status = &apiextensionsinternal.CustomResourceSubresourceStatus{}
		}
		gvk := schema.GroupVersionKind{Group: c.Spec.Group, Version: ver.Name, Kind: c.Spec.Names.Kind}
		// The status validator only serves the status subresource, which
		// objects from files never go through.
		st := customresource.NewStrategy(unstructuredTyper{}, c.Spec.Scope == apiextensionsv1.NamespaceScoped,
			gvk, schemaValidator, nil, s, status, nil, ver.SelectableFields)
		v.kinds[gvk] = &served{structural: s, strategy: st, prepare: st.PrepareForCreate}
	}
	return nil
}

// Handles tells whether the CRDs define obj's kind.
func (v *Validator) Handles(gvk schema.GroupVersionKind) bool { return v.kinds[gvk] != nil }

// Validate returns the error the API server gives when obj is created, or
// nil. obj itself is left as it is.
func (v *Validator) Validate(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	sv := v.kinds[gvk]
	if sv == nil {
		return fmt.Errorf("no CRD defines %s", gvk)
	}
	u := obj.DeepCopy()
	// kubectl asks for strict field validation: unknown fields are errors
	// found while decoding, before any validation.
	unknown := structuralpruning.PruneWithOptions(u.Object, sv.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	if len(unknown) > 0 {
		msgs := make([]string, len(unknown))
		for i, p := range unknown {
			msgs[i] = fmt.Sprintf("unknown field %q", p)
		}
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: strict decoding error: %s",
			gvk.Kind, gvk.Version, gvk.Kind, strings.Join(msgs, ", ")))
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, sv.structural)
	structuraldefaulting.Default(u.Object, sv.structural)
	sv.prepare(ctx, u)
	if errs := rest.ValidateCreate(ctx, u, sv.strategy); len(errs) > 0 {
		return apierrors.NewInvalid(gvk.GroupKind(), u.GetName(), errs)
	}
	return nil
}

// unstructuredTyper types unstructured objects by their apiVersion and kind.
type unstructuredTyper struct{}

func (unstructuredTyper) ObjectKinds(obj runtime.Object) ([]schema.GroupVersionKind, bool, error) {
	return []schema.GroupVersionKind{obj.GetObjectKind().GroupVersionKind()}, false, nil
}
func (unstructuredTyper) Recognizes(schema.GroupVersionKind) bool { return true }

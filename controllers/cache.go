package controllers

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"unique"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// lastApplied is kubectl's copy of the whole object; for a Secret applied
// from a manifest it holds the plain values a second time.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// CacheOptions keep the manager's memory proportional to what it reads:
// objects the manager makes are cached only when they carry its label, no
// object keeps its managedFields or kubectl's last-applied copy, and
// Secrets are cached as metadata only (secretMetadata): what the manager
// needs of their data it reads from the API server (secretReads). With
// namespaces, namespaced objects are watched (and need RBAC) in those
// namespaces only; cluster-scoped ones (Nodes, ClusterIssuers) are still
// watched cluster-wide.
func CacheOptions(namespaces ...string) cache.Options {
	ours := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "ikegate"})}
	var watched map[string]cache.Config
	for _, ns := range namespaces {
		if watched == nil {
			watched = map[string]cache.Config{}
		}
		watched[ns] = cache.Config{}
	}
	return cache.Options{
		DefaultNamespaces: watched,
		DefaultTransform:  trimObject,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.StatefulSet{}:           ours,
			&corev1.ConfigMap{}:             ours,
			&corev1.Service{}:               ours,
			&rbacv1.Role{}:                  ours,
			&policyv1.PodDisruptionBudget{}: ours,
			&cmv1.Certificate{}:             ours,
			// The options apply by kind, so to the metadata informer too.
			secretMetadata(): {Field: readSecretTypes()},
		},
	}
}

// secretMetadata is the object of the manager's Secret informer, watches
// and cache reads: a Secret without its data. Reading a *corev1.Secret
// from the manager's cache would start an informer holding the data of
// every Secret of the cluster; read those from the API server instead.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// readSecretTypes selects every Secret type but the unread ones.
func readSecretTypes() fields.Selector {
	var not []fields.Selector
	for _, t := range slices.Sorted(maps.Keys(unreadSecretTypes)) {
		not = append(not, fields.OneTermNotEqualSelector("type", string(t)))
	}
	return fields.AndSelectors(not...)
}

// trimObject drops what no reader of the cache uses and shares the strings
// that thousands of objects repeat: a decoded object has its own copy of
// every string, and with 100,000 users the same namespace, labels,
// condition reasons and messages would be held 100,000 times.
func trimObject(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		delete(a, lastApplied)
		m.SetAnnotations(internKeys(a))
	}
	m.SetNamespace(intern(m.GetNamespace()))
	m.SetLabels(labelSets.share(m.GetLabels()))
	if refs := m.GetOwnerReferences(); len(refs) > 0 {
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind = intern(refs[i].APIVersion), intern(refs[i].Kind)
		}
	}
	if u, ok := obj.(*v1alpha1.VPNUser); ok {
		// The agents' account of each session: the manager writes a
		// user's status under a field owner of its own and never reads it.
		u.Status.Sessions = nil
		u.Spec.GatewayRef.Name = intern(u.Spec.GatewayRef.Name)
		if r := u.Spec.PasswordSecretRef; r != nil {
			r.Key = intern(r.Key)
		}
		internConditions(u.Status.Conditions)
	}
	return obj, nil
}

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// labelSets shares the label maps of the cached objects: a map costs some
// 330 bytes however few its labels, and users are labelled by group, profile
// Secrets by gateway, so thousands of objects carry one of a few sets. The
// shared maps are read only, like every object of the cache: readers get
// deep copies, and those that skip the copy (UnsafeDisableDeepCopy, event
// handlers) must not modify what they read anyway.
var labelSets = &mapSets{max: 1024}

// mapSets hands out one map per distinct content. Its memory is bounded
// (max sets: past it, it starts over) rather than weak: sets no object
// holds any more are dropped only then, and labels unique to each object
// (a user's number, say) share nothing and only make it start over more
// often.
type mapSets struct {
	max  int
	mu   sync.Mutex
	sets map[string]map[string]string
}

func (s *mapSets) share(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	key := setKey(in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if out, ok := s.sets[key]; ok {
		return out
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[intern(k)] = intern(v)
	}
	if s.sets == nil || len(s.sets) >= s.max {
		s.sets = map[string]map[string]string{}
	}
	s.sets[key] = out
	return out
}

// setKey is a map's content as one string: sorted keys and values, each
// followed by a zero byte, which neither may contain.
func setKey(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return b.String()
}

// internKeys shares an annotation map's keys (values such as a profile's
// hash are each object's own).
func internKeys(in map[string]string) map[string]string {
	if len(in) == 0 {
		// kubectl's copy was often the only one: an empty map still costs
		// some 300 bytes.
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[intern(k)] = v
	}
	return out
}

func internConditions(cs []metav1.Condition) {
	for i := range cs {
		c := &cs[i]
		c.Type, c.Status, c.Reason, c.Message = intern(c.Type), metav1.ConditionStatus(intern(string(c.Status))), intern(c.Reason), intern(c.Message)
	}
}

// unreadSecretTypes are Secret types no ikegate object can reference
// meaningfully: service account tokens, registry credentials, bootstrap
// tokens and Helm's releases (whole manifests, often the largest Secrets of
// a cluster). Neither the cache nor a list of a namespace's Secrets holds
// them; a reference to one reads as a Secret that does not exist.
var unreadSecretTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeServiceAccountToken: true,
	corev1.SecretTypeDockercfg:           true,
	corev1.SecretTypeDockerConfigJson:    true,
	corev1.SecretTypeBootstrapToken:      true,
	"helm.sh/release.v1":                 true,
}

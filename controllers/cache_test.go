package controllers

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// The cache keeps no managedFields, no kubectl copy and no sessions of a
// user (the agents' account, which the manager never reads), and two users hold
// one copy of the strings they share, however each was decoded, and one map
// of the labels they share.
func TestTrimObject(t *testing.T) {
	// Strings built at run time, as a decoder makes them: each its own.
	fresh := func(s string) string { return strings.Clone(s) }
	user := func(name string) *v1alpha1.VPNUser {
		u := gen.User(fresh(gen.Namespace), name, v1alpha1.Identity(name+"@example.com"), gen.WithLabels(map[string]string{fresh("team"): fresh("sales")}))
		u.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
		u.Annotations = map[string]string{lastApplied: `{"spec":{}}`, fresh("note"): "kept"}
		u.Status.Sessions = []v1alpha1.Session{{}}
		u.Status.Conditions = []metav1.Condition{{Type: fresh(v1alpha1.ConditionValid), Status: metav1.ConditionTrue, Reason: fresh(v1alpha1.ReasonReady), Message: fresh("the user is valid")}}
		out, err := trimObject(u)
		if err != nil {
			t.Fatal(err)
		}
		return out.(*v1alpha1.VPNUser)
	}
	a, b := user("alice"), user("bob")
	if a.ManagedFields != nil || a.Annotations[lastApplied] != "" || a.Annotations["note"] != "kept" || a.Status.Sessions != nil {
		t.Errorf("metadata after trim: %+v", a.ObjectMeta)
	}
	same := func(what, x, y string) {
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: %q and %q are not one string", what, x, y)
		}
	}
	same("namespace", a.Namespace, b.Namespace)
	same("label value", a.Labels["team"], b.Labels["team"])
	same("condition message", a.Status.Conditions[0].Message, b.Status.Conditions[0].Message)
	same("password key", a.Spec.PasswordSecretRef.Key, b.Spec.PasswordSecretRef.Key)
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() {
		t.Error("two users with the same labels hold a map each")
	}
	if c := user("carol"); reflect.ValueOf(c.Labels).UnsafePointer() != reflect.ValueOf(a.Labels).UnsafePointer() || len(c.Labels) != 1 {
		t.Errorf("a third user's labels: %v", c.Labels)
	}

	s := secretMetadata()
	s.ObjectMeta = metav1.ObjectMeta{Namespace: fresh(gen.Namespace), Name: "jimp", Annotations: map[string]string{lastApplied: `{"data":{"password":"YWJj"}}`}}
	out, _ := trimObject(s)
	if m := out.(*metav1.PartialObjectMetadata); m.Annotations[lastApplied] != "" || m.Kind != "Secret" || m.APIVersion != corev1.SchemeGroupVersion.String() {
		t.Errorf("Secret metadata after trim: %+v", m)
	}
}

package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func fakeReader(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fakeReaderWith(t, fake.NewClientBuilder(), objs...)
}

// fakeSecretLister is fakeReader whose lists of Secrets ignore their field
// selector, which the fake client cannot evaluate: the type exclusions
// secretReads asks for when it lists a namespace.
func fakeSecretLister(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fakeReaderWith(t, fake.NewClientBuilder().WithInterceptorFuncs(secretListsIgnoreFields), objs...)
}

// secretListsIgnoreFields drops the field selector of lists of Secrets.
var secretListsIgnoreFields = interceptor.Funcs{
	List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*corev1.SecretList); ok {
			var lo client.ListOptions
			lo.ApplyOptions(opts)
			lo.FieldSelector = nil
			return c.List(ctx, list, &lo)
		}
		return c.List(ctx, list, opts...)
	},
}

func fakeReaderWith(t *testing.T, b *fake.ClientBuilder, objs ...client.Object) client.WithWatch {
	t.Helper()
	b = b.WithScheme(testScheme(t)).WithObjects(objs...)
	b = b.WithIndex(&v1alpha1.MobilePool{}, indexGateway, func(o client.Object) []string { return []string{o.(*v1alpha1.MobilePool).Spec.GatewayRef.Name} })
	b = b.WithIndex(&v1alpha1.VPNUser{}, indexGateway, func(o client.Object) []string { return []string{o.(*v1alpha1.VPNUser).Spec.GatewayRef.Name} })
	b = b.WithIndex(&v1alpha1.Tunnel{}, indexGateway, func(o client.Object) []string { return []string{o.(*v1alpha1.Tunnel).Spec.GatewayRef.Name} })
	return b.Build()
}

// TestMembersInsecureAlgorithm covers what the API's CEL rules cannot: a
// pool stored before the rule existed (the fake client validates nothing,
// like an API server with older CRDs) still gets InsecureAlgorithm.
func TestMembersInsecureAlgorithm(t *testing.T) {
	legacy := gen.Pool(gen.Namespace, "legacy", "10.9.0.0/24", gen.Stored, gen.WithESPPreset(v1alpha1.PresetLegacy))
	c := fakeReader(t, gateway(), legacy, gen.Pool(gen.Namespace, "staff", "10.3.200.0/24", gen.Stored, gen.WithESPPreset(v1alpha1.PresetModern)),
		gen.User(gen.Namespace, "jimp", "jimp@example.com", gen.Stored), gen.Secret(gen.Namespace, "jimp", map[string]string{"password": "abc123"}))
	bc := newBuildCache(c, func() time.Time { return now }, newSecretReads(c, c))
	b, err := bc.get(context.Background(), types.NamespacedName{Namespace: "vpn", Name: "vpn"})
	if err != nil {
		t.Fatal(err)
	}
	valid := validCondition(b.Problems[objectKey{"MobilePool", "legacy"}])
	if valid.Status != metav1.ConditionFalse || valid.Reason != v1alpha1.ReasonInsecureAlgorithm || !strings.Contains(valid.Message, "allowInsecureAlgorithms") {
		t.Fatalf("legacy pool Valid = %+v, want InsecureAlgorithm naming allowInsecureAlgorithms", valid)
	}
	t.Logf("legacy pool: %s: %s", valid.Reason, valid.Message)
	if p := b.Problems[objectKey{"MobilePool", "staff"}]; len(p) != 0 {
		t.Errorf("staff pool has problems %v", p)
	}
	rec := events.NewFakeRecorder(4)
	announce(rec, nil, legacy, nil, valid)
	select {
	case e := <-rec.Events:
		if !strings.HasPrefix(e, "Warning InsecureAlgorithm") {
			t.Errorf("event %q, want a Warning InsecureAlgorithm", e)
		}
	default:
		t.Error("no Warning event")
	}
	// The same verdict again is no news.
	announce(rec, nil, legacy, []metav1.Condition{valid}, valid)
	if len(rec.Events) != 0 {
		t.Errorf("repeated condition produced event %q", <-rec.Events)
	}
}

// TestBuildCacheInvalidation shows a build is reused until an event bumps
// its gateway, and that a user's expiry ends its validity without one.
func TestBuildCacheInvalidation(t *testing.T) {
	clock := now
	expires := metav1.NewTime(now.Add(time.Hour))
	c := fakeReader(t, gateway(), gen.Pool(gen.Namespace, "staff", "10.3.200.0/24", gen.Stored, gen.WithESPPreset(v1alpha1.PresetModern)),
		gen.User(gen.Namespace, "jimp", "jimp@example.com", gen.Stored, func(u *v1alpha1.VPNUser) { u.Spec.ExpiresAt = &expires }),
		gen.Secret(gen.Namespace, "jimp", map[string]string{"password": "abc123"}))
	bc := newBuildCache(c, func() time.Time { return clock }, newSecretReads(c, c))
	key := types.NamespacedName{Namespace: "vpn", Name: "vpn"}
	ctx := context.Background()

	first, err := bc.get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Problems) != 0 || !first.NextExpiry.Equal(expires.Time) {
		t.Fatalf("problems %v next expiry %v", first.Problems, first.NextExpiry)
	}
	if err := c.Delete(ctx, gen.Secret(gen.Namespace, "jimp", nil)); err != nil {
		t.Fatal(err)
	}
	if again, _ := bc.get(ctx, key); again != first {
		t.Error("build redone without an invalidation")
	}
	bc.invalidate(key)
	second, err := bc.get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := second.problemsOf(objectKey{"VPNUser", "jimp"}); len(p) != 1 || p[0].Reason != v1alpha1.ReasonSecretNotFound {
		t.Errorf("after deleting the Secret: %v", p)
	}
	clock = now.Add(2 * time.Hour)
	third, err := bc.get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if third == second {
		t.Error("build reused past a user's expiry")
	}
}

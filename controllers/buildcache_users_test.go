package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// TestBuildCacheUserChangesAgreeWithBuild makes random changes of single
// users and of their password Secrets, records each as the mappers do, and
// checks that what the cache then holds of every user equals a whole build
// of the same objects. Both paths must be taken: changes the cache decides
// alone and changes that need the whole build.
func TestBuildCacheUserChangesAgreeWithBuild(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { userChangesAgree(t, seed) })
	}
}

func userChangesAgree(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	objs := []client.Object{gateway(),
		gen.Pool(gen.Namespace, "staff", "10.3.200.0/24", gen.Stored, gen.WithESPPreset(v1alpha1.PresetModern)),
		gen.Pool(gen.Namespace, "ops", "10.3.201.0/24", gen.Stored, gen.WithESPPreset(v1alpha1.PresetModern), gen.Selecting(map[string]string{"team": "ops"}))}
	const users = 30
	for i := range users {
		name := fmt.Sprintf("u%02d", i)
		objs = append(objs, gen.User(gen.Namespace, name, v1alpha1.Identity(name+"@example.com"), gen.Stored),
			gen.Secret(gen.Namespace, name, map[string]string{gen.PasswordKey: "pw-" + name}))
	}
	c := fakeSecretLister(t, objs...)
	clock := func() time.Time { return now }
	bc := newBuildCache(c, clock, newSecretReads(c, c))
	key := types.NamespacedName{Namespace: gen.Namespace, Name: gen.GatewayName}
	if _, err := bc.get(ctx, key); err != nil {
		t.Fatal(err)
	}
	alone, whole := 0, 0
	for step := range 200 {
		before, err := bc.get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		what := changeOne(t, ctx, c, rng, users, func(name string) { bc.userChanged(key, name) })
		after, err := bc.get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if after.epoch == before.epoch {
			alone++
		} else {
			whole++
		}
		fresh, err := newBuildCache(c, clock, newSecretReads(c, c)).get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for i := range users + 2 {
			name := fmt.Sprintf("u%02d", i)
			if d := userDifference(after, fresh, name); d != "" {
				t.Fatalf("step %d (%s), user %s: %s", step, what, name, d)
			}
		}
	}
	t.Logf("seed %d: %d changes decided alone, %d by a whole build", seed, alone, whole)
	if alone == 0 || whole == 0 {
		t.Fatalf("alone %d, whole %d: both paths must be taken", alone, whole)
	}
}

// changeOne makes one random change and calls changed with each user whose
// verdict it may change, as the user and Secret mappers do.
func changeOne(t *testing.T, ctx context.Context, c client.Client, rng *rand.Rand, users int, changed func(string)) string {
	t.Helper()
	name := fmt.Sprintf("u%02d", rng.IntN(users+2))
	u := &v1alpha1.VPNUser{}
	err := c.Get(ctx, types.NamespacedName{Namespace: gen.Namespace, Name: name}, u)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	var what string
	switch op := rng.IntN(9); {
	case !exists || op == 0:
		what = "create or delete"
		if exists {
			must(t, c.Delete(ctx, u))
		} else {
			must(t, c.Create(ctx, gen.User(gen.Namespace, name, v1alpha1.Identity(name+"@example.com"), gen.Stored)))
		}
	case op == 1:
		what = "disabled toggled"
		u.Spec.Disabled = !u.Spec.Disabled
		must(t, c.Update(ctx, u))
	case op == 2:
		what = "identity shared or own"
		u.Spec.Identity = v1alpha1.Identity(fmt.Sprintf("u%02d@example.com", rng.IntN(users)))
		must(t, c.Update(ctx, u))
	case op == 3:
		what = "team label"
		if u.Labels["team"] == "" {
			u.Labels = map[string]string{"team": "ops"}
		} else {
			u.Labels = nil
		}
		must(t, c.Update(ctx, u))
	case op == 4:
		what = "expired or not"
		if u.Spec.ExpiresAt == nil {
			past := metav1.NewTime(now.Add(-time.Hour))
			u.Spec.ExpiresAt = &past
		} else {
			u.Spec.ExpiresAt = nil
		}
		must(t, c.Update(ctx, u))
	case op == 5:
		what = "static address"
		if u.Spec.StaticAddress == "" {
			u.Spec.StaticAddress = v1alpha1.IPAddress(fmt.Sprintf("10.3.200.%d", 100+rng.IntN(50)))
		} else {
			u.Spec.StaticAddress = ""
		}
		must(t, c.Update(ctx, u))
	default:
		what = "password Secret"
		changeSecret(t, ctx, c, rng, u.Spec.PasswordSecretRef.Name)
	}
	changed(name)
	// Every user sharing the Secret changes with it too.
	if what == "password Secret" {
		var list v1alpha1.VPNUserList
		must(t, c.List(ctx, &list))
		for _, o := range list.Items {
			if o.Name != name && o.Spec.PasswordSecretRef.Name == u.Spec.PasswordSecretRef.Name {
				changed(o.Name)
			}
		}
	}
	return what
}

func changeSecret(t *testing.T, ctx context.Context, c client.Client, rng *rand.Rand, name string) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: gen.Namespace, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err):
		must(t, c.Create(ctx, gen.Secret(gen.Namespace, name, map[string]string{gen.PasswordKey: fmt.Sprint("pw-", rng.Int())})))
	case err != nil:
		t.Fatal(err)
	case rng.IntN(3) == 0:
		must(t, c.Delete(ctx, s))
	case rng.IntN(2) == 0:
		s.Data = map[string][]byte{"other": []byte("x")}
		must(t, c.Update(ctx, s))
	default:
		s.Data = map[string][]byte{gen.PasswordKey: fmt.Append(nil, "pw-", rng.Int())}
		must(t, c.Update(ctx, s))
	}
}

// userDifference says how two builds differ on one user, "" when not.
func userDifference(got, want *gatewayBuild, name string) string {
	gp, gk := got.problemsOf(objectKey{swan.KindVPNUser, name})
	wp, wk := want.problemsOf(objectKey{swan.KindVPNUser, name})
	if gk != wk {
		return fmt.Sprintf("known %v, a whole build %v", gk, wk)
	}
	reasons := func(ps []swan.Problem) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Reason+": "+p.Message)
		}
		slices.Sort(out)
		return out
	}
	if g, w := reasons(gp), reasons(wp); !slices.Equal(g, w) {
		return fmt.Sprintf("problems %q, a whole build %q", g, w)
	}
	ga, _ := got.acceptedUser(name)
	wa, _ := want.acceptedUser(name)
	if (ga == nil) != (wa == nil) || (ga != nil && *ga != *wa) {
		return fmt.Sprintf("served %+v, a whole build %+v", ga, wa)
	}
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

// A Secret's change concerns the gateways of the users that reference it,
// not those of other users whose Secrets share its index bucket.
func TestGatewaysReferencingASecretSharingItsBucket(t *testing.T) {
	twin := ""
	for i := 0; twin == ""; i++ {
		if n := fmt.Sprintf("secret-%d", i); secretBucket(n) == secretBucket("jimp") {
			twin = n
		}
	}
	onGateway := func(gw string) func(*v1alpha1.VPNUser) {
		return func(u *v1alpha1.VPNUser) { u.Spec.GatewayRef.Name = gw }
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithObjects(
			gen.User(gen.Namespace, "jimp", "jimp@example.com", onGateway("east")),
			gen.User(gen.Namespace, "jimp-phone", "jimp-phone@example.com", onGateway("north"), gen.WithPassword("jimp", gen.PasswordKey)),
			gen.User(gen.Namespace, "alice", "alice@example.com", onGateway("west"), gen.WithPassword(twin, gen.PasswordKey)),
			gen.User("elsewhere", "jimp", "jimp@example.com", onGateway("south")),
		).
		WithIndex(&v1alpha1.VPNUser{}, indexUserSecretBuckets, userSecretBuckets).
		WithIndex(&v1alpha1.VPNGateway{}, indexSecrets, func(client.Object) []string { return nil }).
		WithIndex(&v1alpha1.Tunnel{}, indexSecrets, func(client.Object) []string { return nil }).
		Build()
	for secret, want := range map[string][]string{"jimp": {"east", "north"}, twin: {"west"}, "nobody": nil} {
		var got []string
		for _, gw := range gatewaysReferencing(context.Background(), c, gen.Secret(gen.Namespace, secret, nil)) {
			if gw.Namespace != gen.Namespace {
				t.Errorf("Secret %s: gateway %s of another namespace", secret, gw)
			}
			got = append(got, gw.Name)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("gateways referencing Secret %s (-want +got):\n%s", secret, diff)
		}
	}
}

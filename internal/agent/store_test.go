package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestSecretEventsTriggerOnlyWhenReferenced(t *testing.T) {
	st := newStores("vpn-tls")
	triggers := 0
	trigger := func() { triggers++ }
	users := st.users.handler(func() {})
	secrets := secretHandler(st.secrets, st.referenced, trigger)
	secret := func(name, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	expect := func(what string, want int) {
		t.Helper()
		if triggers != want {
			t.Errorf("%s: %d triggers, want %d", what, triggers, want)
		}
	}

	secrets.OnAdd(secret("unrelated", "1"), false)
	secrets.OnUpdate(secret("unrelated", "1"), secret("unrelated", "2"))
	expect("an unrelated Secret", 0)
	if _, ok := st.secrets.get("unrelated"); !ok {
		t.Error("An unrelated Secret must still be stored: a new user may reference it")
	}

	secrets.OnAdd(secret("vpn-tls", "1"), false)
	expect("the certificate Secret", 1)

	alice, _ := user("alice")
	users.OnAdd(alice, false)
	secrets.OnUpdate(secret("alice", "1"), secret("alice", "2"))
	expect("a user's password changed", 2)

	// Two users share a Secret; it matters until both are gone.
	bob, _ := user("bob")
	bob.Spec.PasswordSecretRef.Name = "alice"
	users.OnAdd(bob, false)
	users.OnDelete(alice)
	secrets.OnUpdate(secret("alice", "2"), secret("alice", "3"))
	expect("a Secret one of two users still references", 3)
	users.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "vpn/bob", Obj: bob})
	secrets.OnDelete(secret("alice", "3"))
	expect("a Secret nobody references any more", 3)

	st.tunnels.set(&v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Name: "hq"}, Spec: v1alpha1.TunnelSpec{
		Auth: v1alpha1.TunnelAuth{PSK: &v1alpha1.PSKAuth{SecretRef: v1alpha1.SecretKeyReference{Name: "hq-psk"}}}}})
	st.gateways.set(&v1alpha1.VPNGateway{ObjectMeta: metav1.ObjectMeta{Name: "vpn"}, Spec: v1alpha1.VPNGatewaySpec{
		ClientAuth: v1alpha1.ClientAuth{RADIUS: &v1alpha1.RADIUSSettings{Servers: []v1alpha1.RADIUSServer{{SecretRef: v1alpha1.SecretKeyReference{Name: "radius"}}}}}}})
	secrets.OnAdd(secret("hq-psk", "1"), false)
	secrets.OnAdd(secret("radius", "1"), false)
	expect("Secrets of a tunnel and of the gateway", 5)
}

package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// The informers hold only the credentials and the certificate Secret, so
// each real change of either must reach charon, and a resync must not.
func TestSecretEventsTrigger(t *testing.T) {
	st := newStores()
	triggers := 0
	secrets := st.secrets.handler(func(string) { triggers++ })
	secret := func(name, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	expect := func(what string, want int) {
		t.Helper()
		if triggers != want {
			t.Errorf("%s: %d triggers, want %d", what, triggers, want)
		}
	}
	secrets.OnAdd(secret("vpn-agent-credentials", "1"), false)
	secrets.OnAdd(secret("vpn-tls", "1"), false)
	expect("both Secrets listed", 2)
	secrets.OnUpdate(secret("vpn-agent-credentials", "1"), secret("vpn-agent-credentials", "1"))
	expect("a resync", 2)
	secrets.OnUpdate(secret("vpn-agent-credentials", "1"), secret("vpn-agent-credentials", "2"))
	expect("new credentials", 3)
	secrets.OnUpdate(secret("vpn-tls", "1"), secret("vpn-tls", "2"))
	expect("a renewed certificate", 4)
	secrets.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "vpn/vpn-tls", Obj: secret("vpn-tls", "2")})
	expect("the certificate Secret deleted", 5)
	if _, ok := st.secrets.get("vpn-tls"); ok {
		t.Error("A deleted Secret stayed in the store")
	}
	if s, ok := st.secrets.get("vpn-agent-credentials"); !ok || s.ResourceVersion != "2" {
		t.Errorf("credentials in the store: %v %v, want resourceVersion 2", s, ok)
	}
}

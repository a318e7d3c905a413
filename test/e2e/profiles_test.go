package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"howett.net/plist"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/kube"
)

// showProfiles waits for the user's profile Secret, checks that it holds
// every format and no password, and shows where it is and one profile.
func showProfiles(t *testing.T, ctx context.Context, c client.Client, user *v1alpha1.VPNUser, password string) {
	t.Helper()
	secret := &corev1.Secret{}
	kube.Eventually(t, "the user's profile Secret", 60*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(user), user); err != nil {
			return err
		}
		if user.Status.ProfileSecretName == "" {
			return fmt.Errorf("VPNUser %s names no profile Secret yet", user.Name)
		}
		return c.Get(ctx, client.ObjectKey{Namespace: user.Namespace, Name: user.Status.ProfileSecretName}, secret)
	})
	var keys []string
	for k, v := range secret.Data {
		keys = append(keys, k)
		if strings.Contains(string(v), password) {
			t.Errorf("Profile %s holds the user's password", k)
		}
	}
	slices.Sort(keys)
	for _, want := range []string{v1alpha1.ProfileKeyApple, v1alpha1.ProfileKeyWindows, v1alpha1.ProfileKeyAndroid,
		v1alpha1.ProfileKeyNetworkManager, v1alpha1.ProfileKeySwanctl, v1alpha1.ProfileKeyCA} {
		if !slices.Contains(keys, want) {
			t.Errorf("Profile Secret %s lacks %s (has %v)", secret.Name, want, keys)
		}
	}
	var apple map[string]any
	if _, err := plist.Unmarshal(secret.Data[v1alpha1.ProfileKeyApple], &apple); err != nil || apple["PayloadType"] != "Configuration" {
		t.Errorf("The Apple profile does not parse as a configuration profile: %v", err)
	}
	android := secret.Data[v1alpha1.ProfileKeyAndroid]
	var sswan map[string]any
	if err := json.Unmarshal(android, &sswan); err != nil {
		t.Fatalf("The Android profile is not JSON: %v", err)
	}
	if remote, _ := sswan["remote"].(map[string]any); remote["id"] != hostname {
		t.Errorf("The Android profile expects the gateway as %v, want %s", remote["id"], hostname)
	}
	say(t, "The manager wrote %s's client profiles into Secret %s/%s: %s\n"+
		"  (kubectl -n %s get secret %s -o jsonpath='{.data.profile\\.mobileconfig}' | base64 -d > jimp.mobileconfig,\n"+
		"   or: kubectl ikegate profile %s -n %s --format apple|windows|android|networkmanager|swanctl)\n"+
		"The Android (strongSwan app) profile:\n%s",
		user.Name, secret.Namespace, secret.Name, strings.Join(keys, ", "),
		secret.Namespace, secret.Name, user.Name, secret.Namespace, indent(string(android)))
}

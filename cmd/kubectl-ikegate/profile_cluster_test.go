package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testenv"
)

// TestProfileFromTheCluster reads profiles the way the manager leaves them
// (the user's status names the Secret, one key per format) from a real API
// server, through a kubeconfig as kubectl passes it.
func TestProfileFromTheCluster(t *testing.T) {
	s := testenv.DefaultScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	_, c, kubeconfig := testenv.Start(t, testenv.WithScheme(s))
	ctx := context.Background()
	const ns = "vpn"
	user := func(name string) *v1alpha1.VPNUser {
		return &v1alpha1.VPNUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.VPNUserSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: "vpn"}, Identity: v1alpha1.Identity(name + "@example.com"),
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: name, Key: "password"},
		}}
	}
	jimp, bob := user("jimp"), user("bob")
	profiles := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jimp-vpn-profile"}, Data: map[string][]byte{
		v1alpha1.ProfileKeyApple:   []byte("<plist>jimp</plist>"),
		v1alpha1.ProfileKeySwanctl: []byte("connections { }"),
	}}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*v1alpha1.VPNUser{jimp, bob} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, profiles); err != nil {
		t.Fatal(err)
	}
	jimp.Status.ProfileSecretName = profiles.Name
	jimp.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionProfileReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonProfileUnavailable,
		Message: "some formats cannot work and were left out: windows: no proposal", LastTransitionTime: metav1.Now()}}
	bob.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionProfileReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonProfileUnavailable,
		Message: "VPNUser bob has no connection on gateway vpn", LastTransitionTime: metav1.Now()}}
	for _, o := range []*v1alpha1.VPNUser{jimp, bob} {
		if err := c.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(t.TempDir(), "jimp.mobileconfig")
	if _, errOut, err := runCLI(t, "profile", "jimp", "--format", "apple", "--kubeconfig", kubeconfig, "-n", ns, "-o", out); err != nil {
		t.Fatalf("profile = %v\n%s", err, errOut)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != "<plist>jimp</plist>" {
		t.Errorf("wrote %q (%v), want the Secret's profile.mobileconfig", got, err)
	}
	stdout, _, err := runCLI(t, "profile", "jimp", "--format", "swanctl", "--kubeconfig", kubeconfig, "--namespace", ns)
	if err != nil || stdout != "connections { }" {
		t.Errorf("swanctl to stdout: %q, %v", stdout, err)
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"a format the manager left out", []string{"profile", "jimp", "--format", "windows"}, "holds no windows profile (ProfileUnavailable: some formats cannot work and were left out: windows: no proposal)"},
		{"no profile yet", []string{"profile", "bob", "--format", "apple"}, "has no profile Secret yet (ProfileUnavailable: VPNUser bob has no connection"},
		{"no such user", []string{"profile", "alice", "--format", "apple"}, `reading VPNUser vpn/alice`},
		{"offline flags", []string{"profile", "jimp", "--format", "apple", "--dial", "198.51.100.10"}, "give the manifests with -f"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(t, append(tt.args, "--kubeconfig", kubeconfig, "-n", ns)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Errorf("profile = %v (output %q), want an error containing %q", err, out, tt.want)
			}
		})
	}
}

package main

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/profile"
)

// fromCluster reads the profile the manager wrote for the user. The manager
// builds it from the same Build its gateway runs, so the plugin does not
// build one of its own from live objects, which would need the user's
// Secrets and could disagree with the gateway.
func (o *profileOptions) fromCluster(ctx context.Context, user string, format profile.Format) ([]byte, error) {
	if o.dial != "" || o.serverCert != "" || o.ca != "" || o.gateway != "" {
		return nil, errors.New("--dial, --server-cert, --ca and --gateway build a profile offline: give the manifests with -f")
	}
	c, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	var u v1alpha1.VPNUser
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: user}, &u); err != nil {
		return nil, fmt.Errorf("reading VPNUser %s/%s: %w", ns, user, err)
	}
	if u.Status.ProfileSecretName == "" {
		return nil, fmt.Errorf("VPNUser %s/%s has no profile Secret yet%s", ns, user, profileReadyNote(&u))
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.Status.ProfileSecretName}, &s); err != nil {
		return nil, fmt.Errorf("reading the profile Secret of VPNUser %s/%s: %w", ns, user, err)
	}
	key, _ := v1alpha1.ProfileSecretKey(string(format))
	data, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("Secret %s/%s holds no %s profile%s", ns, s.Name, format, profileReadyNote(&u))
	}
	return data, nil
}

// profileReadyNote is the user's ProfileReady condition when it is not
// True: the manager's reason for a missing profile.
func profileReadyNote(u *v1alpha1.VPNUser) string {
	c := meta.FindStatusCondition(u.Status.Conditions, v1alpha1.ConditionProfileReady)
	if c == nil || c.Status == "True" {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
}

func (o *profileOptions) client() (client.Client, string, error) {
	cfg, err := o.kube.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := o.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	s := runtime.NewScheme()
	if err := errors.Join(corev1.AddToScheme(s), v1alpha1.AddToScheme(s)); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, ns, nil
}

package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/swan"
)

// liveManifests reads a gateway as it is in the cluster: the VPNGateway,
// the pools, users and tunnels of its namespace (Resources keeps those of
// the gateway, as the manager does) and the Secrets the gateway and its
// members reference. What the API server holds it has validated, so it is
// not checked again. A referenced Secret that is missing or unreadable is
// left out: the build then reports it as a problem, as the manager would.
func liveManifests(ctx context.Context, c client.Client, namespace, name string) (swan.Manifests, error) {
	var m swan.Manifests
	var gw v1alpha1.VPNGateway
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &gw); err != nil {
		return m, fmt.Errorf("reading VPNGateway %s/%s: %w", namespace, name, err)
	}
	var pools v1alpha1.MobilePoolList
	var users v1alpha1.VPNUserList
	var tunnels v1alpha1.TunnelList
	for _, l := range []client.ObjectList{&pools, &users, &tunnels} {
		if err := c.List(ctx, l, client.InNamespace(namespace)); err != nil {
			return m, fmt.Errorf("listing the gateway's members in %s: %w", namespace, err)
		}
	}
	m.Gateways = []v1alpha1.VPNGateway{gw}
	m.Pools, m.Users, m.Tunnels = pools.Items, users.Items, tunnels.Items

	refs := gw.SecretRefs()
	for i := range users.Items {
		if users.Items[i].Spec.GatewayRef.Name == name {
			refs = append(refs, users.Items[i].SecretRefs()...)
		}
	}
	for i := range tunnels.Items {
		if tunnels.Items[i].Spec.GatewayRef.Name == name {
			refs = append(refs, tunnels.Items[i].SecretRefs()...)
		}
	}
	// Secrets are read one by one by name rather than listed: the
	// namespace may hold many that are none of the plugin's business.
	for _, sn := range v1alpha1.SecretNames(refs) {
		var s corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sn}, &s)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return m, fmt.Errorf("reading Secret %s/%s: %w", namespace, sn, err)
		}
		m.Secrets = append(m.Secrets, s)
	}
	return m, nil
}

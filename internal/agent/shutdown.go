package agent

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// StoppingForGood tells whether a stopping agent's pod leaves the node for good,
// so its firewall table should go with it: the gateway is gone or being
// deleted, or the StatefulSet was scaled below this pod's ordinal. A pod that
// is only restarted (a rollout, a node drain that brings it back) keeps the
// table, so clients' traffic stays filtered until the next agent adopts it;
// an error reading the gateway also keeps it, for the same reason.
func StoppingForGood(ctx context.Context, r client.Reader, namespace, gateway, pod string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gw := &v1alpha1.VPNGateway{}
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: gateway}, gw)
	switch {
	case apierrors.IsNotFound(err):
		return true, "the VPNGateway is gone"
	case err != nil:
		return false, "the VPNGateway could not be read: " + err.Error()
	}
	return leavingForGood(gw, pod)
}

func leavingForGood(gw *v1alpha1.VPNGateway, pod string) (bool, string) {
	if gw.DeletionTimestamp != nil {
		return true, "the VPNGateway is being deleted"
	}
	if ordinal, ok := v1alpha1.GatewayPodOrdinal(gw.Name, pod); ok && int32(ordinal) >= gw.Spec.EffectiveReplicas() {
		return true, "the gateway was scaled below this pod"
	}
	return false, "the pod is only restarting"
}

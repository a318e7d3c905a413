package agent

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestLeavingForGood(t *testing.T) {
	gw := func(replicas int32, deleting bool) *v1alpha1.VPNGateway {
		g := &v1alpha1.VPNGateway{}
		g.Name = "vpn"
		g.Spec.Exposure.Replicas = replicas
		if deleting {
			now := metav1.Now()
			g.DeletionTimestamp = &now
		}
		return g
	}
	tests := []struct {
		name string
		gw   *v1alpha1.VPNGateway
		pod  string
		want bool
	}{
		{"restart of the only replica", gw(1, false), "vpn-gateway-0", false},
		{"gateway being deleted", gw(1, true), "vpn-gateway-0", true},
		{"scaled from three to two", gw(2, false), "vpn-gateway-2", true},
		{"remaining replica of a scale-down", gw(2, false), "vpn-gateway-1", false},
		{"replicas defaulted", gw(0, false), "vpn-gateway-0", false},
		{"pod name without ordinal", gw(1, false), "gateway", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := leavingForGood(tc.gw, tc.pod); got != tc.want {
				t.Errorf("leavingForGood = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

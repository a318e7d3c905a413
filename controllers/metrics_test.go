package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

func TestStatusCollector(t *testing.T) {
	notAfter := metav1.NewTime(time.Unix(1900000000, 0))
	gw := gateway(func(g *v1alpha1.VPNGateway) {
		g.Status.Sessions = 3
		g.Status.CertificateNotAfter = &notAfter
		g.Status.Conditions = []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonPodsUnavailable},
			{Type: v1alpha1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady},
		}
		g.Status.Agents = []v1alpha1.AgentStatus{{Pod: podNames(g)[0], Pools: []v1alpha1.PoolLeases{{Name: "staff", Leased: 3}}}}
	})
	pool := &v1alpha1.MobilePool{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: "staff"}}
	pool.Spec.GatewayRef.Name = gw.Name
	pool.Spec.Addresses.IPv4 = "10.3.200.0/24"
	up := &v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: "branch"}}
	up.Spec.GatewayRef.Name = gw.Name
	up.Status.Phase1 = &v1alpha1.Phase1Status{State: "ESTABLISHED"}
	down := &v1alpha1.Tunnel{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: "dc"}}
	down.Spec.GatewayRef.Name = gw.Name
	down.Status.Phase1 = &v1alpha1.Phase1Status{State: "Down"}

	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(gw, pool, up, down).Build()
	ns, name := gw.Namespace, gw.Name
	want := strings.NewReplacer("NS", ns, "GW", name).Replace(`
# HELP ikegate_gateway_condition 1 when the VPNGateway's condition of this type is True, else 0.
# TYPE ikegate_gateway_condition gauge
ikegate_gateway_condition{gateway="GW",namespace="NS",type="CertificateReady"} 0
ikegate_gateway_condition{gateway="GW",namespace="NS",type="ConfigApplied"} 0
ikegate_gateway_condition{gateway="GW",namespace="NS",type="Ready"} 0
ikegate_gateway_condition{gateway="GW",namespace="NS",type="Valid"} 1
ikegate_gateway_condition{gateway="GW",namespace="NS",type="WorkloadReady"} 0
# HELP ikegate_gateway_certificate_expiry_timestamp_seconds Unix time at which the VPNGateway's server certificate expires.
# TYPE ikegate_gateway_certificate_expiry_timestamp_seconds gauge
ikegate_gateway_certificate_expiry_timestamp_seconds{gateway="GW",namespace="NS"} 1.9e+09
# HELP ikegate_gateway_sessions Established client IKE_SAs over all pods of the VPNGateway, as its status reports them.
# TYPE ikegate_gateway_sessions gauge
ikegate_gateway_sessions{gateway="GW",namespace="NS"} 3
# HELP ikegate_pool_addresses Addresses the MobilePool can hand out (network and broadcast addresses excluded).
# TYPE ikegate_pool_addresses gauge
ikegate_pool_addresses{gateway="GW",namespace="NS",pool="staff"} 254
# HELP ikegate_pool_leased_addresses Addresses of the MobilePool leased to clients over all gateway pods.
# TYPE ikegate_pool_leased_addresses gauge
ikegate_pool_leased_addresses{gateway="GW",namespace="NS",pool="staff"} 3
# HELP ikegate_tunnel_up 1 when the Tunnel's IKE_SA is established, else 0.
# TYPE ikegate_tunnel_up gauge
ikegate_tunnel_up{gateway="GW",namespace="NS",tunnel="branch"} 1
ikegate_tunnel_up{gateway="GW",namespace="NS",tunnel="dc"} 0
# HELP ikegate_manager_status_read_error 1 when this scrape could not read the objects from the cache.
# TYPE ikegate_manager_status_read_error gauge
ikegate_manager_status_read_error 0
`)
	if err := testutil.CollectAndCompare(NewStatusCollector(c), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// A reader that cannot list (a cache not synced, RBAC missing) is reported,
// not hidden behind an empty set of gateways.
func TestStatusCollectorReadError(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()
	want := `
# HELP ikegate_manager_status_read_error 1 when this scrape could not read the objects from the cache.
# TYPE ikegate_manager_status_read_error gauge
ikegate_manager_status_read_error 1
`
	if err := testutil.CollectAndCompare(NewStatusCollector(c), strings.NewReader(want), "ikegate_manager_status_read_error"); err != nil {
		t.Error(err)
	}
}

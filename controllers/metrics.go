package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ikegate/ikegate/api/v1alpha1"
)

// StatusCollector exports what the manager's status writes already say, as
// metrics the alert rules and the dashboard read: the gateways' conditions
// and certificate expiry, the pools' size and leases, and whether each
// Tunnel's IKE_SA is up. It reads the informer cache on every scrape
// (kube-state-metrics style), so the figures are never older than the
// status and nothing has to keep them in step.
type StatusCollector struct {
	r client.Reader

	gatewayCondition *prometheus.Desc
	gatewaySessions  *prometheus.Desc
	certExpiry       *prometheus.Desc
	poolSize         *prometheus.Desc
	poolLeased       *prometheus.Desc
	tunnelUp         *prometheus.Desc
	listErrors       *prometheus.Desc
}

// gatewayConditions are the condition types exported per gateway.
var gatewayConditions = []string{
	v1alpha1.ConditionReady, v1alpha1.ConditionValid, v1alpha1.ConditionCertificateReady,
	v1alpha1.ConditionWorkloadReady, v1alpha1.ConditionConfigApplied,
}

// NewStatusCollector reads the objects through r (the manager's cached client).
func NewStatusCollector(r client.Reader) *StatusCollector {
	gw := []string{"namespace", "gateway"}
	return &StatusCollector{
		r: r,
		gatewayCondition: prometheus.NewDesc("ikegate_gateway_condition",
			"1 when the VPNGateway's condition of this type is True, else 0.", append(gw, "type"), nil),
		gatewaySessions: prometheus.NewDesc("ikegate_gateway_sessions",
			"Established client IKE_SAs over all pods of the VPNGateway, as its status reports them.", gw, nil),
		certExpiry: prometheus.NewDesc("ikegate_gateway_certificate_expiry_timestamp_seconds",
			"Unix time at which the VPNGateway's server certificate expires.", gw, nil),
		poolSize: prometheus.NewDesc("ikegate_pool_addresses",
			"Addresses the MobilePool can hand out (network and broadcast addresses excluded).", append(gw, "pool"), nil),
		poolLeased: prometheus.NewDesc("ikegate_pool_leased_addresses",
			"Addresses of the MobilePool leased to clients over all gateway pods.", append(gw, "pool"), nil),
		tunnelUp: prometheus.NewDesc("ikegate_tunnel_up",
			"1 when the Tunnel's IKE_SA is established, else 0.", append(gw, "tunnel"), nil),
		listErrors: prometheus.NewDesc("ikegate_manager_status_read_error",
			"1 when this scrape could not read the objects from the cache.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StatusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.gatewayCondition, c.gatewaySessions, c.certExpiry,
		c.poolSize, c.poolLeased, c.tunnelUp, c.listErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	// A scrape must not hang on a cache that has not synced yet.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var gws v1alpha1.VPNGatewayList
	var pools v1alpha1.MobilePoolList
	var tunnels v1alpha1.TunnelList
	failed := 0.0
	for _, l := range []client.ObjectList{&gws, &pools, &tunnels} {
		if err := c.r.List(ctx, l); err != nil {
			failed = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(c.listErrors, prometheus.GaugeValue, failed)
	byName := map[[2]string]*v1alpha1.VPNGateway{}
	for i := range gws.Items {
		gw := &gws.Items[i]
		byName[[2]string{gw.Namespace, gw.Name}] = gw
		c.collectGateway(ch, gw)
	}
	for i := range pools.Items {
		p := &pools.Items[i]
		gw := byName[[2]string{p.Namespace, p.Spec.GatewayRef.Name}]
		n := poolCountsFor(p, gw)
		ch <- prometheus.MustNewConstMetric(c.poolSize, prometheus.GaugeValue, float64(n.Size), p.Namespace, p.Spec.GatewayRef.Name, p.Name)
		ch <- prometheus.MustNewConstMetric(c.poolLeased, prometheus.GaugeValue, float64(n.Leased), p.Namespace, p.Spec.GatewayRef.Name, p.Name)
	}
	for i := range tunnels.Items {
		t := &tunnels.Items[i]
		ch <- prometheus.MustNewConstMetric(c.tunnelUp, prometheus.GaugeValue, boolValue(tunnelEstablished(t)), t.Namespace, t.Spec.GatewayRef.Name, t.Name)
	}
}

func (c *StatusCollector) collectGateway(ch chan<- prometheus.Metric, gw *v1alpha1.VPNGateway) {
	for _, typ := range gatewayConditions {
		v := boolValue(apimeta.IsStatusConditionTrue(gw.Status.Conditions, typ))
		ch <- prometheus.MustNewConstMetric(c.gatewayCondition, prometheus.GaugeValue, v, gw.Namespace, gw.Name, typ)
	}
	ch <- prometheus.MustNewConstMetric(c.gatewaySessions, prometheus.GaugeValue, float64(gw.Status.Sessions), gw.Namespace, gw.Name)
	if na := gw.Status.CertificateNotAfter; na != nil {
		ch <- prometheus.MustNewConstMetric(c.certExpiry, prometheus.GaugeValue, float64(na.Unix()), gw.Namespace, gw.Name)
	}
}

// tunnelEstablished: the agent writes charon's IKE_SA state into phase1.
func tunnelEstablished(t *v1alpha1.Tunnel) bool {
	return t.Status.Phase1 != nil && t.Status.Phase1.State == "ESTABLISHED"
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

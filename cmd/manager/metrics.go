package main

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// defaultMetricsAddr is where the manager serves /metrics over HTTPS.
const defaultMetricsAddr = ":8443"

// metricsOptions serve /metrics over HTTPS to callers the API server
// authenticates (TokenReview) and authorizes for GET on the /metrics
// non-resource URL (SubjectAccessReview), such as Prometheus' service
// account bound to the chart's metrics-reader ClusterRole. The gateways'
// sessions, pools and tunnels would otherwise be readable by anything that
// reaches the pod. Without a certificate directory controller-runtime
// serves a self-signed certificate.
func metricsOptions(addr string) metricsserver.Options {
	return metricsserver.Options{
		BindAddress:    addr,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
	}
}

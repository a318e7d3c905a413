package agent

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics registers a fresh, unused set of the agent's collectors
// with r. The chart's tests use it to check the dashboard and the alert
// rules against the names the agent really exports.
func RegisterMetrics(r prometheus.Registerer) error { return newMetrics().register(r) }

package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/vici"
)

type metrics struct {
	sessions      prometheus.Gauge
	ikeSAs        *prometheus.CounterVec
	childSAs      *prometheus.CounterVec
	authFailures  prometheus.Counter
	failures      *prometheus.CounterVec
	applyDuration prometheus.Histogram
	applies       *prometheus.CounterVec
	viciWrites    prometheus.Counter
	lastError     prometheus.Gauge
	radiusUsers   prometheus.Gauge
	// radiusSessions are the sessions charon's RADIUS accounting reports.
	radiusSessions prometheus.Gauge
	// userChanges counts users decided alone, without a whole apply.
	userChanges prometheus.Counter
	// restores counts charon's returns served from the last apply.
	restores prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ikegate_agent_sessions",
			Help: "Established IKE_SAs of mobile clients on this gateway pod.",
		}),
		ikeSAs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ikegate_agent_ike_sa_events_total",
			Help: "IKE_SAs that came up or went down (charon's ike-updown events).",
		}, []string{"event"}),
		childSAs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ikegate_agent_child_sa_events_total",
			Help: "CHILD_SAs that came up or went down (charon's child-updown events).",
		}, []string{"event"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ikegate_agent_auth_failures_total",
			Help: "Client authentications charon refused (EAP failures, failed signatures, constraint checks).",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ikegate_agent_negotiation_failures_total",
			Help: "Failed connection attempts diagnosed from charon's log and alerts, by IKE phase and reason.",
		}, []string{"phase", "reason"}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ikegate_agent_apply_duration_seconds",
			Help:    "Time to bring charon to the desired configuration, including reading its state after a reconnect.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ikegate_agent_applies_total",
			Help: "Applies of the gateway configuration by result.",
		}, []string{"result"}),
		viciWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ikegate_agent_vici_writes_total",
			Help: "VICI load and unload commands charon accepted.",
		}),
		lastError: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ikegate_agent_last_apply_error",
			Help: "1 when the latest apply of the gateway configuration failed, else 0.",
		}),
		radiusUsers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ikegate_agent_radius_users",
			Help: "Users whose EAP-MSCHAPv2 logins the agent's RADIUS server checks for charon.",
		}),
		radiusSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ikegate_agent_radius_sessions",
			Help: "Sessions of the agent's RADIUS users that charon's accounting reports started and not stopped.",
		}),
		userChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ikegate_agent_user_changes_total",
			Help: "Changes of single users the agent decided without building the whole gateway (ikegate_agent_applies_total counts whole applies).",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ikegate_agent_charon_restores_total",
			Help: "Times charon's socket came back and the agent loaded its last applied configuration without building the gateway again.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sessions, m.ikeSAs, m.childSAs, m.authFailures, m.failures,
		m.applyDuration, m.applies, m.viciWrites, m.lastError, m.radiusUsers, m.radiusSessions, m.userChanges, m.restores} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observeApply(res vici.Result, err error) {
	m.applyDuration.Observe(res.Duration.Seconds())
	m.viciWrites.Add(float64(len(res.Ops)))
	if err != nil {
		m.applies.WithLabelValues("error").Inc()
		m.lastError.Set(1)
		return
	}
	m.applies.WithLabelValues("success").Inc()
	m.lastError.Set(0)
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func (m *metrics) ikeUpDown(up bool)   { m.ikeSAs.WithLabelValues(upDown(up)).Inc() }
func (m *metrics) childUpDown(up bool) { m.childSAs.WithLabelValues(upDown(up)).Inc() }

// HealthHandler serves /healthz (the process runs) and /readyz (the pod
// serves the gateway's connections; see Ready).
func (a *Agent) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc(v1alpha1.AgentDrainPath, a.drainHandler)
	mux.HandleFunc(v1alpha1.AgentReadinessPath, func(w http.ResponseWriter, _ *http.Request) {
		if a.draining.Load() {
			http.Error(w, "draining: clients are moved to the other replicas", http.StatusServiceUnavailable)
			return
		}
		if !a.Ready() {
			http.Error(w, "configuration not applied yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

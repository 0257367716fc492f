package eci

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the client's Prometheus metrics. Build them once per
// registry with NewMetrics and give them to every Client of the process
// (Config.Metrics); a Client without them keeps a private, unexported set.
type Metrics struct {
	apiCalls    *prometheus.CounterVec
	apiLatency  *prometheus.HistogramVec
	limiterWait *prometheus.HistogramVec
	apiRetries  *prometheus.CounterVec
	quotaShare  prometheus.Gauge
}

// NewMetrics builds the client's metrics and registers them with reg (none
// when reg is nil); registering twice with one registry panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eci",
			Name:      "api_calls_total",
			Help:      "ECI OpenAPI calls by action and outcome (OK or the error code).",
		}, []string{"action", "outcome"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "eci",
			Name:      "api_call_duration_seconds",
			Help:      "Latency of ECI OpenAPI calls, one sample per HTTP attempt.",
			Buckets:   prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"action"}),
		limiterWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "eci",
			Name:      "rate_limiter_wait_seconds",
			Help:      "Time an ECI call waited for its operation's client-side token bucket and throttling pause before being sent, one sample per attempt.",
			Buckets:   []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"action"}),
		apiRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eci",
			Name:      "api_retries_total",
			Help:      "ECI OpenAPI calls sent again after a retryable error, by action and class.",
		}, []string{"action", "class"}),
		quotaShare: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "eci",
			Name:      "api_quota_share",
			Help:      "Fraction of the configured ECI API quotas (the published ones times ECI_API_QUOTA_SCALE and ECI_API_QUOTA_SHARE) this replica paces itself with: 1 divided among the live replicas, 0 while it waits for the others to shrink theirs.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.apiCalls, m.apiLatency, m.apiRetries, m.limiterWait, m.quotaShare)
	}
	return m
}

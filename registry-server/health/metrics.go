package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the prober's collectors.
type metrics struct {
	probes    *prometheus.CounterVec // result: ok, fail
	instances *prometheus.GaugeVec   // state: healthy, unhealthy
	rounds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "health", Name: "probes_total",
			Help: "TCP probes of persistent instances by result (ok, fail).",
		}, []string{"result"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "health", Name: "persistent_instances",
			Help: "Probed persistent instances by health after the last round.",
		}, []string{"state"}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "health", Name: "round_seconds",
			Help:    "Duration of one probe round.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.probes, m.instances, m.rounds} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) probed(ok bool) {
	if ok {
		m.probes.WithLabelValues("ok").Inc()
		return
	}
	m.probes.WithLabelValues("fail").Inc()
}

func (m *metrics) round(healthy, unhealthy int, d time.Duration) {
	m.instances.WithLabelValues("healthy").Set(float64(healthy))
	m.instances.WithLabelValues("unhealthy").Set(float64(unhealthy))
	m.rounds.Observe(d.Seconds())
}

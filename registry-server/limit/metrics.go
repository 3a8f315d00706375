package limit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ferry", Subsystem: "registry_limit", Name: "rejected_total",
		Help: "Connections and requests refused by the per-IP limits, by port (http, grpc) and reason (connections, rate).",
	}, []string{"port", "reason"})}
	if reg != nil {
		reg.MustRegister(m.rejected)
	}
	return m
}

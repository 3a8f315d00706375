package configsvc

import "github.com/prometheus/client_golang/prometheus"

// metrics of the config service, registered on the registerer given to New.
type metrics struct {
	publishes   *prometheus.CounterVec // by result: ok, invalid, cas, error
	removes     *prometheus.CounterVec // by result: ok, invalid, error
	queries     *prometheus.CounterVec // by result: ok, not_found, invalid
	pushes      *prometheus.CounterVec // by result: ok, timeout, busy, gone, fail
	pushLatency prometheus.Histogram   // change applied → client's ack
	longPolls   *prometheus.CounterVec // by result: changed, timeout, invalid
}

func newMetrics(reg prometheus.Registerer, configs, grpcListeners, pollListeners func() float64) (*metrics, error) {
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "config", Name: "publishes_total",
			Help: "Config publishes (gRPC and HTTP), by result (ok, invalid, cas, error).",
		}, []string{"result"}),
		removes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "config", Name: "removes_total",
			Help: "Config removals, by result (ok, invalid, error).",
		}, []string{"result"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "config", Name: "queries_total",
			Help: "Config queries, by result (ok, not_found, invalid).",
		}, []string{"result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "config", Name: "pushes_total",
			Help: "ConfigChangeNotifyRequest pushes, by result (ok, timeout, busy, gone, fail).",
		}, []string{"result"}),
		pushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "config", Name: "push_latency_seconds",
			Help:    "From a config change being applied to the listening client's ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		longPolls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "config", Name: "long_polls_total",
			Help: "HTTP listener long polls answered, by result (changed, timeout, invalid).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.publishes, m.removes, m.queries, m.pushes, m.pushLatency, m.longPolls,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "config", Name: "configs",
			Help: "Stored configs.",
		}, configs),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "config", Name: "listeners",
			Help:        "Listened configs: gRPC (connection, config) pairs.",
			ConstLabels: prometheus.Labels{"kind": "grpc"},
		}, grpcListeners),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "config", Name: "listeners",
			Help:        "Listened configs: gRPC (connection, config) pairs.",
			ConstLabels: prometheus.Labels{"kind": "long_poll"},
		}, pollListeners),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

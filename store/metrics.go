package store

import "github.com/prometheus/client_golang/prometheus"

// lessorMetrics are one Lessor's metrics (one Lessor per process).
type lessorMetrics struct {
	owned    prometheus.Gauge
	renewals *prometheus.CounterVec
	acquired prometheus.Counter
	released prometheus.Counter
	lost     prometheus.Counter
}

func newLessorMetrics(reg prometheus.Registerer) (*lessorMetrics, error) {
	m := &lessorMetrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_lease_owned_shards", Help: "Shards this worker holds a lease on.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_lease_renewals_total", Help: "Lease renewal statements by result (ok, error).",
		}, []string{"result"}),
		acquired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_lease_acquired_total", Help: "Shard leases acquired.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_lease_released_total", Help: "Shard leases given up (rebalancing or shutdown).",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_lease_lost_total", Help: "Shard leases lost: lapsed before renewal or taken over.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.owned, m.renewals, m.acquired, m.released, m.lost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

package store

import "github.com/prometheus/client_golang/prometheus"

// lessorMetrics are one Lessor's metrics (one Lessor per process).
type lessorMetrics struct {
	owned    prometheus.Gauge
	renewals *prometheus.CounterVec
	acquired prometheus.Counter
	released prometheus.Counter
	lost     prometheus.Counter
	// reachable is 1 while the store answers the lessor, 0 during an
	// outage; kept counts the shards kept alive (beat-only) meanwhile.
	reachable prometheus.Gauge
	kept      prometheus.Gauge
	outages   prometheus.Counter
	// schemaChanged is 1 while the database's schema version is not the
	// one this process runs; clockJumps counts jumps of its clock.
	schemaChanged prometheus.Gauge
	clockJumps    prometheus.Counter
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
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_lease_store_reachable", Help: "1 while the store answers the lessor, 0 during a store outage.",
		}),
		kept: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_lease_kept_shards", Help: "Shards kept alive with light beats only while the store is unreachable.",
		}),
		outages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_lease_store_outages_total", Help: "Times the store stopped answering the lessor.",
		}),
		schemaChanged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_store_schema_changed", Help: "1 while the database's schema version is not the one this process runs (treated as a store outage).",
		}),
		clockJumps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_store_clock_jumps_total", Help: "Jumps of the database's clock against this process's monotonic clock (beyond the lease TTL).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.owned, m.renewals, m.acquired, m.released, m.lost, m.reachable, m.kept, m.outages, m.schemaChanged, m.clockJumps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

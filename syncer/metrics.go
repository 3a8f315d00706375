package syncer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics, labelled by task.
type metrics struct {
	desired       prometheus.Gauge
	registered    prometheus.Gauge
	appDesired    prometheus.Gauge
	appRegistered prometheus.Gauge
	skipped       *prometheus.GaugeVec // reason
	actions       *prometheus.CounterVec
	staleDropped  prometheus.Counter
	staleHeld     prometheus.Counter
	massHeld      prometheus.Counter
	deferred      prometheus.Counter
	applyErrors   prometheus.Counter
	evictions     prometheus.Counter
	probeFailures *prometheus.CounterVec // outcome: present, unknown, gone
	reconcileDur  *prometheus.HistogramVec
	lag           prometheus.Histogram
	ownedShards   prometheus.Gauge
	keptShards    prometheus.Gauge
	queueDepth    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, task string) (*metrics, error) {
	cl := prometheus.Labels{"task": task}
	m := &metrics{
		desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_instances_desired",
			Help: "Interface-level provider instances that should be in the registry (owned services, after filters).", ConstLabels: cl}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_instances_registered",
			Help: "Interface-level instances this worker keeps registered and beaten.", ConstLabels: cl}),
		appDesired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_app_instances_desired",
			Help: "Dubbo 3 application-level instances that should be in the registry (owned apps, after filters).", ConstLabels: cl}),
		appRegistered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_app_instances_registered",
			Help: "Dubbo 3 application-level instances this worker keeps registered and beaten.", ConstLabels: cl}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_sync_instances_skipped",
			Help: "Providers of owned services not synced, per reason.", ConstLabels: cl}, []string{"reason"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_sync_actions_total",
			Help: "Registry changes applied, per kind.", ConstLabels: cl}, []string{"kind"}),
		staleDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_stale_removals_dropped_total",
			Help: "Removals dropped because a newer provider is registered at that address.", ConstLabels: cl}),
		staleHeld: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_stale_downgrades_held_total",
			Help: "Downgrades to an older provider held by the stale guard.", ConstLabels: cl}),
		massHeld: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_mass_removals_held_total",
			Help: "Service removal batches held by the mass-removal guard.", ConstLabels: cl}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_removals_deferred_total",
			Help: "Removals postponed while ZooKeeper was not synced.", ConstLabels: cl}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_apply_errors_total",
			Help: "Failed registry calls (retried with backoff).", ConstLabels: cl}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_sync_evictions_total",
			Help: "Instances evicted after a failed port probe and ZooKeeper saying the node is gone.", ConstLabels: cl}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_sync_probe_failures_total",
			Help: "Failed port probes, by what ZooKeeper said about the node (present, unknown, gone).", ConstLabels: cl}, []string{"node"}),
		reconcileDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferry_sync_reconcile_seconds",
			Help: "Time to reconcile one ZooKeeper service (partial or full).", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"mode"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ferry_sync_zk_to_registry_seconds",
			Help: "From a ZooKeeper change notification to the registry call that applied it.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		keptShards: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_kept_shards",
			Help: "Shards kept alive with light beats only while the store is unreachable.", ConstLabels: cl}),
		ownedShards: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_owned_shards",
			Help: "Shards this worker owns.", ConstLabels: cl}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_sync_pending_services",
			Help: "Services waiting to be reconciled.", ConstLabels: cl}),
	}
	for _, c := range []prometheus.Collector{m.desired, m.registered, m.appDesired, m.appRegistered, m.skipped, m.actions, m.staleDropped, m.staleHeld,
		m.massHeld, m.deferred, m.applyErrors, m.evictions, m.probeFailures, m.reconcileDur, m.lag, m.ownedShards, m.keptShards, m.queueDepth} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range skipReasons {
		m.skipped.WithLabelValues(string(r))
	}
	return m, nil
}

package zkwatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the watcher's Prometheus metrics.
type metrics struct {
	services      prometheus.Gauge
	providers     prometheus.Gauge
	appInstances  prometheus.Gauge
	skipped       *prometheus.CounterVec // reason
	listings      *prometheus.CounterVec // kind
	listErrors    *prometheus.CounterVec // kind
	sessionEvents *prometheus.CounterVec // state
	expiries      prometheus.Counter
	flapping      prometheus.Counter
	notifications prometheus.Counter
	connected     prometheus.Gauge
	synced        prometheus.GaugeFunc
	remembered    prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, synced, remembered func() float64) (*metrics, error) {
	m := &metrics{
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkwatch_services", Help: "Service nodes under the root that have a providers child."}),
		providers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkwatch_provider_nodes", Help: "Parsed provider nodes held (all services)."}),
		appInstances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkwatch_app_instances", Help: "Dubbo 3 application-level instance nodes held."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkwatch_skipped_nodes_total", Help: "Nodes skipped (each path counted once), by reason."}, []string{"reason"}),
		listings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkwatch_listings_total", Help: "ZooKeeper child listings done, by node kind."}, []string{"kind"}),
		listErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkwatch_listing_errors_total", Help: "Failed ZooKeeper listings, by node kind."}, []string{"kind"}),
		sessionEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkwatch_session_events_total", Help: "ZooKeeper session state changes, by state."}, []string{"state"}),
		expiries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zkwatch_session_expiries_total", Help: "ZooKeeper sessions expired (each one re-lists everything)."}),
		flapping: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zkwatch_flapping_total", Help: "Flapping services seen: provider sets changed FlapChanges times within FlapWindow (once per window)."}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zkwatch_change_notifications_total", Help: "Per-service change notifications delivered on Changes()."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zkwatch_connected", Help: "1 while the ZooKeeper session is up."}),
		synced: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zkwatch_synced", Help: "1 once the full catalog is listed in the current session."}, synced),
		remembered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zkwatch_skipped_paths_remembered", Help: "Skipped node paths remembered (logged once each); bounded by MaxSkipped."}, remembered),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.services, m.providers, m.appInstances, m.skipped, m.listings,
		m.listErrors, m.sessionEvents, m.expiries, m.flapping, m.notifications, m.connected, m.synced, m.remembered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("zkwatch: register metrics: %w", err)
		}
	}
	return m, nil
}

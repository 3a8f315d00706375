package registryclient

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus series. They exist (unregistered)
// when no Registerer is given, so code never checks for nil.
type metrics struct {
	requests      *prometheus.CounterVec   // type, result (ok|error|fail)
	latency       *prometheus.HistogramVec // type
	beatsSent     prometheus.Counter
	beatBatch     prometheus.Histogram
	beatResults   *prometheus.CounterVec // status
	redirects     prometheus.Counter
	drops         prometheus.Counter
	reconnects    prometheus.Counter
	pushes        prometheus.Counter
	deregistered  *prometheus.CounterVec // path: batch, http
	lightUnknown  prometheus.Counter
	currentServer *prometheus.GaugeVec   // server: 1 for the one in use
	logins        *prometheus.CounterVec // result: ok, error (auth.go)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "requests_total",
			Help: "Requests sent, by request type and result (ok, fail: server answered an error, error: transport).",
		}, []string{"type", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "request_duration_seconds",
			Help:    "Latency of one request attempt, by request type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"type"}),
		beatsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "beats_sent_total",
			Help: "Instance beats sent in merged batch beats.",
		}),
		beatBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "beat_batch_size",
			Help:    "Items per FerryBatchBeatRequest.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		beatResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "beat_results_total",
			Help: "Per-item batch beat answers, by status (ok, unknown, redirect, invalid, error).",
		}, []string{"status"}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "beat_redirects_total",
			Help: "Beat redirects received (a beat-kept client, ip:port, is another node's).",
		}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "beats_dropped_total",
			Help: "Beats dropped because the beat buffer was full (oldest first).",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "reconnects_total",
			Help: "Connections (re-)established after the first one.",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "pushes_total",
			Help: "NotifySubscriberRequest pushes received.",
		}),
		deregistered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "deregistered_total",
			Help: "Beat-kept instances deregistered by Forget, by path (batch: FerryBatchDeregisterRequest, http: one DELETE each).",
		}, []string{"path"}),
		lightUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "light_only_unknown_total",
			Help: "Light-only beats (LightOnly) answered unknown: instances someone else removed, not registered again.",
		}),
		currentServer: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "current_server",
			Help: "1 for the server the client is connected to.",
		}, []string{"server"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registryclient", Name: "logins_total",
			Help: "Logins to the registry (Config.Username set), by result (ok, error).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.beatsSent, m.beatBatch, m.beatResults,
			m.redirects, m.drops, m.reconnects, m.pushes, m.deregistered, m.lightUnknown, m.currentServer, m.logins} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("%w: Registerer: %v", ErrInvalidConfig, err)
			}
		}
	}
	return m, nil
}

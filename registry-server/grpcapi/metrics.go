package grpcapi

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the gRPC API, registered on the registerer given to New.
type metrics struct {
	requests    *prometheus.CounterVec   // by type and result code
	latency     *prometheus.HistogramVec // by type
	connections prometheus.Gauge
	pushes      *prometheus.CounterVec // by result: ok, fail, timeout, busy
	pushLatency prometheus.Histogram   // change → ack
	beats       *prometheus.CounterVec // by status
	deregs      *prometheus.CounterVec // bulk-deregistered addresses, by status
	detections  *prometheus.CounterVec // ClientDetectionRequests, by result: ok, dropped

	sendQueueBytes prometheus.Gauge   // bytes queued for bi-streams, all connections
	sendQueueFull  prometheus.Counter // messages refused by a full send queue
	notSetUp       prometheus.Counter // transports closed for no setup within SetupTimeout

	byType sync.Map // known request type → *typeMetrics (bounded: known types only)
}

// typeMetrics are one request type's children of requests (code 0) and
// latency, looked up once instead of per request.
type typeMetrics struct {
	label   string
	ok      prometheus.Counter
	latency prometheus.Observer
}

// observe counts one request of type typ answered with errorCode code after
// d. Types that known says do not decode count as "unknown" (not cached:
// the type name comes from the client).
func (m *metrics) observe(typ string, known func(string) bool, code int, d time.Duration) {
	var tm *typeMetrics
	if v, ok := m.byType.Load(typ); ok {
		tm = v.(*typeMetrics)
	} else if known(typ) {
		tm = &typeMetrics{label: typ, ok: m.requests.WithLabelValues(typ, "0"), latency: m.latency.WithLabelValues(typ)}
		m.byType.Store(typ, tm)
	} else {
		m.requests.WithLabelValues("unknown", strconv.Itoa(code)).Inc()
		m.latency.WithLabelValues("unknown").Observe(d.Seconds())
		return
	}
	if code == 0 {
		tm.ok.Inc()
	} else {
		m.requests.WithLabelValues(tm.label, strconv.Itoa(code)).Inc()
	}
	tm.latency.Observe(d.Seconds())
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "requests_total",
			Help: "gRPC requests handled, by request type and result code.",
		}, []string{"type", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "request_seconds",
			Help:    "gRPC request handling latency, by request type.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}, []string{"type"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "connections",
			Help: "Live gRPC transports.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry", Name: "pushes_total",
			Help: "NotifySubscriberRequest pushes, by result (ok, fail, timeout, busy).",
		}, []string{"result"}),
		pushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "registry", Name: "push_latency_seconds",
			Help:    "From the first change of a merged push to the subscriber's ack.",
			Buckets: []float64{.1, .25, .5, .55, .6, .7, .8, 1, 1.5, 2, 5, 10},
		}),
		beats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry", Name: "batch_beats_total",
			Help: "Instance beats received through FerryBatchBeatRequest, by status.",
		}, []string{"status"}),
		deregs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry", Name: "batch_deregisters_total",
			Help: "Instance addresses received through FerryBatchDeregisterRequest, by status (ok: removed or not there, invalid).",
		}, []string{"status"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "client_detections_total",
			Help: "ClientDetectionRequests sent to idle connections, by result (ok, dropped).",
		}, []string{"result"}),
		sendQueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "send_queue_bytes",
			Help: "Bytes of server→client messages queued for the connections' bi-streams.",
		}),
		sendQueueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "send_queue_full_total",
			Help: "Server→client messages refused because the connection's send queue was full (a client not reading its bi-stream).",
		}),
		notSetUp: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_grpc", Name: "not_set_up_closed_total",
			Help: "Transports closed because their client sent no ConnectionSetupRequest within SetupTimeout.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.connections, m.pushes, m.pushLatency, m.beats, m.deregs, m.detections,
			m.sendQueueBytes, m.sendQueueFull, m.notSetUp)
	}
	return m
}

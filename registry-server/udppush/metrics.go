package udppush

import "github.com/prometheus/client_golang/prometheus"

// metrics of the UDP push, registered on the registerer given to New.
type metrics struct {
	refused         *prometheus.CounterVec // polls not subscribed, by reason
	clientIPIgnored prometheus.Counter
	expired         prometheus.Counter
	pushes          *prometheus.CounterVec // by result
	sent            *prometheus.CounterVec // datagrams, by kind: push, retry
	sendErrors      prometheus.Counter
	ignored         *prometheus.CounterVec // datagrams received and ignored, by reason
	latency         prometheus.Histogram   // first merged change → ack
}

// Push results (label values of pushes_total).
const (
	resultOK         = "ok"         // acked
	resultDropped    = "dropped"    // no ack after 1+Retries sends
	resultSuperseded = "superseded" // a newer push to the same subscription took over
	resultGone       = "gone"       // the subscription expired while unacked
	resultTooLarge   = "too_large"  // over MaxDatagram even compressed: not sent (once per round and filter)
)

func newMetrics(reg prometheus.Registerer, subscribers func() float64) *metrics {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "subscriptions_refused_total",
			Help: "Nacos 1.x instance-list polls answered without recording a push subscriber, by reason (port, agent, limit, full).",
		}, []string{"reason"}),
		clientIPIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "client_ip_ignored_total",
			Help: "Subscribing polls whose clientIP was not their source address (pushes go to the source).",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "subscribers_expired_total",
			Help: "Nacos 1.x subscriptions forgotten because their client stopped polling.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "pushes_total",
			Help: "UDP pushes to Nacos 1.x subscribers, by result (ok, dropped, superseded, gone, too_large).",
		}, []string{"result"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "datagrams_sent_total",
			Help: "UDP push datagrams sent, by kind (push, retry).",
		}, []string{"kind"}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "send_errors_total",
			Help: "UDP push datagrams the socket refused to send (sent again at the next retry).",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "datagrams_ignored_total",
			Help: "Datagrams received on the push socket and ignored, by reason (malformed: not an ack; unknown: no push waits for it).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "registry_udp", Name: "push_latency_seconds",
			Help:    "From the first change merged into a push to the subscriber's ack (includes the push delay).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 0.6, 0.75, 1, 1.5, 2, 3, 5, 10},
		}),
	}
	for _, r := range []string{ReasonPort, ReasonAgent, ReasonLimit, ReasonFull} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{resultOK, resultDropped, resultSuperseded, resultGone, resultTooLarge} {
		m.pushes.WithLabelValues(r)
	}
	for _, r := range []string{"malformed", "unknown"} {
		m.ignored.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.refused, m.clientIPIgnored, m.expired, m.pushes, m.sent, m.sendErrors, m.ignored, m.latency,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "ferry", Subsystem: "registry_udp", Name: "subscribers",
				Help: "Nacos 1.x push subscriptions (UDP endpoint × service) held by this node.",
			}, subscribers))
	}
	return m
}

package raftstore

import (
	"errors"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors. A nil *metrics records
// nothing.
type metrics struct {
	applies      *prometheus.CounterVec   // command, result
	applySeconds *prometheus.HistogramVec // command
	state        *prometheus.GaugeVec     // state (one is 1)
	forwards     *prometheus.CounterVec   // result
	linearized   prometheus.Counter       // linearizable reads served
}

// newMetrics registers the collectors; counts is read at scrape time for
// the object gauges.
func newMetrics(reg prometheus.Registerer, counts func() (services, instances, overrides int)) (*metrics, error) {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: "applies_total",
			Help: "Raft log entries applied by the FSM, by command and result (ok, invalid, error).",
		}, []string{"command", "result"}),
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: "apply_seconds",
			Help:    "Latency of a write, from proposal to FSM result, by command.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"command"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: "state",
			Help: "Raft state of this node: 1 for the current state, 0 for the others.",
		}, []string{"state"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: "forwards_total",
			Help: "Writes a follower forwarded to the leader, by result (ok, retry, or the error code).",
		}, []string{"result"}),
		linearized: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: "linearizable_reads_total",
			Help: "Reads made linearizable (the leader's read index applied here first).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	gauge := func(name, help string, pick func(s, i, o int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "raftstore", Name: name, Help: help,
		}, func() float64 { return float64(pick(counts())) })
	}
	cs := []prometheus.Collector{m.applies, m.applySeconds, m.state, m.forwards, m.linearized,
		gauge("services", "Services with state in the FSM.", func(s, _, _ int) int { return s }),
		gauge("persistent_instances", "Persistent instances in the FSM.", func(_, i, _ int) int { return i }),
		gauge("overrides", "Instance overrides in the FSM.", func(_, _, o int) int { return o }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) applied(command string, err error) {
	if m == nil {
		return
	}
	res := "ok"
	switch {
	case errors.Is(err, ErrInvalidParam):
		res = "invalid"
	case err != nil:
		res = "error"
	}
	m.applies.WithLabelValues(command, res).Inc()
}

func (m *metrics) setState(s raft.RaftState) {
	if m == nil {
		return
	}
	for _, st := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(st.String()).Set(v)
	}
}

func (m *metrics) forwarded(result string) {
	if m == nil {
		return
	}
	if result == "" {
		result = "ok"
	}
	m.forwards.WithLabelValues(result).Inc()
}

func (m *metrics) linearizedRead() {
	if m != nil {
		m.linearized.Inc()
	}
}

package membership

import "github.com/prometheus/client_golang/prometheus"

// metrics are the membership's collectors: each member's state (read at
// scrape time) and probe outcomes.
type metrics struct {
	probes *prometheus.CounterVec
	state  *prometheus.Desc
	m      *Membership
}

func newMetrics(reg prometheus.Registerer, m *Membership) (*metrics, error) {
	met := &metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "cluster", Name: "probes_total",
			Help: "Probes of peers over the cluster port, by result (ok, fail).",
		}, []string{"result"}),
		state: prometheus.NewDesc("ferry_cluster_member_state",
			"1 for each member's current state as this node sees it (UP, SUSPICIOUS, DOWN, LEAVING).",
			[]string{"member", "state"}, nil),
		m: m,
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{met.probes, met} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return met, nil
}

func (met *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- met.state }

func (met *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, v := range met.m.View() {
		for _, s := range []State{Up, Suspicious, Down, Leaving} {
			val := 0.0
			if v.State == s {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(met.state, prometheus.GaugeValue, val, v.Address, string(s))
		}
	}
}

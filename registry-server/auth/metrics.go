package auth

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	logins *prometheus.CounterVec
	denied *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_auth", Name: "logins_total",
			Help: "Login attempts (and username/password requests) by result: ok, denied, throttled.",
		}, []string{"result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "registry_auth", Name: "denied_total",
			Help: "Requests refused by auth, by resource type (naming, config, console).",
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.logins, m.denied)
	}
	return m
}

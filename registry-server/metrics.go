package registryserver

import (
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/naming"
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// statsCollector exports the registry's counts at scrape time.
type statsCollector struct {
	reg                                  *naming.Registry
	services, instances, unhealthy, subs *prometheus.Desc
	clients                              *prometheus.Desc
}

func newStatsCollector(reg *naming.Registry) *statsCollector {
	return &statsCollector{
		reg:       reg,
		services:  prometheus.NewDesc("ferry_registry_services", "Services known to the registry.", nil, nil),
		instances: prometheus.NewDesc("ferry_registry_instances", "Instances, by kind (connection, beat, persistent).", []string{"kind"}, nil),
		unhealthy: prometheus.NewDesc("ferry_registry_unhealthy_instances", "Unhealthy instances.", nil, nil),
		subs:      prometheus.NewDesc("ferry_registry_subscriptions", "Subscriptions of connected clients.", nil, nil),
		clients:   prometheus.NewDesc("ferry_registry_clients", "Publishing clients, by kind (connection, beat).", []string{"kind"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.services
	ch <- c.instances
	ch <- c.unhealthy
	ch <- c.subs
	ch <- c.clients
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.reg.Stats()
	ch <- prometheus.MustNewConstMetric(c.services, prometheus.GaugeValue, float64(st.Services))
	ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.ConnectionInstances), "connection")
	ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.BeatKeptInstances), "beat")
	ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.PersistentInstances), "persistent")
	ch <- prometheus.MustNewConstMetric(c.unhealthy, prometheus.GaugeValue, float64(st.UnhealthyInstances))
	ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(st.Subscriptions))
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(st.ConnectionClients), "connection")
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(st.BeatClients), "beat")
}

package worker

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Registry modes, the values of ferry_sync_registry_mode's mode label.
const (
	// ModeBatchBeat: beat-kept instances kept alive by Ferry's merged batch
	// beats (Ferry's registry).
	ModeBatchBeat = "batch-beat"
	// ModeNacosFallback: the target has no batch-beat extension (a real
	// Nacos 2.x): the full list per service is registered with
	// BatchInstanceRequest, bound to the worker's connection.
	ModeNacosFallback = "nacos-fallback"
)

// newModeGauge registers (or, when another adapter on the same registerer
// did, reuses) ferry_sync_registry_mode: 1 for the mode a registry target
// is in, 0 for the other. reg may be nil.
func newModeGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_sync_registry_mode",
		Help: "How synced instances are kept in a registry target: 1 for the current mode (batch-beat or nacos-fallback)."},
		[]string{"registry", "mode"})
	if reg == nil {
		return g
	}
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				return old
			}
		}
	}
	return g
}

// gatherers is the metrics of the parts that come and go (engines, shared
// watchers and clients): each has its own registry, so a restarted task
// registers its metrics again without a collision; /metrics gathers the
// worker's registry and these.
type gatherers struct {
	mu   sync.Mutex // guards regs
	regs map[*prometheus.Registry]struct{}
}

func newGatherers() *gatherers { return &gatherers{regs: map[*prometheus.Registry]struct{}{}} }

// add returns a new registry (gathered until remove) and a registerer on
// it that adds labels to every metric.
func (g *gatherers) add(labels prometheus.Labels) (*prometheus.Registry, prometheus.Registerer) {
	r := prometheus.NewRegistry()
	g.mu.Lock()
	g.regs[r] = struct{}{}
	g.mu.Unlock()
	return r, prometheus.WrapRegistererWith(labels, r)
}

func (g *gatherers) remove(r *prometheus.Registry) {
	if r == nil {
		return
	}
	g.mu.Lock()
	delete(g.regs, r)
	g.mu.Unlock()
}

// Gather implements prometheus.Gatherer.
func (g *gatherers) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	list := make(prometheus.Gatherers, 0, len(g.regs))
	for r := range g.regs {
		list = append(list, r)
	}
	g.mu.Unlock()
	return list.Gather()
}

package worker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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

package syncer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkEngineInitialSync measures the engine's own cost of a cold start
// over 3,000 services × 10 providers against in-memory fakes (no network):
// from Start until every instance is kept. The real end-to-end figure (with
// ZooKeeper and the registry) is ferry bench's.
func BenchmarkEngineInitialSync(b *testing.B) {
	const services, perService = 3000, 10
	src := newFakeSource()
	src.changes = make(chan string, services+1)
	for s := range services {
		iface := fmt.Sprintf("org.bench.Service%04d", s)
		var provs []Provider
		for p := range perService {
			provs = append(provs, prov(iface, fmt.Sprintf("10.%d.%d.%d", s/250, s%250, p), 20880, 1700000000000))
		}
		src.set(iface, provs...)
	}
	for len(src.changes) > 0 {
		<-src.changes
	}
	b.ResetTimer()
	for range b.N {
		reg := newFakeRegistry()
		cfg := DefaultConfig()
		cfg.Cluster, cfg.Worker = "zk", "w"
		cfg.ProbeInterval = 0
		e, err := New(cfg, Deps{Source: src, Registry: reg, Ownership: newFakeOwnership(0, 1), ShardOf: shardOf,
			Clock: newFakeClock(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := e.Start(); err != nil {
			b.Fatal(err)
		}
		for reg.beatCount() < services*perService {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/cold-start")
		_ = e.Stop(context.Background())
	}
}

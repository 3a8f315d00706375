package worker

import (
	"context"
	"testing"
	"time"
)

// A running worker's gatherer (what the console serves on /metrics)
// carries the runtime figures an operator reads and the bounds of the
// worker's own buffers. /debug/pprof is the console's mount of
// internal/diag (tested there and in cmd/ferry).
func TestWorkerGathersRuntimeMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	mfs, err := w.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		v := 0.0
		if ms := mf.GetMetric(); len(ms) > 0 {
			if g := ms[0].GetGauge(); g != nil {
				v = g.GetValue()
			} else if c := ms[0].GetCounter(); c != nil {
				v = c.GetValue()
			}
		}
		got[mf.GetName()] = v
	}
	for _, name := range []string{"go_gc_pauses_seconds", "go_sched_goroutines_goroutines", "go_memstats_heap_inuse_bytes",
		"go_gc_gomemlimit_bytes", "process_resident_memory_bytes",
		"ferry_worker_events_buffer_size", "ferry_worker_events_dropped_total", "zkwatch_skipped_paths_remembered"} {
		if _, ok := got[name]; !ok {
			t.Errorf("the gatherer has no %s", name)
		}
	}
	if got["ferry_worker_events_buffer_size"] != 4096 || got["ferry_worker_events_dropped_total"] != 0 {
		t.Errorf("events buffer %v, dropped %v: want 4096 and 0", got["ferry_worker_events_buffer_size"], got["ferry_worker_events_dropped_total"])
	}
}

package registryserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An operator profiles a running node and reads its runtime figures on the
// main HTTP port (loopback; internal/diag tests the refusal of others).
func TestNodeServesPprofAndRuntimeMetrics(t *testing.T) {
	s := openNode(t, t.TempDir())
	defer s.Stop()
	if code, body := call(t, s, http.MethodGet, "/debug/pprof/heap", url.Values{"debug": {"1"}}); code != 200 || !strings.Contains(body, "heap profile") {
		t.Fatalf("GET /debug/pprof/heap = %d %.100q", code, body)
	}
	if code, body := call(t, s, http.MethodGet, "/debug/pprof/", nil); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/ = %d %.100q", code, body)
	}
	code, body := call(t, s, http.MethodGet, "/metrics", nil)
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, name := range []string{"go_gc_pauses_seconds_bucket", "go_sched_goroutines_goroutines", "go_memstats_heap_inuse_bytes",
		"go_gc_gomemlimit_bytes", "process_resident_memory_bytes", "ferry_registry_services"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

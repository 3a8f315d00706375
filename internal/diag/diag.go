// Package diag is what an operator needs to see inside a long-lived Ferry
// process: Go's profiles on /debug/pprof/ (loopback callers only, unless
// the caller passes its own guard) and the runtime's own figures (heap, GC
// pauses, goroutines, scheduler latency; the process' RSS and CPU) on the
// process' /metrics. The sync worker and the registry mount both on their
// HTTP port.
//
// Importing net/http/pprof also registers its handlers on
// http.DefaultServeMux; no Ferry process serves that mux, so only the
// routes Mount adds answer.
package diag

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Prefix is where Mount serves the profiles.
const Prefix = "/debug/pprof/"

// Guard wraps a handler with an access check (the console's auth, say).
type Guard func(http.Handler) http.Handler

// Mount serves Go's profiles under Prefix on mux: the index, cmdline,
// profile (CPU, ?seconds=N), symbol, trace and every named profile (heap,
// allocs, goroutine, block, mutex, threadcreate). guard decides who may
// call; nil is LoopbackOnly. The patterns carry no method, so they fit a
// mux with or without method patterns.
func Mount(mux *http.ServeMux, guard Guard) {
	if guard == nil {
		guard = LoopbackOnly
	}
	mux.Handle(Prefix, guard(http.HandlerFunc(pprof.Index)))
	mux.Handle(Prefix+"cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle(Prefix+"profile", guard(http.HandlerFunc(pprof.Profile)))
	mux.Handle(Prefix+"symbol", guard(http.HandlerFunc(pprof.Symbol)))
	mux.Handle(Prefix+"trace", guard(http.HandlerFunc(pprof.Trace)))
}

// LoopbackOnly answers callers whose RemoteAddr is a loopback address and
// refuses every other with 403: profiles show the process' memory
// (credentials included) and a CPU profile costs a core for its length.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) {
			http.Error(w, "diag: "+Prefix+" answers loopback callers only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RegisterRuntime registers the runtime's collectors on reg: the Go
// collector with runtime/metrics' GC, memory and scheduler figures
// (go_gc_pauses_seconds, go_memory_classes_*, go_sched_goroutines_goroutines,
// go_sched_latencies_seconds, go_gc_gomemlimit_bytes, ... besides the
// classic go_memstats_*, go_goroutines and go_gc_duration_seconds) and the
// process collector (process_resident_memory_bytes,
// process_cpu_seconds_total). A registry that already holds the same
// collectors (several in-process nodes sharing one) is left as it is.
func RegisterRuntime(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return fmt.Errorf("diag: register runtime metrics: %w", err)
			}
		}
	}
	return nil
}

// Limits are the runtime settings that bound a process' memory and CPU.
type Limits struct {
	MemoryLimit int64  // bytes: GOMEMLIMIT (or debug.SetMemoryLimit); math.MaxInt64 is none
	GOGC        string // $GOGC as given ("" is the default, 100)
	GOMAXPROCS  int
}

// ReadLimits reads the settings in force now.
func ReadLimits() Limits {
	return Limits{MemoryLimit: debug.SetMemoryLimit(-1), GOGC: os.Getenv("GOGC"), GOMAXPROCS: runtime.GOMAXPROCS(0)}
}

// LogValue shows the limits as slog attributes (gomemlimit "none" when
// unset).
func (l Limits) LogValue() slog.Value {
	mem := "none"
	if l.MemoryLimit != math.MaxInt64 {
		mem = fmt.Sprintf("%d MiB", l.MemoryLimit>>20)
		if l.MemoryLimit%(1<<20) != 0 {
			mem = fmt.Sprintf("%d B", l.MemoryLimit)
		}
	}
	gogc := l.GOGC
	if gogc == "" {
		gogc = "100"
	}
	return slog.GroupValue(slog.String("gomemlimit", mem), slog.String("gogc", gogc), slog.Int("gomaxprocs", l.GOMAXPROCS))
}

// LogLimits logs the runtime's limits once at a process' start, so an
// operator sees the GOMEMLIMIT the process honours (Go applies it; the
// soft limit makes the GC work harder as the heap nears it).
func LogLimits(logger *slog.Logger) {
	logger.Info("runtime limits", "runtime", ReadLimits())
}

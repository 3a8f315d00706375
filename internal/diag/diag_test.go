package diag

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMountServesProfilesToLoopback(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(http.ResponseWriter, *http.Request) {}) // method patterns beside ours
	Mount(mux, nil)
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/cmdline":           "diag.test",
		"/debug/pprof/profile?seconds=1": "", // a protobuf
	} {
		code, body := get(t, srv.URL+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %.80q, want 200 with %q", path, code, body, want)
		}
	}
}

func TestMountRefusesNonLoopback(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux, nil)
	for _, addr := range []string{"192.0.2.7:40000", "[2001:db8::1]:40000", "10.0.0.1:1", "garbage"} {
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/heap", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("RemoteAddr %s: %d, want 403", addr, rec.Code)
		}
	}
	for _, addr := range []string{"127.0.0.1:40000", "[::1]:40000"} {
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("RemoteAddr %s: %d, want 200", addr, rec.Code)
		}
	}
}

func TestMountUsesCallersGuard(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer ok" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/debug/pprof/"); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/debug/pprof/", nil)
	req.Header.Set("Authorization", "Bearer ok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d, want 200", resp.StatusCode)
	}
	// A non-loopback caller the guard lets in is let in: the guard decides.
	r := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
	rec := httptest.NewRecorder()
	r.RemoteAddr = "192.0.2.7:1"
	r.Header.Set("Authorization", "Bearer ok")
	mux.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("guarded non-loopback caller: %d, want 200", rec.Code)
	}
}

func TestRegisterRuntime(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterRuntime(reg); err != nil {
		t.Fatal(err)
	}
	if err := RegisterRuntime(reg); err != nil { // a second in-process node on the same registry
		t.Fatalf("second RegisterRuntime: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{
		"go_gc_pauses_seconds", "go_gc_duration_seconds", "go_goroutines", "go_sched_goroutines_goroutines",
		"go_memory_classes_heap_objects_bytes", "go_gc_gomemlimit_bytes", "go_memstats_heap_inuse_bytes",
		"process_resident_memory_bytes", "process_cpu_seconds_total",
	} {
		if !have[name] {
			t.Errorf("no %s on /metrics", name)
		}
	}
}

func TestLimitsLogValue(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{MemoryLimit: math.MaxInt64, GOMAXPROCS: 2}, "runtime.gomemlimit=none runtime.gogc=100 runtime.gomaxprocs=2"},
		{Limits{MemoryLimit: 128 << 20, GOGC: "50", GOMAXPROCS: 4}, "runtime.gomemlimit=\"128 MiB\" runtime.gogc=50 runtime.gomaxprocs=4"},
		{Limits{MemoryLimit: 1000, GOGC: "off", GOMAXPROCS: 1}, "runtime.gomemlimit=\"1000 B\" runtime.gogc=off runtime.gomaxprocs=1"},
	} {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		}})).Info("x", "runtime", tc.l)
		if got := strings.TrimSpace(buf.String()); got != tc.want {
			t.Errorf("%+v logs %q, want %q", tc.l, got, tc.want)
		}
	}
}

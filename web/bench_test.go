package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/ferrysync/ferry/store"
)

// seedEstate writes the counts of an estate of apps × servicesPerApp
// services with instances each, as one worker of one task would.
func seedEstate(b *testing.B, h *harness, apps, servicesPerApp, instances int) {
	b.Helper()
	task := h.seed("w1")
	var acs []store.AppCount
	var scs []store.ServiceCount
	for a := range apps {
		app := fmt.Sprintf("app-%03d", a)
		acs = append(acs, store.AppCount{TaskID: task, App: app, Kind: store.KindInterface, ZK: servicesPerApp * instances,
			Synced: servicesPerApp * instances, Skipped: map[string]int{"with_nacos": 1}})
		for s := range servicesPerApp {
			scs = append(scs, store.ServiceCount{TaskID: task, Service: fmt.Sprintf("providers:com.%s.S%d::", app, s), App: app,
				Kind: store.KindInterface, ZK: instances, Registry: instances, Synced: instances})
		}
	}
	if err := h.st.PutCounts(context.Background(), "w1", task, acs, scs); err != nil {
		b.Fatal(err)
	}
	if err := h.st.AppendEvents(context.Background(), store.Event{Kind: store.EventRegistered, Service: "x"}); err != nil {
		b.Fatal(err)
	}
}

// benchPage measures the server time of GET path (session cookie of an
// operator) and reports its p50 and p99.
func benchPage(b *testing.B, path string) {
	h := newHarness(b, nil)
	seedEstate(b, h, 300, 10, 10) // 300 apps, 3,000 services, 30,000 instances
	tok, u, err := h.srv.Service().Login(context.Background(), "operator-user", "password-operator", "127.0.0.1")
	if err != nil || u == nil {
		b.Fatal(err)
	}
	handler := h.srv.Handler()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: tok})
		rec := httptest.NewRecorder()
		start := time.Now()
		handler.ServeHTTP(rec, req)
		durs = append(durs, time.Since(start))
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkOverviewPage: the Overview page of an estate of 300 apps,
// 3,000 services, 30,000 instances, server time (SQLite store).
func BenchmarkOverviewPage(b *testing.B) { benchPage(b, "/") }

// BenchmarkAppsPage: the Apps page of the same estate.
func BenchmarkAppsPage(b *testing.B) { benchPage(b, "/apps") }

// BenchmarkAppsAPI: GET /api/v1/apps of the same estate.
func BenchmarkAppsAPI(b *testing.B) { benchPage(b, "/api/v1/apps") }

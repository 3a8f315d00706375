package web

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/store"
)

// statusWorker stands in for the worker process behind the Worker
// interface (the real one is wired and tested in cmd/ferry): a fixed
// status, a counted Confirm, one metric.
type statusWorker struct {
	confirmed atomic.Int64
	reg       *prometheus.Registry
}

func newStatusWorker() *statusWorker {
	w := &statusWorker{reg: prometheus.NewRegistry()}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_test_gauge", Help: "test"})
	g.Set(7)
	w.reg.MustRegister(g)
	return w
}

func (w *statusWorker) Status() any { return map[string]any{"Worker": "w-test", "Tasks": []any{}} }
func (w *statusWorker) Confirm(id int64) int {
	if id != 0 && id != 3 {
		return 0
	}
	w.confirmed.Add(1)
	return 1
}
func (w *statusWorker) Gatherer() prometheus.Gatherer { return w.reg }

// The worker's own routes: /metrics open, /api/status for viewers,
// /api/confirm-removals for operators; during a store outage the status
// stays readable with a token verified before it, and writes are refused.
func TestWorkerRoutes(t *testing.T) {
	w := newStatusWorker()
	h := newHarness(t, w)
	r := h.want(h.req("GET", "/metrics", "", nil), 200, "")
	if !strings.Contains(string(r.Body), "ferry_test_gauge 7") {
		t.Fatalf("/metrics: %s", r.Body)
	}
	h.want(h.req("GET", "/api/status", "", nil), 401, CodeUnauth)
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/status", nil), 200, ""); r.field("Worker") != "w-test" {
		t.Fatalf("status %s", r.Body)
	}
	h.want(h.req("POST", "/api/confirm-removals", "", nil), 401, CodeUnauth)
	h.want(h.as(store.RoleViewer, "POST", "/api/confirm-removals", nil), 403, CodeForbidden)
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals", nil), 200, "")
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals?task=3", nil), 200, "")
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals?task=task-3", nil), 200, "")
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals?task=999", nil), 404, CodeNotFound)
	if r := h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals?task=x", nil), 400, CodeInvalid); r.field("field") != "task" {
		t.Fatalf("bad task: %s", r.Body)
	}
	if n := w.confirmed.Load(); n != 3 {
		t.Fatalf("confirmed %d times, want 3", n)
	}
	h.want(h.req("POST", "/api/confirm-removals", h.tokens[store.RoleOperator], nil, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"), 403, CodeCrossOrigin)

	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	h.want(h.as(store.RoleViewer, "GET", "/api/status", nil), 200, "")
	h.want(h.req("GET", "/metrics", "", nil), 200, "")
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals", nil), 503, CodeUnavailable)
	h.want(h.as(store.RoleAdmin, "GET", "/api/status", nil), 503, CodeUnavailable) // never verified before the outage
	if r := h.req("GET", "/api/status", h.tokens[store.RoleViewer], nil); r.Status != http.StatusOK {
		t.Fatalf("status during the outage: %d %s", r.Status, r.Body)
	}
}

// A hung database (MariaDB stopped with SIGSTOP) must not hang the
// console: /api/status answers from a credential verified before, within
// the auth timeout; a write answers 503 within the request timeout.
func TestHungStoreKeepsStatusReadable(t *testing.T) {
	db := mysqlserver.ForTest(t)
	dsn, err := db.CreateDatabase(context.Background(), "console")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessDSN(t, newStatusWorker(), dsn)
	h.want(h.as(store.RoleViewer, "GET", "/api/status", nil), 200, "")
	h.want(h.as(store.RoleOperator, "GET", "/api/v1/me", nil), 200, "")
	if err := db.Pause(); err != nil {
		t.Fatal(err)
	}
	defer db.Resume()
	// Past authFresh, so the store is asked (and hangs) each time.
	poll.Every(t, 30*time.Second, 500*time.Millisecond, "a status answered from the store's side lookup timing out", func() bool {
		start := time.Now()
		r := h.as(store.RoleViewer, "GET", "/api/status", nil)
		return r.Status == 200 && time.Since(start) > 500*time.Millisecond
	})
	start := time.Now()
	h.want(h.as(store.RoleOperator, "POST", "/api/confirm-removals", nil), 503, CodeUnavailable)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a write against a hung store took %v", took)
	}
}

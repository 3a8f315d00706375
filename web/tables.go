package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/store"
)

// The read-only pages (Services, Workers, Events, Audit) are one table
// template over the Service's views.

type tableFilter struct{ Label, Name, Value string }

type tableRow struct {
	Cells []string
	Red   bool
	// Link, when set, makes cell LinkCol a link to it.
	Link    string
	LinkCol int
}

type tableView struct {
	ID      string
	Note    string
	Filters []tableFilter
	Headers []string
	Rows    []tableRow
	Next    string // link to the next page
	// Live, when set, is the partial htmx re-reads every LiveEvery into
	// the table's body.
	Live, LiveEvery string
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func itoa(n int) string { return strconv.Itoa(n) }

// queryID parses an optional id of the query (0 when absent).
func queryID(q url.Values, field string) (int64, error) { return queryInt(q.Get(field), field) }

// liveEvery is how often the events tail refreshes.
const liveEvery = "3s"

// eventsTable is the events page's table for the query's filters; the
// first page (no before) is live.
func (s *Server) eventsTable(ctx context.Context, u *store.User, q url.Values) (*tableView, error) {
	eq := EventQuery{Kind: q.Get("kind"), Service: q.Get("service"), App: q.Get("app"), Worker: q.Get("worker"), Limit: 100}
	var err error
	if eq.Task, err = queryID(q, "task"); err != nil {
		return nil, err
	}
	if eq.Before, err = queryID(q, "before"); err != nil {
		return nil, err
	}
	p, err := s.svc.ListEvents(ctx, u, eq)
	if err != nil {
		return nil, err
	}
	t := &tableView{ID: "events", Filters: []tableFilter{{"Kind", "kind", eq.Kind}, {"Task", "task", q.Get("task")},
		{"Service", "service", eq.Service}, {"App", "app", eq.App}, {"Worker", "worker", eq.Worker}},
		Headers: []string{"Time", "Kind", "Service", "Instance", "Worker", "Detail"}}
	for _, e := range p.Events {
		t.Rows = append(t.Rows, tableRow{Red: e.Kind == "error", Cells: []string{when(e.Time), e.Kind, e.Service, e.Instance, e.Worker, e.Detail}})
	}
	if p.Next > 0 {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("before", strconv.FormatInt(p.Next, 10))
		t.Next = "/events?" + nq.Encode()
	}
	if eq.Before == 0 {
		lq := url.Values{}
		for _, f := range t.Filters {
			if f.Value != "" {
				lq.Set(f.Name, f.Value)
			}
		}
		t.Live, t.LiveEvery = "/partials/events-tail?"+lq.Encode(), liveEvery
		t.Note = "Live: the newest events, refreshed every " + liveEvery + "."
	}
	return t, nil
}

func (s *Server) tableRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /services", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		q := r.URL.Query()
		d.Title = "Services"
		task, err := queryID(q, "task")
		if err != nil {
			return "", err
		}
		short := q.Get("short") == "true" || q.Get("short") == "on"
		svcs, err := s.svc.ListServices(r.Context(), d.User, ServiceQuery{Task: task, App: q.Get("app"), Service: q.Get("service"), Short: short, Limit: 5000})
		if err != nil {
			return "", err
		}
		t := &tableView{ID: "services", Note: "Red: fewer instances in the registry than providers in ZooKeeper (short=true lists only those). A service's name opens its diff per ip:port.",
			Filters: []tableFilter{{"App", "app", q.Get("app")}, {"Service", "service", q.Get("service")}, {"Task", "task", q.Get("task")}, {"Short (true)", "short", q.Get("short")}},
			Headers: []string{"Task", "Service", "App", "ZooKeeper", "Registry", "Synced", "Native", "Owner", "Updated"}}
		for _, v := range svcs {
			t.Rows = append(t.Rows, tableRow{Red: v.Short, Cells: []string{fmt.Sprint(v.TaskID), v.Service, v.App, itoa(v.ZK), itoa(v.Registry),
				itoa(v.Synced), itoa(v.Native), v.Worker, when(v.Updated)}, LinkCol: 1,
				Link: "/services/diff?" + url.Values{"task": {fmt.Sprint(v.TaskID)}, "service": {v.Service}}.Encode()})
		}
		d.Table = t
		return "table", nil
	}))
	mux.HandleFunc("GET /workers", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Workers"
		wv, err := s.svc.ListWorkers(r.Context(), d.User)
		if err != nil {
			return "", err
		}
		t := &tableView{ID: "workers", Note: fmt.Sprintf("Settings generation %d; %d shard(s) free.", wv.Generation, wv.FreeShards),
			Headers: []string{"Worker", "Address", "Version", "Live", "Heartbeat age", "Applied generation", "Shards", "Max epoch", "Lease expires", "Started"}}
		for _, v := range wv.Workers {
			exp := ""
			if v.LeaseExpiresAt != nil {
				exp = when(*v.LeaseExpiresAt)
			}
			t.Rows = append(t.Rows, tableRow{Red: !v.Live || v.AppliedGeneration < wv.Generation, Cells: []string{v.ID, v.Address, v.Version,
				strconv.FormatBool(v.Live), (time.Duration(v.HeartbeatAgeMS) * time.Millisecond).String(), fmt.Sprint(v.AppliedGeneration),
				itoa(len(v.Shards)), fmt.Sprint(v.MaxEpoch), exp, when(v.StartedAt)}})
		}
		d.Table = t
		return "table", nil
	}))
	mux.HandleFunc("GET /events", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Events"
		t, err := s.eventsTable(r.Context(), d.User, r.URL.Query())
		d.Table = t
		return "table", err
	}))
	// The live tail: the first page's table, re-read by htmx every few
	// seconds with the page's filters (no page reload).
	mux.HandleFunc("GET /partials/events-tail", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		q := r.URL.Query()
		q.Del("before")
		t, err := s.eventsTable(r.Context(), d.User, q)
		if err != nil {
			return "", err
		}
		return "", s.renderPartial(w, "table-rows", t)
	}))
	mux.HandleFunc("GET /audit", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		q := r.URL.Query()
		d.Title = "Audit"
		before, err := queryID(q, "before")
		if err != nil {
			return "", err
		}
		p, err := s.svc.ListAudit(r.Context(), d.User, AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"),
			Batch: q.Get("batch"), Before: before, Limit: 100})
		if err != nil {
			return "", err
		}
		t := &tableView{ID: "audit", Filters: []tableFilter{{"Who", "actor", q.Get("actor")}, {"Action", "action", q.Get("action")},
			{"Target", "target", q.Get("target")}, {"Batch", "batch", q.Get("batch")}},
			Headers: []string{"When", "Who", "Action", "Target", "Before", "After", "Batch"}}
		for _, e := range p.Entries {
			t.Rows = append(t.Rows, tableRow{Cells: []string{when(e.At), e.Actor, e.Action, e.Target, e.Before, e.After, strings.TrimSpace(e.BatchID)}})
		}
		if p.Next > 0 {
			nq := url.Values{}
			for k, v := range q {
				nq[k] = v
			}
			nq.Set("before", strconv.FormatInt(p.Next, 10))
			t.Next = "/audit?" + nq.Encode()
		}
		d.Table = t
		return "table", nil
	}))
}

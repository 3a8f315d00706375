package web

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Events, the audit log, the metric history and the overview.

// EventView is one event.
type EventView struct {
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Worker   string    `json:"worker"`
	Detail   string    `json:"detail"`
}

// EventQuery filters events: kind, task (an id), service, app (its
// services as counted), worker; paged backwards with Before (an event id).
type EventQuery struct {
	Kind, Service, App, Worker string
	Task                       int64
	Before                     int64
	Limit                      int
}

// EventPage is one page of events, newest first; Next is the Before of
// the next page (0: no more).
type EventPage struct {
	Events []EventView `json:"events"`
	Next   int64       `json:"next"`
}

// ListEvents returns one page of matching events.
func (s *Service) ListEvents(ctx context.Context, u *store.User, q EventQuery) (*EventPage, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	switch {
	case q.Limit < 0 || q.Limit > 1000:
		return nil, invalid("limit", "%d: want 1-1000", q.Limit)
	case q.Task < 0:
		return nil, invalid("task", "%d: want a task id", q.Task)
	case q.Before < 0:
		return nil, invalid("before", "%d: want an event id", q.Before)
	}
	for f, v := range map[string]string{"kind": q.Kind, "service": q.Service, "app": q.App, "worker": q.Worker} {
		if err := checkText(f, v, 512, false); err != nil {
			return nil, err
		}
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	f := store.EventFilter{Kind: q.Kind, Service: q.Service, Worker: q.Worker, BeforeID: q.Before, Limit: q.Limit + 1}
	if q.Task > 0 {
		f.Task = fmt.Sprintf("task-%d", q.Task)
	}
	if q.App != "" {
		counts, err := s.st.ListServiceCounts(ctx, store.ServiceCountFilter{App: q.App, Limit: 10000}, s.cfg.CountsFresh)
		if err != nil {
			return nil, err
		}
		if len(counts) == 0 {
			return &EventPage{Events: []EventView{}}, nil
		}
		for _, c := range counts {
			f.Services = append(f.Services, c.Service)
		}
	}
	evs, err := s.st.ListEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	page := &EventPage{Events: []EventView{}}
	for i, e := range evs {
		if i == q.Limit {
			page.Next = page.Events[i-1].ID
			break
		}
		page.Events = append(page.Events, EventView{ID: e.ID, Time: e.Time, Kind: e.Kind, Service: e.Service,
			Instance: e.Instance, Worker: e.Worker, Detail: e.Detail})
	}
	return page, nil
}

// AuditView is one audit row.
type AuditView struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Before  string    `json:"before"`
	After   string    `json:"after"`
	BatchID string    `json:"batchId,omitempty"`
}

// AuditQuery filters the audit log; paged backwards with Before.
type AuditQuery struct {
	Actor, Action, Target, Batch string
	Before                       int64
	Limit                        int
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries []AuditView `json:"entries"`
	Next    int64       `json:"next"`
}

// ListAudit returns one page of the audit log.
func (s *Service) ListAudit(ctx context.Context, u *store.User, q AuditQuery) (*AuditPage, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, invalid("limit", "%d: want 1-1000", q.Limit)
	}
	if q.Before < 0 {
		return nil, invalid("before", "%d: want an audit id", q.Before)
	}
	for f, v := range map[string]string{"actor": q.Actor, "action": q.Action, "target": q.Target, "batch": q.Batch} {
		if err := checkText(f, v, 512, false); err != nil {
			return nil, err
		}
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	rows, err := s.st.ListAudit(ctx, store.AuditFilter{Actor: q.Actor, Action: q.Action, Target: q.Target, BatchID: q.Batch,
		BeforeID: q.Before, Limit: q.Limit + 1})
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Entries: []AuditView{}}
	for i, r := range rows {
		if i == q.Limit {
			page.Next = page.Entries[i-1].ID
			break
		}
		page.Entries = append(page.Entries, AuditView{ID: r.ID, At: r.At, Actor: r.Actor, Action: r.Action, Target: r.Target,
			Before: r.Before, After: r.After, BatchID: r.BatchID})
	}
	return page, nil
}

// ---- metric history ----

// MetricPoint is one minute of the whole cluster (summed over workers).
type MetricPoint struct {
	Minute      time.Time `json:"minute"`
	BeatsPerSec float64   `json:"beatsPerSec"`
	Errors      int64     `json:"errors"`
	// LagP50MS, LagP99MS: ZooKeeper-to-registry lag quantiles of the
	// changes applied in the minute (nil: none applied).
	LagP50MS *float64 `json:"lagP50Ms"`
	LagP99MS *float64 `json:"lagP99Ms"`
}

// MetricHistory returns the cluster's minutes over the last window (1 h
// or 24 h), oldest first.
func (s *Service) MetricHistory(ctx context.Context, u *store.User, window time.Duration) ([]MetricPoint, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	if window != time.Hour && window != 24*time.Hour {
		return nil, invalid("window", "%v: want 1h or 24h", window)
	}
	now, err := s.st.Now(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.st.ListMetricMinutes(ctx, "", now.Add(-window), now.Add(time.Minute))
	if err != nil {
		return nil, err
	}
	out := []MetricPoint{}
	for _, m := range store.MergeMetricMinutes(ms) {
		p := MetricPoint{Minute: m.Minute, BeatsPerSec: float64(m.Beats) / 60, Errors: m.Errors}
		if d, ok := store.LagQuantile(m.Lag, 0.5); ok {
			v := float64(d) / float64(time.Millisecond)
			p.LagP50MS = &v
		}
		if d, ok := store.LagQuantile(m.Lag, 0.99); ok {
			v := float64(d) / float64(time.Millisecond)
			p.LagP99MS = &v
		}
		out = append(out, p)
	}
	return out, nil
}

// Overview is the estate's migration at a glance.
type Overview struct {
	Apps, NativeApps, ExcludedApps          int
	ZK, Synced, Native, Failing, SkippedAll int
	// SharePct is the providers' migration share: native / (native +
	// synced), in percent.
	SharePct float64
	Top      []AppView // the apps with the most providers, at most 20
	Events   []EventView
	Workers  *WorkersView
	Applied  *Applied
}

// GetOverview sums the apps and lists the last events.
func (s *Service) GetOverview(ctx context.Context, u *store.User) (*Overview, error) {
	apps, err := s.ListApps(ctx, u, AppQuery{})
	if err != nil {
		return nil, err
	}
	o := &Overview{Apps: len(apps)}
	for _, a := range apps {
		switch store.AppMode(a.Mode) {
		case store.AppNative:
			o.NativeApps++
		case store.AppExcluded:
			o.ExcludedApps++
		}
		o.ZK += a.ZK
		o.Synced += a.Synced
		o.Native += a.Native
		o.Failing += a.Failing
		for _, n := range a.Skipped {
			o.SkippedAll += n
		}
	}
	if d := o.Native + o.Synced; d > 0 {
		o.SharePct = 100 * float64(o.Native) / float64(d)
	}
	top := append([]AppView(nil), apps...)
	sort.SliceStable(top, func(i, j int) bool { return top[i].ZK > top[j].ZK })
	o.Top = top[:min(len(top), 20)]
	page, err := s.ListEvents(ctx, u, EventQuery{Limit: 20})
	if err != nil {
		return nil, err
	}
	o.Events = page.Events
	if o.Workers, err = s.ListWorkers(ctx, u); err != nil {
		return nil, err
	}
	if o.Applied, err = s.applied(ctx, 0); err != nil {
		return nil, err
	}
	return o, nil
}

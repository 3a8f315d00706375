package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The audit log (migration 00004) records every change made through the
// console or its API: who, when (database clock), what, the value before
// and after, and one batch id shared by the rows of a bulk change. Write
// it in the InTx of the change, so a change and its audit row commit
// together.

// AuditEntry is one audit row. Before and After are JSON (or "").
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string
	Action  string // e.g. "app.mode", "task.pause", "user.create"
	Target  string // e.g. "app billing", "task 3"
	Before  string
	After   string
	BatchID string
}

type auditRow struct {
	ID      int64  `gorm:"column:id;primaryKey"`
	AtMS    int64  `gorm:"column:at_ms"`
	Actor   string `gorm:"column:actor"`
	Action  string `gorm:"column:action"`
	Target  string `gorm:"column:target"`
	Before  string `gorm:"column:before_v"`
	After   string `gorm:"column:after_v"`
	BatchID string `gorm:"column:batch_id"`
}

func (auditRow) TableName() string { return "audit_log" }

// AuditJSON encodes v for AuditEntry.Before/After ("" for nil).
func AuditJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return string(b)
}

// AppendAudit records e (its time is the database's now) and sets e.ID.
func (s *Store) AppendAudit(ctx context.Context, e *AuditEntry) error {
	switch {
	case e.Actor == "" || len(e.Actor) > 128:
		return fmt.Errorf("%w audit actor %q", ErrInvalid, e.Actor)
	case e.Action == "" || len(e.Action) > 64:
		return fmt.Errorf("%w audit action %q", ErrInvalid, e.Action)
	case len(e.Target) > 512:
		return fmt.Errorf("%w audit target: longer than 512", ErrInvalid)
	case len(e.BatchID) > 64:
		return fmt.Errorf("%w audit batch id: longer than 64", ErrInvalid)
	}
	now, err := s.nowMillis(ctx)
	if err != nil {
		return err
	}
	r := auditRow{AtMS: now, Actor: e.Actor, Action: e.Action, Target: e.Target, Before: clip(e.Before, 60000), After: clip(e.After, 60000), BatchID: e.BatchID}
	if err := s.q(ctx).Create(&r).Error; err != nil {
		return s.wrap(err, "append audit")
	}
	e.ID, e.At = r.ID, time.UnixMilli(now).UTC()
	return nil
}

// AuditFilter selects audit rows; zero fields match all. BeforeID pages
// backwards (rows with a smaller id); Limit defaults to 100, capped at 1,000.
type AuditFilter struct {
	Actor, Action, Target, BatchID string
	BeforeID                       int64
	Limit                          int
}

// ListAudit returns matching rows, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w audit limit %d", ErrInvalid, f.Limit)
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	q := s.q(ctx).Order("id DESC").Limit(min(f.Limit, 1000))
	for col, v := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target, "batch_id": f.BatchID} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	var rows []auditRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, s.wrap(err, "list audit")
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, AuditEntry{ID: r.ID, At: time.UnixMilli(r.AtMS).UTC(), Actor: r.Actor, Action: r.Action,
			Target: r.Target, Before: r.Before, After: r.After, BatchID: r.BatchID})
	}
	return out, nil
}

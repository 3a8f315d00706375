package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Counts (migration 00003) are what the console's overview, apps and
// services pages show, written by the workers so every replica shows the
// same numbers:
//   - app_counts: one row per task, worker, app and kind holding that
//     worker's share (the services of the shards it owns); readers sum over
//     workers. During a shard hand-over the old and new owner may both
//     count a service for up to one write interval.
//   - service_counts: one row per task and service, written by its owner;
//     a new owner overwrites the row.
// A worker replaces all its rows of one task in one PutCounts call every
// few seconds; rows not rewritten for longer than a reader's freshWithin
// belong to a worker that stopped (ListAppCounts, ListServiceCounts skip
// them; Retention deletes them).

// CountKind says how a service is registered in ZooKeeper.
type CountKind string

// Count kinds.
const (
	KindInterface   CountKind = "interface"   // /dubbo/{interface}/providers
	KindApplication CountKind = "application" // Dubbo 3 /services/{app}
)

// AppCount is one app's provider counts in one task.
type AppCount struct {
	TaskID int64
	App    string // "" for providers without an application parameter
	Kind   CountKind
	// ZK: providers in ZooKeeper; Synced: of those, registered in the
	// registry by Ferry; Native: providers of the app registered natively
	// (withNacos, or the app's mode is native); Failing: registry calls
	// failing for the app's providers; Skipped: providers not synced, by
	// reason (the engine's skip reasons, e.g. "excluded", "native").
	ZK, Synced, Native, Failing int
	Skipped                     map[string]int `json:",omitempty"`
	// WorkerID is the writer (ListAppCounts: "" once summed over workers).
	WorkerID string `json:",omitempty"`
	// UpdatedAt: database clock; ListAppCounts gives the newest summed row.
	UpdatedAt time.Time
}

// ServiceCount is one service's counts in one task.
type ServiceCount struct {
	TaskID  int64
	Service string // the registry's service name
	App     string
	Kind    CountKind
	// ZK: providers in ZooKeeper; Registry: healthy instances in the
	// registry (synced and native); Synced: instances Ferry registered;
	// Native: instances registered by others.
	ZK, Registry, Synced, Native int
	WorkerID                     string
	UpdatedAt                    time.Time
}

type appCountRow struct {
	TaskID      int64  `gorm:"column:task_id;primaryKey;autoIncrement:false"`
	WorkerID    string `gorm:"column:worker_id;primaryKey"`
	App         string `gorm:"column:app;primaryKey"`
	Kind        string `gorm:"column:kind;primaryKey"`
	ZK          int    `gorm:"column:zk"`
	Synced      int    `gorm:"column:synced"`
	Native      int    `gorm:"column:native"`
	Failing     int    `gorm:"column:failing"`
	Skipped     string `gorm:"column:skipped"`
	Round       int64  `gorm:"column:round"`
	UpdatedAtMS int64  `gorm:"column:updated_at_ms"`
}

func (appCountRow) TableName() string { return "app_counts" }

type serviceCountRow struct {
	TaskID      int64  `gorm:"column:task_id;primaryKey;autoIncrement:false"`
	Service     string `gorm:"column:service;primaryKey"`
	WorkerID    string `gorm:"column:worker_id"`
	App         string `gorm:"column:app"`
	Kind        string `gorm:"column:kind"`
	ZK          int    `gorm:"column:zk"`
	Registry    int    `gorm:"column:registry"`
	Synced      int    `gorm:"column:synced"`
	Native      int    `gorm:"column:native"`
	Round       int64  `gorm:"column:round"`
	UpdatedAtMS int64  `gorm:"column:updated_at_ms"`
}

func (serviceCountRow) TableName() string { return "service_counts" }

// countRound tags one PutCounts call's rows, so the call can delete the
// writer's rows it did not rewrite. Unique within the process; a second
// process with the same worker id starts from its own clock.
var countRound atomic.Int64

func nextRound() int64 {
	for {
		old := countRound.Load()
		next := max(old+1, time.Now().UnixNano())
		if countRound.CompareAndSwap(old, next) {
			return next
		}
	}
}

func validKind(k CountKind) bool { return k == KindInterface || k == KindApplication }

// PutCounts replaces worker's counts of task taskID with apps and services
// in one transaction (upserted, stamped with the database's clock; the
// worker's rows of that task not in the call are deleted). A service row
// another worker wrote is taken over. Rows whose TaskID differs from
// taskID are ErrInvalid.
func (s *Store) PutCounts(ctx context.Context, worker string, taskID int64, apps []AppCount, services []ServiceCount) error {
	round := nextRound()
	arows, srows, err := countRows(worker, taskID, apps, services, round, gorm.Expr(s.now()))
	if err != nil {
		return err
	}
	err = s.InTx(ctx, func(tx *Store) error {
		if err := tx.upsertCounts(ctx, arows, srows); err != nil {
			return err
		}
		if err := tx.q(ctx).Where("task_id = ? AND worker_id = ? AND round <> ?", taskID, worker, round).Delete(&appCountRow{}).Error; err != nil {
			return err
		}
		return tx.q(ctx).Where("task_id = ? AND worker_id = ? AND round <> ?", taskID, worker, round).Delete(&serviceCountRow{}).Error
	})
	return s.wrap(err, fmt.Sprintf("put counts of task %d by %s", taskID, worker))
}

// AppCountKey names one app count row of a worker's task.
type AppCountKey struct {
	App  string
	Kind CountKind
}

// UpdateCounts applies a change to worker's counts of task taskID in one
// transaction: apps and services are upserted as PutCounts does, worker's
// app rows keyed by goneApps and service rows named by goneServices are
// deleted, and every other row of worker's in the task is restamped with
// the database's clock (one statement per table), so it stays fresh
// without being rewritten. A worker that knows what it last wrote sends
// only what changed; it sends everything with PutCounts at start and
// after a failed call (which also clears rows it no longer knows of).
func (s *Store) UpdateCounts(ctx context.Context, worker string, taskID int64, apps []AppCount, services []ServiceCount,
	goneApps []AppCountKey, goneServices []string) error {
	arows, srows, err := countRows(worker, taskID, apps, services, nextRound(), gorm.Expr(s.now()))
	if err != nil {
		return err
	}
	err = s.InTx(ctx, func(tx *Store) error {
		if err := tx.upsertCounts(ctx, arows, srows); err != nil {
			return err
		}
		for _, k := range goneApps {
			if err := tx.q(ctx).Where("task_id = ? AND worker_id = ? AND app = ? AND kind = ?", taskID, worker, k.App, string(k.Kind)).
				Delete(&appCountRow{}).Error; err != nil {
				return err
			}
		}
		for start := 0; start < len(goneServices); start += 500 {
			batch := goneServices[start:min(start+500, len(goneServices))]
			if err := tx.q(ctx).Where("task_id = ? AND worker_id = ? AND service IN ?", taskID, worker, batch).
				Delete(&serviceCountRow{}).Error; err != nil {
				return err
			}
		}
		for _, t := range []string{"app_counts", "service_counts"} {
			if err := tx.q(ctx).Exec("UPDATE "+t+" SET updated_at_ms = "+tx.now()+" WHERE task_id = ? AND worker_id = ?", taskID, worker).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, fmt.Sprintf("update counts of task %d by %s", taskID, worker))
}

// countRows validates and builds the rows of one put.
func countRows(worker string, taskID int64, apps []AppCount, services []ServiceCount, round int64, now any) (arows, srows []map[string]any, err error) {
	if worker == "" || len(worker) > 128 {
		return nil, nil, fmt.Errorf("%w counts worker %q", ErrInvalid, worker)
	}
	arows = make([]map[string]any, 0, len(apps))
	for _, a := range apps {
		switch {
		case a.TaskID != taskID:
			return nil, nil, fmt.Errorf("%w app count task id %d in a put of task %d", ErrInvalid, a.TaskID, taskID)
		case !validKind(a.Kind):
			return nil, nil, fmt.Errorf("%w app count kind %q: want interface or application", ErrInvalid, a.Kind)
		case len(a.App) > 255:
			return nil, nil, fmt.Errorf("%w app count app: longer than 255", ErrInvalid)
		}
		sk := a.Skipped
		if sk == nil {
			sk = map[string]int{}
		}
		b, err := json.Marshal(sk)
		if err != nil {
			return nil, nil, fmt.Errorf("%w app count skipped: %v", ErrInvalid, err)
		}
		arows = append(arows, map[string]any{"task_id": taskID, "worker_id": worker, "app": a.App, "kind": string(a.Kind),
			"zk": a.ZK, "synced": a.Synced, "native": a.Native, "failing": a.Failing, "skipped": string(b),
			"round": round, "updated_at_ms": now})
	}
	srows = make([]map[string]any, 0, len(services))
	for _, c := range services {
		switch {
		case c.TaskID != taskID:
			return nil, nil, fmt.Errorf("%w service count task id %d in a put of task %d", ErrInvalid, c.TaskID, taskID)
		case !validKind(c.Kind):
			return nil, nil, fmt.Errorf("%w service count kind %q: want interface or application", ErrInvalid, c.Kind)
		case c.Service == "" || len(c.Service) > 512:
			return nil, nil, fmt.Errorf("%w service count service %q", ErrInvalid, c.Service)
		case len(c.App) > 255:
			return nil, nil, fmt.Errorf("%w service count app: longer than 255", ErrInvalid)
		}
		srows = append(srows, map[string]any{"task_id": taskID, "service": c.Service, "worker_id": worker, "app": c.App,
			"kind": string(c.Kind), "zk": c.ZK, "registry": c.Registry, "synced": c.Synced, "native": c.Native,
			"round": round, "updated_at_ms": now})
	}
	return arows, srows, nil
}

// upsertCounts writes rows built by countRows (inside a transaction).
func (s *Store) upsertCounts(ctx context.Context, arows, srows []map[string]any) error {
	if len(arows) > 0 {
		err := s.q(ctx).Table("app_counts").Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "task_id"}, {Name: "worker_id"}, {Name: "app"}, {Name: "kind"}},
			DoUpdates: clause.AssignmentColumns([]string{"zk", "synced", "native", "failing", "skipped", "round", "updated_at_ms"}),
		}).CreateInBatches(arows, 500).Error
		if err != nil {
			return err
		}
	}
	if len(srows) > 0 {
		return s.q(ctx).Table("service_counts").Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "task_id"}, {Name: "service"}},
			DoUpdates: clause.AssignmentColumns([]string{"worker_id", "app", "kind", "zk", "registry", "synced", "native", "round", "updated_at_ms"}),
		}).CreateInBatches(srows, 500).Error
	}
	return nil
}

// DeleteCounts removes a worker's count rows of every task (graceful
// shutdown, or a task the worker no longer runs when taskIDs is given).
func (s *Store) DeleteCounts(ctx context.Context, worker string, taskIDs ...int64) error {
	err := s.InTx(ctx, func(tx *Store) error {
		for _, m := range []any{&appCountRow{}, &serviceCountRow{}} {
			q := tx.q(ctx).Where("worker_id = ?", worker)
			if len(taskIDs) > 0 {
				q = q.Where("task_id IN ?", taskIDs)
			}
			if err := q.Delete(m).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(err, "delete counts of "+worker)
}

// ListAppCounts returns the app counts written within freshWithin
// (database clock), summed over workers per task, app and kind, by task,
// app, kind. taskID 0 lists every task.
func (s *Store) ListAppCounts(ctx context.Context, taskID int64, freshWithin time.Duration) ([]AppCount, error) {
	var rows []appCountRow
	q := s.q(ctx).Where("updated_at_ms >= "+s.now()+" - ?", freshWithin.Milliseconds())
	if taskID != 0 {
		q = q.Where("task_id = ?", taskID)
	}
	if err := s.checked(ctx, q.Find(&rows), "list app counts"); err != nil {
		return nil, err
	}
	type key struct {
		task      int64
		app, kind string
	}
	sum := map[key]*AppCount{}
	for _, r := range rows {
		k := key{r.TaskID, r.App, r.Kind}
		a := sum[k]
		if a == nil {
			a = &AppCount{TaskID: r.TaskID, App: r.App, Kind: CountKind(r.Kind), WorkerID: r.WorkerID}
			sum[k] = a
		} else if a.WorkerID != r.WorkerID {
			a.WorkerID = ""
		}
		a.ZK += r.ZK
		a.Synced += r.Synced
		a.Native += r.Native
		a.Failing += r.Failing
		var sk map[string]int
		if err := json.Unmarshal([]byte(r.Skipped), &sk); err != nil {
			return nil, fmt.Errorf("store: app count %d/%s/%s skipped %q: %w", r.TaskID, r.App, r.Kind, r.Skipped, err)
		}
		for reason, n := range sk {
			if a.Skipped == nil {
				a.Skipped = map[string]int{}
			}
			a.Skipped[reason] += n
		}
		if t := time.UnixMilli(r.UpdatedAtMS).UTC(); t.After(a.UpdatedAt) {
			a.UpdatedAt = t
		}
	}
	out := make([]AppCount, 0, len(sum))
	for _, a := range sum {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.TaskID != b.TaskID {
			return a.TaskID < b.TaskID
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return a.Kind < b.Kind
	})
	return out, nil
}

// ServiceCountFilter selects service counts; zero fields match all.
type ServiceCountFilter struct {
	TaskID  int64
	App     string
	Service string
	// Short: only services whose registry count is below their ZooKeeper
	// count (the console shows them red).
	Short bool
	// Limit defaults to 1,000 and is capped at 100,000.
	Limit int
}

// ListServiceCounts returns matching service counts written within
// freshWithin (database clock), by task then service.
func (s *Store) ListServiceCounts(ctx context.Context, f ServiceCountFilter, freshWithin time.Duration) ([]ServiceCount, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w service count limit %d", ErrInvalid, f.Limit)
	}
	if f.Limit == 0 {
		f.Limit = 1000
	}
	q := s.q(ctx).Where("updated_at_ms >= "+s.now()+" - ?", freshWithin.Milliseconds()).
		Order("task_id, service").Limit(min(f.Limit, 100000))
	if f.TaskID != 0 {
		q = q.Where("task_id = ?", f.TaskID)
	}
	if f.App != "" {
		q = q.Where("app = ?", f.App)
	}
	if f.Service != "" {
		q = q.Where("service = ?", f.Service)
	}
	if f.Short {
		q = q.Where("registry < zk")
	}
	var rows []serviceCountRow
	if err := s.checked(ctx, q.Find(&rows), "list service counts"); err != nil {
		return nil, err
	}
	out := make([]ServiceCount, 0, len(rows))
	for _, r := range rows {
		out = append(out, ServiceCount{TaskID: r.TaskID, Service: r.Service, App: r.App, Kind: CountKind(r.Kind),
			ZK: r.ZK, Registry: r.Registry, Synced: r.Synced, Native: r.Native, WorkerID: r.WorkerID,
			UpdatedAt: time.UnixMilli(r.UpdatedAtMS).UTC()})
	}
	return out, nil
}

// PruneCounts deletes count rows not rewritten for longer than deadFor.
func (s *Store) PruneCounts(ctx context.Context, deadFor time.Duration) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Store) error {
		for _, t := range []string{"app_counts", "service_counts"} {
			res := tx.q(ctx).Exec("DELETE FROM "+t+" WHERE updated_at_ms < "+tx.now()+" - ?", deadFor.Milliseconds())
			if err := tx.checked(ctx, res, "prune "+t); err != nil {
				return err
			}
			n += res.RowsAffected
		}
		return nil
	})
	return n, err
}

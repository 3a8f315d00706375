package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// TaskStatus is one worker's view of one task, written back by the worker
// (migration 00002) so that every worker's status API and the console show
// every task, not only the ones they run.
type TaskStatus struct {
	TaskID   int64
	WorkerID string
	// Running: the worker runs the task's engine; Error says why not.
	Running bool
	Error   string `json:",omitempty"`
	// ZKSynced: the task's ZooKeeper view mirrors a live session.
	ZKSynced bool
	// The worker's share of the task: shards owned (and kept through a
	// store outage), services, desired and registered instances, pending.
	OwnedShards, KeptShards                int
	Services, Desired, Registered, Pending int
	// UpdatedAt is when the worker wrote the row (database clock).
	UpdatedAt time.Time
}

type taskStatusRow struct {
	TaskID      int64  `gorm:"column:task_id;primaryKey;autoIncrement:false"`
	WorkerID    string `gorm:"column:worker_id;primaryKey"`
	Running     bool   `gorm:"column:running"`
	Error       string `gorm:"column:error"`
	ZKSynced    bool   `gorm:"column:zk_synced"`
	OwnedShards int    `gorm:"column:owned_shards"`
	KeptShards  int    `gorm:"column:kept_shards"`
	Services    int    `gorm:"column:services"`
	Desired     int    `gorm:"column:desired"`
	Registered  int    `gorm:"column:registered"`
	Pending     int    `gorm:"column:pending"`
	UpdatedAtMS int64  `gorm:"column:updated_at_ms"`
}

func (taskStatusRow) TableName() string { return "task_status" }

// PutTaskStatuses writes worker's rows (one per task, upserted, stamped
// with the database's clock) and deletes its rows of tasks not in sts, in
// one transaction.
func (s *Store) PutTaskStatuses(ctx context.Context, worker string, sts []TaskStatus) error {
	if worker == "" || len(worker) > 128 {
		return fmt.Errorf("%w task status worker %q", ErrInvalid, worker)
	}
	ids := make([]int64, 0, len(sts))
	rows := make([]map[string]any, 0, len(sts))
	for _, t := range sts {
		msg := t.Error
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		ids = append(ids, t.TaskID)
		rows = append(rows, map[string]any{
			"task_id": t.TaskID, "worker_id": worker, "running": t.Running, "error": msg, "zk_synced": t.ZKSynced,
			"owned_shards": t.OwnedShards, "kept_shards": t.KeptShards, "services": t.Services, "desired": t.Desired,
			"registered": t.Registered, "pending": t.Pending, "updated_at_ms": gorm.Expr(s.now()),
		})
	}
	err := s.q(ctx).Transaction(func(tx *gorm.DB) error {
		del := tx.Where("worker_id = ?", worker)
		if len(ids) > 0 {
			del = del.Where("task_id NOT IN ?", ids)
		}
		if err := del.Delete(&taskStatusRow{}).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.Table("task_status").Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "task_id"}, {Name: "worker_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"running", "error", "zk_synced", "owned_shards", "kept_shards",
				"services", "desired", "registered", "pending", "updated_at_ms"}),
		}).Create(rows).Error
	})
	return s.wrap(err, "put task status of "+worker)
}

// ListTaskStatuses returns the rows written within freshWithin (by the
// database's clock), by task then worker; older rows belong to workers that
// stopped writing.
func (s *Store) ListTaskStatuses(ctx context.Context, freshWithin time.Duration) ([]TaskStatus, error) {
	var rows []taskStatusRow
	res := s.q(ctx).Where("updated_at_ms >= "+s.now()+" - ?", freshWithin.Milliseconds()).
		Order("task_id, worker_id").Find(&rows)
	if err := s.checked(ctx, res, "list task status"); err != nil {
		return nil, err
	}
	out := make([]TaskStatus, 0, len(rows))
	for _, r := range rows {
		out = append(out, TaskStatus{TaskID: r.TaskID, WorkerID: r.WorkerID, Running: r.Running, Error: r.Error,
			ZKSynced: r.ZKSynced, OwnedShards: r.OwnedShards, KeptShards: r.KeptShards, Services: r.Services,
			Desired: r.Desired, Registered: r.Registered, Pending: r.Pending, UpdatedAt: time.UnixMilli(r.UpdatedAtMS).UTC()})
	}
	return out, nil
}

// DeleteTaskStatuses removes a worker's rows (graceful shutdown).
func (s *Store) DeleteTaskStatuses(ctx context.Context, worker string) error {
	return s.wrap(s.q(ctx).Where("worker_id = ?", worker).Delete(&taskStatusRow{}).Error, "delete task status of "+worker)
}

// PruneTaskStatuses deletes rows not rewritten for longer than deadFor.
func (s *Store) PruneTaskStatuses(ctx context.Context, deadFor time.Duration) (int64, error) {
	res := s.q(ctx).Exec("DELETE FROM task_status WHERE updated_at_ms < "+s.now()+" - ?", deadFor.Milliseconds())
	return res.RowsAffected, s.checked(ctx, res, "prune task status")
}

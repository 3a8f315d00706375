package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// ---- ZooKeeper clusters ----

// CreateZKCluster inserts c and sets its ID. A duplicate name is ErrConflict.
func (s *Store) CreateZKCluster(ctx context.Context, c *ZKCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.ID = 0
	return s.wrap(s.q(ctx).Create(c).Error, "zk cluster "+c.Name)
}

// GetZKCluster returns the cluster with id, or ErrNotFound.
func (s *Store) GetZKCluster(ctx context.Context, id int64) (*ZKCluster, error) {
	var c ZKCluster
	if err := s.q(ctx).First(&c, id).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("zk cluster %d", id))
	}
	return &c, nil
}

// ListZKClusters returns all clusters by name.
func (s *Store) ListZKClusters(ctx context.Context) ([]ZKCluster, error) {
	var out []ZKCluster
	return out, s.wrap(s.q(ctx).Order("name").Find(&out).Error, "list zk clusters")
}

// UpdateZKCluster saves every field of c (by ID).
func (s *Store) UpdateZKCluster(ctx context.Context, c *ZKCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	res := s.q(ctx).Model(c).Select("name", "connect_string", "root", "session_timeout_ms", "updated_at").Updates(c)
	if err := s.checked(ctx, res, "zk cluster "+c.Name); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: zk cluster %d", ErrNotFound, c.ID)
	}
	return nil
}

// DeleteZKCluster deletes a cluster no live task uses; tombstones of deleted
// tasks that reference it go with it. In use: ErrConflict.
func (s *Store) DeleteZKCluster(ctx context.Context, id int64) error {
	return s.deleteCluster(ctx, id, "source_cluster_id", &ZKCluster{}, "zk cluster")
}

func (s *Store) deleteCluster(ctx context.Context, id int64, column string, model any, what string) error {
	return s.InTx(ctx, func(tx *Store) error {
		var n int64
		if err := tx.q(ctx).Model(&SyncTask{}).Where(column+" = ? AND state <> ?", id, TaskDeleted).Count(&n).Error; err != nil {
			return tx.wrap(err, what)
		}
		if n > 0 {
			return fmt.Errorf("%w: %s %d is used by %d task(s)", ErrConflict, what, id, n)
		}
		if err := tx.q(ctx).Where(column+" = ?", id).Delete(&SyncTask{}).Error; err != nil {
			return tx.wrap(err, what)
		}
		res := tx.q(ctx).Delete(model, id)
		if err := tx.checked(ctx, res, fmt.Sprintf("%s %d", what, id)); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("%w: %s %d", ErrNotFound, what, id)
		}
		return nil
	})
}

// ---- registry clusters ----

// CreateRegistryCluster inserts c and sets its ID.
func (s *Store) CreateRegistryCluster(ctx context.Context, c *RegistryCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.ID = 0
	return s.wrap(s.q(ctx).Create(c).Error, "registry cluster "+c.Name)
}

// GetRegistryCluster returns the cluster with id, or ErrNotFound.
func (s *Store) GetRegistryCluster(ctx context.Context, id int64) (*RegistryCluster, error) {
	var c RegistryCluster
	if err := s.q(ctx).First(&c, id).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("registry cluster %d", id))
	}
	return &c, nil
}

// ListRegistryClusters returns all registry clusters by name.
func (s *Store) ListRegistryClusters(ctx context.Context) ([]RegistryCluster, error) {
	var out []RegistryCluster
	return out, s.wrap(s.q(ctx).Order("name").Find(&out).Error, "list registry clusters")
}

// UpdateRegistryCluster saves every field of c (by ID).
func (s *Store) UpdateRegistryCluster(ctx context.Context, c *RegistryCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	res := s.q(ctx).Model(c).Select("name", "kind", "server_list", "namespace", "group_name", "username", "password", "updated_at").Updates(c)
	if err := s.checked(ctx, res, "registry cluster "+c.Name); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: registry cluster %d", ErrNotFound, c.ID)
	}
	return nil
}

// DeleteRegistryCluster deletes a cluster no live task uses.
func (s *Store) DeleteRegistryCluster(ctx context.Context, id int64) error {
	return s.deleteCluster(ctx, id, "dest_cluster_id", &RegistryCluster{}, "registry cluster")
}

// ---- sync tasks ----

// CreateTask inserts t (state running unless set) after checking both
// clusters exist (ErrInvalid naming the missing one).
func (s *Store) CreateTask(ctx context.Context, t *SyncTask) error {
	if err := t.validate(); err != nil {
		return err
	}
	if t.State == TaskDeleted {
		return fmt.Errorf("%w task state %q at creation", ErrInvalid, t.State)
	}
	t.ID = 0
	t.UpdatedBy = t.CreatedBy
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkClusters(ctx, t); err != nil {
			return err
		}
		return tx.wrap(tx.q(ctx).Create(t).Error, "task")
	})
}

func (s *Store) checkClusters(ctx context.Context, t *SyncTask) error {
	if _, err := s.GetZKCluster(ctx, t.SourceClusterID); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w task source cluster id %d: no such zk cluster", ErrInvalid, t.SourceClusterID)
	} else if err != nil {
		return err
	}
	if _, err := s.GetRegistryCluster(ctx, t.DestClusterID); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w task destination cluster id %d: no such registry cluster", ErrInvalid, t.DestClusterID)
	} else if err != nil {
		return err
	}
	return nil
}

// GetTask returns the task with id, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, id int64) (*SyncTask, error) {
	var t SyncTask
	if err := s.q(ctx).First(&t, id).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("task %d", id))
	}
	return &t, nil
}

// TaskFilter selects tasks; zero fields match all.
type TaskFilter struct {
	States          []TaskState
	SourceClusterID int64
}

// ListTasks returns matching tasks by id.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) ([]SyncTask, error) {
	q := s.q(ctx).Order("id")
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	if f.SourceClusterID != 0 {
		q = q.Where("source_cluster_id = ?", f.SourceClusterID)
	}
	var out []SyncTask
	return out, s.wrap(q.Find(&out).Error, "list tasks")
}

// UpdateTask saves t's clusters, scope, service and patterns (not its
// state: SetTaskState). A deleted task cannot be edited (ErrConflict).
func (s *Store) UpdateTask(ctx context.Context, t *SyncTask, by string) error {
	if err := t.validate(); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.GetTask(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.State == TaskDeleted {
			return fmt.Errorf("%w: task %d is deleted", ErrConflict, t.ID)
		}
		if err := tx.checkClusters(ctx, t); err != nil {
			return err
		}
		t.UpdatedBy, t.State = by, cur.State
		return tx.wrap(tx.q(ctx).Model(t).Select("source_cluster_id", "dest_cluster_id", "scope", "service", "include_patterns", "exclude_patterns", "updated_by", "updated_at").Updates(t).Error, fmt.Sprintf("task %d", t.ID))
	})
}

// SetTaskState moves a task to state. Leaving deleted is ErrConflict.
func (s *Store) SetTaskState(ctx context.Context, id int64, state TaskState, by string) error {
	if !validState(state) {
		return fmt.Errorf("%w task state %q", ErrInvalid, state)
	}
	return s.InTx(ctx, func(tx *Store) error {
		cur, err := tx.GetTask(ctx, id)
		if err != nil {
			return err
		}
		if cur.State == TaskDeleted && state != TaskDeleted {
			return fmt.Errorf("%w: task %d is deleted", ErrConflict, id)
		}
		return tx.wrap(tx.q(ctx).Model(&SyncTask{ID: id}).Updates(map[string]any{
			"state": state, "updated_by": by, "updated_at": time.Now().UTC(),
		}).Error, fmt.Sprintf("task %d", id))
	})
}

// PurgeTask removes a deleted task's row (after every worker deregistered).
func (s *Store) PurgeTask(ctx context.Context, id int64) error {
	res := s.q(ctx).Where("id = ? AND state = ?", id, TaskDeleted).Delete(&SyncTask{})
	if err := s.checked(ctx, res, fmt.Sprintf("task %d", id)); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		if _, err := s.GetTask(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: task %d is not deleted", ErrConflict, id)
	}
	return nil
}

// ---- apps ----

func validMode(m AppMode) bool { return m == AppSync || m == AppNative || m == AppExcluded }

// SetAppMode creates or updates an app's mode, recording who and when.
func (s *Store) SetAppMode(ctx context.Context, name string, mode AppMode, by string) (*App, error) {
	switch {
	case strings.TrimSpace(name) == "" || len(name) > 255:
		return nil, fmt.Errorf("%w app name %q", ErrInvalid, name)
	case !validMode(mode):
		return nil, fmt.Errorf("%w app mode %q: want sync, native or excluded", ErrInvalid, mode)
	}
	a := &App{Name: name, Mode: mode, ChangedBy: by, ChangedAt: time.Now().UTC()}
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{"mode", "changed_by", "changed_at"}),
	}).Create(a).Error
	if err != nil {
		return nil, s.wrap(err, "app "+name)
	}
	return s.GetApp(ctx, name)
}

// GetApp returns the app named name, or ErrNotFound.
func (s *Store) GetApp(ctx context.Context, name string) (*App, error) {
	var a App
	if err := s.q(ctx).Where("name = ?", name).First(&a).Error; err != nil {
		return nil, s.wrap(err, "app "+name)
	}
	return &a, nil
}

// ListApps returns every app by name; an empty mode lists all modes.
func (s *Store) ListApps(ctx context.Context, mode AppMode) ([]App, error) {
	q := s.q(ctx).Order("name")
	if mode != "" {
		q = q.Where("mode = ?", mode)
	}
	var out []App
	return out, s.wrap(q.Find(&out).Error, "list apps")
}

// DeleteApp forgets an app (it falls back to the default mode).
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	res := s.q(ctx).Where("name = ?", name).Delete(&App{})
	if err := s.checked(ctx, res, "app "+name); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: app %s", ErrNotFound, name)
	}
	return nil
}

// ---- events ----

// AppendEvents records events in one statement (time defaults to now).
func (s *Store) AppendEvents(ctx context.Context, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	for i := range evs {
		if err := evs[i].validate(); err != nil {
			return err
		}
		evs[i].ID = 0
	}
	return s.wrap(s.q(ctx).CreateInBatches(evs, 200).Error, "append events")
}

// EventFilter selects events; zero fields match all. Limit defaults to 100
// and is capped at 10,000.
type EventFilter struct {
	Kind    string
	Service string
	Worker  string
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Limit   int
}

// ListEvents returns matching events, newest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w event limit %d", ErrInvalid, f.Limit)
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 10000)
	q := s.q(ctx).Order("occurred_at DESC, id DESC").Limit(f.Limit)
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.Service != "" {
		q = q.Where("service = ?", f.Service)
	}
	if f.Worker != "" {
		q = q.Where("worker = ?", f.Worker)
	}
	if !f.Since.IsZero() {
		q = q.Where("occurred_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("occurred_at < ?", f.Until.UTC())
	}
	var out []Event
	return out, s.wrap(q.Find(&out).Error, "list events")
}

// PruneEvents deletes events older than before, in batches so a big backlog
// does not hold one long lock; it returns how many went.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var ids []int64
		if err := s.q(ctx).Model(&Event{}).Where("occurred_at < ?", before.UTC()).Order("id").Limit(5000).Pluck("id", &ids).Error; err != nil {
			return total, s.wrap(err, "prune events")
		}
		if len(ids) == 0 {
			return total, nil
		}
		res := s.q(ctx).Where("id IN ?", ids).Delete(&Event{})
		if err := res.Error; err != nil {
			return total, s.wrap(err, "prune events")
		}
		total += res.RowsAffected
		if len(ids) < 5000 {
			return total, nil
		}
	}
}

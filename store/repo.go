package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ---- ZooKeeper clusters ----

// CreateZKCluster inserts c and sets its ID. A duplicate name is ErrConflict.
func (s *Store) CreateZKCluster(ctx context.Context, c *ZKCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.ID, c.Version = 0, 1
	return s.bumped(ctx, func(tx *Store) error {
		return tx.wrap(tx.q(ctx).Create(c).Error, "zk cluster "+c.Name)
	})
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

// UpdateZKCluster saves every field of c (by ID) and sets c.Version to
// the new version. With c.Version > 0 the row must still have that version
// (else a *StaleError, versions.go).
func (s *Store) UpdateZKCluster(ctx context.Context, c *ZKCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	return s.bumped(ctx, func(tx *Store) error {
		return tx.versioned(ctx, "zk_clusters", c.ID, &c.Version, c.UpdatedBy, fmt.Sprintf("zk cluster %d", c.ID), map[string]any{
			"name": c.Name, "connect_string": c.ConnectString, "root": c.Root, "session_timeout_ms": c.SessionTimeoutMS,
		})
	})
}

// versioned updates the row id of a cluster or task table with cols, one
// more version, updated_by and updated_at; *version is the expected
// version (0: any) and becomes the new one.
func (s *Store) versioned(ctx context.Context, table string, id int64, version *int64, by, what string, cols map[string]any) error {
	cols["version"] = gorm.Expr("version + 1")
	cols["updated_by"] = by
	cols["updated_at"] = time.Now().UTC()
	q := s.q(ctx).Table(table).Where("id = ?", id)
	if *version > 0 {
		q = q.Where("version = ?", *version)
	}
	res := q.Updates(cols)
	if err := s.checked(ctx, res, what); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return s.stale(ctx, table, "id", id, "updated_by", "updated_at", what, *version)
	}
	var v int64
	if err := s.q(ctx).Table(table).Where("id = ?", id).Pluck("version", &v).Error; err != nil {
		return s.wrap(err, what)
	}
	*version = v
	return nil
}

// DeleteZKCluster deletes a cluster no live task uses; tombstones of deleted
// tasks that reference it go with it. In use: ErrConflict.
func (s *Store) DeleteZKCluster(ctx context.Context, id int64) error {
	return s.deleteCluster(ctx, id, "source_cluster_id", &ZKCluster{}, "zk cluster")
}

func (s *Store) deleteCluster(ctx context.Context, id int64, column string, model any, what string) error {
	return s.bumped(ctx, func(tx *Store) error {
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
	c.ID, c.Version = 0, 1
	restore, err := s.sealCluster(c)
	if err != nil {
		return err
	}
	defer restore()
	return s.bumped(ctx, func(tx *Store) error {
		return tx.wrap(tx.q(ctx).Create(c).Error, "registry cluster "+c.Name)
	})
}

// GetRegistryCluster returns the cluster with id, or ErrNotFound.
func (s *Store) GetRegistryCluster(ctx context.Context, id int64) (*RegistryCluster, error) {
	var c RegistryCluster
	if err := s.q(ctx).First(&c, id).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("registry cluster %d", id))
	}
	if err := s.openCluster(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ListRegistryClusters returns all registry clusters by name.
func (s *Store) ListRegistryClusters(ctx context.Context) ([]RegistryCluster, error) {
	var out []RegistryCluster
	if err := s.q(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, s.wrap(err, "list registry clusters")
	}
	for i := range out {
		if err := s.openCluster(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UpdateRegistryCluster saves every field of c (by ID), versioned as
// UpdateZKCluster.
func (s *Store) UpdateRegistryCluster(ctx context.Context, c *RegistryCluster) error {
	if err := c.validate(); err != nil {
		return err
	}
	restore, err := s.sealCluster(c)
	if err != nil {
		return err
	}
	defer restore()
	servers, err := json.Marshal(c.ServerList)
	if err != nil {
		return fmt.Errorf("%w registry cluster server list: %v", ErrInvalid, err)
	}
	return s.bumped(ctx, func(tx *Store) error {
		return tx.versioned(ctx, "registry_clusters", c.ID, &c.Version, c.UpdatedBy, fmt.Sprintf("registry cluster %d", c.ID), map[string]any{
			"name": c.Name, "kind": string(c.Kind), "server_list": string(servers), "namespace": c.Namespace,
			"group_name": c.GroupName, "username": c.Username, "password": c.Password,
		})
	})
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
	t.ID, t.Version = 0, 1
	t.UpdatedBy = t.CreatedBy
	return s.bumped(ctx, func(tx *Store) error {
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
// state: SetTaskState), versioned as UpdateZKCluster. A deleted task cannot
// be edited (ErrConflict).
func (s *Store) UpdateTask(ctx context.Context, t *SyncTask, by string) error {
	if err := t.validate(); err != nil {
		return err
	}
	return s.bumped(ctx, func(tx *Store) error {
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
		inc, err := json.Marshal(t.Include)
		if err != nil {
			return fmt.Errorf("%w task include: %v", ErrInvalid, err)
		}
		exc, err := json.Marshal(t.Exclude)
		if err != nil {
			return fmt.Errorf("%w task exclude: %v", ErrInvalid, err)
		}
		return tx.versioned(ctx, "sync_tasks", t.ID, &t.Version, by, fmt.Sprintf("task %d", t.ID), map[string]any{
			"source_cluster_id": t.SourceClusterID, "dest_cluster_id": t.DestClusterID, "scope": string(t.Scope),
			"service": t.Service, "include_patterns": string(inc), "exclude_patterns": string(exc),
		})
	})
}

// SetTaskState moves a task to state. Leaving deleted is ErrConflict.
func (s *Store) SetTaskState(ctx context.Context, id int64, state TaskState, by string) error {
	_, err := s.SetTaskStateIf(ctx, id, state, by, 0)
	return err
}

// SetTaskStateIf is SetTaskState for a task still at version expect (0:
// any, else a *StaleError); it returns the new version.
func (s *Store) SetTaskStateIf(ctx context.Context, id int64, state TaskState, by string, expect int64) (int64, error) {
	if !validState(state) {
		return 0, fmt.Errorf("%w task state %q", ErrInvalid, state)
	}
	err := s.bumped(ctx, func(tx *Store) error {
		cur, err := tx.GetTask(ctx, id)
		if err != nil {
			return err
		}
		if cur.State == TaskDeleted && state != TaskDeleted {
			return fmt.Errorf("%w: task %d is deleted", ErrConflict, id)
		}
		return tx.versioned(ctx, "sync_tasks", id, &expect, by, fmt.Sprintf("task %d", id), map[string]any{"state": string(state)})
	})
	return expect, err
}

// PurgeTask removes a deleted task's row (after every worker deregistered).
func (s *Store) PurgeTask(ctx context.Context, id int64) error {
	return s.bumped(ctx, func(tx *Store) error {
		res := tx.q(ctx).Where("id = ? AND state = ?", id, TaskDeleted).Delete(&SyncTask{})
		if err := tx.checked(ctx, res, fmt.Sprintf("task %d", id)); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			if _, err := tx.GetTask(ctx, id); err != nil {
				return err
			}
			return fmt.Errorf("%w: task %d is not deleted", ErrConflict, id)
		}
		return nil
	})
}

// ---- apps ----

func validMode(m AppMode) bool { return m == AppSync || m == AppNative || m == AppExcluded }

// SetAppMode creates or updates an app's mode, recording who and when.
func (s *Store) SetAppMode(ctx context.Context, name string, mode AppMode, by string) (*App, error) {
	return s.SetAppModeIf(ctx, name, mode, by, -1)
}

// SetAppModeIf is SetAppMode for an app whose row is still at version
// expect: 0 means the app has no row yet, < 0 any version. Otherwise a
// *StaleError (versions.go) says who changed it.
func (s *Store) SetAppModeIf(ctx context.Context, name string, mode AppMode, by string, expect int64) (*App, error) {
	switch {
	case strings.TrimSpace(name) == "" || len(name) > 255:
		return nil, fmt.Errorf("%w app name %q", ErrInvalid, name)
	case !validMode(mode):
		return nil, fmt.Errorf("%w app mode %q: want sync, native or excluded", ErrInvalid, mode)
	}
	a := &App{Name: name, Mode: mode, Version: 1, ChangedBy: by, ChangedAt: time.Now().UTC()}
	var out *App
	err := s.bumped(ctx, func(tx *Store) error {
		var err error
		switch {
		case expect < 0:
			err = tx.q(ctx).Clauses(clause.OnConflict{
				Columns: []clause.Column{{Name: "name"}},
				DoUpdates: clause.Assignments(map[string]any{"mode": a.Mode, "changed_by": a.ChangedBy,
					"changed_at": a.ChangedAt, "version": gorm.Expr("apps.version + 1")}),
			}).Create(a).Error
		case expect == 0:
			err = tx.q(ctx).Create(a).Error
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return tx.stale(ctx, "apps", "name", name, "changed_by", "changed_at", "app "+name, 0)
			}
		default:
			res := tx.q(ctx).Model(&App{}).Where("name = ? AND version = ?", name, expect).Updates(map[string]any{
				"mode": a.Mode, "changed_by": a.ChangedBy, "changed_at": a.ChangedAt, "version": gorm.Expr("version + 1")})
			if err := tx.checked(ctx, res, "app "+name); err != nil {
				return err
			}
			if res.RowsAffected == 0 {
				return tx.stale(ctx, "apps", "name", name, "changed_by", "changed_at", "app "+name, expect)
			}
		}
		if err != nil {
			return tx.wrap(err, "app "+name)
		}
		out, err = tx.GetApp(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	return s.bumped(ctx, func(tx *Store) error {
		res := tx.q(ctx).Where("name = ?", name).Delete(&App{})
		if err := tx.checked(ctx, res, "app "+name); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("%w: app %s", ErrNotFound, name)
		}
		return nil
	})
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
	// Task matches the events a task's engine recorded (their Detail
	// starts "task=<Task> ", e.g. "task-3").
	Task string
	// Services, when not empty, matches events of any of these services.
	Services []string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	// BeforeID pages backwards: only events with a smaller id.
	BeforeID int64
	Limit    int
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
	if f.Task != "" {
		q = q.Where("detail LIKE ? ESCAPE '!'", "task="+strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(f.Task)+" %")
	}
	if len(f.Services) > 0 {
		q = q.Where("service IN ?", f.Services)
	}
	if !f.Since.IsZero() {
		q = q.Where("occurred_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("occurred_at < ?", f.Until.UTC())
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
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

package web

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Sync tasks: create, edit, pause, resume, delete through the store; the
// workers follow.

// TaskView is a sync task as the console shows it. Warnings (on a save)
// name include/exclude patterns that match no service seen.
type TaskView struct {
	ID              int64     `json:"id"`
	SourceClusterID int64     `json:"sourceClusterId"`
	DestClusterID   int64     `json:"destClusterId"`
	Scope           string    `json:"scope"`
	Service         string    `json:"service,omitempty"`
	Include         []string  `json:"include"`
	Exclude         []string  `json:"exclude"`
	State           string    `json:"state"`
	Version         int64     `json:"version"`
	CreatedBy       string    `json:"createdBy"`
	UpdatedBy       string    `json:"updatedBy"`
	UpdatedAt       time.Time `json:"updatedAt"`
	Warnings        []string  `json:"warnings,omitempty"`
}

func taskView(t store.SyncTask) TaskView {
	return TaskView{ID: t.ID, SourceClusterID: t.SourceClusterID, DestClusterID: t.DestClusterID, Scope: string(t.Scope),
		Service: t.Service, Include: nonNil(t.Include), Exclude: nonNil(t.Exclude), State: string(t.State), Version: t.Version,
		CreatedBy: t.CreatedBy, UpdatedBy: t.UpdatedBy, UpdatedAt: t.UpdatedAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TaskInput creates or edits a task.
type TaskInput struct {
	SourceClusterID int64    `json:"sourceClusterId"`
	DestClusterID   int64    `json:"destClusterId"`
	Scope           string   `json:"scope"`
	Service         string   `json:"service"`
	Include         []string `json:"include"`
	Exclude         []string `json:"exclude"`
	Version         int64    `json:"version"`
}

func (in TaskInput) validate() error {
	switch {
	case in.SourceClusterID <= 0:
		return invalid("sourceClusterId", "%d: want a ZooKeeper cluster id", in.SourceClusterID)
	case in.DestClusterID <= 0:
		return invalid("destClusterId", "%d: want a registry cluster id", in.DestClusterID)
	case in.Scope != string(store.ScopeFull) && in.Scope != string(store.ScopeService):
		return invalid("scope", "%q: want full or service", in.Scope)
	case in.Scope == string(store.ScopeService) && strings.TrimSpace(in.Service) == "":
		return invalid("service", "required with scope service")
	case in.Scope == string(store.ScopeFull) && in.Service != "":
		return invalid("service", "must be empty with scope full")
	case in.Version < 0:
		return invalid("version", "%d: must be ≥ 0", in.Version)
	}
	if err := checkText("service", in.Service, 512, false); err != nil {
		return err
	}
	for field, ps := range map[string][]string{"include": in.Include, "exclude": in.Exclude} {
		if len(ps) > 256 {
			return invalid(field, "more than 256 patterns")
		}
		for _, p := range ps {
			if err := checkText(field, p, 255, true); err != nil {
				return err
			}
			if _, err := path.Match(p, ""); err != nil {
				return invalid(field, "%q: %v", p, err)
			}
		}
	}
	return nil
}

// ListTasks lists every task (deleted ones too, as tombstones) by id.
func (s *Service) ListTasks(ctx context.Context, u *store.User) ([]TaskView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	ts, err := s.st.ListTasks(ctx, store.TaskFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]TaskView, 0, len(ts))
	for _, t := range ts {
		out = append(out, taskView(t))
	}
	return out, nil
}

// GetTask returns one task.
func (s *Service) GetTask(ctx context.Context, u *store.User, id int64) (*TaskView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	t, err := s.st.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	v := taskView(*t)
	return &v, nil
}

// SaveTask creates (id 0) or edits a task (admin). Workers apply an edit
// within their reload period.
func (s *Service) SaveTask(ctx context.Context, u *store.User, id int64, in TaskInput) (*TaskView, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	t := &store.SyncTask{ID: id, SourceClusterID: in.SourceClusterID, DestClusterID: in.DestClusterID, Scope: store.TaskScope(in.Scope),
		Service: in.Service, Include: nonNil(in.Include), Exclude: nonNil(in.Exclude), Version: in.Version, CreatedBy: u.Name}
	e := &store.AuditEntry{Action: "task.create", After: store.AuditJSON(in)}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		if id == 0 {
			if err := tx.CreateTask(ctx, t); err != nil {
				return taskFieldError(err)
			}
		} else {
			before, err := tx.GetTask(ctx, id)
			if err != nil {
				return err
			}
			e.Action, e.Before = "task.update", store.AuditJSON(taskView(*before))
			if err := tx.UpdateTask(ctx, t, u.Name); err != nil {
				return taskFieldError(err)
			}
		}
		e.Target = fmt.Sprintf("task %d", t.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v, err := s.GetTask(ctx, u, t.ID)
	if err != nil {
		return nil, err
	}
	v.Warnings = s.patternWarnings(ctx, in)
	return v, nil
}

// taskFieldError names the field of the store's "no such cluster" errors.
func taskFieldError(err error) error {
	if !errors.Is(err, store.ErrInvalid) {
		return err
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "source cluster"):
		return invalid("sourceClusterId", "%s", strings.TrimPrefix(msg, "store: invalid "))
	case strings.Contains(msg, "destination cluster"):
		return invalid("destClusterId", "%s", strings.TrimPrefix(msg, "store: invalid "))
	}
	return err
}

// patternWarnings names the patterns that match no service counted by any
// worker (a typo in a glob otherwise silently syncs nothing).
func (s *Service) patternWarnings(ctx context.Context, in TaskInput) []string {
	counts, err := s.st.ListServiceCounts(ctx, store.ServiceCountFilter{Limit: 100000}, s.cfg.CountsFresh)
	if err != nil || len(counts) == 0 {
		return nil
	}
	ifaces := map[string]bool{}
	for _, c := range counts {
		ifaces[interfaceOf(c.Service)] = true
	}
	var out []string
	for field, ps := range map[string][]string{"include": in.Include, "exclude": in.Exclude} {
		for _, p := range ps {
			hit := false
			for name := range ifaces {
				if ok, _ := path.Match(p, name); ok {
					hit = true
					break
				}
			}
			if !hit {
				out = append(out, fmt.Sprintf("%s pattern %q matches no service seen", field, p))
			}
		}
	}
	sort.Strings(out)
	return out
}

// interfaceOf is the Dubbo interface of a registry service name
// ("providers:{interface}:{version}:{group}"), else the name itself.
func interfaceOf(service string) string {
	if rest, ok := strings.CutPrefix(service, "providers:"); ok {
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			return rest[:i]
		}
		return rest
	}
	return service
}

// SetTaskState pauses, resumes or deletes a task: pause and resume need
// operator, delete admin. version 0 skips the stale check.
func (s *Service) SetTaskState(ctx context.Context, u *store.User, id int64, state store.TaskState, version int64) (*TaskView, error) {
	role := store.RoleOperator
	if state == store.TaskDeleted {
		role = store.RoleAdmin
	}
	if err := need(u, role); err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, invalid("version", "%d: must be ≥ 0", version)
	}
	e := &store.AuditEntry{Action: "task." + map[store.TaskState]string{store.TaskRunning: "resume", store.TaskPaused: "pause", store.TaskDeleted: "delete"}[state],
		Target: fmt.Sprintf("task %d", id), After: store.AuditJSON(map[string]string{"state": string(state)})}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		before, err := tx.GetTask(ctx, id)
		if err != nil {
			return err
		}
		e.Before = store.AuditJSON(map[string]string{"state": string(before.State)})
		_, err = tx.SetTaskStateIf(ctx, id, state, u.Name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetTask(ctx, u, id)
}

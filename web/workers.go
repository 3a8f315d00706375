package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Workers, the settings generation they applied, and the cluster-wide
// commands (held removals) they ack.

// WorkerView is one worker: its heartbeat, the shards it holds and the
// settings generation it has applied.
type WorkerView struct {
	ID                string    `json:"id"`
	Address           string    `json:"address"`
	Version           string    `json:"version"`
	StartedAt         time.Time `json:"startedAt"`
	HeartbeatAt       time.Time `json:"heartbeatAt"`
	HeartbeatAgeMS    int64     `json:"heartbeatAgeMs"`
	Live              bool      `json:"live"`
	AppliedGeneration int64     `json:"appliedGeneration"`
	Shards            []int     `json:"shards"`
	// MaxEpoch is the highest lease epoch the worker holds; LeaseExpiresAt
	// its soonest lease expiry (database clock).
	MaxEpoch       uint64     `json:"maxEpoch"`
	LeaseExpiresAt *time.Time `json:"leaseExpiresAt,omitempty"`
}

// WorkersView is every worker known to the store.
type WorkersView struct {
	Workers    []WorkerView `json:"workers"`
	Generation int64        `json:"generation"`
	// FreeShards are shards no worker holds.
	FreeShards int       `json:"freeShards"`
	Now        time.Time `json:"now"`
}

// ListWorkers lists workers (live ones and those not pruned yet).
func (s *Service) ListWorkers(ctx context.Context, u *store.User) (*WorkersView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	ws, err := s.st.ListWorkers(ctx, s.cfg.LiveWithin)
	if err != nil {
		return nil, err
	}
	leases, now, err := s.st.ListLeases(ctx)
	if err != nil {
		return nil, err
	}
	gen, err := s.st.SettingsGeneration(ctx)
	if err != nil {
		return nil, err
	}
	out := &WorkersView{Workers: []WorkerView{}, Generation: gen, Now: now}
	idx := map[string]int{}
	for _, w := range ws {
		idx[w.ID] = len(out.Workers)
		out.Workers = append(out.Workers, WorkerView{ID: w.ID, Address: w.Address, Version: w.Version, StartedAt: w.StartedAt,
			HeartbeatAt: w.HeartbeatAt, HeartbeatAgeMS: now.Sub(w.HeartbeatAt).Milliseconds(), Live: w.Live,
			AppliedGeneration: w.AppliedGeneration, Shards: []int{}})
	}
	for _, l := range leases {
		i, ok := idx[l.Owner]
		if l.Owner == "" || !ok || !l.ExpiresAt.After(now) {
			out.FreeShards++
			continue
		}
		w := &out.Workers[i]
		w.Shards = append(w.Shards, l.Shard)
		w.MaxEpoch = max(w.MaxEpoch, l.Epoch)
		if exp := l.ExpiresAt; w.LeaseExpiresAt == nil || exp.Before(*w.LeaseExpiresAt) {
			w.LeaseExpiresAt = &exp
		}
	}
	return out, nil
}

// Applied says how many live workers have applied settings generation gen.
type Applied struct {
	Generation  int64    `json:"generation"`
	LiveWorkers int      `json:"liveWorkers"`
	AppliedBy   int      `json:"appliedBy"`
	Pending     []string `json:"pending"` // live workers still behind
}

// AppliedGeneration reports the live workers' progress towards gen (0:
// the current generation).
func (s *Service) AppliedGeneration(ctx context.Context, u *store.User, gen int64) (*Applied, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	return s.applied(ctx, gen)
}

func (s *Service) applied(ctx context.Context, gen int64) (*Applied, error) {
	if gen <= 0 {
		g, err := s.st.SettingsGeneration(ctx)
		if err != nil {
			return nil, err
		}
		gen = g
	}
	ws, err := s.st.ListWorkers(ctx, s.cfg.LiveWithin)
	if err != nil {
		return nil, err
	}
	a := &Applied{Generation: gen, Pending: []string{}}
	for _, w := range ws {
		if !w.Live {
			continue
		}
		a.LiveWorkers++
		if w.AppliedGeneration >= gen {
			a.AppliedBy++
		} else {
			a.Pending = append(a.Pending, w.ID)
		}
	}
	return a, nil
}

// ---- held removals ----

// CommandView is a cluster-wide command and which live workers applied it.
type CommandView struct {
	ID        int64        `json:"id"`
	Kind      string       `json:"kind"`
	TaskID    int64        `json:"taskId"`
	CreatedBy string       `json:"createdBy"`
	CreatedAt time.Time    `json:"createdAt"`
	ExpiresAt time.Time    `json:"expiresAt"`
	Acks      []CommandAck `json:"acks"`
	// LiveWorkers is how many workers are live; Pending the live ones
	// that have not acked yet.
	LiveWorkers int      `json:"liveWorkers"`
	Pending     []string `json:"pending"`
}

// CommandAck is one worker's ack.
type CommandAck struct {
	Worker    string    `json:"worker"`
	AppliedAt time.Time `json:"appliedAt"`
	Result    string    `json:"result"`
	Error     string    `json:"error,omitempty"`
}

// ConfirmRemovals releases the held mass removals of task taskID (0:
// every task) on every worker, once (operator): a commands row each live
// worker applies and acks.
func (s *Service) ConfirmRemovals(ctx context.Context, u *store.User, taskID int64) (*CommandView, error) {
	if err := need(u, store.RoleOperator); err != nil {
		return nil, err
	}
	if taskID < 0 {
		return nil, invalid("taskId", "%d: want a task id (0: every task)", taskID)
	}
	c := &store.Command{Kind: store.CommandConfirmRemovals, TaskID: taskID, CreatedBy: u.Name}
	e := &store.AuditEntry{Action: "removals.confirm", Target: "all tasks"}
	if taskID > 0 {
		e.Target = fmt.Sprintf("task %d", taskID)
	}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		if taskID > 0 {
			if _, err := tx.GetTask(ctx, taskID); errors.Is(err, store.ErrNotFound) {
				return invalid("taskId", "%d: no such task", taskID)
			} else if err != nil {
				return err
			}
		}
		if err := tx.IssueCommand(ctx, c, 0); err != nil {
			return err
		}
		e.After = store.AuditJSON(map[string]int64{"command": c.ID})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetCommand(ctx, u, c.ID)
}

// GetCommand returns a command with its acks against the live workers.
func (s *Service) GetCommand(ctx context.Context, u *store.User, id int64) (*CommandView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	c, err := s.st.GetCommand(ctx, id)
	if err != nil {
		return nil, err
	}
	acks, err := s.st.CommandAcks(ctx, id)
	if err != nil {
		return nil, err
	}
	ws, err := s.st.ListWorkers(ctx, s.cfg.LiveWithin)
	if err != nil {
		return nil, err
	}
	v := &CommandView{ID: c.ID, Kind: string(c.Kind), TaskID: c.TaskID, CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt,
		ExpiresAt: c.ExpiresAt, Acks: []CommandAck{}, Pending: []string{}}
	acked := map[string]bool{}
	for _, a := range acks {
		acked[a.WorkerID] = true
		v.Acks = append(v.Acks, CommandAck{Worker: a.WorkerID, AppliedAt: a.AppliedAt, Result: a.Result, Error: a.Error})
	}
	for _, w := range ws {
		if w.Live {
			v.LiveWorkers++
			if !acked[w.ID] {
				v.Pending = append(v.Pending, w.ID)
			}
		}
	}
	return v, nil
}

package web

import (
	"context"
	"errors"
	"strings"

	"github.com/ferrysync/ferry/store"
)

// One service's diff per ip:port. The worker answers it (its ZooKeeper
// view against a fresh registry listing); every worker runs every running
// task, so any replica's console can show any service's diff.

// ServiceDiffer is what a Worker may also offer: one service's diff.
// Called from any goroutine; ctx bounds the registry listing.
type ServiceDiffer interface {
	// ServiceDiff diffs service (its ZooKeeper name, or a registry name
	// such as "providers:org.foo.Bar:1.0:") of task taskID; an error
	// wrapping ErrTaskNotHere when the task does not run on this worker.
	ServiceDiff(ctx context.Context, taskID int64, service string) (*ServiceDiff, error)
}

// ErrTaskNotHere: the task does not run on this console's worker (404).
var ErrTaskNotHere = errors.New("web: task not running on this worker")

// ServiceDiff is one ZooKeeper service against the registry, per registry
// service name its providers map to.
type ServiceDiff struct {
	TaskID    int64      `json:"taskId"`
	ZKService string     `json:"zkService"`
	Names     []NameDiff `json:"names"`
}

// NameDiff is one registry service's differences: Missing (in ZooKeeper,
// to sync, not in the registry), Extra (in the registry, no provider in
// ZooKeeper), Differs (both, with other metadata, weight or enabled flag),
// Native (registered by the provider itself, not synced); Same counts the
// instances that agree.
type NameDiff struct {
	Service string      `json:"service"`
	Missing []DiffEntry `json:"missing"`
	Extra   []DiffEntry `json:"extra"`
	Differs []DiffEntry `json:"differs"`
	Native  []DiffEntry `json:"native"`
	Same    int         `json:"same"`
}

// DiffEntry is one ip:port of a diff.
type DiffEntry struct {
	Addr string `json:"addr"`
	// Keys names what differs (metadata keys, "weight", "enabled").
	Keys []string `json:"keys,omitempty"`
	// Skip is why ZooKeeper's provider is not synced.
	Skip string `json:"skip,omitempty"`
	// Ours: the registry's instance was registered by the sync.
	Ours bool `json:"ours,omitempty"`
	// ZK is the instance the sync builds from the provider, Registry the
	// registry's (nil when absent on that side).
	ZK       *DiffInstance `json:"zk,omitempty"`
	Registry *DiffInstance `json:"registry,omitempty"`
}

// DiffInstance is one side of a DiffEntry.
type DiffInstance struct {
	Weight   float64           `json:"weight"`
	Enabled  bool              `json:"enabled"`
	Healthy  bool              `json:"healthy"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Short reports whether the name has anything to fix.
func (d NameDiff) Short() bool { return len(d.Missing) > 0 || len(d.Extra) > 0 || len(d.Differs) > 0 }

// serviceDiff asks this console's worker for task's service diff (viewer).
func (s *Server) serviceDiff(ctx context.Context, u *store.User, task int64, service string) (*ServiceDiff, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	if task <= 0 {
		return nil, invalid("task", "required: the task whose service to diff")
	}
	service = strings.TrimSpace(service)
	if err := checkText("service", service, 512, true); err != nil {
		return nil, err
	}
	d, ok := s.worker.(ServiceDiffer)
	if !ok || s.worker == nil {
		return nil, notFound("this console runs without a worker: no diff")
	}
	out, err := d.ServiceDiff(ctx, task, service)
	if errors.Is(err, ErrTaskNotHere) {
		return nil, notFound("task %d does not run on this worker (paused, deleted or unknown)", task)
	}
	if err != nil {
		return nil, registryError(err)
	}
	return out, nil
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrysync/ferry/syncer"
)

// ErrNotRunning: the task does not run on this worker (every worker runs
// every running task, so it is paused, deleted, unknown or failing here).
var ErrNotRunning = errors.New("worker: task not running on this worker")

// ServiceDiff is one service's ZooKeeper view against the registry's, per
// ip:port, as the console's service page shows it. Any worker can answer
// for any service of a task it runs (it watches the whole catalog and
// lists the registry); ownership does not matter.
type ServiceDiff struct {
	TaskID int64
	// ZKService is the ZooKeeper service; Names the registry services its
	// providers map to (one per version and group), each diffed.
	ZKService string
	Names     []NameDiff
}

// NameDiff is one registry service's differences.
type NameDiff struct {
	Service string // registry service name
	// Missing: providers to sync (in ZooKeeper, not skipped) that the
	// registry does not hold. Extra: registry instances with no provider
	// in ZooKeeper (synced ones left over, or foreign ones). Differs: both
	// hold it, with other metadata, weight or enabled flag (Keys names what
	// differs). Native: registry instances of providers ZooKeeper marks as
	// registering themselves (withNacos, app native), not synced.
	Missing, Extra, Differs, Native []DiffEntry
	// Same counts instances that agree.
	Same int
}

// DiffEntry is one address of a diff.
type DiffEntry struct {
	Addr string
	// ZK is the instance the sync builds from the provider; Registry the
	// registry's instance (nil when absent on that side).
	ZK, Registry *syncer.Instance `json:",omitempty"`
	// Ours: the registry's instance carries the sync's source marker.
	Ours bool `json:",omitempty"`
	// Keys lists the metadata keys (and "weight", "enabled") that differ.
	Keys []string `json:",omitempty"`
	// Skip is why ZooKeeper's provider is not synced ("" when it is).
	Skip syncer.SkipReason `json:",omitempty"`
}

// ServiceDiff compares one service of a task (by its ZooKeeper name, or a
// registry name such as "providers:org.foo.Bar:1.0:"), ZooKeeper's newest
// provider per address against a fresh listing of the registry.
func (w *Worker) ServiceDiff(ctx context.Context, taskID int64, service string) (*ServiceDiff, error) {
	w.mgr.mu.Lock()
	r := w.mgr.running[taskID]
	w.mgr.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("%w: task %d", ErrNotRunning, taskID)
	}
	zkSvc, only := service, ""
	if strings.HasPrefix(service, "providers:") {
		parts := strings.SplitN(service, ":", 4)
		zkSvc, only = parts[1], service
	}
	marker := syncer.Marker{Cluster: r.spec.marker(), Worker: w.cfg.WorkerID}
	desired := map[string]map[string]zkSide{} // registry name → addr
	if snap, ok := r.src.Snapshot(zkSvc); ok {
		for _, p := range snap.Providers {
			name := syncer.ServiceName(p.URL)
			if only != "" && name != only {
				continue
			}
			mode := syncer.ModeSync
			if app := syncer.Application(p); app != "" {
				mode = w.apps.Mode(app)
			}
			inst := syncer.BuildInstance(p, marker)
			if desired[name] == nil {
				desired[name] = map[string]zkSide{}
			}
			desired[name][inst.Addr()] = zkSide{inst: inst, skip: syncer.Filter{}.Skip(p, mode)}
		}
	}
	names := make([]string, 0, len(desired)+1)
	for n := range desired {
		names = append(names, n)
	}
	if only != "" && desired[only] == nil {
		names = append(names, only) // what the registry holds under that name
	}
	sort.Strings(names)
	out := &ServiceDiff{TaskID: taskID, ZKService: zkSvc}
	for _, name := range names {
		ref := syncer.ServiceRef{Namespace: r.spec.namespace, Group: r.spec.group, Name: name}
		list, err := r.client.reg.List(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("worker: list %s in the registry: %w", ref, err)
		}
		out.Names = append(out.Names, diffName(name, desired[name], list, marker))
	}
	return out, nil
}

// zkSide is one provider as the diff sees it.
type zkSide struct {
	inst syncer.Instance
	skip syncer.SkipReason
}

// ignoredKeys differ by design between what one worker builds and what
// another registered (the owner's id).
var ignoredKeys = map[string]bool{syncer.MetaWorker: true}

// diffName compares one registry service: ZooKeeper's side by address
// against the registry's listing.
func diffName(name string, zk map[string]zkSide, list []syncer.Instance, marker syncer.Marker) NameDiff {
	d := NameDiff{Service: name}
	reg := make(map[string]syncer.Instance, len(list))
	for _, in := range list {
		reg[in.Addr()] = in
	}
	addrs := make([]string, 0, len(zk)+len(reg))
	for a := range zk {
		addrs = append(addrs, a)
	}
	for a := range reg {
		if _, ok := zk[a]; !ok {
			addrs = append(addrs, a)
		}
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		z, inZK := zk[a]
		r, inReg := reg[a]
		e := DiffEntry{Addr: a, Skip: z.skip}
		if inZK {
			zi := z.inst
			e.ZK = &zi
		}
		if inReg {
			ri := r
			e.Registry, e.Ours = &ri, marker.Ours(r)
		}
		switch {
		case inZK && z.skip != syncer.SkipNone:
			if inReg && !e.Ours {
				d.Native = append(d.Native, e)
			} else if inReg {
				d.Extra = append(d.Extra, e) // synced although it should not be (until the next reconcile)
			}
		case inZK && !inReg:
			d.Missing = append(d.Missing, e)
		case !inZK:
			d.Extra = append(d.Extra, e)
		default:
			if e.Keys = differingKeys(z.inst, r); len(e.Keys) > 0 {
				d.Differs = append(d.Differs, e)
			} else {
				d.Same++
			}
		}
	}
	return d
}

// differingKeys names what differs between the instance the sync builds
// and the registry's.
func differingKeys(want, got syncer.Instance) []string {
	var keys []string
	if want.Weight != got.Weight {
		keys = append(keys, "weight")
	}
	if want.Enabled != got.Enabled {
		keys = append(keys, "enabled")
	}
	for k, v := range want.Metadata {
		if g, ok := got.Metadata[k]; (!ok || g != v) && !ignoredKeys[k] {
			keys = append(keys, k)
		}
	}
	for k := range got.Metadata {
		if _, ok := want.Metadata[k]; !ok && !ignoredKeys[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

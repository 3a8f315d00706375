package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// nameWork is one Nacos service's reconcile inside a process call.
type nameWork struct {
	name      string
	attempted []Instance // the set passed to Keep, when Keep was called
	forceKeep bool       // a previous Keep failed: call Keep even with nothing to change
	ns        nameState  // copy; maps shared read-only
	listed    bool
	plan      Plan
	applied   bool
	desired   int
}

// keySnapshot is what process reads at its start: the engine's state for
// one work key (under mu) and the source's snapshot (without it).
type keySnapshot struct {
	st     *svcState
	shard  int
	epoch  uint64
	exists bool // the source knows the key
	synced bool // the source mirrored a live session on both sides of the read
	views  map[string]nameState
	in     PlanInput
}

// process reconciles one ZooKeeper service in five steps: snapshot (the
// engine's state under mu, then the source), plan (PlanDesired, pure, then
// Reconcile per registry name, listing the registry where needed), guard
// (the task-wide mass-removal hold), apply (fenced registry calls) and
// commit (the new state and gauges under mu), then reports.
func (e *Engine) process(s string, w pendingWork) {
	if iface, ok := mappingOfKey(s); ok {
		e.processMapping(s, iface)
		return
	}
	start := e.clock.Now()
	ks, ok := e.snapshot(s)
	if !ok {
		return
	}
	ds := PlanDesired(ks.in)

	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ApplyTimeout)
	defer cancel()
	metaFailed := false
	if app, ok := appOfKey(s); ok && ks.st.app && e.deps.AppSource != nil {
		metaFailed = e.ensureAppMetadata(ctx, app, ks, &ds)
	}
	now := e.clock.Now()
	works, failed := e.planNames(ctx, s, w.full, now, ks, ds)
	failed = failed || metaFailed
	e.guardMass(s, now, ks, ds, works)
	applied, applyFailed := e.applyWorks(ctx, s, ks.shard, ks.epoch, works)
	failed = failed || applyFailed
	end := e.clock.Now()
	if app, ok := appOfKey(s); ok && ks.st.app && e.deps.AppSource != nil {
		e.gcAppMetadata(ctx, s, app, ks, ds, works)
	}

	c, kept := e.commit(s, now, ks, ds, works, failed)
	if !kept {
		return
	}
	// Come back when the earliest stale hold ends, so ZooKeeper's level
	// truth is applied then, not at the next full reconcile.
	var holdEnd time.Time
	for _, nw := range works {
		for _, until := range nw.plan.Holds {
			if holdEnd.IsZero() || until.Before(holdEnd) {
				holdEnd = until
			}
		}
	}
	if holdEnd.After(now) && !failed {
		e.after(holdEnd.Sub(now), s)
	}

	// Report.
	mode := "partial"
	if w.full {
		mode = "full"
	}
	e.m.reconcileDur.WithLabelValues(mode).Observe(end.Sub(start).Seconds())
	if applied > 0 && !w.since.IsZero() {
		e.m.lag.Observe(end.Sub(w.since).Seconds())
	}
	for _, nw := range works {
		e.report(nw)
	}
	for _, ev := range c.conflicts {
		e.record(ev)
	}
	for _, ev := range c.evicted {
		e.m.evictions.Inc()
		e.record(ev)
	}
	if failed {
		e.retry(s, c.attempts)
	}
}

// snapshot reads the engine's state for s and the source's snapshot of it;
// false when s is not owned (or the engine stopped).
func (e *Engine) snapshot(s string) (keySnapshot, bool) {
	shard := e.deps.ShardOf(s)
	e.mu.Lock()
	epoch, owned := e.owned[shard]
	if !owned || e.stopped {
		e.mu.Unlock()
		return keySnapshot{}, false
	}
	st := e.services[s]
	if st == nil {
		_, app := appOfKey(s)
		st = &svcState{app: app, shard: shard, epoch: epoch, names: map[string]*nameState{}, skipped: map[SkipReason]int{}}
		e.services[s] = st
	}
	ks := keySnapshot{st: st, shard: shard, epoch: epoch, views: make(map[string]nameState, len(st.names))}
	ks.in = PlanInput{Prev: st.nodes, Evicted: e.evictions[s], // both replaced, never mutated
		Active: map[string]bool{}, Known: map[string]bool{}, Unsettled: make(map[string]bool, len(st.unsettled))}
	for n, ns := range st.names {
		ks.views[n] = *ns
		ks.in.Known[n] = true
		if len(ns.registered) > 0 || len(ns.holds) > 0 {
			ks.in.Active[n] = true
		}
	}
	for n := range st.unsettled {
		ks.in.Unsettled[n] = true
	}
	e.mu.Unlock()

	// Removals need a trustworthy view on both sides of the read.
	synced := e.deps.Source.Synced()
	if app, ok := appOfKey(s); ok && st.app {
		if e.deps.AppSource != nil {
			snap, exists := e.deps.AppSource.AppSnapshot(app)
			ks.exists = exists
			if exists {
				ks.in.Candidates = appCandidates(snap, e.marker)
			}
		}
	} else {
		snap, exists := e.deps.Source.Snapshot(s)
		ks.exists = exists
		if exists {
			ks.in.Candidates = providerCandidates(snap, e.cfg.Filter, e.marker)
		}
	}
	ks.synced = synced && e.deps.Source.Synced()
	if e.deps.Apps != nil {
		ks.in.Mode = e.deps.Apps.Mode
	}
	return ks, true
}

// planNames reconciles each registry name of the desired set against this
// worker's view, listing the registry first when the view is not trusted
// (a full reconcile, a name not listed since ownership began) or when the
// plan would remove something. A failed listing skips that name (failed).
func (e *Engine) planNames(ctx context.Context, s string, full bool, now time.Time, ks keySnapshot, ds DesiredSet) ([]*nameWork, bool) {
	failed := false
	works := make([]*nameWork, 0, len(ds.Names))
	for _, name := range ds.Names {
		nw := &nameWork{name: name, desired: len(ds.Desired[name]), forceKeep: ks.in.Unsettled[name]}
		if v, ok := ks.views[name]; ok {
			nw.ns = v
		} else {
			nw.ns = nameState{ref: ServiceRef{Namespace: e.cfg.Namespace, Group: e.cfg.Group, Name: name}}
		}
		in := ReconcileInput{Now: now, Desired: ds.Desired[name], Registered: nw.ns.registered, Gone: ds.Gone[name],
			Holds: nw.ns.holds, AllowRemovals: ks.synced, StaleHold: e.cfg.StaleHold}
		needList := full || !nw.ns.listed
		if !needList {
			nw.plan = Reconcile(in)
			// Before removing anything, make sure it is still ours.
			needList = nw.plan.Removals() > 0
		}
		if needList {
			list, err := e.deps.Registry.List(ctx, nw.ns.ref)
			if err != nil {
				e.applyFailed(s, nw.ns.ref, "list", err)
				failed = true
				continue
			}
			in.Registered, in.Foreign = e.adopt(list, nw.ns.registered)
			nw.ns.registered = in.Registered
			nw.listed = true
			nw.plan = Reconcile(in)
		}
		works = append(works, nw)
	}
	return works, failed
}

// zkRemoval reports whether removing the instance registered at addr of
// nw follows ZooKeeper losing its node (gone from the snapshot, or evicted
// by the probe sweeper), rather than a decision made on a node that is
// still there: an app switched to native or excluded, withNacos, a task's
// filter. Only those go through the mass-removal hold: the hold guards
// against ZooKeeper losing providers (a session loss, a wrong delete), and
// an operator's switch was previewed and confirmed in the console.
func zkRemoval(ks keySnapshot, ds DesiredSet, nw *nameWork, addr string) bool {
	n := nw.ns.registered[addr].Node
	return n == "" || !ds.Present[n] || ks.in.Evicted[n]
}

// guardMass puts the plans' ZooKeeper-driven removals of s through the
// task-wide mass-removal hold; held removals are withheld from the plans.
func (e *Engine) guardMass(s string, now time.Time, ks keySnapshot, ds DesiredSet, works []*nameWork) {
	removals := 0
	for _, nw := range works {
		for _, a := range nw.plan.Actions {
			if a.Kind == ActDeregister && zkRemoval(ks, ds, nw, a.Addr) {
				removals++
			}
		}
	}
	e.mu.Lock()
	held, newHold, graceGen := e.mass.check(now, s, e.regCount+e.appRegCount, removals)
	if graceGen != 0 {
		e.wg.Add(1)
		go e.massGrace(graceGen)
	}
	e.mu.Unlock()
	if !held {
		return
	}
	for _, nw := range works {
		nw.plan = nw.plan.WithoutRemovals(nw.ns.registered, func(addr string) bool { return zkRemoval(ks, ds, nw, addr) })
	}
	e.m.massHeld.Inc()
	if newHold {
		e.log.Warn("mass removal held", "service", s, "removals", removals)
		e.record(Event{Kind: EventMassHeld, Detail: fmt.Sprintf("zk service %s: %d removals held (more than %.0f%% of the task's instances within %s); confirm or wait %s",
			s, removals, e.cfg.MassShare*100, e.cfg.MassWindow, e.cfg.MassGrace)})
	}
}

// applyWorks applies every plan, fenced by the lease before every registry
// call. A failed fence is not a loss: the lease may have lapsed during a
// store outage (kept, beat-only) or moved; refreshOwnership decides which,
// so nothing is applied or released here and the service is retried. It
// returns the number of actions applied and whether anything failed.
func (e *Engine) applyWorks(ctx context.Context, s string, shard int, epoch uint64, works []*nameWork) (int, bool) {
	if !e.deps.Ownership.Owns(shard, epoch) {
		return 0, true
	}
	applied, failed := 0, false
	for _, nw := range works {
		if e.ctx.Err() != nil {
			return applied, true
		}
		if err := e.apply(ctx, nw, shard, epoch); err != nil {
			if errors.Is(err, errFenced) {
				return applied, true
			}
			e.applyFailed(s, nw.ns.ref, "apply", err)
			failed = true
			continue
		}
		nw.applied = true
		applied += len(nw.plan.Actions)
	}
	return applied, failed
}

// committed is what commit hands back for the reports.
type committed struct {
	attempts  int
	conflicts []Event
	evicted   []Event
}

// commit records the applied plans in the engine's state and gauges (under
// mu). When s was dropped meanwhile (ownership lost, engine stopped) it
// releases what was kept instead and returns false.
func (e *Engine) commit(s string, now time.Time, ks keySnapshot, ds DesiredSet, works []*nameWork, failed bool) (committed, bool) {
	st := ks.st
	var c committed
	var release []ServiceRef
	e.mu.Lock()
	if st.lost || e.services[s] != st {
		for _, nw := range works {
			if (nw.applied && len(nw.plan.Keep) > 0) || (!nw.applied && nw.attempted != nil) {
				release = append(release, nw.ns.ref)
			}
		}
		release = append(release, st.refs()...)
		e.dropLocked(s, st)
		e.mu.Unlock()
		for _, r := range release {
			e.deps.Registry.Release(r)
		}
		return c, false
	}
	removed := 0
	for _, nw := range works {
		if !nw.applied {
			if nw.attempted != nil {
				if st.unsettled == nil {
					st.unsettled = map[string]unsettledKeep{}
				}
				st.unsettled[nw.name] = unsettledKeep{ref: nw.ns.ref, insts: nw.attempted}
			}
			continue
		}
		delete(st.unsettled, nw.name)
		ns := st.names[nw.name]
		if ns == nil {
			ns = &nameState{ref: nw.ns.ref}
			st.names[nw.name] = ns
		}
		ns.registered = nw.plan.Keep
		ns.holds = nw.plan.Holds
		ns.listed = ns.listed || nw.listed
		ns.kept = true
		if st.held {
			// The shard lapsed into Kept while this apply was in flight:
			// the set just kept is beaten light-only like the rest. Under
			// mu, so that it is ordered with refreshOwnership's switch.
			e.deps.Registry.LightOnly(ns.ref, true)
		}
		var fresh []string
		ns.conflicts, fresh = newConflicts(ns.conflicts, nw.plan.Conflicts)
		for _, a := range fresh {
			c.conflicts = append(c.conflicts, Event{Kind: EventForeign, Service: ns.ref.Name, Instance: a,
				Detail: "address held by an instance without the ferry.source marker; left alone"})
		}
		for _, a := range nw.plan.Actions {
			if a.Kind == ActDeregister {
				if zkRemoval(ks, ds, nw, a.Addr) {
					removed++ // the hold's window counts what it guards
				}
				if n := nw.ns.registered[a.Addr].Node; n != "" && ks.in.Evicted[n] {
					c.evicted = append(c.evicted, Event{Kind: EventEvicted, Service: nw.name, Instance: a.Addr,
						Detail: fmt.Sprintf("node %s: port probe failed and the node is gone from ZooKeeper", n)})
				}
			}
		}
		if len(ns.registered) == 0 && len(ns.holds) == 0 && nw.desired == 0 {
			delete(st.names, nw.name)
		}
	}
	e.mass.applied(now, removed)
	if !failed {
		st.nodes = ds.Nodes
		st.attempts = 0
		// Forget evictions once the cache has caught up with ZooKeeper.
		if cur := e.evictions[s]; len(cur) > 0 {
			next := map[string]bool{}
			for node := range cur {
				if ds.Present[node] {
					next[node] = true
				}
			}
			if len(next) == 0 {
				delete(e.evictions, s)
			} else {
				e.evictions[s] = next
			}
		}
	} else {
		st.attempts++
	}
	// Gauges: replace this service's contribution.
	e.addCountsLocked(st, -1)
	for r, n := range st.skipped {
		e.skipped[r] -= n
	}
	st.desired, st.regCount, st.skipped = 0, 0, ds.Skipped
	for _, byAddr := range ds.Desired {
		st.desired += len(byAddr)
	}
	for _, ns := range st.names {
		st.regCount += len(ns.registered)
	}
	e.addCountsLocked(st, 1)
	for r, n := range ds.Skipped {
		e.skipped[r] += n
	}
	e.setGaugesLocked()
	c.attempts = st.attempts
	if !ks.exists && len(st.names) == 0 && len(st.metaUnused) == 0 && !failed {
		e.dropLocked(s, st)
	}
	e.mu.Unlock()
	return c, true
}

// adopt splits a registry listing into our instances (merged with the cached
// view, which knows their nodes) and the addresses held by foreign ones.
func (e *Engine) adopt(list []Instance, cached map[string]Registered) (map[string]Registered, map[string]bool) {
	ours := make(map[string]Registered, len(list))
	var foreign map[string]bool
	for _, inst := range list {
		a := inst.Addr()
		if !e.marker.Ours(inst) {
			if foreign == nil {
				foreign = map[string]bool{}
			}
			foreign[a] = true
			continue
		}
		r, ok := cached[a]
		if !ok {
			r = Registered{Timestamp: metaTimestamp(inst.Metadata["timestamp"])}
		}
		r.Instance = inst
		ours[a] = r
	}
	return ours, foreign
}

// metaTimestamp reads a provider timestamp from instance metadata in
// milliseconds, as the ZooKeeper watcher normalises it: dubbo-go writes
// seconds, Java milliseconds; values below 1e11 are seconds. 0 if unparsable.
func metaTimestamp(s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	if v < 1e11 {
		v *= 1000
	}
	return v
}

// errFenced: the lease no longer covers the call (checked right before it).
var errFenced = errors.New("syncer: lease not held")

// apply sends one plan to the registry: removals first, then the full set.
// Each call is fenced by the shard's lease right before it is sent.
func (e *Engine) apply(ctx context.Context, nw *nameWork, shard int, epoch uint64) error {
	var dereg []Instance
	for _, a := range nw.plan.Actions {
		if a.Kind == ActDeregister {
			dereg = append(dereg, a.Instance)
		}
	}
	if len(dereg) > 0 {
		if !e.deps.Ownership.Owns(shard, epoch) {
			return errFenced
		}
		if err := e.deps.Registry.Deregister(ctx, nw.ns.ref, dereg); err != nil {
			return err
		}
	}
	if len(nw.plan.Actions) > 0 || (!nw.ns.kept && len(nw.plan.Keep) > 0) || nw.forceKeep {
		keep := make([]Instance, 0, len(nw.plan.Keep))
		addrs := make([]string, 0, len(nw.plan.Keep))
		for a := range nw.plan.Keep {
			addrs = append(addrs, a)
		}
		slices.Sort(addrs)
		for _, a := range addrs {
			keep = append(keep, nw.plan.Keep[a].Instance)
		}
		if !e.deps.Ownership.Owns(shard, epoch) {
			return errFenced
		}
		nw.attempted = keep
		if err := e.deps.Registry.Keep(ctx, nw.ns.ref, keep); err != nil {
			return err
		}
	}
	for _, a := range nw.plan.Actions {
		e.m.actions.WithLabelValues(a.Kind.String()).Inc()
	}
	return nil
}

// newConflicts returns the current conflict set and the addresses new in it.
func newConflicts(prev map[string]bool, now []string) (map[string]bool, []string) {
	if len(now) == 0 {
		return nil, nil
	}
	out := make(map[string]bool, len(now))
	var fresh []string
	for _, a := range now {
		out[a] = true
		if !prev[a] {
			fresh = append(fresh, a)
		}
	}
	return out, fresh
}

// report turns a plan's guard decisions into metrics and events.
func (e *Engine) report(nw *nameWork) {
	if !nw.applied {
		return
	}
	for _, st := range nw.plan.Stale {
		if st.Downgrade {
			if _, wasHeld := nw.ns.holds[st.Addr]; wasHeld {
				continue
			}
			e.m.staleHeld.Inc()
			e.record(Event{Kind: EventStaleHeld, Service: nw.name, Instance: st.Addr,
				Detail: fmt.Sprintf("node %s (timestamp %d) is older than the registered provider (timestamp %d); held %s", st.Node, st.Timestamp, st.Registered, e.cfg.StaleHold)})
			continue
		}
		e.m.staleDropped.Inc()
		e.record(Event{Kind: EventStaleRemoval, Service: nw.name, Instance: st.Addr,
			Detail: fmt.Sprintf("removal of node %s (timestamp %d) dropped: provider with timestamp %d is registered", st.Node, st.Timestamp, st.Registered)})
	}
	if n := len(nw.plan.Deferred); n > 0 {
		e.m.deferred.Add(float64(n))
	}
}

func (e *Engine) applyFailed(s string, ref ServiceRef, op string, err error) {
	if e.ctx.Err() != nil {
		return // stopping: the call was cancelled, not failed
	}
	e.m.applyErrors.Inc()
	e.log.Warn("registry call failed; will retry", "service", s, "registry_service", ref.Name, "op", op, "err", err)
	e.record(Event{Kind: EventApplyFailed, Service: ref.Name, Detail: op + ": " + err.Error()})
}

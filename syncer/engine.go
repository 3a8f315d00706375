package syncer

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the engine's collaborators. Source, Registry, Ownership and
// ShardOf are required.
type Deps struct {
	Source    Source
	Registry  Registry
	Ownership Ownership
	// ShardOf maps a ZooKeeper service name to its shard (store.ShardOf).
	ShardOf func(service string) int
	// Apps gives app modes; nil means every app is ModeSync.
	Apps AppModes
	// Events records events; nil means events are only logged.
	Events EventSink
	// Prober probes ports; nil means TCPProber.
	Prober Prober
	// Clock; nil means the real clock.
	Clock Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is where the engine registers its metrics; nil means a
	// private registry (metrics not exported).
	Metrics prometheus.Registerer
}

// Engine syncs one task: the providers of the services this worker owns, from
// one ZooKeeper cluster into one registry namespace and group.
//
// The state machine (STYLE.md §10): a ZooKeeper change, an ownership or app
// mode change, the periodic full reconcile (with jitter) and the synced
// poll put services into a pending set (coalesced: a service is pending at
// most once, and is never processed by two goroutines at once) and signal a
// capacity-1 wake channel with a non-blocking send; a bounded pool of
// workers takes services from the set, reconciles each against its
// snapshot and applies the plan through Registry; a failed apply is retried
// with exponential backoff and jitter. A sweeper probes ports.
type Engine struct {
	cfg    Config
	deps   Deps
	marker Marker
	log    *slog.Logger
	m      *metrics
	clock  Clock
	prober Prober
	wake   chan struct{} // capacity 1: the pending set may have work

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopOnce sync.Once
	// received counts change notifications taken from the source and queued
	// (tests wait on it).
	received atomic.Uint64

	// mu guards every field below. Per-service maps (svcState.nodes,
	// nameState.registered, nameState.holds) are replaced, never mutated,
	// so a worker may read the ones it copied under mu without holding it.
	mu        sync.Mutex
	started   bool
	stopped   bool
	owned     map[int]uint64
	queue     []string
	pending   map[string]*pendingWork
	inflight  map[string]bool
	services  map[string]*svcState
	removals  []removalMark
	massSince time.Time                  // start of the current mass-removal hold; zero when none
	massGen   uint64                     // counts holds, so a stale grace timer cannot release a later one
	massOpen  time.Time                  // removals pass the mass guard until then (confirmed or grace over)
	massSvcs  map[string]bool            // services whose removals are held
	evictions map[string]map[string]bool // service → provider nodes the sweeper found gone in ZooKeeper
	desired   int
	regCount  int
	skipped   map[SkipReason]int
}

type pendingWork struct {
	full  bool      // list from the registry, not only the cached view
	since time.Time // first ZooKeeper change notification coalesced here; zero for other triggers
}

type removalMark struct {
	at time.Time
	n  int
}

type svcState struct {
	shard    int
	epoch    uint64
	names    map[string]*nameState
	nodes    map[string]nodeRec // every provider node of the last applied snapshot
	lost     bool               // ownership lost while in flight: release at commit
	attempts int
	desired  int
	regCount int
	skipped  map[SkipReason]int
	// unsettled holds, per registry service name, a Keep that failed: the
	// client may still beat (and register) that set, so Stop releases it and
	// Retire deregisters it. Cleared when a later apply of the name succeeds.
	unsettled map[string]unsettledKeep
}

type unsettledKeep struct {
	ref   ServiceRef
	insts []Instance
}

type nameState struct {
	ref        ServiceRef
	registered map[string]Registered
	holds      map[string]time.Time
	listed     bool // registered has been checked against the registry since ownership began
	kept       bool // Keep succeeded since ownership began (the client beats this set)
	conflicts  map[string]bool
}

type nodeRec struct {
	name, addr string
	ts         int64
}

// New validates cfg and deps and returns a stopped engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Source == nil:
		return nil, fmt.Errorf("%w: Source", ErrDeps)
	case deps.Registry == nil:
		return nil, fmt.Errorf("%w: Registry", ErrDeps)
	case deps.Ownership == nil:
		return nil, fmt.Errorf("%w: Ownership", ErrDeps)
	case deps.ShardOf == nil:
		return nil, fmt.Errorf("%w: ShardOf", ErrDeps)
	}
	e := &Engine{
		cfg:       cfg,
		deps:      deps,
		marker:    Marker{Cluster: cfg.Cluster, Worker: cfg.Worker},
		log:       deps.Logger,
		clock:     deps.Clock,
		prober:    deps.Prober,
		wake:      make(chan struct{}, 1),
		owned:     map[int]uint64{},
		pending:   map[string]*pendingWork{},
		inflight:  map[string]bool{},
		services:  map[string]*svcState{},
		massSvcs:  map[string]bool{},
		evictions: map[string]map[string]bool{},
		skipped:   map[SkipReason]int{},
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("subsystem", "syncer", "task", cfg.Task)
	if e.clock == nil {
		e.clock = realClock{}
	}
	if e.prober == nil {
		e.prober = TCPProber{}
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, cfg.Task)
	if err != nil {
		return nil, fmt.Errorf("syncer: metrics: %w", err)
	}
	e.m = m
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Start launches the engine's goroutines and queues every owned service for
// a full reconcile. It does not block.
func (e *Engine) Start() error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return ErrStopped
	}
	if e.started {
		e.mu.Unlock()
		return nil
	}
	e.started = true
	e.mu.Unlock()
	e.refreshOwnership()
	e.enqueueOwned(true)
	e.wg.Add(1)
	go e.loop()
	for i := 0; i < e.cfg.Workers; i++ {
		e.wg.Add(1)
		go e.worker()
	}
	if e.cfg.ProbeInterval > 0 {
		e.wg.Add(1)
		go e.probeLoop()
	}
	return nil
}

// Stop stops the engine: no new registry calls, in-flight ones cancelled,
// goroutines waited for until ctx ends, then every kept instance released
// (not deregistered: the worker that takes the shards over keeps them
// alive). Idempotent; safe before Start.
func (e *Engine) Stop(ctx context.Context) error { return e.stop(ctx, nil) }

// Retire stops the engine like Stop, then deregisters, instead of releasing,
// the instances it registered for the ZooKeeper services remove selects (a
// deleted task, or the services a narrowed task no longer covers); the rest
// are released. Deregistrations run on at most Workers goroutines, bounded
// by ctx; one that fails leaves its instances unbeaten, so they expire on
// the registry. Idempotent with Stop: only the first of the two acts.
func (e *Engine) Retire(ctx context.Context, remove func(service string) bool) error {
	return e.stop(ctx, remove)
}

type deregWork struct {
	ref   ServiceRef
	insts []Instance
}

// deregWork lists every instance the service may have in the registry
// through this engine: registered, and those of a failed Keep.
func (st *svcState) deregWork() []deregWork {
	byName := map[string]*deregWork{}
	seen := map[string]map[string]bool{}
	add := func(name string, ref ServiceRef, in Instance) {
		w := byName[name]
		if w == nil {
			w = &deregWork{ref: ref}
			byName[name] = w
			seen[name] = map[string]bool{}
		}
		if a := in.Addr(); !seen[name][a] {
			seen[name][a] = true
			w.insts = append(w.insts, in)
		}
	}
	for n, ns := range st.names {
		for _, r := range ns.registered {
			add(n, ns.ref, r.Instance)
		}
	}
	for n, u := range st.unsettled {
		for _, in := range u.insts {
			add(n, u.ref, in)
		}
	}
	out := make([]deregWork, 0, len(byName))
	for _, w := range byName {
		out = append(out, *w)
	}
	return out
}

func (e *Engine) stop(ctx context.Context, remove func(service string) bool) error {
	var err error
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
		e.cancel()
		done := make(chan struct{})
		go func() { e.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("syncer: stop: %w", ctx.Err())
		}
		e.mu.Lock()
		var refs []ServiceRef
		var dereg []deregWork
		for s, st := range e.services {
			refs = append(refs, st.refs()...)
			if remove != nil && remove(s) {
				dereg = append(dereg, st.deregWork()...)
			}
			delete(e.services, s)
		}
		e.mu.Unlock()
		if len(dereg) > 0 {
			if derr := e.deregisterAll(ctx, dereg); derr != nil && err == nil {
				err = derr
			}
		}
		for _, r := range refs {
			e.deps.Registry.Release(r)
		}
	})
	return err
}

// deregisterAll removes each service's instances, Workers at a time.
func (e *Engine) deregisterAll(ctx context.Context, work []deregWork) error {
	sem := make(chan struct{}, e.cfg.Workers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, w := range work {
		if ctx.Err() != nil {
			failed.Add(int64(len(w.insts)))
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.deps.Registry.Deregister(ctx, w.ref, w.insts); err != nil {
				failed.Add(int64(len(w.insts)))
				e.log.Warn("deregistration at retire failed; the instances expire unbeaten", "registry_service", w.ref.Name, "err", err)
				return
			}
			e.m.actions.WithLabelValues(ActDeregister.String()).Add(float64(len(w.insts)))
		}()
	}
	wg.Wait()
	n := 0
	for _, w := range work {
		n += len(w.insts)
	}
	e.log.Info("task retired: deregistered its instances", "instances", n, "failed", failed.Load())
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("syncer: retire: %d of %d instances not deregistered (they expire unbeaten)", f, n)
	}
	return nil
}

// Confirm lets removals held by the mass-removal guard go ahead (an
// operator confirmed them); removals pass the guard for one MassWindow.
func (e *Engine) Confirm() { e.releaseMass("confirmed", 0) }

// Status is a point-in-time summary for the console and tests.
type Status struct {
	OwnedShards int
	Services    int
	Pending     int
	Desired     int
	Registered  int
	Skipped     map[SkipReason]int
	MassHeld    []string // ZooKeeper services whose removals are held
}

// Status returns the engine's current summary.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{OwnedShards: len(e.owned), Services: len(e.services), Pending: len(e.pending),
		Desired: e.desired, Registered: e.regCount, Skipped: map[SkipReason]int{}}
	for r, n := range e.skipped {
		if n > 0 {
			st.Skipped[r] = n
		}
	}
	for s := range e.massSvcs {
		st.MassHeld = append(st.MassHeld, s)
	}
	slices.Sort(st.MassHeld)
	return st
}

// loop turns notifications into pending work.
func (e *Engine) loop() {
	defer e.wg.Done()
	changes := e.deps.Source.Changes()
	ownC := e.deps.Ownership.Changed()
	var appC <-chan struct{}
	if e.deps.Apps != nil {
		appC = e.deps.Apps.Changed()
	}
	full := e.clock.After(e.jitter(e.cfg.FullInterval))
	poll := e.clock.After(e.cfg.SyncedPoll)
	wasSynced := e.deps.Source.Synced()
	for {
		select {
		case <-e.ctx.Done():
			return
		case s, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			e.enqueue(s, false, true)
			e.received.Add(1)
		case <-ownC:
			e.refreshOwnership()
		case <-appC:
			e.enqueueKnown()
		case <-full:
			e.refreshOwnership()
			e.enqueueOwned(true)
			full = e.clock.After(e.jitter(e.cfg.FullInterval))
		case <-poll:
			synced := e.deps.Source.Synced()
			if synced && !wasSynced {
				e.log.Info("zookeeper view synced: reconciling every owned service")
				e.enqueueOwned(true)
			}
			wasSynced = synced
			poll = e.clock.After(e.cfg.SyncedPoll)
		}
	}
}

func (e *Engine) jitter(d time.Duration) time.Duration {
	f := e.cfg.FullJitter
	if f == 0 {
		return d
	}
	return d + time.Duration((rand.Float64()*2-1)*f*float64(d))
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// enqueue marks a service pending if its shard is owned.
func (e *Engine) enqueue(s string, full, change bool) {
	shard := e.deps.ShardOf(s)
	e.mu.Lock()
	if _, ok := e.owned[shard]; !ok || e.stopped {
		e.mu.Unlock()
		return
	}
	w, ok := e.pending[s]
	if !ok {
		w = &pendingWork{}
		e.pending[s] = w
		e.queue = append(e.queue, s)
	}
	w.full = w.full || full
	if change && w.since.IsZero() {
		w.since = e.clock.Now()
	}
	e.m.queueDepth.Set(float64(len(e.pending)))
	e.mu.Unlock()
	e.signal()
}

// enqueueOwned queues every catalog service of an owned shard, and every
// service the engine holds state for.
func (e *Engine) enqueueOwned(full bool) {
	for _, s := range e.deps.Source.Services() {
		e.enqueue(s, full, false)
	}
	e.enqueueKnown()
}

// enqueueKnown queues every service the engine holds state for (after an
// app mode change: skipped providers become synced or the reverse).
func (e *Engine) enqueueKnown() {
	e.mu.Lock()
	known := make([]string, 0, len(e.services))
	for s := range e.services {
		known = append(known, s)
	}
	e.mu.Unlock()
	for _, s := range known {
		e.enqueue(s, false, false)
	}
}

// refreshOwnership reads the owned shards, releases (without deregistering)
// the services of shards lost, and queues the services of shards gained.
func (e *Engine) refreshOwnership() {
	owned := e.deps.Ownership.Owned()
	gained := map[int]bool{}
	var release []ServiceRef
	e.mu.Lock()
	for sh, ep := range owned {
		if old, ok := e.owned[sh]; !ok || old != ep {
			gained[sh] = true
		}
	}
	e.owned = owned
	for s, st := range e.services {
		if ep, ok := owned[st.shard]; ok && ep == st.epoch {
			continue
		}
		if e.inflight[s] {
			st.lost = true
			continue
		}
		release = append(release, st.refs()...)
		e.dropLocked(s, st)
	}
	e.m.ownedShards.Set(float64(len(owned)))
	e.mu.Unlock()
	for _, r := range release {
		e.deps.Registry.Release(r)
	}
	if len(release) > 0 {
		e.log.Info("shards lost: stopped beating their instances", "services", len(release))
		e.record(Event{Kind: EventOwnershipLost, Detail: fmt.Sprintf("released %d registry services", len(release))})
	}
	if len(gained) > 0 {
		for _, s := range e.deps.Source.Services() {
			if gained[e.deps.ShardOf(s)] {
				e.enqueue(s, true, false)
			}
		}
	}
}

// dropLocked forgets a service's state and its contribution to the gauges.
func (e *Engine) dropLocked(s string, st *svcState) {
	if e.services[s] != st {
		return
	}
	delete(e.services, s)
	e.desired -= st.desired
	e.regCount -= st.regCount
	for r, n := range st.skipped {
		e.skipped[r] -= n
	}
	delete(e.massSvcs, s)
	delete(e.evictions, s)
	e.setGaugesLocked()
}

func (e *Engine) setGaugesLocked() {
	e.m.desired.Set(float64(e.desired))
	e.m.registered.Set(float64(e.regCount))
	for _, r := range skipReasons {
		e.m.skipped.WithLabelValues(string(r)).Set(float64(e.skipped[r]))
	}
}

func (st *svcState) refs() []ServiceRef {
	out := make([]ServiceRef, 0, len(st.names)+len(st.unsettled))
	for n, ns := range st.names {
		if _, ok := st.unsettled[n]; ns.kept && !ok {
			out = append(out, ns.ref)
		}
	}
	for _, u := range st.unsettled {
		out = append(out, u.ref)
	}
	return out
}

func (e *Engine) worker() {
	defer e.wg.Done()
	for {
		if e.ctx.Err() != nil {
			return
		}
		s, w, ok := e.next()
		if !ok {
			select {
			case <-e.ctx.Done():
				return
			case <-e.wake:
			}
			continue
		}
		e.process(s, w)
		e.mu.Lock()
		delete(e.inflight, s)
		_, again := e.pending[s]
		e.mu.Unlock()
		if again {
			e.signal()
		}
	}
}

// next takes the first pending service that is not in flight.
func (e *Engine) next() (string, pendingWork, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, s := range e.queue {
		if e.inflight[s] {
			continue
		}
		e.queue = slices.Delete(e.queue, i, i+1)
		w := *e.pending[s]
		delete(e.pending, s)
		e.inflight[s] = true
		e.m.queueDepth.Set(float64(len(e.pending)))
		if len(e.queue) > 0 {
			e.signal() // chain: another worker may take the next one
		}
		return s, w, true
	}
	return "", pendingWork{}, false
}

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

// process reconciles one ZooKeeper service and applies the result.
func (e *Engine) process(s string, w pendingWork) {
	start := e.clock.Now()
	shard := e.deps.ShardOf(s)

	e.mu.Lock()
	epoch, owned := e.owned[shard]
	if !owned || e.stopped {
		e.mu.Unlock()
		return
	}
	st := e.services[s]
	if st == nil {
		st = &svcState{shard: shard, epoch: epoch, names: map[string]*nameState{}, skipped: map[SkipReason]int{}}
		e.services[s] = st
	}
	prevNodes := st.nodes
	views := make(map[string]nameState, len(st.names))
	for n, ns := range st.names {
		views[n] = *ns
	}
	evicted := e.evictions[s] // replaced, never mutated
	unsettled := make(map[string]bool, len(st.unsettled))
	for n := range st.unsettled {
		unsettled[n] = true
	}
	e.mu.Unlock()

	// Desired state from the snapshot: newest node per (name, address),
	// then the filters on that newest node.
	// Removals need a trustworthy view on both sides of the read.
	synced := e.deps.Source.Synced()
	snap, exists := e.deps.Source.Snapshot(s)
	synced = synced && e.deps.Source.Synced()
	nodes := map[string]nodeRec{}
	present := map[string]bool{}
	newest := map[string]map[string]Provider{}
	consider := func(p Provider) {
		present[p.Node] = true
		if evicted[p.Node] {
			return // ZooKeeper said it is gone; the cache lags
		}
		name, addr := ServiceName(p.URL), Addr(p.URL.Host, p.URL.Port)
		nodes[p.Node] = nodeRec{name: name, addr: addr, ts: p.Timestamp}
		byAddr := newest[name]
		if byAddr == nil {
			byAddr = map[string]Provider{}
			newest[name] = byAddr
		}
		if cur, ok := byAddr[addr]; !ok || p.Timestamp > cur.Timestamp {
			byAddr[addr] = p
		}
	}
	if exists {
		for _, p := range snap.Providers {
			consider(p)
		}
		for _, p := range snap.Shadowed {
			consider(p)
		}
	}
	skipped := map[SkipReason]int{}
	desired := map[string]map[string]Desired{}
	for name, byAddr := range newest {
		for addr, p := range byAddr {
			mode := ModeSync
			if e.deps.Apps != nil {
				if app := Application(p); app != "" {
					mode = e.deps.Apps.Mode(app)
				}
			}
			if r := e.cfg.Filter.Skip(p, mode); r != SkipNone {
				skipped[r]++
				continue
			}
			if desired[name] == nil {
				desired[name] = map[string]Desired{}
			}
			desired[name][addr] = Desired{Instance: BuildInstance(p, e.marker), Node: p.Node, Timestamp: p.Timestamp}
		}
	}
	gone := map[string]map[string][]GoneNode{}
	for node, rec := range prevNodes {
		if _, ok := nodes[node]; ok {
			continue
		}
		if gone[rec.name] == nil {
			gone[rec.name] = map[string][]GoneNode{}
		}
		gone[rec.name][rec.addr] = append(gone[rec.name][rec.addr], GoneNode{Node: node, Timestamp: rec.ts})
	}

	// Every registry service the snapshot names, synced or skipped: a
	// skipped provider's instance may have been registered before (by us or
	// by a previous owner) and must be removed once.
	names := map[string]bool{}
	for n := range newest {
		names[n] = true
	}
	for n, ns := range views {
		if len(ns.registered) > 0 || len(ns.holds) > 0 {
			names[n] = true
		}
	}
	for n := range gone {
		if _, ok := views[n]; ok {
			names[n] = true
		}
	}
	for n := range unsettled {
		names[n] = true // a failed Keep's set is set right (or emptied) by a Keep
	}
	order := make([]string, 0, len(names))
	for n := range names {
		order = append(order, n)
	}
	slices.Sort(order)

	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ApplyTimeout)
	defer cancel()
	now := e.clock.Now()
	failed := false
	works := make([]*nameWork, 0, len(order))
	for _, name := range order {
		nw := &nameWork{name: name, desired: len(desired[name]), forceKeep: unsettled[name]}
		if v, ok := views[name]; ok {
			nw.ns = v
		} else {
			nw.ns = nameState{ref: ServiceRef{Namespace: e.cfg.Namespace, Group: e.cfg.Group, Name: name}}
		}
		in := ReconcileInput{Now: now, Desired: desired[name], Registered: nw.ns.registered, Gone: gone[name],
			Holds: nw.ns.holds, AllowRemovals: synced, StaleHold: e.cfg.StaleHold}
		needList := w.full || !nw.ns.listed
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

	// Mass-removal guard, task-wide.
	removals := 0
	for _, nw := range works {
		removals += nw.plan.Removals()
	}
	held, newHold := false, false
	if removals > 0 {
		e.mu.Lock()
		e.pruneRemovalsLocked(now)
		recent := 0
		for _, r := range e.removals {
			recent += r.n
		}
		if now.Before(e.massOpen) {
			delete(e.massSvcs, s)
		} else if MassGuard(e.regCount, recent, removals, e.cfg.MassShare, e.cfg.MassMin) {
			held = true
			newHold = !e.massSvcs[s]
			e.massSvcs[s] = true
			if e.massSince.IsZero() {
				e.massSince = now
				e.massGen++
				e.wg.Add(1)
				go e.massGrace(e.massGen)
			}
		}
		e.mu.Unlock()
	}
	if !held {
		e.mu.Lock()
		delete(e.massSvcs, s)
		e.mu.Unlock()
	}
	if held {
		for _, nw := range works {
			nw.plan = nw.plan.WithoutRemovals(nw.ns.registered)
		}
		e.m.massHeld.Inc()
		if newHold {
			e.log.Warn("mass removal held", "service", s, "removals", removals)
			e.record(Event{Kind: EventMassHeld, Detail: fmt.Sprintf("zk service %s: %d removals held (more than %.0f%% of the task's instances within %s); confirm or wait %s",
				s, removals, e.cfg.MassShare*100, e.cfg.MassWindow, e.cfg.MassGrace)})
		}
	}

	// Apply, fenced by the lease.
	lost := !e.deps.Ownership.Owns(shard, epoch)
	applied := 0
	if !lost {
		for _, nw := range works {
			if e.ctx.Err() != nil {
				failed = true
				break
			}
			if err := e.apply(ctx, nw); err != nil {
				e.applyFailed(s, nw.ns.ref, "apply", err)
				failed = true
				continue
			}
			nw.applied = true
			applied += len(nw.plan.Actions)
		}
	}
	end := e.clock.Now()

	// Commit.
	var release []ServiceRef
	var evictedNow []Event
	var conflictEvents []Event
	e.mu.Lock()
	if st.lost || lost || e.services[s] != st {
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
		return
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
		var fresh []string
		ns.conflicts, fresh = newConflicts(ns.conflicts, nw.plan.Conflicts)
		for _, a := range fresh {
			conflictEvents = append(conflictEvents, Event{Kind: EventForeign, Service: ns.ref.Name, Instance: a,
				Detail: "address held by an instance without the ferry.source marker; left alone"})
		}
		for _, a := range nw.plan.Actions {
			if a.Kind == ActDeregister {
				removed++
				if n := nw.ns.registered[a.Addr].Node; n != "" && evicted[n] {
					evictedNow = append(evictedNow, Event{Kind: EventEvicted, Service: nw.name, Instance: a.Addr,
						Detail: fmt.Sprintf("node %s: port probe failed and the node is gone from ZooKeeper", n)})
				}
			}
		}
		if len(ns.registered) == 0 && len(ns.holds) == 0 && nw.desired == 0 {
			delete(st.names, nw.name)
		}
	}
	if removed > 0 {
		e.removals = append(e.removals, removalMark{at: now, n: removed})
	}
	if !failed {
		st.nodes = nodes
		st.attempts = 0
		// Forget evictions once the cache has caught up with ZooKeeper.
		if cur := e.evictions[s]; len(cur) > 0 {
			next := map[string]bool{}
			for node := range cur {
				if present[node] {
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
	e.desired -= st.desired
	e.regCount -= st.regCount
	for r, n := range st.skipped {
		e.skipped[r] -= n
	}
	st.desired, st.regCount, st.skipped = 0, 0, skipped
	for _, byAddr := range desired {
		st.desired += len(byAddr)
	}
	for _, ns := range st.names {
		st.regCount += len(ns.registered)
	}
	e.desired += st.desired
	e.regCount += st.regCount
	for r, n := range skipped {
		e.skipped[r] += n
	}
	e.setGaugesLocked()
	attempts := st.attempts
	if !exists && len(st.names) == 0 && !failed {
		e.dropLocked(s, st)
	}
	e.mu.Unlock()
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
	for _, ev := range conflictEvents {
		e.record(ev)
	}
	for _, ev := range evictedNow {
		e.m.evictions.Inc()
		e.record(ev)
	}
	if failed {
		e.retry(s, attempts)
	}
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

// apply sends one plan to the registry: removals first, then the full set.
func (e *Engine) apply(ctx context.Context, nw *nameWork) error {
	var dereg []Instance
	for _, a := range nw.plan.Actions {
		if a.Kind == ActDeregister {
			dereg = append(dereg, a.Instance)
		}
	}
	if len(dereg) > 0 {
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

// retry re-queues a service after exponential backoff with jitter.
func (e *Engine) retry(s string, attempts int) {
	e.after(e.backoff(attempts), s)
}

// after queues s again once d has passed (unless the engine stops).
func (e *Engine) after(d time.Duration, s string) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		select {
		case <-e.ctx.Done():
		case <-e.clock.After(d):
			e.enqueue(s, false, false)
		}
	}()
}

// backoff is RetryBase·2^(attempts-1), capped at RetryMax, with "equal
// jitter": a uniform draw from its upper half.
func (e *Engine) backoff(attempts int) time.Duration {
	d := e.cfg.RetryMax
	if attempts >= 1 && attempts < 32 {
		if b := e.cfg.RetryBase << (attempts - 1); b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(half+1)
}

func (e *Engine) pruneRemovalsLocked(now time.Time) {
	cut := 0
	for cut < len(e.removals) && now.Sub(e.removals[cut].at) >= e.cfg.MassWindow {
		cut++
	}
	e.removals = e.removals[cut:]
}

// massGrace releases the hold of generation gen once the grace period has
// passed (unless it was released already).
func (e *Engine) massGrace(gen uint64) {
	defer e.wg.Done()
	select {
	case <-e.ctx.Done():
	case <-e.clock.After(e.cfg.MassGrace):
		e.releaseMass("grace period passed", gen)
	}
}

// releaseMass lets held removals go; gen 0 releases whatever is held, another
// gen only that hold.
func (e *Engine) releaseMass(why string, gen uint64) {
	e.mu.Lock()
	if gen != 0 && (gen != e.massGen || e.massSince.IsZero()) {
		e.mu.Unlock()
		return
	}
	now := e.clock.Now()
	e.massOpen = now.Add(e.cfg.MassWindow)
	e.massSince = time.Time{}
	held := make([]string, 0, len(e.massSvcs))
	for s := range e.massSvcs {
		held = append(held, s)
	}
	e.mu.Unlock()
	if len(held) > 0 {
		e.log.Warn("mass removal released", "why", why, "services", len(held))
		e.record(Event{Kind: EventMassReleased, Detail: fmt.Sprintf("%s: %d services", why, len(held))})
	}
	for _, s := range held {
		e.enqueue(s, true, false)
	}
}

func (e *Engine) record(ev Event) {
	ev.At = e.clock.Now()
	ev.Task = e.cfg.Task
	ev.Worker = e.cfg.Worker
	if e.deps.Events != nil {
		e.deps.Events.Record(ev)
	}
	e.log.Debug("event", "kind", ev.Kind, "service", ev.Service, "instance", ev.Instance, "detail", ev.Detail)
}

// probeLoop sweeps the ports of the instances this worker keeps.
func (e *Engine) probeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.clock.After(e.jitter(e.cfg.ProbeInterval)):
			e.Sweep(e.ctx)
		}
	}
}

type probeTarget struct {
	service string
	addr    string
	node    string
}

// Sweep probes every kept instance once (bounded concurrency). A failed
// probe asks ZooKeeper whether the provider node exists: only when it says
// the node is gone is the instance evicted (through the service's next
// reconcile, which deregisters it and records the event); a node still
// present, or an unknown answer, is counted and left alone. It returns when
// the sweep is done.
func (e *Engine) Sweep(ctx context.Context) {
	e.mu.Lock()
	var targets []probeTarget
	for s, st := range e.services {
		for _, ns := range st.names {
			for a, r := range ns.registered {
				if r.Node != "" {
					targets = append(targets, probeTarget{service: s, addr: a, node: r.Node})
				}
			}
		}
	}
	e.mu.Unlock()
	sem := make(chan struct{}, e.cfg.ProbeConcurrency)
	var wg sync.WaitGroup
	for _, t := range targets {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				e.probeOne(ctx, t)
			}()
			continue
		}
		break
	}
	wg.Wait()
}

func (e *Engine) probeOne(ctx context.Context, t probeTarget) {
	pctx, cancel := context.WithTimeout(ctx, e.cfg.ProbeTimeout)
	err := e.prober.Probe(pctx, t.addr)
	cancel()
	if err == nil || ctx.Err() != nil {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, e.cfg.ProbeTimeout)
	exists, zerr := e.deps.Source.ProviderExists(qctx, t.node)
	cancel()
	switch {
	case zerr != nil:
		e.m.probeFailures.WithLabelValues("unknown").Inc()
		e.log.Debug("probe failed; zookeeper unreachable, instance kept", "addr", t.addr, "node", t.node, "err", zerr)
	case exists:
		e.m.probeFailures.WithLabelValues("present").Inc()
		e.log.Debug("probe failed; provider node present, instance kept", "addr", t.addr, "err", err)
	default:
		e.m.probeFailures.WithLabelValues("gone").Inc()
		e.mu.Lock()
		next := map[string]bool{t.node: true}
		for n := range e.evictions[t.service] {
			next[n] = true
		}
		e.evictions[t.service] = next
		e.mu.Unlock()
		e.enqueue(t.service, false, false)
	}
}

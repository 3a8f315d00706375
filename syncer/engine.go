package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
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
	// AppSource is the application-level catalog (Dubbo 3 /services);
	// nil means interface level only. Its changes arrive on
	// Source.Changes as AppKey(app).
	AppSource AppSource
	// Mappings and Configs copy Dubbo 3's interface → application mapping
	// into the target's config service; both nil means no mapping sync.
	// Mapping changes arrive on Source.Changes as MappingKey(iface).
	Mappings MappingSource
	Configs  Configs
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
// most once, and is never processed by two goroutines at once; a ZooKeeper
// change waits in a change lane that is served before the bulk lane of
// every other trigger) and signal a
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
	// received counts change notifications taken from the source (queued,
	// or dropped when their kind is off; tests wait on it).
	received atomic.Uint64
	// noConfigs is set once a Configs call said the target has no config
	// service (ErrNoConfigService): mappings and metadata are off from then.
	noConfigs atomic.Bool

	// mu guards every field below. Per-service maps (svcState.nodes,
	// nameState.registered, nameState.holds) are replaced, never mutated,
	// so a worker may read the ones it copied under mu without holding it.
	mu          sync.Mutex
	started     bool
	stopped     bool
	owned       map[int]uint64
	kept        map[int]uint64 // shards kept beat-only through a store outage (Ownership.Kept)
	queue       []string       // change lane: keys with a ZooKeeper change pending
	bulk        []string       // bulk lane: the other pending keys (entries may be stale, see takeLocked)
	pending     map[string]*pendingWork
	inflight    map[string]bool
	services    map[string]*svcState
	mapStates   map[string]*mapState // by MappingKey
	mass        *massHold
	evictions   map[string]map[string]bool // service → provider nodes the sweeper found gone in ZooKeeper
	desired     int                        // interface-level instances desired
	regCount    int                        // interface-level instances registered
	appDesired  int                        // application-level instances desired
	appRegCount int                        // application-level instances registered
	skipped     map[SkipReason]int
}

type pendingWork struct {
	full  bool      // list from the registry, not only the cached view
	since time.Time // first ZooKeeper change notification coalesced here; zero for other triggers
	// urgent: a ZooKeeper change is coalesced here, so the key waits in
	// the change lane (Engine.queue), which workers empty before the bulk
	// lane (full reconciles, ownership gains, mode changes, retries): a
	// full reconcile of thousands of keys must not delay a change.
	urgent bool
}

type svcState struct {
	app bool // an application (AppKey), not an interface-level service
	// metaDone and metaBad are an application's revisions whose remote
	// metadata was copied, or cannot be (over the limit). Replaced, never
	// mutated.
	metaDone, metaBad map[string]bool
	// metaMissing are the revisions whose metadata node was missing at the
	// last attempt: reported once, not at every retry.
	metaMissing map[string]bool
	// metaLedger is the app's metadata ledger (the revisions Ferry copied)
	// once metaLoaded; metaUnused the ledger's revisions no instance uses,
	// since when. Replaced, never mutated.
	metaLedger []string
	metaLoaded bool
	metaUnused map[string]time.Time
	shard      int
	epoch      uint64
	names      map[string]*nameState
	nodes      map[string]nodeRec // every provider node of the last applied snapshot
	lost       bool               // ownership lost while in flight: release at commit
	held       bool               // its shard is kept beat-only: its refs are LightOnly
	attempts   int
	desired    int
	regCount   int
	skipped    map[SkipReason]int
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
		kept:      map[int]uint64{},
		pending:   map[string]*pendingWork{},
		inflight:  map[string]bool{},
		services:  map[string]*svcState{},
		mapStates: map[string]*mapState{},
		mass:      newMassHold(cfg),
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
		var cfgWork []configWork
		if remove != nil && e.mappingsOn() {
			cfgWork = e.configWork(remove)
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
		if len(cfgWork) > 0 {
			if cerr := e.retireConfigs(ctx, cfgWork); cerr != nil && err == nil {
				err = cerr
			}
		}
		for _, r := range refs {
			e.deps.Registry.Release(r)
		}
	})
	return err
}

// Confirm lets removals held by the mass-removal guard go ahead (an
// operator confirmed them); removals pass the guard for one MassWindow.
func (e *Engine) Confirm() { e.releaseMass("confirmed", 0) }

// Status is a point-in-time summary for the console and tests.
type Status struct {
	OwnedShards int
	// KeptShards are kept alive with light beats only while the store is
	// unreachable (no registration, no deregistration).
	KeptShards int
	Services   int
	Pending    int
	// InFlight are the work keys being reconciled now.
	InFlight int
	// Desired and Registered count interface-level instances;
	// AppDesired and AppRegistered application-level ones.
	Desired       int
	Registered    int
	AppDesired    int
	AppRegistered int
	Skipped       map[SkipReason]int
	MassHeld      []string // ZooKeeper services whose removals are held
}

// Status returns the engine's current summary.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{OwnedShards: len(e.owned), KeptShards: len(e.kept), Services: len(e.services), Pending: len(e.pending),
		InFlight: len(e.inflight),
		Desired:  e.desired, Registered: e.regCount, AppDesired: e.appDesired, AppRegistered: e.appRegCount,
		Skipped: map[SkipReason]int{}}
	for r, n := range e.skipped {
		if n > 0 {
			st.Skipped[r] = n
		}
	}
	st.MassHeld = e.mass.heldKeys()
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
			_, app := appOfKey(s)
			_, m := mappingOfKey(s)
			if !(app && e.deps.AppSource == nil) && !(m && !e.mappingsOn()) {
				e.enqueue(s, false, true)
			}
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
				// Partial: each key's first pass since ownership began
				// listed the registry already, and a plan that removes
				// anything lists again first; this pass only lets the
				// removals held while the view was not trusted go ahead.
				e.log.Info("zookeeper view synced: reconciling every owned service")
				e.enqueueOwned(false)
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
	switch {
	case !ok && change:
		w = &pendingWork{urgent: true}
		e.pending[s] = w
		e.queue = append(e.queue, s)
	case !ok:
		w = &pendingWork{}
		e.pending[s] = w
		e.bulk = append(e.bulk, s)
	case change && !w.urgent:
		w.urgent = true // its bulk entry goes stale
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
	for _, s := range e.catalogKeys() {
		e.enqueue(s, full, false)
	}
	e.enqueueKnown()
}

// catalogKeys lists the work keys of the catalog: every interface-level
// service, and AppKey of every application when app level is on.
func (e *Engine) catalogKeys() []string {
	keys := e.deps.Source.Services()
	if e.deps.AppSource != nil {
		for _, app := range e.deps.AppSource.Apps() {
			keys = append(keys, AppKey(app))
		}
	}
	if e.mappingsOn() {
		for _, iface := range e.deps.Mappings.Mappings() {
			keys = append(keys, MappingKey(iface))
		}
	}
	return keys
}

func (e *Engine) mappingsOn() bool {
	return e.deps.Mappings != nil && e.deps.Configs != nil && !e.noConfigs.Load()
}

// configsGone handles a Configs error: true (and, the first time, a
// warning and an event) when it says the target has no config service.
func (e *Engine) configsGone(err error) bool {
	if !errors.Is(err, ErrNoConfigService) {
		return false
	}
	if e.noConfigs.CompareAndSwap(false, true) {
		e.log.Warn("the target has no config service: syncing instances only (no mappings, no remote metadata)", "err", err)
		e.record(Event{Kind: EventNoConfigService, Detail: "the target has no config service: Dubbo 3 mappings and remote metadata are not copied; instances are"})
		// Instances held back waiting for their remote metadata go as
		// they are now: plan every known key again.
		e.enqueueKnown()
	}
	return true
}

// enqueueKnown queues every service the engine holds state for (after an
// app mode change: skipped providers become synced or the reverse).
func (e *Engine) enqueueKnown() {
	e.mu.Lock()
	known := make([]string, 0, len(e.services)+len(e.mapStates))
	for s := range e.services {
		known = append(known, s)
	}
	for k := range e.mapStates {
		known = append(known, k)
	}
	e.mu.Unlock()
	for _, s := range known {
		e.enqueue(s, false, false)
	}
}

// refreshOwnership reads the owned and kept shards, releases (without
// deregistering) the services of shards lost, switches the services of
// kept shards to light beats only (and back once owned again), and queues
// the services of shards gained, a kept shard owned again included: the
// ZooKeeper changes it missed are applied by that full reconcile.
func (e *Engine) refreshOwnership() {
	owned := e.deps.Ownership.Owned()
	kept := e.deps.Ownership.Kept()
	gained := map[int]bool{}
	var release, hold, unhold []ServiceRef
	e.mu.Lock()
	for sh, ep := range owned {
		if old, ok := e.owned[sh]; !ok || old != ep {
			gained[sh] = true
		}
	}
	e.owned, e.kept = owned, kept
	for s, st := range e.services {
		if ep, ok := owned[st.shard]; ok && ep == st.epoch {
			if st.held {
				st.held = false
				unhold = append(unhold, st.refs()...)
			}
			continue
		}
		if ep, ok := kept[st.shard]; ok && ep == st.epoch {
			if !st.held {
				st.held = true
				hold = append(hold, st.refs()...)
			}
			continue
		}
		if e.inflight[s] {
			st.lost = true
			continue
		}
		release = append(release, st.refs()...)
		e.dropLocked(s, st)
	}
	for k, ms := range e.mapStates {
		if ep, ok := owned[ms.shard]; !ok || ep != ms.epoch {
			delete(e.mapStates, k) // nothing beaten: the next owner merges again
		}
	}
	e.m.ownedShards.Set(float64(len(owned)))
	e.m.keptShards.Set(float64(len(kept)))
	e.mu.Unlock()
	for _, r := range hold {
		e.deps.Registry.LightOnly(r, true)
	}
	for _, r := range unhold {
		e.deps.Registry.LightOnly(r, false)
	}
	for _, r := range release {
		e.deps.Registry.Release(r)
	}
	if len(hold) > 0 {
		e.log.Warn("store unreachable: beating the last owned services with light beats only", "registry_services", len(hold), "kept_shards", len(kept))
	}
	if len(unhold) > 0 {
		e.log.Info("leases confirmed again: reconciling the kept services", "registry_services", len(unhold))
	}
	if len(release) > 0 {
		e.log.Info("shards lost: stopped beating their instances", "services", len(release))
		e.record(Event{Kind: EventOwnershipLost, Detail: fmt.Sprintf("released %d registry services", len(release))})
	}
	if len(gained) > 0 {
		for _, s := range e.catalogKeys() {
			if gained[e.deps.ShardOf(s)] {
				e.enqueue(s, true, false)
			}
		}
		// Services the engine holds state for but the catalog no longer
		// lists (deleted from ZooKeeper while a kept shard could not be
		// acted on): their removal is applied now too.
		e.mu.Lock()
		var known []string
		for s, st := range e.services {
			if gained[st.shard] {
				known = append(known, s)
			}
		}
		e.mu.Unlock()
		for _, s := range known {
			e.enqueue(s, true, false)
		}
	}
}

// dropLocked forgets a service's state and its contribution to the gauges.
func (e *Engine) dropLocked(s string, st *svcState) {
	if e.services[s] != st {
		return
	}
	delete(e.services, s)
	e.addCountsLocked(st, -1)
	for r, n := range st.skipped {
		e.skipped[r] -= n
	}
	e.mass.forget(s)
	delete(e.evictions, s)
	e.setGaugesLocked()
}

// addCountsLocked adds (sign 1) or removes (-1) st's instance counts to
// the engine's, by level.
func (e *Engine) addCountsLocked(st *svcState, sign int) {
	if st.app {
		e.appDesired += sign * st.desired
		e.appRegCount += sign * st.regCount
		return
	}
	e.desired += sign * st.desired
	e.regCount += sign * st.regCount
}

func (e *Engine) setGaugesLocked() {
	e.m.desired.Set(float64(e.desired))
	e.m.registered.Set(float64(e.regCount))
	e.m.appDesired.Set(float64(e.appDesired))
	e.m.appRegistered.Set(float64(e.appRegCount))
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

// next takes the first pending service that is not in flight: from the
// change lane first, then from the bulk lane.
func (e *Engine) next() (string, pendingWork, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.takeLocked(&e.queue, true)
	if !ok {
		s, ok = e.takeLocked(&e.bulk, false)
	}
	if !ok {
		return "", pendingWork{}, false
	}
	w := *e.pending[s]
	delete(e.pending, s)
	e.inflight[s] = true
	e.m.queueDepth.Set(float64(len(e.pending)))
	if len(e.queue)+len(e.bulk) > 0 {
		e.signal() // chain: another worker may take the next one
	}
	return s, w, true
}

// takeLocked removes and returns the first key of a lane that is pending
// in that lane and not in flight, dropping stale entries on the way (a
// bulk entry whose key moved to the change lane or was taken from it).
// e.mu held.
func (e *Engine) takeLocked(lane *[]string, urgent bool) (string, bool) {
	q := *lane
	for i := 0; i < len(q); {
		s := q[i]
		w := e.pending[s]
		if w == nil || w.urgent != urgent {
			q = slices.Delete(q, i, i+1)
			continue
		}
		if e.inflight[s] {
			i++
			continue
		}
		*lane = slices.Delete(q, i, i+1)
		return s, true
	}
	*lane = q
	return "", false
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

func (e *Engine) record(ev Event) {
	ev.At = e.clock.Now()
	ev.Task = e.cfg.Task
	ev.Worker = e.cfg.Worker
	if e.deps.Events != nil {
		e.deps.Events.Record(ev)
	}
	e.log.Debug("event", "kind", ev.Kind, "service", ev.Service, "instance", ev.Instance, "detail", ev.Detail)
}

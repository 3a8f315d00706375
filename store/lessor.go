package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LessorConfig configures one worker's membership and shard leases.
type LessorConfig struct {
	// WorkerID names this worker; unique among live workers (e.g. host-pid-random).
	WorkerID string
	// Address and Version are shown in the console.
	Address string
	Version string
	// Shards is the number of shards; every worker on a database must agree.
	Shards int
	// RenewInterval is how often leases are renewed and shards rebalanced.
	RenewInterval time.Duration
	// TTL is how long a lease lasts after a renewal, by the database's
	// clock; also how long a silent worker still counts as live.
	TTL time.Duration
	// HeartbeatInterval is how often the worker row is touched.
	HeartbeatInterval time.Duration
	// SafetyMargin: Owns turns false this long before the earliest moment
	// the lease could expire in the database, so work in flight when the
	// check passed has time to finish before a successor starts.
	SafetyMargin time.Duration
	// OutageKeep caps how long the last owned shards are kept alive with
	// light beats while the store is unreachable (see Kept); 0 keeps them
	// for as long as the outage lasts.
	OutageKeep time.Duration
	// SchemaCheckInterval is how often the schema version is read while
	// the store answers (every tick while it does not, or differs): a
	// changed schema is treated as an outage (CheckSchema).
	SchemaCheckInterval time.Duration
	// Generation, when set, is read at each heartbeat and written to the
	// worker row as the settings generation this worker has applied
	// (generation.go). Called from the lessor's goroutine; must not block.
	Generation func() int64
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the lessor's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultLessorConfig returns the defaults: 256 shards, renew every
// second, expire after 5 s, heartbeat every second, stop acting 1 s early,
// keep the last owned shards through a store outage of any length.
//
// The TTL bounds a crashed worker's takeover: its shards are free 5 s after
// its last renewal and taken at the successor's next renewal (≤ 1 s), well
// before the registry marks an unbeaten instance unhealthy (15 s after its
// last beat, which is at most one beat period, 5 s, before the crash). A
// short TTL no longer risks the estate on a slow store: a lapse while the
// store is unreachable keeps the shards beaten (Kept).
func DefaultLessorConfig(workerID string) LessorConfig {
	return LessorConfig{
		WorkerID:          workerID,
		Shards:            DefaultShards,
		RenewInterval:     time.Second,
		TTL:               5 * time.Second,
		HeartbeatInterval: time.Second,
		SafetyMargin:      time.Second,

		SchemaCheckInterval: 30 * time.Second,
	}
}

// Validate names the first bad field.
func (c LessorConfig) Validate() error {
	switch {
	case c.WorkerID == "" || len(c.WorkerID) > 128:
		return fmt.Errorf("%w LessorConfig.WorkerID %q", ErrInvalid, c.WorkerID)
	case c.Shards < 1 || c.Shards > 1<<16:
		return fmt.Errorf("%w LessorConfig.Shards %d: want 1..65536", ErrInvalid, c.Shards)
	case c.RenewInterval <= 0:
		return fmt.Errorf("%w LessorConfig.RenewInterval %v", ErrInvalid, c.RenewInterval)
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval > c.TTL/2:
		return fmt.Errorf("%w LessorConfig.HeartbeatInterval %v: want >0 and <= TTL/2", ErrInvalid, c.HeartbeatInterval)
	case c.SafetyMargin < 0:
		return fmt.Errorf("%w LessorConfig.SafetyMargin %v", ErrInvalid, c.SafetyMargin)
	case c.SchemaCheckInterval <= 0:
		return fmt.Errorf("%w LessorConfig.SchemaCheckInterval %v: want > 0", ErrInvalid, c.SchemaCheckInterval)
	case c.OutageKeep < 0:
		return fmt.Errorf("%w LessorConfig.OutageKeep %v: want >= 0 (0: no cap)", ErrInvalid, c.OutageKeep)
	case c.TTL < 2*c.RenewInterval+c.SafetyMargin:
		return fmt.Errorf("%w LessorConfig.TTL %v: want >= 2*RenewInterval + SafetyMargin (%v)", ErrInvalid, c.TTL, 2*c.RenewInterval+c.SafetyMargin)
	case c.TTL.Milliseconds() < 1:
		return fmt.Errorf("%w LessorConfig.TTL %v", ErrInvalid, c.TTL)
	}
	return nil
}

// ownership is an immutable snapshot of what this worker holds. A shard is
// owned at time t iff epoch[shard] != 0 and t is before until[shard]. A
// shard is kept (beat-only) iff keep[shard] != 0: its lease, held at that
// epoch, lapsed while the store was unreachable.
type ownership struct {
	epoch []uint64    // by shard; 0 = not held
	until []time.Time // local monotonic deadline of each held lease
	keep  []uint64    // by shard; 0 = not kept
	// downSince is when the store stopped answering (zero: it answers).
	downSince time.Time
}

func (o *ownership) clone() *ownership {
	return &ownership{epoch: append([]uint64(nil), o.epoch...), until: append([]time.Time(nil), o.until...),
		keep: append([]uint64(nil), o.keep...), downSince: o.downSince}
}

func emptyOwnership(shards int) *ownership {
	return &ownership{epoch: make([]uint64, shards), until: make([]time.Time, shards), keep: make([]uint64, shards)}
}

// Lessor keeps one worker registered and holds its fair share of shard
// leases. Start runs it in the background; Owns and friends are cheap
// (an atomic load) and safe from any goroutine.
//
// Safety: a lease's local validity ends at (time the renewing or acquiring
// statement was sent) + TTL - SafetyMargin, by this process's monotonic
// clock; the database computes its expiry from its own clock after
// receiving the statement, so the local validity always ends first. Another
// worker takes a lease only after the database's expiry, with a higher
// epoch. Owns therefore never holds for two workers at once, even when the
// database is unreachable: the holder just stops acting.
//
// Store outages (docs/design-notes.md, "A store outage is not a removal"):
// a lease that lapses while the store does not answer is not dropped but
// kept: Owns is false for it (no registration, no deregistration: the
// fencing rule above is unchanged), while Kept lists it so the worker goes
// on beating the instances it already registered, light beats only. A
// second owner on the other side of a partition can then do no harm: a
// beat for an instance it removed answers "unknown" and is not
// re-registered. When the store answers again the kept leases are renewed
// with their epoch (an expired lease nobody took renews, and the unchanged
// epoch proves nobody held it in between): renewed ones are owned again,
// the others moved meanwhile and stop being kept at once. For one TTL
// after an outage the lessor takes only free leases, not expired ones, so
// that workers coming out of the same outage renew before anyone steals.
type Lessor struct {
	cfg     LessorConfig
	st      *Store
	log     *slog.Logger
	metrics *lessorMetrics
	rng     *rand.Rand // used by the loop goroutine only

	own     atomic.Pointer[ownership]
	changed chan struct{} // capacity 1: "ownership changed, read Owned"

	mu      sync.Mutex // guards the lifecycle fields below
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
	release bool // Stop releases leases (false only for tests that simulate a crash)

	registered bool // loop goroutine only
	lastErr    string
	// downSince and upAt are owned by the loop goroutine: when the store
	// stopped answering (zero: it answers) and when it last came back.
	downSince time.Time
	upAt      time.Time
	keptLog   bool // the outage's keep-alive was logged
	// schemaAt is when the schema was last checked, schemaBad whether it
	// differed (loop goroutine only); clock is the last sample of the
	// database's clock against the monotonic one (clockJump).
	schemaAt  time.Time
	schemaBad bool
	clock     clockSample

	// draining is set by SetDraining (any goroutine); drained and
	// drainLog belong to the loop goroutine: the worker row was removed to
	// hand the shards over, and the "no one to hand over to" line logged.
	draining atomic.Bool
	drained  bool
	drainLog bool
}

// NewLessor validates cfg; nothing touches the database until Start.
func NewLessor(st *Store, cfg LessorConfig) (*Lessor, error) {
	if st == nil {
		return nil, fmt.Errorf("%w lessor store: nil", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newLessorMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Lessor{
		cfg:     cfg,
		st:      st,
		log:     log.With("component", "lessor", "worker", cfg.WorkerID),
		metrics: m,
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		changed: make(chan struct{}, 1),
		release: true,
	}
	l.own.Store(emptyOwnership(cfg.Shards))
	l.metrics.reachable.Set(1)
	return l, nil
}

// Start registers the worker and begins renewing in the background. It
// does not block; a database that is down is retried with backoff.
func (l *Lessor) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return errors.New("store: lessor already started")
	}
	l.started = true
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go l.run(ctx)
	return nil
}

// Stop gives up every lease at once (so successors need not wait for
// expiry), removes the worker row and returns. Bounded by ctx; idempotent.
func (l *Lessor) Stop(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped || !l.started {
		l.stopped = true
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	release := l.release
	l.mu.Unlock()
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	old := l.own.Load()
	held := heldOf(old)
	for sh, ep := range old.keep {
		if ep != 0 {
			held[sh] = ep
		}
	}
	l.publish(emptyOwnership(l.cfg.Shards), old)
	if !release {
		return nil
	}
	var errs []error
	if err := l.st.ReleaseLeases(ctx, l.cfg.WorkerID, held); err != nil {
		errs = append(errs, err)
	} else {
		l.metrics.released.Add(float64(len(held)))
	}
	if err := l.st.DeleteWorker(ctx, l.cfg.WorkerID); err != nil {
		errs = append(errs, err)
	}
	l.log.Info("lessor stopped", "released", len(held))
	return errors.Join(errs...)
}

// Changed is signalled (coalesced, never blocking the lessor) whenever the
// set of owned shards or their epochs changes; read Owned after it fires.
// A lease that lapses locally is signalled at the next renew tick at the
// latest; Owns is exact at any time.
func (l *Lessor) Changed() <-chan struct{} { return l.changed }

// Shards is the configured shard count.
func (l *Lessor) Shards() int { return l.cfg.Shards }

// WorkerID is this worker's id.
func (l *Lessor) WorkerID() string { return l.cfg.WorkerID }

// ShardOf is the shard of a service.
func (l *Lessor) ShardOf(service string) int { return ShardOfN(service, l.cfg.Shards) }

// Owns reports whether this worker holds shard at epoch right now. Check
// it before acting on a shard and pass the epoch along as a fence.
func (l *Lessor) Owns(shard int, epoch uint64) bool {
	return l.ownsAt(shard, epoch, time.Now())
}

func (l *Lessor) ownsAt(shard int, epoch uint64, t time.Time) bool {
	o := l.own.Load()
	return shard >= 0 && shard < len(o.epoch) && epoch != 0 && o.epoch[shard] == epoch && t.Before(o.until[shard])
}

// OwnsService returns the epoch of the service's shard and true when this
// worker owns it now.
func (l *Lessor) OwnsService(service string) (uint64, bool) {
	sh := l.ShardOf(service)
	o := l.own.Load()
	if ep := o.epoch[sh]; ep != 0 && time.Now().Before(o.until[sh]) {
		return ep, true
	}
	return 0, false
}

// Owned returns the shards owned now, shard → epoch.
func (l *Lessor) Owned() map[int]uint64 {
	return l.ownedAt(time.Now())
}

func (l *Lessor) ownedAt(t time.Time) map[int]uint64 {
	o := l.own.Load()
	out := make(map[int]uint64)
	for sh, ep := range o.epoch {
		if ep != 0 && t.Before(o.until[sh]) {
			out[sh] = ep
		}
	}
	return out
}

// SetDraining asks the lessor to give every shard up (on) or to take its
// share again (off). While on and another live worker exists, the lessor
// releases its leases at the next renewal and removes its worker row, so
// the others count it out and take the shards at once; it takes none and
// stops heartbeating. With no other live worker it keeps its shards (no
// one could do better). A worker whose registry is unreachable drains so
// that its instances are beaten by a worker that can reach it.
func (l *Lessor) SetDraining(on bool) {
	if l.draining.Swap(on) != on {
		l.log.Info("lessor draining changed", "draining", on)
	}
}

// Draining reports whether SetDraining(true) is in effect.
func (l *Lessor) Draining() bool { return l.draining.Load() }

// Kept returns the shards kept alive through a store outage, shard →
// epoch: their leases lapsed while the store did not answer. The worker
// beats what it registered for them (light beats only: nothing registered,
// nothing deregistered) until the store answers again; then each is owned
// again (Owned, same epoch) or gone (moved meanwhile). Empty while the
// store answers.
func (l *Lessor) Kept() map[int]uint64 {
	o := l.own.Load()
	out := make(map[int]uint64)
	for sh, ep := range o.keep {
		if ep != 0 {
			out[sh] = ep
		}
	}
	return out
}

// StoreDownSince returns when the store stopped answering the lessor, or
// the zero time while it answers.
func (l *Lessor) StoreDownSince() time.Time { return l.own.Load().downSince }

func heldOf(o *ownership) map[int]uint64 {
	out := make(map[int]uint64)
	for sh, ep := range o.epoch {
		if ep != 0 {
			out[sh] = ep
		}
	}
	return out
}

// publish installs next and signals if the held set differs from prev.
func (l *Lessor) publish(next, prev *ownership) {
	l.own.Store(next)
	n, k := 0, 0
	diff := false
	for sh := range next.epoch {
		if next.epoch[sh] != prev.epoch[sh] || next.keep[sh] != prev.keep[sh] {
			diff = true
		}
		if next.epoch[sh] != 0 {
			n++
		}
		if next.keep[sh] != 0 {
			k++
		}
	}
	l.metrics.owned.Set(float64(n))
	l.metrics.kept.Set(float64(k))
	if diff {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}

func (l *Lessor) run(ctx context.Context) {
	defer close(l.done)
	backoff := l.cfg.RenewInterval
	for !l.registered {
		if err := l.register(ctx); err != nil {
			l.noteErr("register", err)
			backoff = min(backoff*2, 30*time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff/2 + time.Duration(l.rng.Int64N(int64(backoff/2)+1))):
			}
		}
	}
	renew := time.NewTicker(l.cfg.RenewInterval)
	defer renew.Stop()
	beat := time.NewTicker(l.cfg.HeartbeatInterval)
	defer beat.Stop()
	l.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			l.tick(ctx)
		case <-beat.C:
			l.heartbeat(ctx)
		}
	}
}

func (l *Lessor) register(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, l.cfg.TTL)
	defer cancel()
	if err := l.st.EnsureShards(qctx, l.cfg.Shards); err != nil {
		return err
	}
	if err := l.st.RegisterWorker(qctx, l.cfg.WorkerID, l.cfg.Address, l.cfg.Version); err != nil {
		return err
	}
	l.registered = true
	l.log.Info("worker registered", "shards", l.cfg.Shards, "renew", l.cfg.RenewInterval, "ttl", l.cfg.TTL)
	return nil
}

func (l *Lessor) heartbeat(ctx context.Context) {
	if l.drained {
		return // counted out on purpose (SetDraining)
	}
	if l.schemaBad {
		return // the store is treated as unreachable: others may take the shards
	}
	qctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/4)
	defer cancel()
	var err error
	if l.cfg.Generation != nil {
		err = l.st.HeartbeatWorkerGeneration(qctx, l.cfg.WorkerID, l.cfg.Generation())
	} else {
		err = l.st.HeartbeatWorker(qctx, l.cfg.WorkerID)
	}
	if errors.Is(err, ErrNotFound) {
		err = l.st.RegisterWorker(qctx, l.cfg.WorkerID, l.cfg.Address, l.cfg.Version)
	}
	if err != nil {
		l.noteErr("heartbeat", err)
	}
}

// noteErr logs an error once per distinct message (a database outage
// would otherwise log every tick) and marks the store unreachable.
func (l *Lessor) noteErr(op string, err error) {
	msg := op + ": " + err.Error()
	if msg != l.lastErr {
		l.log.Warn("store error; retrying", "op", op, "err", err)
		l.lastErr = msg
	}
	if l.downSince.IsZero() {
		l.downSince = time.Now()
		l.metrics.reachable.Set(0)
		l.metrics.outages.Inc()
	}
}

// noteOK marks the store reachable: a statement it answered proves it.
func (l *Lessor) noteOK() {
	if l.lastErr != "" {
		l.log.Info("store reachable again")
		l.lastErr = ""
	}
	if !l.downSince.IsZero() {
		if l.keptLog {
			l.log.Info("store outage over", "lasted", time.Since(l.downSince).Round(time.Millisecond))
		}
		l.downSince = time.Time{}
		l.keptLog = false
		l.metrics.reachable.Set(1)
	}
}

// tick renews what is held, then moves toward ceil(shards / live workers):
// releasing extras or acquiring free and expired shards. Only the loop
// goroutine calls it (and tests, on a lessor that was not started).
func (l *Lessor) tick(ctx context.Context) {
	// The bound only keeps the loop alive when the database hangs: safety
	// comes from the send times, not from this deadline.
	ctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/2)
	defer cancel()
	prev := l.own.Load()
	next := prev.clone()
	defer func() {
		next.downSince = l.downSince
		l.publish(next, prev)
	}()

	// 0. The schema, now and then and at every tick while it differs or
	// the store is down (it may come back restored or migrated): a
	// changed schema is an outage (the keep-alive below), not a reason to
	// act on statements this process may misread.
	usable := true
	if l.schemaBad || !l.downSince.IsZero() || time.Since(l.schemaAt) >= l.cfg.SchemaCheckInterval {
		usable = l.checkSchema(ctx)
	}

	// 1. Whatever lapsed locally is gone: regaining it takes a new epoch.
	// Unless the store is unreachable: then it is kept (beat-only) until
	// the store can say whether it is still ours.
	now := time.Now()
	held := make(map[int]uint64)
	lapsed := 0
	for sh, ep := range next.epoch {
		if ep == 0 {
			continue
		}
		if !now.Before(next.until[sh]) {
			next.epoch[sh], next.until[sh] = 0, time.Time{}
			if !l.downSince.IsZero() {
				next.keep[sh] = ep
				lapsed++
				continue
			}
			l.metrics.lost.Inc()
			l.log.Warn("lease lapsed before renewal", "shard", sh, "epoch", ep)
			continue
		}
		held[sh] = ep
	}
	kept := make(map[int]uint64)
	for sh, ep := range next.keep {
		if ep != 0 {
			kept[sh] = ep
		}
	}
	if lapsed > 0 && !l.keptLog {
		l.keptLog = true
		l.log.Warn("store unreachable: leases lapsed; keeping the last owned shards alive with light beats only "+
			"(no registration, no deregistration) until the store answers",
			"kept", len(kept), "down_since", l.downSince.Format(time.RFC3339), "cap", l.cfg.OutageKeep)
	}
	if len(kept) > 0 && l.cfg.OutageKeep > 0 && !l.downSince.IsZero() && now.Sub(l.downSince) > l.cfg.OutageKeep {
		l.log.Error("store outage longer than the keep-alive cap: no longer beating the kept shards; their instances expire",
			"kept", len(kept), "cap", l.cfg.OutageKeep)
		for sh := range kept {
			next.keep[sh] = 0
			l.metrics.lost.Inc()
		}
		kept = map[int]uint64{}
	}

	if !usable {
		return
	}

	// 2. Renew in one statement, the kept leases with the held ones.
	if len(held)+len(kept) > 0 {
		all := make(map[int]uint64, len(held)+len(kept))
		for sh, ep := range held {
			all[sh] = ep
		}
		for sh, ep := range kept {
			all[sh] = ep
		}
		sent := time.Now()
		renewed, err := l.st.RenewLeases(ctx, l.cfg.WorkerID, all, l.cfg.TTL)
		if err != nil {
			l.metrics.renewals.WithLabelValues("error").Inc()
			l.noteErr("renew", err)
			return
		}
		l.metrics.renewals.WithLabelValues("ok").Inc()
		l.noteOK()
		until := sent.Add(l.cfg.TTL - l.cfg.SafetyMargin)
		back, moved := 0, 0
		for sh, ep := range all {
			_, wasKept := kept[sh]
			next.keep[sh] = 0
			if _, ok := renewed[sh]; ok {
				next.epoch[sh], next.until[sh] = ep, until
				held[sh] = ep
				if wasKept {
					back++
				}
				continue
			}
			next.epoch[sh], next.until[sh] = 0, time.Time{}
			delete(held, sh)
			l.metrics.lost.Inc()
			if wasKept {
				moved++
				continue
			}
			l.log.Warn("lease lost", "shard", sh, "epoch", ep)
		}
		if len(kept) > 0 {
			// The outage lapsed leases: the other workers' leases lapsed
			// too, so give them a TTL to renew before stealing.
			l.upAt = time.Now()
			l.log.Info("store answers again: kept shards confirmed or dropped", "confirmed", back, "moved", moved)
		}
	}

	// 3. Balance.
	live, err := l.st.LiveWorkerIDs(ctx, l.cfg.TTL)
	if err != nil {
		l.noteErr("live workers", err)
		return
	}
	l.noteOK()
	others := 0
	for _, id := range live {
		if id != l.cfg.WorkerID {
			others++
		}
	}
	if l.draining.Load() {
		if others > 0 {
			if len(held) > 0 {
				l.log.Warn("draining: giving every shard up to the other live workers", "shards", len(held), "others", others)
				l.releaseExtras(ctx, next, held, len(held))
			}
			if !l.drained {
				if err := l.st.DeleteWorker(ctx, l.cfg.WorkerID); err != nil {
					l.noteErr("drain", err)
					return
				}
				l.drained = true
			}
			return
		}
		if !l.drainLog {
			l.drainLog = true
			l.log.Warn("draining requested but no other live worker: keeping the shards")
		}
	} else {
		l.drainLog = false
	}
	if l.drained {
		// Taking a share again (draining over, or no one else is left).
		if err := l.st.RegisterWorker(ctx, l.cfg.WorkerID, l.cfg.Address, l.cfg.Version); err != nil {
			l.noteErr("register", err)
			return
		}
		l.drained = false
	}
	n := len(live)
	if !contains(live, l.cfg.WorkerID) {
		n++
	}
	target := (l.cfg.Shards + n - 1) / n
	if len(held) > target {
		l.releaseExtras(ctx, next, held, len(held)-target)
		return
	}
	if len(held) == target {
		return
	}
	sent := time.Now()
	rows, nowMS, err := l.st.listLeases(ctx)
	if err != nil {
		l.noteErr("list leases", err)
		return
	}
	l.clockJump(sent, time.UnixMilli(nowMS))
	// Right after an outage the other workers may not have renewed yet:
	// take only free leases (and ours) for one TTL, not expired ones.
	stealOK := l.upAt.IsZero() || time.Since(l.upAt) >= l.cfg.TTL
	var free []leaseRow
	for _, r := range rows {
		if r.Shard >= l.cfg.Shards {
			continue
		}
		if _, mine := held[r.Shard]; mine {
			continue
		}
		if r.Owner == "" || r.Owner == l.cfg.WorkerID || (stealOK && r.ExpiresAtMS < nowMS) {
			free = append(free, r)
		}
	}
	// Prefer the shards this worker wins by rendezvous hashing among the
	// live workers: workers taking over at the same moment then mostly
	// want different shards and do not lose rounds to each other.
	if !contains(live, l.cfg.WorkerID) {
		live = append(live, l.cfg.WorkerID)
	}
	l.rng.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	won := func(sh int) bool { return hrwWinner(live, sh) == l.cfg.WorkerID }
	sort.SliceStable(free, func(i, j int) bool { return won(free[i].Shard) && !won(free[j].Shard) })
	want := make(map[int]uint64)
	for _, r := range free[:min(len(free), target-len(held))] {
		want[r.Shard] = uint64(r.Epoch)
	}
	if len(want) > 0 {
		sent = time.Now()
		got, err := l.st.AcquireLeases(ctx, l.cfg.WorkerID, want, l.cfg.TTL)
		if err != nil {
			l.noteErr("acquire", err)
			return
		}
		until := sent.Add(l.cfg.TTL - l.cfg.SafetyMargin)
		for sh, ep := range got {
			held[sh] = ep
			next.epoch[sh], next.until[sh] = ep, until
		}
		l.metrics.acquired.Add(float64(len(got)))
	}
}

// releaseExtras stops acting on k shards (published first), then frees
// them in the database. The highest shard numbers go, so that the choice is
// stable across ticks.
func (l *Lessor) releaseExtras(ctx context.Context, next *ownership, held map[int]uint64, k int) {
	shards := make([]int, 0, len(held))
	for sh := range held {
		shards = append(shards, sh)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(shards)))
	give := make(map[int]uint64, k)
	for _, sh := range shards[:k] {
		give[sh] = held[sh]
		delete(held, sh)
		next.epoch[sh], next.until[sh] = 0, time.Time{}
	}
	// Stop acting before the database lets anyone else in.
	prev := l.own.Load()
	snap := next.clone()
	l.publish(snap, prev)
	if err := l.st.ReleaseLeases(ctx, l.cfg.WorkerID, give); err != nil {
		l.noteErr("release", err)
		return
	}
	l.metrics.released.Add(float64(len(give)))
	l.log.Debug("released extra shards", "count", len(give), "keep", len(held))
}

// hrwWinner is the worker with the highest rendezvous score for shard.
func hrwWinner(ids []string, shard int) string {
	var best string
	var bestScore uint64
	for _, id := range ids {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		_, _ = h.Write([]byte{byte(shard >> 8), byte(shard)})
		if sc := h.Sum64(); best == "" || sc > bestScore {
			best, bestScore = id, sc
		}
	}
	return best
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// checkSchema reads the schema version and samples the clock; false means
// the store is not to be used this tick (unreachable, or another schema).
func (l *Lessor) checkSchema(ctx context.Context) bool {
	sent := time.Now()
	dbNow, err := l.st.CheckSchema(ctx)
	l.schemaAt = time.Now()
	switch {
	case errors.Is(err, ErrSchemaChanged):
		if !l.schemaBad {
			l.schemaBad = true
			l.metrics.schemaChanged.Set(1)
			l.log.Error("store schema changed under this worker: treating the store as unreachable "+
				"(owned shards kept alive with light beats only, no registration, no deregistration, no heartbeat so "+
				"that workers that know the schema take the shards over)", "err", err)
		}
		l.noteErr("schema", err)
		return false
	case err != nil:
		l.noteErr("schema", err)
		return false
	}
	if l.schemaBad {
		l.schemaBad = false
		l.metrics.schemaChanged.Set(0)
		l.log.Info("store schema is this process's again: leases resume")
	}
	l.clockJump(sent, dbNow)
	return true
}

// clockSample pairs a reading of the database's clock with this process's
// monotonic clock.
type clockSample struct {
	db    time.Time // the database's clock (wall)
	local time.Time // time.Now() when the statement was sent (monotonic)
}

// clockJump compares a new reading of the database's clock (taken by a
// statement sent at sent) with the last one: the database's clock should
// have moved as far as the monotonic clock, give or take the statements'
// round trips. A jump of more than a TTL is logged and counted; after a
// forward jump every lease looks expired and every worker dead, so for
// one TTL no expired lease is taken (as after an outage): the owners
// renew against the new clock first. A backward jump makes leases live
// longer by the jump; a crashed worker's shards then wait that much
// longer, which only an operator can shorten (the log says so).
func (l *Lessor) clockJump(sent, dbNow time.Time) {
	prev := l.clock
	l.clock = clockSample{db: dbNow, local: sent}
	if prev.local.IsZero() {
		return
	}
	skew := dbNow.Sub(prev.db) - sent.Sub(prev.local)
	if skew.Abs() <= l.cfg.TTL {
		return
	}
	l.metrics.clockJumps.Inc()
	if skew > 0 {
		l.upAt = time.Now()
		l.log.Error("the store's clock jumped forward: every lease looks expired; taking no expired lease for one TTL so that owners renew first",
			"jump", skew.Round(time.Millisecond), "ttl", l.cfg.TTL)
		return
	}
	l.log.Error("the store's clock jumped backward: leases last longer by the jump, so a crashed worker's shards wait that much longer "+
		"for a successor (fix the database host's clock)", "jump", skew.Round(time.Millisecond), "ttl", l.cfg.TTL)
}

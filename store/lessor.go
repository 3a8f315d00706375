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
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the lessor's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultLessorConfig returns the defaults: 256 shards, renew every 2 s,
// expire after 10 s, heartbeat every second, stop acting 1 s early.
func DefaultLessorConfig(workerID string) LessorConfig {
	return LessorConfig{
		WorkerID:          workerID,
		Shards:            DefaultShards,
		RenewInterval:     2 * time.Second,
		TTL:               10 * time.Second,
		HeartbeatInterval: time.Second,
		SafetyMargin:      time.Second,
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
	case c.TTL < 2*c.RenewInterval+c.SafetyMargin:
		return fmt.Errorf("%w LessorConfig.TTL %v: want >= 2*RenewInterval + SafetyMargin (%v)", ErrInvalid, c.TTL, 2*c.RenewInterval+c.SafetyMargin)
	case c.TTL.Milliseconds() < 1:
		return fmt.Errorf("%w LessorConfig.TTL %v", ErrInvalid, c.TTL)
	}
	return nil
}

// ownership is an immutable snapshot of what this worker holds. A shard is
// owned at time t iff epoch[shard] != 0 and t is before until[shard].
type ownership struct {
	epoch []uint64    // by shard; 0 = not held
	until []time.Time // local monotonic deadline of each held lease
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
	l.own.Store(&ownership{epoch: make([]uint64, cfg.Shards), until: make([]time.Time, cfg.Shards)})
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
	l.publish(&ownership{epoch: make([]uint64, l.cfg.Shards), until: make([]time.Time, l.cfg.Shards)}, old)
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
	n := 0
	diff := false
	for sh := range next.epoch {
		if next.epoch[sh] != prev.epoch[sh] {
			diff = true
		}
		if next.epoch[sh] != 0 {
			n++
		}
	}
	l.metrics.owned.Set(float64(n))
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
	qctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/4)
	defer cancel()
	err := l.st.HeartbeatWorker(qctx, l.cfg.WorkerID)
	if errors.Is(err, ErrNotFound) {
		err = l.st.RegisterWorker(qctx, l.cfg.WorkerID, l.cfg.Address, l.cfg.Version)
	}
	if err != nil {
		l.noteErr("heartbeat", err)
	}
}

// noteErr logs an error once per distinct message (a database outage
// would otherwise log every tick).
func (l *Lessor) noteErr(op string, err error) {
	msg := op + ": " + err.Error()
	if msg != l.lastErr {
		l.log.Warn("store error; retrying", "op", op, "err", err)
		l.lastErr = msg
	}
}

func (l *Lessor) noteOK() {
	if l.lastErr != "" {
		l.log.Info("store reachable again")
		l.lastErr = ""
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
	next := &ownership{epoch: append([]uint64(nil), prev.epoch...), until: append([]time.Time(nil), prev.until...)}
	defer func() { l.publish(next, prev) }()

	// 1. Whatever lapsed locally is gone: regaining it takes a new epoch.
	now := time.Now()
	held := make(map[int]uint64)
	for sh, ep := range next.epoch {
		if ep == 0 {
			continue
		}
		if !now.Before(next.until[sh]) {
			next.epoch[sh], next.until[sh] = 0, time.Time{}
			l.metrics.lost.Inc()
			l.log.Warn("lease lapsed before renewal", "shard", sh, "epoch", ep)
			continue
		}
		held[sh] = ep
	}

	// 2. Renew in one statement.
	if len(held) > 0 {
		sent := time.Now()
		renewed, err := l.st.RenewLeases(ctx, l.cfg.WorkerID, held, l.cfg.TTL)
		if err != nil {
			l.metrics.renewals.WithLabelValues("error").Inc()
			l.noteErr("renew", err)
			return
		}
		l.metrics.renewals.WithLabelValues("ok").Inc()
		until := sent.Add(l.cfg.TTL - l.cfg.SafetyMargin)
		for sh, ep := range held {
			if _, ok := renewed[sh]; ok {
				next.until[sh] = until
				continue
			}
			next.epoch[sh], next.until[sh] = 0, time.Time{}
			delete(held, sh)
			l.metrics.lost.Inc()
			l.log.Warn("lease lost", "shard", sh, "epoch", ep)
		}
	}

	// 3. Balance.
	live, err := l.st.LiveWorkerIDs(ctx, l.cfg.TTL)
	if err != nil {
		l.noteErr("live workers", err)
		return
	}
	n := len(live)
	if !contains(live, l.cfg.WorkerID) {
		n++
	}
	target := (l.cfg.Shards + n - 1) / n
	if len(held) > target {
		l.releaseExtras(ctx, next, held, len(held)-target)
		l.noteOK()
		return
	}
	if len(held) == target {
		l.noteOK()
		return
	}
	rows, nowMS, err := l.st.listLeases(ctx)
	if err != nil {
		l.noteErr("list leases", err)
		return
	}
	var free []leaseRow
	for _, r := range rows {
		if r.Shard >= l.cfg.Shards {
			continue
		}
		if _, mine := held[r.Shard]; mine {
			continue
		}
		if r.Owner == "" || r.Owner == l.cfg.WorkerID || r.ExpiresAtMS < nowMS {
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
		sent := time.Now()
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
	l.noteOK()
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
	snap := &ownership{epoch: append([]uint64(nil), next.epoch...), until: append([]time.Time(nil), next.until...)}
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

package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// RetentionConfig says what is pruned and when.
type RetentionConfig struct {
	// Schedule is a cron spec (5 fields, or @every 10m, @hourly...).
	Schedule string
	// EventMaxAge: events older than this (database clock) are deleted.
	EventMaxAge time.Duration
	// WorkerDeadFor: worker rows silent this long are deleted, with their
	// task status and count rows.
	WorkerDeadFor time.Duration
	// MetricsMaxAge: metric history minutes older than this (by the
	// database's clock) are deleted; 0 means 7 days.
	MetricsMaxAge time.Duration
	// CommandsExpiredFor: commands expired this long are deleted with
	// their acks; 0 means 7 days.
	CommandsExpiredFor time.Duration
	// RunTimeout bounds one run.
	RunTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultRetentionConfig keeps 30 days of events, 7 days of metric
// history and expired commands, and forgets workers dead for a day,
// checking every 10 minutes.
func DefaultRetentionConfig() RetentionConfig {
	return RetentionConfig{
		Schedule:           "@every 10m",
		EventMaxAge:        30 * 24 * time.Hour,
		WorkerDeadFor:      24 * time.Hour,
		MetricsMaxAge:      7 * 24 * time.Hour,
		CommandsExpiredFor: 7 * 24 * time.Hour,
		RunTimeout:         5 * time.Minute,
	}
}

// Validate names the first bad field.
func (c RetentionConfig) Validate() error {
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		return fmt.Errorf("%w RetentionConfig.Schedule %q: %v", ErrInvalid, c.Schedule, err)
	}
	switch {
	case c.EventMaxAge <= 0:
		return fmt.Errorf("%w RetentionConfig.EventMaxAge %v", ErrInvalid, c.EventMaxAge)
	case c.WorkerDeadFor <= 0:
		return fmt.Errorf("%w RetentionConfig.WorkerDeadFor %v", ErrInvalid, c.WorkerDeadFor)
	case c.RunTimeout <= 0:
		return fmt.Errorf("%w RetentionConfig.RunTimeout %v", ErrInvalid, c.RunTimeout)
	case c.MetricsMaxAge < 0:
		return fmt.Errorf("%w RetentionConfig.MetricsMaxAge %v", ErrInvalid, c.MetricsMaxAge)
	case c.CommandsExpiredFor < 0:
		return fmt.Errorf("%w RetentionConfig.CommandsExpiredFor %v", ErrInvalid, c.CommandsExpiredFor)
	}
	return nil
}

// Retention prunes old events and dead workers on a cron schedule. Several
// workers may run it at once: the deletes are idempotent.
type Retention struct {
	cfg  RetentionConfig
	st   *Store
	log  *slog.Logger
	cron *cron.Cron

	ctx    context.Context // cancelled by Stop: aborts a running prune
	cancel context.CancelFunc

	mu      sync.Mutex // guards started, stopped
	started bool
	stopped bool
}

// NewRetention validates cfg.
func NewRetention(st *Store, cfg RetentionConfig) (*Retention, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MetricsMaxAge == 0 {
		cfg.MetricsMaxAge = 7 * 24 * time.Hour
	}
	if cfg.CommandsExpiredFor == 0 {
		cfg.CommandsExpiredFor = 7 * 24 * time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Retention{cfg: cfg, st: st, log: log.With("component", "retention")}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.cron = cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)), cron.WithLogger(cron.DiscardLogger))
	if _, err := r.cron.AddFunc(cfg.Schedule, func() {
		ctx, cancel := context.WithTimeout(r.ctx, cfg.RunTimeout)
		defer cancel()
		if _, _, err := r.RunOnce(ctx); err != nil {
			r.log.Warn("prune failed", "err", err)
		}
	}); err != nil {
		return nil, fmt.Errorf("%w RetentionConfig.Schedule %q: %v", ErrInvalid, cfg.Schedule, err)
	}
	return r, nil
}

// Start schedules the job; it does not block.
func (r *Retention) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return
	}
	r.started = true
	r.cron.Start()
}

// Stop unschedules the job, cancels a running prune and waits for it,
// bounded by ctx. Idempotent.
func (r *Retention) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	select {
	case <-r.cron.Stop().Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RunOnce prunes now, by the database's clock: events older than
// EventMaxAge; workers dead, and task status and count rows not rewritten,
// for WorkerDeadFor; metric minutes older than MetricsMaxAge; commands
// expired for CommandsExpiredFor. It returns the events and workers pruned.
func (r *Retention) RunOnce(ctx context.Context) (events, workers int64, err error) {
	now, err := r.st.Now(ctx)
	if err != nil {
		return 0, 0, err
	}
	if events, err = r.st.PruneEvents(ctx, now.Add(-r.cfg.EventMaxAge)); err != nil {
		return events, 0, err
	}
	if workers, err = r.st.PruneWorkers(ctx, r.cfg.WorkerDeadFor); err != nil {
		return events, workers, err
	}
	// Task status rows of workers that stopped writing go with them.
	if _, err = r.st.PruneTaskStatuses(ctx, r.cfg.WorkerDeadFor); err != nil {
		return events, workers, err
	}
	if _, err = r.st.PruneCounts(ctx, r.cfg.WorkerDeadFor); err != nil {
		return events, workers, err
	}
	if _, err = r.st.PruneMetricMinutes(ctx, now.Add(-r.cfg.MetricsMaxAge)); err != nil {
		return events, workers, err
	}
	if _, err = r.st.PruneCommands(ctx, r.cfg.CommandsExpiredFor); err != nil {
		return events, workers, err
	}
	if events > 0 || workers > 0 {
		r.log.Info("pruned", "events", events, "workers", workers)
	}
	return events, workers, nil
}

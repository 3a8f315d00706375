package distro

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// Registry is the local naming core the runner applies into
// (*naming.Registry implements it).
type Registry interface {
	Source
	ApplyClient(cd naming.ClientData) (bool, error)
	DropClient(id string)
	SetClientOwner(id, owner string) bool
	OnClientChange(fn func(id string))
}

// SendFunc delivers a message to a peer and returns when the peer took it
// (the cluster transport; bounded by ctx).
type SendFunc func(ctx context.Context, to string, m Message) error

// Runner is the engine's adapter: the registry's client hook, a ticker,
// received messages and membership changes go in; operations are applied
// to the registry and messages sent, each in its own goroutine. Lifecycle:
// New… validates, Start does not block, Stop(ctx) is idempotent.
//
// Locking: opMu serialises "compute operations, then apply them", so they
// reach the registry in the engine's order; engMu guards the engine and
// is never held while the registry runs (its hook takes engMu).
type Runner struct {
	self   string
	reg    Registry
	mapper *Mapper
	send   SendFunc
	log    *slog.Logger
	tick   time.Duration
	now    func() time.Time

	opMu  sync.Mutex
	engMu sync.Mutex
	eng   *Engine

	wg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewRunner builds the engine of member self over reg and hooks it to
// reg's client changes. tick is how often the engine's time advances.
func NewRunner(cfg Config, self string, members []string, reg Registry, send SendFunc, tick time.Duration, logger *slog.Logger) (*Runner, error) {
	eng, err := New(cfg, self, members, reg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{self: self, reg: reg, mapper: NewMapper(self, members), send: send, log: logger.With("subsystem", "distro"),
		tick: tick, now: time.Now, eng: eng, stop: make(chan struct{}), ctx: ctx, cancel: cancel}
	reg.OnClientChange(func(id string) {
		r.engMu.Lock()
		r.eng.ClientChanged(id, r.now())
		r.engMu.Unlock()
	})
	return r, nil
}

// Mapper is who is responsible for beat-kept clients (for the APIs).
func (r *Runner) Mapper() *Mapper { return r.mapper }

// CanRemove gates expiry: false while this member sees no majority.
func (r *Runner) CanRemove() bool {
	r.engMu.Lock()
	defer r.engMu.Unlock()
	return r.eng.CanRemove()
}

// Start runs the ticker.
func (r *Runner) Start() error {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.tick)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.run(func(e *Engine) ([]Op, []Envelope) { return e.Tick(r.now()) })
			}
		}
	}()
	return nil
}

// Stop ends the ticker and waits (until ctx ends) for sends in flight.
func (r *Runner) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop); r.cancel() })
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MembersChanged tells the engine and the mapper the serving members.
func (r *Runner) MembersChanged(serving []string) {
	r.run(func(e *Engine) ([]Op, []Envelope) {
		r.mapper.Set(serving)
		return e.MembersChanged(serving, r.now()), nil
	})
}

// SetMembers tells the engine a new member list (run-time membership
// change) and the serving members; the mapper follows serving.
func (r *Runner) SetMembers(members, serving []string) error {
	var err error
	r.run(func(e *Engine) ([]Op, []Envelope) {
		var ops []Op
		if ops, err = e.SetMembers(members, serving, r.now()); err != nil {
			return nil, nil
		}
		r.mapper.Set(e.Serving())
		return ops, nil
	})
	return err
}

// Receive handles a message from peer from (the cluster route).
func (r *Runner) Receive(from string, m Message) {
	r.run(func(e *Engine) ([]Op, []Envelope) { return e.Receive(from, m, r.now()) })
}

// run computes under the engine lock, then applies and sends in order.
func (r *Runner) run(step func(*Engine) ([]Op, []Envelope)) {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.engMu.Lock()
	ops, envs := step(r.eng)
	r.engMu.Unlock()
	for _, op := range ops {
		switch op.Kind {
		case OpApply:
			if _, err := r.reg.ApplyClient(op.Client); err != nil {
				r.log.Warn("peer's client not applied", "client", op.Client.ID, "owner", op.Client.Owner, "err", err)
			}
		case OpDrop:
			r.reg.DropClient(op.ID)
		case OpOwn:
			r.reg.SetClientOwner(op.ID, op.Owner)
		}
	}
	for _, env := range envs {
		select {
		case <-r.stop:
			return
		default:
		}
		r.wg.Add(1)
		go func(env Envelope) {
			defer r.wg.Done()
			err := r.send(r.ctx, env.To, env.Msg)
			if err != nil {
				r.log.Debug("distro send", "to", env.To, "err", err)
			}
			if env.Msg.Kind == MsgSync {
				r.engMu.Lock()
				r.eng.SyncDone(env.To, err == nil, r.now())
				r.engMu.Unlock()
			}
		}(env)
	}
}

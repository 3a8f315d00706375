// Package health probes persistent instances over TCP, as Nacos' default
// cluster checker does: a connect within ConnectTimeout is a success; a
// status flips only after Threshold consecutive opposite results. Results
// go to the naming view (SetHealth); instances are never deleted.
//
// The per-instance logic is a deterministic state machine (state.observe);
// the loop, the dialer and the clock sit at the edge and are injectable.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// ErrConfig: a Config field or a required dependency is invalid.
var ErrConfig = errors.New("health: invalid config")

// Config tunes the prober. Defaults are Nacos': checks every 5 s, 500 ms
// connect timeout, 3 consecutive results to flip.
type Config struct {
	// Interval between the starts of two probe rounds (a round that runs
	// longer delays the next one).
	Interval time.Duration
	// ConnectTimeout bounds one TCP connect.
	ConnectTimeout time.Duration
	// Threshold is how many consecutive failures mark an instance
	// unhealthy, and consecutive successes mark it healthy again.
	Threshold int
	// Concurrency bounds the probes in flight.
	Concurrency int
}

// DefaultConfig returns Nacos' values and 64 probes in flight.
func DefaultConfig() Config {
	return Config{Interval: 5 * time.Second, ConnectTimeout: 500 * time.Millisecond, Threshold: 3, Concurrency: 64}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("%w: Interval must be > 0", ErrConfig)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("%w: ConnectTimeout must be > 0", ErrConfig)
	case c.Threshold < 1:
		return fmt.Errorf("%w: Threshold must be >= 1", ErrConfig)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency must be >= 1", ErrConfig)
	}
	return nil
}

// Targets lists the persistent instances to probe (*raftstore.Store
// implements it). Called once per round from the prober's goroutine.
type Targets interface {
	AllInstances() []raftstore.Keyed
}

// Reporter receives probed health (*naming.Registry implements it). Called
// from probe rounds (one round at a time, never concurrently) when an
// instance's status flips, and again every round while the probed status
// differs from the registered one (a re-registration through Raft may have
// reset the naming view): calls can repeat and must be idempotent.
type Reporter interface {
	SetHealth(key naming.ServiceKey, a naming.Addr, healthy bool)
}

// Dialer opens TCP connections (*net.Dialer implements it).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Clock schedules rounds.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Deps are the prober's collaborators. Targets and Reporter are required.
type Deps struct {
	Targets  Targets
	Reporter Reporter
	// Dialer defaults to a net.Dialer.
	Dialer Dialer
	// Clock defaults to the real clock.
	Clock Clock
	// Active, when set, gates rounds: the prober only probes while it
	// returns true (leader-only work: pass the Raft store's Ready).
	Active func() bool
}

// state is one instance's health state machine.
type state struct {
	healthy bool
	okRun   int // consecutive successes while unhealthy
	failRun int // consecutive failures while healthy
}

// observe applies one probe result and reports whether the status flipped.
func (s *state) observe(ok bool, threshold int) bool {
	if ok {
		s.failRun = 0
		if s.healthy {
			return false
		}
		s.okRun++
		if s.okRun >= threshold {
			s.healthy, s.okRun = true, 0
			return true
		}
		return false
	}
	s.okRun = 0
	if !s.healthy {
		return false
	}
	s.failRun++
	if s.failRun >= threshold {
		s.healthy, s.failRun = false, 0
		return true
	}
	return false
}

type target struct {
	key  naming.ServiceKey
	addr naming.Addr
}

type probeTarget struct {
	target
	registered bool // the Healthy stored with the instance
}

// Prober runs probe rounds. Start begins the loop; Round runs one round
// synchronously (tests, or a caller that owns the schedule).
type Prober struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	roundMu sync.Mutex // one round at a time; guards states
	states  map[target]*state

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	cancel    context.CancelFunc
	ctx       context.Context
}

// New validates cfg and deps. reg may be nil.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) (*Prober, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Targets == nil || deps.Reporter == nil {
		return nil, fmt.Errorf("%w: Deps.Targets and Deps.Reporter are required", ErrConfig)
	}
	if deps.Dialer == nil {
		deps.Dialer = &net.Dialer{}
	}
	if deps.Clock == nil {
		deps.Clock = realClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("health: metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Prober{
		cfg: cfg, deps: deps, log: logger.With("subsystem", "health"), metrics: m,
		states: map[target]*state{}, stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}, nil
}

// Start runs rounds every Interval in a goroutine. It does not block.
func (p *Prober) Start() {
	p.startOnce.Do(func() {
		go p.loop()
	})
}

func (p *Prober) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.deps.Clock.After(p.cfg.Interval):
		}
		if p.deps.Active != nil && !p.deps.Active() {
			continue
		}
		p.Round(p.ctx)
	}
}

// Stop ends the loop, cancelling probes in flight; idempotent, bounded by
// ConnectTimeout.
func (p *Prober) Stop() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.cancel()
		p.startOnce.Do(func() { close(p.done) }) // never started
		<-p.done
	})
}

// Round probes every current target once (at most Concurrency at a time),
// applies the results and reports flips. States of targets that vanished
// are dropped; new targets start from their registered health.
func (p *Prober) Round(ctx context.Context) {
	p.roundMu.Lock()
	defer p.roundMu.Unlock()
	start := time.Now()
	all := p.deps.Targets.AllInstances()
	seen := make(map[target]bool, len(all))
	list := make([]probeTarget, 0, len(all))
	for _, k := range all {
		a := naming.Addr{IP: k.Instance.IP, Port: k.Instance.Port, Cluster: k.Instance.Cluster}
		if a.Cluster == "" {
			a.Cluster = naming.DefaultCluster
		}
		t := target{key: k.Key, addr: a}
		if seen[t] {
			continue
		}
		seen[t] = true
		list = append(list, probeTarget{target: t, registered: k.Instance.Healthy})
		if p.states[t] == nil {
			p.states[t] = &state{healthy: k.Instance.Healthy}
		}
	}
	for t := range p.states {
		if !seen[t] {
			delete(p.states, t)
		}
	}

	results := make([]bool, len(list))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, t := range list {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = p.probe(ctx, t.addr)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // cancelled results are not failures
	}
	healthy := 0
	for i, t := range list {
		s := p.states[t.target]
		p.metrics.probed(results[i])
		flipped := s.observe(results[i], p.cfg.Threshold)
		if flipped {
			p.log.Info("health changed", "service", t.key.Grouped(), "namespace", t.key.Namespace,
				"addr", net.JoinHostPort(t.addr.IP, strconv.Itoa(t.addr.Port)), "healthy", s.healthy)
		}
		if flipped || s.healthy != t.registered {
			p.deps.Reporter.SetHealth(t.key, t.addr, s.healthy)
		}
		if s.healthy {
			healthy++
		}
	}
	p.metrics.round(healthy, len(list)-healthy, time.Since(start))
}

func (p *Prober) probe(ctx context.Context, a naming.Addr) bool {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	c, err := p.deps.Dialer.DialContext(ctx, "tcp", net.JoinHostPort(a.IP, strconv.Itoa(a.Port)))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Healthy reports the prober's current view of one instance (tests,
// debugging); ok is false for an unknown instance.
func (p *Prober) Healthy(key naming.ServiceKey, a naming.Addr) (healthy, ok bool) {
	p.roundMu.Lock()
	defer p.roundMu.Unlock()
	if a.Cluster == "" {
		a.Cluster = naming.DefaultCluster
	}
	s := p.states[target{key: key, addr: a}]
	if s == nil {
		return false, false
	}
	return s.healthy, true
}

package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/grpcapi"
)

// Config tunes the balancer.
type Config struct {
	// Interval is how often the balancer compares the members' counts;
	// 0 turns automatic balancing off (the HTTP routes and the hand-over
	// on stop still work).
	Interval time.Duration
	// StableFor: the balancer acts only once no member changed state for
	// this long (a rolling restart is over, not in progress).
	StableFor time.Duration
	// Factor: a member sheds connections when it holds more than the
	// cluster average by more than this fraction (Nacos' loader factor).
	Factor float64
	// MaxPerRound caps the connections one member moves per Interval, so
	// the targets absorb the reconnects (and their redo) gradually.
	MaxPerRound int
	// MinAge: connections younger than this are never moved (a client
	// just moved is not moved again, so counts settle instead of
	// oscillating).
	MinAge time.Duration
	// Handoff bounds how long a stopping node waits for its clients to
	// leave after telling them where to go (0: it does not hand over).
	Handoff time.Duration
}

// DefaultConfig: compare every 5 s once membership was stable for 30 s,
// shed above average + 10 %, at most 100 connections per round, none
// younger than 30 s; a stopping node waits up to 5 s for its clients to
// move.
func DefaultConfig() Config {
	return Config{Interval: 5 * time.Second, StableFor: 30 * time.Second, Factor: 0.1, MaxPerRound: 100,
		MinAge: 30 * time.Second, Handoff: 5 * time.Second}
}

// ErrConfig is a bad Config.
var ErrConfig = errors.New("loader: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Interval < 0:
		return fmt.Errorf("%w: Interval %v (0: off)", ErrConfig, c.Interval)
	case c.StableFor < 0:
		return fmt.Errorf("%w: StableFor %v", ErrConfig, c.StableFor)
	case c.Factor < 0 || c.Factor > 10:
		return fmt.Errorf("%w: Factor %v: want 0..10", ErrConfig, c.Factor)
	case c.MaxPerRound < 1:
		return fmt.Errorf("%w: MaxPerRound %d: want ≥ 1", ErrConfig, c.MaxPerRound)
	case c.MinAge < 0:
		return fmt.Errorf("%w: MinAge %v", ErrConfig, c.MinAge)
	case c.Handoff < 0:
		return fmt.Errorf("%w: Handoff %v", ErrConfig, c.Handoff)
	}
	return nil
}

// Conns is the node's SDK connection table (grpcapi.Server).
type Conns interface {
	Connections() []grpcapi.ConnInfo
	ResetConnection(ctx context.Context, connID, serverIP string, serverPort int) error
}

// Cluster is what the balancer reads of membership (nil: a single node).
type Cluster interface {
	Self() string
	Members() []string
	Serving() []string
}

// Caller sends a cluster-port request to a member (clusternet.Client).
type Caller interface {
	Call(ctx context.Context, to, path string, in, out any) error
}

// Cluster routes (on the cluster port).
const (
	// CountPath answers this node's connection count.
	CountPath = "/ferry/cluster/v1/loader/count"
	// ShedPath makes this node move connections ([]Move in the body).
	ShedPath = "/ferry/cluster/v1/loader/shed"
)

// Count is one member's load, in Nacos' ServerLoaderInfoResponse terms.
type Count struct {
	SDK int `json:"sdkConCount"`
	All int `json:"conCount"`
}

// Balancer moves this node's connections (see the package doc). New
// validates, Start starts the loop, Stop hands the clients over and stops.
type Balancer struct {
	cfg     Config
	conns   Conns
	cluster Cluster
	caller  Caller
	log     *slog.Logger
	met     *metrics

	lastChange atomic.Int64 // unix ns of the last membership change (or start)
	running    atomic.Bool  // a shed is in progress (one at a time)

	mu       sync.Mutex
	started  bool
	stopped  bool
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New builds a balancer. cluster and caller may be nil (one node: the
// routes answer for this node alone and nothing is balanced).
func New(cfg Config, conns Conns, cluster Cluster, caller Caller, logger *slog.Logger, reg prometheus.Registerer) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conns == nil {
		return nil, fmt.Errorf("%w: no connection table", ErrConfig)
	}
	if (cluster == nil) != (caller == nil) {
		return nil, fmt.Errorf("%w: cluster and caller go together", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	b := &Balancer{cfg: cfg, conns: conns, cluster: cluster, caller: caller, log: logger.With("subsystem", "loader"), met: m,
		stop: make(chan struct{}), done: make(chan struct{})}
	b.lastChange.Store(time.Now().UnixNano())
	return b, nil
}

// MembersChanged restarts the stability clock (membership's OnChange).
func (b *Balancer) MembersChanged() { b.lastChange.Store(time.Now().UnixNano()) }

// Start starts the balancing loop (when clustered and Interval > 0).
func (b *Balancer) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.stopped {
		return errors.New("loader: already started")
	}
	b.started = true
	b.lastChange.Store(time.Now().UnixNano())
	if b.cluster == nil || b.cfg.Interval == 0 {
		close(b.done)
		return nil
	}
	go b.loop()
	return nil
}

// Stop hands this node's clients to the other serving members (each told
// its target, spread evenly), waits up to Handoff for them to leave, and
// stops the loop. Bounded by ctx; idempotent. Call it before the gRPC
// port closes.
func (b *Balancer) Stop(ctx context.Context) error {
	b.mu.Lock()
	started := b.started
	b.stopped = true
	b.mu.Unlock()
	b.stopOnce.Do(func() { close(b.stop) })
	if !started {
		return nil
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.handoff(ctx)
	return nil
}

func (b *Balancer) loop() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Interval)
		go func() { // a stop ends a round in flight
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		b.round(ctx)
		cancel()
	}
}

// round: when membership is stable and every serving member answered,
// shed this node's part of the cluster's plan.
func (b *Balancer) round(ctx context.Context) {
	if time.Since(time.Unix(0, b.lastChange.Load())) < b.cfg.StableFor {
		return
	}
	loads, complete := b.loads(ctx)
	if !complete {
		b.met.rounds.WithLabelValues("incomplete").Inc()
		return
	}
	moves := Plan(loads, b.cluster.Self(), b.cfg.Factor, b.cfg.MaxPerRound)
	if len(moves) == 0 {
		b.met.rounds.WithLabelValues("balanced").Inc()
		return
	}
	b.met.rounds.WithLabelValues("shed").Inc()
	n := 0
	for _, m := range moves {
		n += m.Count
	}
	b.log.Info("connections above the cluster average: moving some to the least loaded members",
		"loads", loads, "moving", n, "moves", moves)
	b.shed(ctx, moves, "balance")
}

// loads asks every serving member (this one locally) for its count;
// complete is false when one did not answer.
func (b *Balancer) loads(ctx context.Context) (map[string]int, bool) {
	self := b.self()
	out := map[string]int{self: b.count().SDK}
	if b.cluster == nil {
		return out, true
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	complete := true
	for _, m := range b.cluster.Serving() {
		if m == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c Count
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := b.caller.Call(cctx, m, CountPath, struct{}{}, &c)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				complete = false
				b.log.Debug("loader: member count", "member", m, "err", err)
				return
			}
			out[m] = c.SDK
		}()
	}
	wg.Wait()
	return out, complete
}

func (b *Balancer) self() string {
	if b.cluster == nil {
		return ""
	}
	return b.cluster.Self()
}

// count is this node's registered connections.
func (b *Balancer) count() Count {
	n := 0
	for _, c := range b.conns.Connections() {
		if c.Registered {
			n++
		}
	}
	return Count{SDK: n, All: n}
}

// movable returns this node's registered connections older than MinAge
// (all of them when all is set), the idlest first.
func (b *Balancer) movable(all bool) []grpcapi.ConnInfo {
	now := time.Now()
	var out []grpcapi.ConnInfo
	for _, c := range b.conns.Connections() {
		if c.Registered && (all || now.Sub(c.CreatedAt) >= b.cfg.MinAge) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastActive.Equal(out[j].LastActive) {
			return out[i].LastActive.Before(out[j].LastActive)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// shed resets connections per moves (to each move's target), the idlest
// first, at most 16 resets in flight; it returns how many clients
// acknowledged. One shed runs at a time; a second is skipped.
func (b *Balancer) shed(ctx context.Context, moves []Move, reason string) int {
	if !b.running.CompareAndSwap(false, true) {
		return 0
	}
	defer b.running.Store(false)
	return b.reset(ctx, b.movable(reason == "handoff"), moves, reason)
}

func (b *Balancer) reset(ctx context.Context, conns []grpcapi.ConnInfo, moves []Move, reason string) int {
	type job struct {
		conn       string
		host       string
		port       int
		targetAddr string
	}
	var jobs []job
	i := 0
	for _, m := range moves {
		host, port := splitTarget(m.Target)
		for k := 0; k < m.Count && i < len(conns); k++ {
			jobs = append(jobs, job{conn: conns[i].ID, host: host, port: port, targetAddr: m.Target})
			i++
		}
	}
	var ok atomic.Int64
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := b.conns.ResetConnection(rctx, j.conn, j.host, j.port)
			cancel()
			if err != nil {
				b.met.moved.WithLabelValues(reason, "error").Inc()
				b.log.Debug("loader: reset", "connectionId", j.conn, "to", j.targetAddr, "err", err)
				return
			}
			ok.Add(1)
			b.met.moved.WithLabelValues(reason, "ok").Inc()
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// splitTarget turns "host:port" (a member's main port) into the host and
// port a ConnectResetRequest carries; an unparsable target yields no
// target (the client picks the next server of its own list).
func splitTarget(addr string) (string, int) {
	if addr == "" {
		return "", 0
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0
	}
	return h, n
}

// handoff tells every client of this stopping node where to go (the other
// serving members, spread evenly) and waits until they left or Handoff
// passes.
func (b *Balancer) handoff(ctx context.Context) {
	if b.cluster == nil || b.cfg.Handoff == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, b.cfg.Handoff)
	defer cancel()
	loads, _ := b.loads(hctx)
	delete(loads, b.self())
	n := b.count().SDK
	if len(loads) == 0 || n == 0 {
		return
	}
	moves := Handoff(loads, n)
	b.log.Info("stopping: handing the clients to the other members", "clients", n, "moves", moves)
	// A concurrent balancing round has ended with the loop; reset directly.
	acked := b.reset(hctx, b.movable(true), moves, "handoff")
	for b.count().SDK > 0 && hctx.Err() == nil {
		select {
		case <-hctx.Done():
		case <-time.After(50 * time.Millisecond): // bounded by Handoff; the clients leave on their own schedule
		}
	}
	b.log.Info("stopping: clients handed over", "told", acked, "still connected", b.count().SDK)
}

type metrics struct {
	rounds *prometheus.CounterVec
	moved  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_registry_balance_rounds_total",
			Help: "Connection balancing rounds by outcome (balanced, shed, incomplete: a member did not answer)."}, []string{"outcome"}),
		moved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_registry_connections_moved_total",
			Help: "Connections told to move to another member (ConnectResetRequest), by reason (balance, manual, handoff) and result."},
			[]string{"reason", "result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rounds, m.moved} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Package configsvc is the registry's Nacos config service, the part Dubbo
// uses as config center and metadata report: configs keyed by (tenant,
// group, dataId) stored through the Raft store, Nacos' validation, CAS
// publish by md5, gRPC listeners per connection with ConfigChangeNotifyRequest
// pushes (grpc.go), and the HTTP open API with its long-polling listener
// (http.go).
package configsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store is the persistent side: the Raft store (raftstore.Store).
type Store interface {
	// PutConfig creates or replaces a config; with checkCAS an existing
	// config is replaced only if its md5 is casMD5 (else ErrCASMismatch).
	PutConfig(k Key, content, typ string, lastModified int64, checkCAS bool, casMD5 string, historyMax int) error
	RemoveConfig(k Key) error
	Config(k Key) (Item, bool)
	ConfigMD5(k Key) string
	ConfigCount() int
	// SetConfigWatcher sets the function told about every changed key.
	SetConfigWatcher(func(Key))
}

// Pusher sends ConfigChangeNotifyRequest to connections and waits for
// their acks. The service calls it from one goroutine per change (and
// spelling of the key), never holding its lock.
type Pusher interface {
	// PushChange tells each of connIDs that k changed, naming it as k is
	// spelt, and waits (at most PushTimeout, or until ctx ends) for the
	// acks. It returns one outcome per connection, in connIDs order; an
	// error wraps ErrGone when the connection no longer exists, ErrPushBusy
	// when its send queue is full, context.DeadlineExceeded when it did not
	// ack in time.
	PushChange(ctx context.Context, k Key, connIDs []string) []PushOutcome
}

// PushOutcome is one connection's result of a push.
type PushOutcome struct {
	Err error
	At  time.Time // when the ack (or the failure) came
}

// ErrGone is a Pusher's error for a connection that no longer exists.
var ErrGone = errors.New("configsvc: connection gone")

// ErrPushBusy is a Pusher's error for a full send queue (retried).
var ErrPushBusy = errors.New("configsvc: connection send queue full")

// Service is the config service. New validates, Start hooks into the
// store's changes, Stop unhooks and waits for pushes in flight
// (idempotent, bounded by its context).
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger
	met   *metrics
	now   func() time.Time

	pusher Pusher // set before Start (ServeGRPC)

	mu      sync.Mutex                   // guards the maps below
	conns   map[string]map[Key]string    // gRPC connection → listened keys → the tenant as the client spelt it
	byKey   map[Key]map[string]struct{}  // key → listening connections
	waiters map[Key]map[*waiter]struct{} // key → long polls
	nGRPC   int                          // (connection, key) pairs
	nPoll   int                          // (long poll, key) pairs
	closed  bool                         // Stop was called: no new pushes

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// waiter is one HTTP long poll.
type waiter struct{ wake chan struct{} }

// New builds the service over store. logger and reg may be nil.
func New(cfg Config, store Store, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, store: store, log: logger, now: time.Now,
		conns: map[string]map[Key]string{}, byKey: map[Key]map[string]struct{}{},
		waiters: map[Key]map[*waiter]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(reg, func() float64 { return float64(store.ConfigCount()) },
		func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.nGRPC) },
		func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.nPoll) })
	if err != nil {
		return nil, fmt.Errorf("configsvc: metrics: %w", err)
	}
	s.met = m
	return s, nil
}

// Start hooks the service into the store's changes. It does not block.
func (s *Service) Start() error {
	s.store.SetConfigWatcher(s.changed)
	return nil
}

// Stop unhooks from the store, ends long polls and waits (until ctx ends)
// for pushes in flight. Idempotent.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.store.SetConfigWatcher(nil)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// normKey fills the defaults clients leave out (the public tenant).
func normKey(k Key) Key {
	k.Tenant = NormTenant(k.Tenant)
	return k
}

// Get returns one config; ErrNotFound when it does not exist.
func (s *Service) Get(k Key) (Item, error) {
	k = normKey(k)
	if err := ValidateKey(k); err != nil {
		s.met.queries.WithLabelValues("invalid").Inc()
		return Item{}, err
	}
	it, ok := s.store.Config(k)
	if !ok {
		s.met.queries.WithLabelValues("not_found").Inc()
		return Item{}, fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	s.met.queries.WithLabelValues("ok").Inc()
	return it, nil
}

// Publish creates or replaces a config. A non-empty casMD5 makes it a
// compare-and-set: an existing config must have that md5 (ErrCASMismatch
// otherwise); a missing one is created, as Nacos does. Nothing is stored
// when validation fails.
func (s *Service) Publish(k Key, content, typ, casMD5 string) error {
	k = normKey(k)
	err := ValidateKey(k)
	if err == nil {
		err = validateContent(content, s.cfg.MaxContentBytes)
	}
	if err != nil {
		s.met.publishes.WithLabelValues("invalid").Inc()
		return err
	}
	err = s.store.PutConfig(k, content, NormType(typ), s.now().UnixMilli(), casMD5 != "", casMD5, s.cfg.HistoryMax)
	switch {
	case err == nil:
		s.met.publishes.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrCASMismatch):
		s.met.publishes.WithLabelValues("cas").Inc()
	case errors.Is(err, ErrInvalidParam):
		s.met.publishes.WithLabelValues("invalid").Inc()
	default:
		s.met.publishes.WithLabelValues("error").Inc()
		return fmt.Errorf("configsvc: publish %s: %w", k, err)
	}
	return err
}

// Remove deletes a config (no error when it does not exist, as Nacos).
func (s *Service) Remove(k Key) error {
	k = normKey(k)
	if err := ValidateKey(k); err != nil {
		s.met.removes.WithLabelValues("invalid").Inc()
		return err
	}
	if err := s.store.RemoveConfig(k); err != nil {
		s.met.removes.WithLabelValues("error").Inc()
		return fmt.Errorf("configsvc: remove %s: %w", k, err)
	}
	s.met.removes.WithLabelValues("ok").Inc()
	return nil
}

// ListenContext is one config a client listens to, with the md5 it holds.
type ListenContext struct {
	Key
	MD5 string
}

// Listen adds connID as a listener of every key and returns those whose
// stored md5 differs from the client's ("" for a missing config).
func (s *Service) Listen(connID string, ctxs []ListenContext) []Key {
	s.mu.Lock()
	keys := s.conns[connID]
	if keys == nil {
		keys = map[Key]string{}
		s.conns[connID] = keys
	}
	for _, c := range ctxs {
		k := normKey(c.Key)
		if _, ok := keys[k]; ok {
			continue
		}
		keys[k] = c.Tenant // pushes name the config as the client does ("public")
		set := s.byKey[k]
		if set == nil {
			set = map[string]struct{}{}
			s.byKey[k] = set
		}
		set[connID] = struct{}{}
		s.nGRPC++
	}
	s.mu.Unlock()
	var changed []Key
	for _, c := range ctxs {
		k := normKey(c.Key)
		if s.store.ConfigMD5(k) != c.MD5 {
			changed = append(changed, k)
		}
	}
	return changed
}

// Unlisten removes connID as a listener of keys.
func (s *Service) Unlisten(connID string, keys []Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.unlistenLocked(connID, normKey(k))
	}
}

func (s *Service) unlistenLocked(connID string, k Key) {
	keys := s.conns[connID]
	if _, ok := keys[k]; !ok {
		return
	}
	delete(keys, k)
	if len(keys) == 0 {
		delete(s.conns, connID)
	}
	if set := s.byKey[k]; set != nil {
		delete(set, connID)
		if len(set) == 0 {
			delete(s.byKey, k)
		}
	}
	s.nGRPC--
}

// DropConn removes every listener of a connection (it ended).
func (s *Service) DropConn(connID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.conns[connID] {
		s.unlistenLocked(connID, k)
	}
}

// Listeners returns the connections listening to k (for tests and
// operators).
func (s *Service) Listeners(k Key) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byKey[normKey(k)]))
	for c := range s.byKey[normKey(k)] {
		out = append(out, c)
	}
	return out
}

// changed is the store's watcher: wake the long polls on k and push to
// every connection listening to it. It never blocks: the pushes run on
// one goroutine per spelling of k (clients name the public tenant "" or
// "public"), each a single fan-out to all its connections.
func (s *Service) changed(k Key) {
	since := s.now()
	s.mu.Lock()
	for w := range s.waiters[k] {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	var bySpelling map[Key][]string
	if s.pusher != nil && !s.closed && len(s.byKey[k]) > 0 {
		bySpelling = map[Key][]string{}
		for c := range s.byKey[k] {
			ck := k
			ck.Tenant = s.conns[c][k]
			bySpelling[ck] = append(bySpelling[ck], c)
		}
	}
	s.wg.Add(len(bySpelling)) // under mu: never concurrent with Stop's Wait
	s.mu.Unlock()
	for asSent, conns := range bySpelling {
		go func() {
			defer s.wg.Done()
			s.push(k, asSent, conns, since)
		}()
	}
}

// stillListening keeps those of conns that still listen to k.
func (s *Service) stillListening(conns []string, k Key) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := conns[:0]
	for _, c := range conns {
		if _, ok := s.conns[c][k]; ok {
			out = append(out, c)
		}
	}
	return out
}

// push sends one change of k to conns, naming the config as asSent (the
// clients' spelling), and tries again those that timed out, found their
// queue full or failed, while they still listen (PushRetries times,
// PushRetryDelay after the previous fan-out ended).
func (s *Service) push(k, asSent Key, conns []string, since time.Time) {
	for try := 0; ; try++ {
		res := s.pusher.PushChange(s.ctx, asSent, conns)
		var again []string
		var lastErr error
		for i, r := range res {
			switch err := r.Err; {
			case err == nil:
				s.met.pushes.WithLabelValues("ok").Inc()
				s.met.pushLatency.Observe(r.At.Sub(since).Seconds())
				continue
			case errors.Is(err, ErrGone):
				s.met.pushes.WithLabelValues("gone").Inc()
				continue
			case errors.Is(err, ErrPushBusy):
				s.met.pushes.WithLabelValues("busy").Inc()
			case errors.Is(err, context.DeadlineExceeded):
				s.met.pushes.WithLabelValues("timeout").Inc()
			default:
				s.met.pushes.WithLabelValues("fail").Inc()
			}
			again, lastErr = append(again, conns[i]), r.Err
		}
		if len(again) == 0 {
			return
		}
		if s.ctx.Err() != nil || try >= s.cfg.PushRetries {
			s.log.Debug("config push failed", "conns", len(again), "key", k.String(), "err", lastErr)
			return
		}
		t := time.NewTimer(s.cfg.PushRetryDelay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		if conns = s.stillListening(again, k); len(conns) == 0 {
			return
		}
	}
}

// LongPoll answers an HTTP listener: the keys whose stored md5 differs from
// the client's, at once if any, else the first ones to change within
// timeout (none when it passes, ctx ends or the service stops).
func (s *Service) LongPoll(ctx context.Context, want []ListenContext, timeout time.Duration) []Key {
	for i := range want {
		want[i].Key = normKey(want[i].Key)
	}
	diff := func() []Key {
		var out []Key
		for _, c := range want {
			if s.store.ConfigMD5(c.Key) != c.MD5 {
				out = append(out, c.Key)
			}
		}
		return out
	}
	if ch := diff(); len(ch) > 0 || timeout <= 0 {
		s.countPoll(ch)
		return ch
	}
	w := &waiter{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	for _, c := range want {
		set := s.waiters[c.Key]
		if set == nil {
			set = map[*waiter]struct{}{}
			s.waiters[c.Key] = set
		}
		if _, ok := set[w]; !ok {
			set[w] = struct{}{}
			s.nPoll++
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, c := range want {
			if set := s.waiters[c.Key]; set != nil {
				if _, ok := set[w]; ok {
					delete(set, w)
					s.nPoll--
				}
				if len(set) == 0 {
					delete(s.waiters, c.Key)
				}
			}
		}
		s.mu.Unlock()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		// Checked after registering: a change between the first check and
		// the registration is not lost.
		if ch := diff(); len(ch) > 0 {
			s.countPoll(ch)
			return ch
		}
		select {
		case <-w.wake:
		case <-t.C:
			s.countPoll(nil)
			return nil
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		}
	}
}

func (s *Service) countPoll(changed []Key) {
	if len(changed) > 0 {
		s.met.longPolls.WithLabelValues("changed").Inc()
	} else {
		s.met.longPolls.WithLabelValues("timeout").Inc()
	}
}

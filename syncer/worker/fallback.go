package worker

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/syncer"
)

// clientRegistry adapts a registryclient.Client to syncer.Registry, in one
// of two modes:
//
//   - batch-beat (Ferry's registry): instances are beat-kept by the
//     client's merged batch beats and outlive the worker's connection; Keep,
//     Release and Forget map one to one.
//   - nacos-fallback (a real Nacos 2.x, which has no batch-beat extension):
//     chosen for good the first time the client reports the server lacks
//     the capability (ServerCheck without ferryBatchBeat, or a 302 answer
//     to FerryBatchBeatRequest, both seen as registryclient.ErrNoBatchBeat).
//     Each service's full list is registered with BatchInstanceRequest
//     (Client.BatchRegister) over the worker's connection; the client
//     re-sends it after every reconnect. The instances are bound to that
//     connection: they vanish when it closes, so Release deregisters them
//     (otherwise the new owner's and the old owner's copies would both be
//     listed, and the old one would outlive a removal in ZooKeeper).
//
// The engine never calls one service concurrently; calls for different
// services run in parallel.
type clientRegistry struct {
	c      *registryclient.Client
	log    *slog.Logger
	target string // registry label of the mode gauge
	mode   *prometheus.GaugeVec

	fallback atomic.Bool // set once, never cleared

	mu      sync.Mutex // guards batches and every batchState.gen
	batches map[registryclient.ServiceRef]*batchState
	// releaseSem bounds the concurrent deregistrations of released services
	// (an engine stop releases every service at once).
	releaseSem chan struct{}
	// releases tracks those deregistrations; each ends within
	// releaseAttempts × releaseTimeout, at once when the client is closed.
	releases sync.WaitGroup
}

// batchState is one service's connection-bound list in fallback mode.
type batchState struct {
	// gen is bumped (under clientRegistry.mu) by every call that touches the
	// service, when it starts; a release deregisters only when nothing
	// touched the service after it.
	gen uint64
	// mu serialises the service's registry calls, I/O included (a release
	// running in the background against a new Keep); it guards list and
	// sent.
	mu   sync.Mutex
	list []registryclient.Instance // the full list last given; nil: none
	sent bool                      // list is what the server holds (the last send succeeded)
}

// releaseTimeout bounds one background deregistration of a released
// service; releaseAttempts is how often it is tried.
const (
	releaseTimeout  = 10 * time.Second
	releaseAttempts = 3
)

// newClientRegistry adapts c; servers names the target in the mode gauge.
// registerer may be nil.
func newClientRegistry(c *registryclient.Client, servers []string, log *slog.Logger, registerer prometheus.Registerer) *clientRegistry {
	if log == nil {
		log = slog.Default()
	}
	r := &clientRegistry{c: c, log: log, target: strings.Join(servers, ","), mode: newModeGauge(registerer),
		batches: map[registryclient.ServiceRef]*batchState{}, releaseSem: make(chan struct{}, 8)}
	r.mode.WithLabelValues(r.target, ModeBatchBeat).Set(1)
	r.mode.WithLabelValues(r.target, ModeNacosFallback).Set(0)
	return r
}

// Mode is ModeBatchBeat or ModeNacosFallback.
func (r *clientRegistry) Mode() string {
	if r.fallback.Load() {
		return ModeNacosFallback
	}
	return ModeBatchBeat
}

// useFallback reports whether calls go the fallback way, switching to it
// when the client already knows the server lacks merged beats.
func (r *clientRegistry) useFallback() bool {
	if r.fallback.Load() {
		return true
	}
	if ok, known := r.c.BatchBeatSupported(); known && !ok {
		r.switchToFallback("the server check did not offer batch beats")
		return true
	}
	return false
}

func (r *clientRegistry) switchToFallback(why string) {
	if r.fallback.Swap(true) {
		return
	}
	r.mode.WithLabelValues(r.target, ModeBatchBeat).Set(0)
	r.mode.WithLabelValues(r.target, ModeNacosFallback).Set(1)
	r.log.Warn("registry has no batch-beat extension (a real Nacos?): falling back to BatchInstanceRequest per service; "+
		"synced instances are now bound to this worker's connection and vanish with it",
		"registry", r.target, "server", r.c.CurrentServer(), "why", why)
}

func (r *clientRegistry) Keep(ctx context.Context, svc syncer.ServiceRef, insts []syncer.Instance) error {
	out := toClient(insts)
	if !r.useFallback() {
		err := r.c.Keep(ctx, ref(svc), out)
		if !errors.Is(err, registryclient.ErrNoBatchBeat) {
			return err
		}
		r.switchToFallback(err.Error())
	}
	// Keep may have scheduled beats before it learned the server has none.
	r.c.Release(ref(svc))
	return r.keepBatch(ctx, ref(svc), out)
}

func (r *clientRegistry) Deregister(ctx context.Context, svc syncer.ServiceRef, insts []syncer.Instance) error {
	if len(insts) == 0 {
		return nil
	}
	if r.useFallback() {
		return r.deregisterBatch(ctx, ref(svc), insts)
	}
	addrs := make([]registryclient.Addr, 0, len(insts))
	for _, in := range insts {
		addrs = append(addrs, registryclient.Addr{IP: in.IP, Port: in.Port})
	}
	return r.c.Forget(ctx, ref(svc), addrs...)
}

// LightOnly switches svc's merged beats to light beats only (or back).
// Connection-bound instances (fallback) need no beats: nothing to do.
func (r *clientRegistry) LightOnly(svc syncer.ServiceRef, on bool) {
	r.c.LightOnly(ref(svc), on)
}

func (r *clientRegistry) Release(svc syncer.ServiceRef) {
	r.c.Release(ref(svc))
	if r.fallback.Load() {
		r.releaseBatch(ref(svc))
	}
}

// state returns svc's batch state (created when missing) and marks the
// start of a call on it.
func (r *clientRegistry) state(svc registryclient.ServiceRef, create bool) (*batchState, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.batches[svc]
	if s == nil {
		if !create {
			return nil, 0
		}
		s = &batchState{}
		r.batches[svc] = s
	}
	s.gen++
	return s, s.gen
}

// keepBatch makes insts the connection's full list for svc; an empty list
// deregisters the connection's entry (Nacos removes a connection's whole
// batch of a service on deregisterInstance). A list equal to the one the
// server already holds is not sent again.
func (r *clientRegistry) keepBatch(ctx context.Context, svc registryclient.ServiceRef, insts []registryclient.Instance) error {
	s, _ := r.state(svc, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent && sameList(s.list, insts) {
		return nil
	}
	return s.send(ctx, r.c, svc, insts)
}

// deregisterBatch re-registers svc's list without insts. Instances not in
// this connection's list (another connection's, e.g. the previous owner's)
// cannot be removed over this connection: they vanish with theirs.
func (r *clientRegistry) deregisterBatch(ctx context.Context, svc registryclient.ServiceRef, insts []syncer.Instance) error {
	s, _ := r.state(svc, false)
	if s == nil {
		return nil // nothing of ours registered
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := make(map[registryclient.Addr]bool, len(insts))
	for _, in := range insts {
		gone[registryclient.Addr{IP: in.IP, Port: in.Port}] = true
	}
	rest := make([]registryclient.Instance, 0, len(s.list))
	for _, in := range s.list {
		if !gone[registryclient.Addr{IP: in.IP, Port: in.Port}] {
			rest = append(rest, in)
		}
	}
	if len(rest) == len(s.list) && s.sent {
		return nil
	}
	return s.send(ctx, r.c, svc, rest)
}

// send registers list as svc's batch; called with s.mu held.
func (s *batchState) send(ctx context.Context, c *registryclient.Client, svc registryclient.ServiceRef, list []registryclient.Instance) error {
	s.list, s.sent = list, false
	if len(list) == 0 {
		s.list = nil
	}
	err := c.BatchRegister(ctx, svc, list)
	s.sent = err == nil
	return err
}

// releaseBatch deregisters svc's batch in the background (Release must not
// block on I/O), unless a later call took the service up again first.
func (r *clientRegistry) releaseBatch(svc registryclient.ServiceRef) {
	s, gen := r.state(svc, false)
	if s == nil {
		return
	}
	r.releases.Add(1)
	go func() {
		defer r.releases.Done()
		r.releaseSem <- struct{}{}
		defer func() { <-r.releaseSem }()
		s.mu.Lock()
		defer s.mu.Unlock()
		current := func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return s.gen == gen
		}
		for attempt := 1; current() && attempt <= releaseAttempts; attempt++ {
			if s.list == nil && s.sent {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			err := s.send(ctx, r.c, svc, nil)
			cancel()
			if err == nil || errors.Is(err, registryclient.ErrClosed) {
				break
			}
			r.log.Warn("released service not deregistered", "service", svc.String(), "attempt", attempt, "err", err)
		}
		r.mu.Lock()
		if s.gen == gen && s.list == nil {
			delete(r.batches, svc)
		}
		r.mu.Unlock()
	}()
}

// waitReleases waits for the background deregistrations (tests).
func (r *clientRegistry) waitReleases() { r.releases.Wait() }

// sameList compares two lists in order (the engine sorts by address).
func sameList(a, b []registryclient.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.IP != y.IP || x.Port != y.Port || x.Weight != y.Weight || x.Cluster != y.Cluster || x.InstanceID != y.InstanceID ||
			x.Disabled != y.Disabled || x.Unhealthy != y.Unhealthy || !maps.Equal(x.Metadata, y.Metadata) {
			return false
		}
	}
	return true
}

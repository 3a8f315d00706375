// Package lifecycle is the one start/stop contract of every part of a
// registry node, and the group that runs the parts in order.
//
// The contract (etcd's embed.Etcd and hashicorp/raft show the shape):
//   - the part's constructor (New, Open) validates its configuration and
//     allocates; it starts nothing a caller has to stop, except a Storage
//     part, which may open its files;
//   - Start does not block: it starts the part's goroutines (each one
//     tracked) and returns; an error means nothing of the part runs;
//   - Stop(ctx) stops the part and waits for its goroutines, giving up when
//     ctx ends (it then returns ctx's error, or its own); it is idempotent
//     and safe to call on a part whose Start failed or never ran.
//
// A Group starts storage first, then services, then listeners (a port
// opens only once what it serves is running), and stops in exactly the
// reverse order: listeners first (no new requests), then services in
// reverse, then storage (nothing left that writes to it).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Component is one part of a node under the contract above.
type Component interface {
	Start() error
	Stop(ctx context.Context) error
}

// Tier orders the parts of a Group.
type Tier uint8

const (
	// Storage holds the node's state (the Raft store): started first,
	// stopped last.
	Storage Tier = iota
	// Service is background work over the state (expiry, health probes,
	// the config service, membership).
	Service
	// Listener accepts requests (the HTTP and gRPC ports): started last,
	// stopped first.
	Listener
	tiers
)

func (t Tier) String() string {
	switch t {
	case Storage:
		return "storage"
	case Service:
		return "service"
	case Listener:
		return "listener"
	}
	return fmt.Sprintf("tier(%d)", uint8(t))
}

// Errors of a Group.
var (
	ErrStarted = errors.New("lifecycle: already started")
	ErrStopped = errors.New("lifecycle: stopped")
)

type part struct {
	name string
	c    Component
}

// Group runs parts in tier order. Add parts before Start; Start once; Stop
// any number of times. Safe for concurrent use (mu serialises the calls).
type Group struct {
	mu      sync.Mutex
	parts   [tiers][]part
	started []part // in start order
	state   int    // 0 new, 1 started, 2 stopped
	stopErr error
}

// Add appends c to tier t under a name used in errors. After Start it
// panics (a programming error).
func (g *Group) Add(t Tier, name string, c Component) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != 0 {
		panic("lifecycle: Add after Start")
	}
	if t >= tiers {
		panic(fmt.Sprintf("lifecycle: bad tier %d", t))
	}
	g.parts[t] = append(g.parts[t], part{name: name, c: c})
}

// Start starts every part: storage, services, listeners, each tier in the
// order added. When one fails, the parts already started are stopped in
// reverse (bounded by ctx) and the error names the part.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case 1:
		return ErrStarted
	case 2:
		return ErrStopped
	}
	g.state = 1
	for t := Tier(0); t < tiers; t++ {
		for _, p := range g.parts[t] {
			if err := p.c.Start(); err != nil {
				serr := g.stopLocked(ctx)
				return errors.Join(fmt.Errorf("lifecycle: start %s %s: %w", t, p.name, err), serr)
			}
			g.started = append(g.started, p)
		}
	}
	return nil
}

// Stop stops the started parts in reverse start order — listeners, then
// services, then storage — each bounded by ctx, and returns their errors
// joined. Later calls return the first call's result. A part that does not
// stop by the deadline is reported; the parts after it are still told to
// stop (with the expired ctx, so they give up at once on waiting).
//
// A Group that was never started stops its storage parts only (they may
// run from their constructor, as an opened store does).
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case 0:
		g.started = g.parts[Storage]
	case 2:
		return g.stopErr
	}
	return g.stopLocked(ctx)
}

func (g *Group) stopLocked(ctx context.Context) error {
	g.state = 2
	var errs []error
	for i := len(g.started) - 1; i >= 0; i-- {
		p := g.started[i]
		if err := p.c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: stop %s: %w", p.name, err))
		}
	}
	g.started = nil
	g.stopErr = errors.Join(errs...)
	return g.stopErr
}

// Funcs adapts a start and a stop function to a Component (nil start: a
// part that runs from its constructor, such as an opened store).
type Funcs struct {
	StartFunc func() error
	StopFunc  func(ctx context.Context) error
}

// Start calls StartFunc, if any.
func (f Funcs) Start() error {
	if f.StartFunc == nil {
		return nil
	}
	return f.StartFunc()
}

// Stop calls StopFunc, if any.
func (f Funcs) Stop(ctx context.Context) error {
	if f.StopFunc == nil {
		return nil
	}
	return f.StopFunc(ctx)
}

// Bounded runs a stop function that takes no context (a library's own
// bounded shutdown) and waits for it until ctx ends. When ctx ends first
// the function keeps running in the background and ctx's error is returned.
func Bounded(ctx context.Context, stop func() error) error {
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("lifecycle: gave up waiting: %w", ctx.Err())
	}
}

package worker

import (
	"context"
	"sync"

	"github.com/ferrysync/ferry/syncer"
)

// Signals: the lessor's and the app modes' change notifications, fanned
// out to every engine, and the per-engine views that carry them.

// fanout hands one coalesced signal channel (the lessor's or the app
// modes') to every engine: each subscriber gets its own capacity-1 channel.
type fanout struct {
	mu   sync.Mutex // guards subs
	subs map[chan struct{}]struct{}
}

func newFanout() *fanout { return &fanout{subs: map[chan struct{}]struct{}{}} }

func (f *fanout) sub() chan struct{} {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch
}

func (f *fanout) unsub(ch chan struct{}) {
	f.mu.Lock()
	delete(f.subs, ch)
	f.mu.Unlock()
}

func (f *fanout) run(ctx context.Context, src <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-src:
			f.mu.Lock()
			for ch := range f.subs {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			f.mu.Unlock()
		}
	}
}

// ownershipSub is the lessor as one engine sees it (syncer.Ownership).
type ownershipSub struct {
	syncer.Ownership
	ch chan struct{}
}

func (o ownershipSub) Changed() <-chan struct{} { return o.ch }

// appModesSub is the app modes as one engine sees them (syncer.AppModes).
type appModesSub struct {
	syncer.AppModes
	ch chan struct{}
}

func (a appModesSub) Changed() <-chan struct{} { return a.ch }

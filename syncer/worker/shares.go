package worker

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/zkwatch"
)

// zkShare is one ZooKeeper watcher shared by every task of its cluster. Its
// router goroutine is the watcher's only Changes reader and hands each
// service to the task sources that cover it. refs is guarded by the
// manager's mutex; subs by mu.
type zkShare struct {
	key     string
	name    string
	w       *zkwatch.Watcher
	metrics *prometheus.Registry
	refs    int

	mu   sync.Mutex // guards subs
	subs map[*taskSource]struct{}
	quit chan struct{}
	done chan struct{}
}

func newZKShare(key, name string, w *zkwatch.Watcher, metrics *prometheus.Registry) *zkShare {
	return &zkShare{key: key, name: name, w: w, metrics: metrics, subs: map[*taskSource]struct{}{},
		quit: make(chan struct{}), done: make(chan struct{})}
}

func (z *zkShare) route() {
	defer close(z.done)
	changes := z.w.Changes()
	for {
		select {
		case <-z.quit:
			return
		case s := <-changes:
			z.mu.Lock()
			for src := range z.subs {
				if src.covers(s) {
					src.mark(s)
				}
			}
			z.mu.Unlock()
		}
	}
}

// source returns a new task source over this watcher (registered until
// unsubscribe).
func (z *zkShare) source(covers func(string) bool) *taskSource {
	src := &taskSource{w: z.w, covers: covers, pending: map[string]struct{}{}, kick: make(chan struct{}, 1),
		out: make(chan string), quit: make(chan struct{}), done: make(chan struct{})}
	go src.pump()
	z.mu.Lock()
	z.subs[src] = struct{}{}
	z.mu.Unlock()
	return src
}

func (z *zkShare) unsubscribe(src *taskSource) {
	z.mu.Lock()
	delete(z.subs, src)
	z.mu.Unlock()
	close(src.quit)
	<-src.done
}

// close stops the router and the watcher (bounded by ctx).
func (z *zkShare) close(ctx context.Context) error {
	close(z.quit)
	<-z.done
	return z.w.Stop(ctx)
}

// taskSource is one task's view of a shared watcher (syncer.Source): only
// the services the task covers, with its own coalesced Changes channel fed
// by pump (a pending set, so the router never waits for an engine).
type taskSource struct {
	w      *zkwatch.Watcher
	covers func(string) bool

	mu      sync.Mutex // guards pending, order
	pending map[string]struct{}
	order   []string
	kick    chan struct{} // capacity 1
	out     chan string
	quit    chan struct{}
	done    chan struct{}
}

func (t *taskSource) mark(s string) {
	t.mu.Lock()
	if _, ok := t.pending[s]; !ok {
		t.pending[s] = struct{}{}
		t.order = append(t.order, s)
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *taskSource) pop() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.order) == 0 {
		return "", false
	}
	s := t.order[0]
	t.order = t.order[1:]
	delete(t.pending, s)
	return s, true
}

func (t *taskSource) pump() {
	defer close(t.done)
	for {
		s, ok := t.pop()
		if !ok {
			select {
			case <-t.kick:
				continue
			case <-t.quit:
				return
			}
		}
		select {
		case t.out <- s:
		case <-t.quit:
			return
		}
	}
}

// Changes implements syncer.Source.
func (t *taskSource) Changes() <-chan string { return t.out }

// Services implements syncer.Source: the catalog's services this task covers.
func (t *taskSource) Services() []string {
	all := t.w.Services()
	out := all[:0:0]
	for _, s := range all {
		if t.covers(s) {
			out = append(out, s)
		}
	}
	return out
}

// Snapshot implements syncer.Source; a service outside the task does not
// exist for it.
func (t *taskSource) Snapshot(service string) (syncer.ServiceSnapshot, bool) {
	if !t.covers(service) {
		return syncer.ServiceSnapshot{}, false
	}
	return syncer.ZKSource{W: t.w}.Snapshot(service)
}

// Synced implements syncer.Source.
func (t *taskSource) Synced() bool { return syncer.ZKSource{W: t.w}.Synced() }

// ProviderExists implements syncer.Source.
func (t *taskSource) ProviderExists(ctx context.Context, node string) (bool, error) {
	return t.w.ProviderExists(ctx, node)
}

// clientShare is one registry client shared by the tasks of one registry
// cluster, namespace and ZooKeeper cluster. refs is guarded by the
// manager's mutex.
type clientShare struct {
	key     string
	name    string
	c       *registryclient.Client
	reg     *clientRegistry // the engines' view of c, shared: it holds the fallback state
	metrics *prometheus.Registry
	refs    int
}

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

// gatherers is the metrics of the parts that come and go (engines, shared
// watchers and clients): each has its own registry, so a restarted task
// registers its metrics again without a collision; /metrics gathers the
// worker's registry and these.
type gatherers struct {
	mu   sync.Mutex // guards regs
	regs map[*prometheus.Registry]struct{}
}

func newGatherers() *gatherers { return &gatherers{regs: map[*prometheus.Registry]struct{}{}} }

// add returns a new registry (gathered until remove) and a registerer on
// it that adds labels to every metric.
func (g *gatherers) add(labels prometheus.Labels) (*prometheus.Registry, prometheus.Registerer) {
	r := prometheus.NewRegistry()
	g.mu.Lock()
	g.regs[r] = struct{}{}
	g.mu.Unlock()
	return r, prometheus.WrapRegistererWith(labels, r)
}

func (g *gatherers) remove(r *prometheus.Registry) {
	if r == nil {
		return
	}
	g.mu.Lock()
	delete(g.regs, r)
	g.mu.Unlock()
}

// Gather implements prometheus.Gatherer.
func (g *gatherers) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	list := make(prometheus.Gatherers, 0, len(g.regs))
	for r := range g.regs {
		list = append(list, r)
	}
	g.mu.Unlock()
	return list.Gather()
}

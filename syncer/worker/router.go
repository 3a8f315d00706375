package worker

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/zkwatch"
)

// The router: one ZooKeeper watcher per ZooKeeper cluster, shared by the
// tasks of that cluster, and each task's view of it (a syncer.Source that
// holds only the services the task covers).

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

// Apps implements syncer.AppSource: the applications this task covers
// (their key, AppKey(app), matched like a service name).
func (t *taskSource) Apps() []string {
	all := t.w.Apps()
	out := all[:0:0]
	for _, a := range all {
		if t.covers(syncer.AppKey(a)) {
			out = append(out, a)
		}
	}
	return out
}

// AppSnapshot implements syncer.AppSource; an application outside the
// task does not exist for it.
func (t *taskSource) AppSnapshot(app string) (syncer.AppSnapshot, bool) {
	if !t.covers(syncer.AppKey(app)) {
		return syncer.AppSnapshot{}, false
	}
	return syncer.AppSnapshotOf(t.w, app)
}

// AppMetadata implements syncer.AppSource.
func (t *taskSource) AppMetadata(ctx context.Context, app, revision string) (string, bool, error) {
	return t.w.AppMetadata(ctx, app, revision)
}

// AppMetadataPath implements syncer.AppSource.
func (t *taskSource) AppMetadataPath(app, revision string) string {
	return t.w.AppMetadataPath(app, revision)
}

// Mappings implements syncer.MappingSource: the interfaces this task
// covers that have a mapping node.
func (t *taskSource) Mappings() []string {
	all := t.w.Mappings()
	out := all[:0:0]
	for _, iface := range all {
		if t.covers(syncer.MappingKey(iface)) {
			out = append(out, iface)
		}
	}
	return out
}

// Mapping implements syncer.MappingSource.
func (t *taskSource) Mapping(iface string) (string, bool) {
	if !t.covers(syncer.MappingKey(iface)) {
		return "", false
	}
	return t.w.Mapping(iface)
}

// ProviderExists implements syncer.Source.
func (t *taskSource) ProviderExists(ctx context.Context, node string) (bool, error) {
	return t.w.ProviderExists(ctx, node)
}

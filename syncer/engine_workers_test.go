package syncer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// workerClient is one worker's registry client over a shared registry: its
// own beat set, the shared instances.
type workerClient struct {
	shared  *fakeRegistry
	mu      sync.Mutex
	beating map[string]map[string]bool
}

func (c *workerClient) Keep(ctx context.Context, svc ServiceRef, insts []Instance) error {
	c.shared.mu.Lock()
	if c.shared.insts[svc.Name] == nil {
		c.shared.insts[svc.Name] = map[string]Instance{}
	}
	for _, in := range insts {
		c.shared.insts[svc.Name][in.Addr()] = in
	}
	c.shared.mu.Unlock()
	b := map[string]bool{}
	for _, in := range insts {
		b[in.Addr()] = true
	}
	c.mu.Lock()
	c.beating[svc.Name] = b
	c.mu.Unlock()
	return nil
}

func (c *workerClient) Deregister(ctx context.Context, svc ServiceRef, insts []Instance) error {
	c.shared.mu.Lock()
	for _, in := range insts {
		delete(c.shared.insts[svc.Name], in.Addr())
		c.shared.deregs = append(c.shared.deregs, svc.Name+" "+in.Addr())
	}
	c.shared.mu.Unlock()
	c.mu.Lock()
	for _, in := range insts {
		delete(c.beating[svc.Name], in.Addr())
	}
	c.mu.Unlock()
	return nil
}

func (c *workerClient) LightOnly(ServiceRef, bool) {}

func (c *workerClient) Release(svc ServiceRef) {
	c.mu.Lock()
	delete(c.beating, svc.Name)
	c.mu.Unlock()
}

func (c *workerClient) List(ctx context.Context, svc ServiceRef) ([]Instance, error) {
	return c.shared.List(ctx, svc)
}

func (c *workerClient) beats(name, addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beating[name][addr]
}

// Two workers split the shards; one stops (its beats stop, nothing is
// deregistered); the other takes its shards over, adopts the instances,
// names itself in the marker and beats them. At every sample every provider
// is in the registry, and no instance is beaten by two workers.
func TestTwoWorkersHandover(t *testing.T) {
	src := newFakeSource()
	shared := newFakeRegistry()
	ownA, ownB := newFakeOwnership(0), newFakeOwnership(1)
	clients := map[string]*workerClient{}
	newWorker := func(id string, own *fakeOwnership) *Engine {
		c := &workerClient{shared: shared, beating: map[string]map[string]bool{}}
		clients[id] = c
		cfg := DefaultConfig()
		cfg.Cluster, cfg.Worker, cfg.Task = "zk1", id, "t"
		cfg.ProbeInterval = 0
		e, err := New(cfg, Deps{Source: &fanout{src: src, ch: make(chan string, 4096)}, Registry: c, Ownership: own,
			ShardOf: shardOf, Clock: newFakeClock(), Logger: testLogger(t), Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := newWorker("A", ownA), newWorker("B", ownB)
	srcs := []*fanout{a.deps.Source.(*fanout), b.deps.Source.(*fanout)}
	go func() {
		for s := range src.changes {
			for _, f := range srcs {
				f.ch <- s
			}
		}
	}()
	t.Cleanup(func() { close(src.changes) })
	for _, e := range []*Engine{a, b} {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Stop(context.Background()) })
	}
	type want struct{ name, addr, svc string }
	var all []want
	for i, svc := range []string{"org.A", "org.B", "s1.C", "s1.D"} {
		var provs []Provider
		for p := range 3 {
			host := fmt.Sprintf("10.0.%d.%d", i, p)
			provs = append(provs, prov(svc, host, 1, 1))
			all = append(all, want{"providers:" + svc + "::", host + ":1", svc})
		}
		src.set(svc, provs...)
	}
	owner := func(svc string) string {
		if shardOf(svc) == 1 {
			return "B"
		}
		return "A"
	}
	check := func(owners func(string) string) bool {
		for _, w := range all {
			in, ok := shared.get(w.name, w.addr)
			if !ok || in.Metadata[MetaWorker] != owners(w.svc) || !clients[owners(w.svc)].beats(w.name, w.addr) {
				return false
			}
			for id, c := range clients {
				if id != owners(w.svc) && c.beats(w.name, w.addr) {
					return false
				}
			}
		}
		return true
	}
	eventually(t, "split ownership", func() bool { return check(owner) })

	// B stops (graceful stop or crash: either way its beats stop and nothing
	// is deregistered); its lease moves to A.
	var stop sync.WaitGroup
	stop.Add(1)
	go func() {
		defer stop.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	}()
	ownB.set(1, 1, false)
	ownA.set(1, 2, true)
	// Sample while A takes over: every instance stays in the registry.
	eventually(t, "A owns everything", func() bool {
		for _, w := range all {
			if _, ok := shared.get(w.name, w.addr); !ok {
				t.Fatalf("%s %s missing during the handover", w.name, w.addr)
			}
		}
		return check(func(string) string { return "A" })
	})
	stop.Wait()
	if len(shared.deregs) != 0 {
		t.Fatalf("handover deregistered: %v", shared.deregs)
	}
}

// fanout gives each engine its own change channel over one fake catalog.
type fanout struct {
	src *fakeSource
	ch  chan string
}

func (f *fanout) Changes() <-chan string                    { return f.ch }
func (f *fanout) Snapshot(s string) (ServiceSnapshot, bool) { return f.src.Snapshot(s) }
func (f *fanout) Services() []string                        { return f.src.Services() }
func (f *fanout) Synced() bool                              { return f.src.Synced() }
func (f *fanout) ProviderExists(ctx context.Context, n string) (bool, error) {
	return f.src.ProviderExists(ctx, n)
}

package syncer

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// laggingSource is the real watcher's catalog with one fault injected: the
// snapshot of a frozen service stays what it was when frozen (a watcher
// whose re-list of that service lags ZooKeeper), while ProviderExists
// still asks the real ZooKeeper.
type laggingSource struct {
	Source
	mu     sync.Mutex
	frozen map[string]ServiceSnapshot
}

func (l *laggingSource) freeze(svc string) {
	snap, _ := l.Source.Snapshot(svc)
	l.mu.Lock()
	l.frozen[svc] = snap
	l.mu.Unlock()
}

func (l *laggingSource) Snapshot(svc string) (ServiceSnapshot, bool) {
	l.mu.Lock()
	snap, ok := l.frozen[svc]
	l.mu.Unlock()
	if ok {
		return snap, true
	}
	return l.Source.Snapshot(svc)
}

// deadPort returns a loopback port nothing listens on: a probe is refused.
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestIntegrationEvictsGoneAndDead, on real parts (ZooKeeper, the watcher,
// the registry's naming core, real TCP probes): of two providers whose
// ports are dead, the one whose node ZooKeeper no longer has is evicted
// while the watcher's view of the service still lists it, and the one whose
// node is still there stays; when the watcher catches up nothing comes
// back.
func TestIntegrationEvictsGoneAndDead(t *testing.T) {
	var lag *laggingSource
	env := newZKEnvWith(t, func(s Source) Source {
		lag = &laggingSource{Source: s, frozen: map[string]ServiceSnapshot{}}
		return lag
	})
	const iface, name = "org.it.Evict", "providers:org.it.Evict::"
	kept, gone := deadPort(t), deadPort(t)
	env.add(t, env.c, iface, javaURL(iface, "127.0.0.1", kept, 1700000000000, ""))
	node := env.add(t, env.c, iface, javaURL(iface, "127.0.0.1", gone, 1700000000000, ""))
	keptAddr, goneAddr := Addr("127.0.0.1", kept), Addr("127.0.0.1", gone)
	eventually(t, "both registered", func() bool {
		_, a := env.target.get(name, keptAddr)
		_, b := env.target.get(name, goneAddr)
		return a && b
	})
	lag.freeze(iface)
	if err := env.c.Delete(node, -1); err != nil {
		t.Fatal(err)
	}
	env.e.Sweep(context.Background())
	eventually(t, "the gone, dead provider evicted", func() bool { _, ok := env.target.get(name, goneAddr); return !ok })
	if _, ok := env.target.get(name, keptAddr); !ok {
		t.Fatal("a dead provider whose node ZooKeeper still has was evicted")
	}
	// The event and the metric follow the registry's removal (the engine
	// reports after it applied).
	eventually(t, "one evicted event and an evictions count of 1", func() bool {
		return env.events.count(EventEvicted) >= 1 && testutil.ToFloat64(env.e.m.evictions) >= 1
	})
	if env.events.count(EventEvicted) != 1 || testutil.ToFloat64(env.e.m.evictions) != 1 {
		t.Fatalf("evicted events %d, evictions metric %v: want 1 and 1", env.events.count(EventEvicted), testutil.ToFloat64(env.e.m.evictions))
	}
	// A change of the service while the view still lags: the engine goes
	// over the lagging snapshot again, which still lists the evicted
	// provider; it must not come back.
	n := reconciles(t, env.e)
	env.add(t, env.c, iface, javaURL(iface, "127.0.0.1", kept+1, 1700000000001, ""))
	eventually(t, "the engine went over the lagging view again", func() bool { return reconciles(t, env.e) > n })
	if _, ok := env.target.get(name, goneAddr); ok {
		t.Fatal("the evicted provider came back from the lagging view")
	}
}

// reconciles is how many service reconciles the engine has finished.
func reconciles(t *testing.T, e *Engine) uint64 {
	t.Helper()
	var n uint64
	for _, mode := range []string{"partial", "full"} {
		var m dto.Metric
		if err := e.m.reconcileDur.WithLabelValues(mode).(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

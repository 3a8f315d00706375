package syncer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	t      *testing.T
	e      *Engine
	src    *fakeSource
	appSrc *fakeAppSource
	reg    *fakeRegistry
	own    *fakeOwnership
	apps   *fakeApps
	events *fakeEvents
	clock  *fakeClock
	prober *fakeProber
	prom   *prometheus.Registry
}

// shardOf puts every service in shard 0, except names starting with "s1."
// (shard 1).
func shardOf(s string) int {
	if len(s) > 3 && s[:3] == "s1." {
		return 1
	}
	return 0
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, src: newFakeSource(), reg: newFakeRegistry(), own: newFakeOwnership(0, 1), apps: newFakeApps(),
		events: &fakeEvents{}, clock: newFakeClock(), prober: &fakeProber{down: map[string]bool{}}, prom: prometheus.NewRegistry()}
	h.appSrc = &fakeAppSource{src: h.src, apps: map[string]AppSnapshot{}, meta: map[string]string{}}
	cfg := DefaultConfig()
	cfg.Cluster, cfg.Worker, cfg.Task = "zk1", "w1", "t1"
	cfg.Workers = 4
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg, Deps{Source: h.src, Registry: h.reg, Ownership: h.own, ShardOf: shardOf, Apps: h.apps,
		AppSource: h.appSrc, Events: h.events, Prober: h.prober, Clock: h.clock, Logger: testLogger(t), Metrics: h.prom})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.e.Start(); err != nil {
		h.t.Fatal(err)
	}
}

// idle waits until every change notification sent has been queued and
// nothing is pending or in flight.
func (h *harness) idle() {
	h.t.Helper()
	eventually(h.t, "engine idle", func() bool {
		if h.e.received.Load() != h.src.sent.Load() {
			return false
		}
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		return len(h.e.pending) == 0 && len(h.e.inflight) == 0
	})
}

func (h *harness) has(name, addr string) bool {
	_, ok := h.reg.get(name, addr)
	return ok
}

const fooName = "providers:org.Foo::"

func TestEngineAddUpdateRemove(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 20880, 100), prov("org.Foo", "10.0.0.2", 20880, 100, "version", "1.0"))
	eventually(t, "both registered", func() bool {
		return h.has(fooName, "10.0.0.1:20880") && h.has("providers:org.Foo:1.0:", "10.0.0.2:20880")
	})
	in, _ := h.reg.get(fooName, "10.0.0.1:20880")
	if in.Metadata[MetaSource] != "zk:zk1" || in.Metadata[MetaWorker] != "w1" || in.Metadata["timestamp"] != "100" ||
		in.Metadata["category"] != "providers" || in.Metadata["protocol"] != "dubbo" || in.Metadata["path"] != "org.Foo" ||
		in.Weight != 1 || !in.Ephemeral || !in.Enabled {
		t.Fatalf("instance = %+v", in)
	}
	// Update: a configurator disables the first provider.
	p := prov("org.Foo", "10.0.0.1", 20880, 100)
	p.Disabled = true
	h.src.set("org.Foo", p, prov("org.Foo", "10.0.0.2", 20880, 100, "version", "1.0"))
	eventually(t, "disabled", func() bool { in, _ := h.reg.get(fooName, "10.0.0.1:20880"); return !in.Enabled })
	// Remove one.
	h.src.set("org.Foo", p)
	eventually(t, "removed", func() bool { return !h.has("providers:org.Foo:1.0:", "10.0.0.2:20880") })
	// The whole service goes away.
	h.src.remove("org.Foo")
	eventually(t, "all removed", func() bool { return h.reg.count(fooName) == 0 })
	h.idle()
	if st := h.e.Status(); st.Registered != 0 || st.Services != 0 {
		t.Fatalf("status after removal: %+v", st)
	}
	if got := testutil.ToFloat64(h.e.m.actions.WithLabelValues("deregister")); got != 2 {
		t.Fatalf("deregister actions = %v", got)
	}
}

// The kill -9 / restart race: the provider restarts on the same ip:port, its
// new node appears, then ZooKeeper deletes the old ephemeral node.
func TestEngineStaleRemovalRace(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	old, neu := prov("org.Foo", "10.0.0.1", 20880, 100), prov("org.Foo", "10.0.0.1", 20880, 200)
	h.src.set("org.Foo", old)
	eventually(t, "old registered", func() bool { return h.has(fooName, "10.0.0.1:20880") })
	h.src.set("org.Foo", old, neu)
	eventually(t, "new registered", func() bool {
		in, _ := h.reg.get(fooName, "10.0.0.1:20880")
		return in.Metadata["timestamp"] == "200"
	})
	h.idle()
	h.src.set("org.Foo", neu) // the old node's late deletion
	eventually(t, "stale removal event", func() bool { return h.events.count(EventStaleRemoval) == 1 })
	h.idle()
	in, ok := h.reg.get(fooName, "10.0.0.1:20880")
	if !ok || in.Metadata["timestamp"] != "200" {
		t.Fatalf("instance after the stale removal: %v %+v", ok, in)
	}
	if got := testutil.ToFloat64(h.e.m.staleDropped); got != 1 {
		t.Fatalf("stale dropped = %v", got)
	}
	if len(h.reg.deregs) != 0 {
		t.Fatalf("deregistered: %v", h.reg.deregs)
	}
}

func TestEngineSkipsAndAppModes(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.2", 1, 1, "withNacos", "true"))
	eventually(t, "registered", func() bool { return h.has(fooName, "10.0.0.1:1") })
	h.idle()
	if h.has(fooName, "10.0.0.2:1") {
		t.Fatal("withNacos provider synced")
	}
	if st := h.e.Status(); st.Skipped[SkipWithNacos] != 1 || st.Desired != 1 {
		t.Fatalf("status: %+v", st)
	}
	h.apps.set("app-org.Foo", ModeNative)
	eventually(t, "removed on native", func() bool { return !h.has(fooName, "10.0.0.1:1") })
	h.idle()
	if st := h.e.Status(); st.Skipped[SkipAppNative] != 1 {
		t.Fatalf("status: %+v", st)
	}
	h.apps.set("app-org.Foo", ModeSync)
	eventually(t, "restored", func() bool { return h.has(fooName, "10.0.0.1:1") })
	h.apps.set("app-org.Foo", ModeExcluded)
	eventually(t, "removed on excluded", func() bool { return !h.has(fooName, "10.0.0.1:1") })
}

func TestEngineNoRemovalsWhileZooKeeperDisconnected(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.2", 1, 1))
	eventually(t, "registered", func() bool { return h.reg.count(fooName) == 2 })
	h.src.setSynced(false)
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.3", 1, 1)) // e.g. a partial re-list
	eventually(t, "add applied", func() bool { return h.has(fooName, "10.0.0.3:1") })
	h.idle()
	if h.reg.count(fooName) != 3 {
		t.Fatalf("removed while disconnected: %d", h.reg.count(fooName))
	}
	if h.reg.beatCount() != 3 {
		t.Fatalf("beating %d, want 3 (beats go on)", h.reg.beatCount())
	}
	// Session back and re-listed: the synced poll reconciles everything.
	h.src.setSynced(true)
	eventually(t, "removals after resync", func() bool {
		h.clock.Advance(time.Second)
		return h.reg.count(fooName) == 1
	})
}

func TestEngineOwnershipLossReleasesWithoutDeregistering(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	h.src.set("s1.Bar", prov("s1.Bar", "10.0.0.2", 1, 1))
	eventually(t, "registered", func() bool { return h.reg.beatCount() == 2 })
	h.own.set(1, 0, false) // lose shard 1
	eventually(t, "released", func() bool { return h.reg.beatCount() == 1 })
	if !h.has("providers:s1.Bar::", "10.0.0.2:1") || len(h.reg.deregs) != 0 {
		t.Fatalf("lease loss deregistered: %v", h.reg.deregs)
	}
	// Changes of a lost shard are ignored.
	h.src.set("s1.Bar", prov("s1.Bar", "10.0.0.2", 1, 1), prov("s1.Bar", "10.0.0.3", 1, 1))
	h.idle()
	if h.has("providers:s1.Bar::", "10.0.0.3:1") {
		t.Fatal("synced a service of a shard not owned")
	}
	// Regained (new epoch): beating again, including the new provider.
	h.own.set(1, 2, true)
	eventually(t, "regained", func() bool { return h.reg.beatCount() == 3 })
	h.idle()
	if len(h.reg.deregs) != 0 {
		t.Fatalf("takeover deregistered: %v", h.reg.deregs)
	}
	if st := h.e.Status(); st.OwnedShards != 2 {
		t.Fatalf("status: %+v", st)
	}
}

func TestEngineStopReleases(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	eventually(t, "registered", func() bool { return h.reg.beatCount() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Stop(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if h.reg.beatCount() != 0 || !h.has(fooName, "10.0.0.1:1") || len(h.reg.deregs) != 0 {
		t.Fatalf("stop: beating %d, deregs %v", h.reg.beatCount(), h.reg.deregs)
	}
	if err := h.e.Start(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v", err)
	}
}

func TestEngineNeverTouchesForeignInstances(t *testing.T) {
	h := newHarness(t, nil)
	native := Instance{IP: "10.0.0.1", Port: 1, Weight: 5, Enabled: true, Healthy: true, Ephemeral: true,
		Metadata: map[string]string{"owner": "the app itself"}}
	h.reg.put(fooName, native)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.2", 1, 1))
	eventually(t, "ours registered", func() bool { return h.has(fooName, "10.0.0.2:1") })
	eventually(t, "conflict event", func() bool { return h.events.count(EventForeign) == 1 })
	in, _ := h.reg.get(fooName, "10.0.0.1:1")
	if in.Metadata["owner"] != "the app itself" {
		t.Fatalf("native instance overwritten: %+v", in)
	}
	h.src.set("org.Foo")
	eventually(t, "ours removed", func() bool { return !h.has(fooName, "10.0.0.2:1") })
	h.idle()
	if !h.has(fooName, "10.0.0.1:1") {
		t.Fatal("native instance deregistered")
	}
}

// A new owner adopts what the previous owner registered (its marker, another
// worker id), takes the beats over, and removes our orphans.
func TestEngineTakeover(t *testing.T) {
	h := newHarness(t, nil)
	prev := BuildInstance(prov("org.Foo", "10.0.0.1", 1, 1), Marker{Cluster: "zk1", Worker: "w0"})
	orphan := BuildInstance(prov("org.Foo", "10.0.0.9", 1, 1), Marker{Cluster: "zk1", Worker: "w0"})
	otherCluster := BuildInstance(prov("org.Foo", "10.0.0.8", 1, 1), Marker{Cluster: "zk2", Worker: "x"})
	h.reg.put(fooName, prev)
	h.reg.put(fooName, orphan)
	h.reg.put(fooName, otherCluster)
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	h.start()
	eventually(t, "taken over", func() bool {
		in, _ := h.reg.get(fooName, "10.0.0.1:1")
		return in.Metadata[MetaWorker] == "w1" && !h.has(fooName, "10.0.0.9:1")
	})
	h.idle()
	if !h.has(fooName, "10.0.0.8:1") {
		t.Fatal("another cluster's instance touched")
	}
	if h.reg.beatCount() != 1 {
		t.Fatalf("beating %d", h.reg.beatCount())
	}
}

func TestEngineMassRemovalGuard(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MassMin = 5; c.MassGrace = time.Minute })
	h.start()
	var provs []Provider
	for i := range 20 {
		provs = append(provs, prov("org.Foo", "10.0.0.1", 1000+i, 1))
	}
	h.src.set("org.Foo", provs...)
	eventually(t, "registered", func() bool { return h.reg.count(fooName) == 20 })
	h.src.set("org.Foo", provs[:5]...) // 15 of 20 vanish
	eventually(t, "held", func() bool { return h.events.count(EventMassHeld) == 1 })
	h.idle()
	if h.reg.count(fooName) != 20 {
		t.Fatalf("mass removal applied: %d left", h.reg.count(fooName))
	}
	if st := h.e.Status(); len(st.MassHeld) != 1 {
		t.Fatalf("status: %+v", st)
	}
	// A normal add still goes through while removals are held.
	h.src.set("org.Foo", append(provs[:5:5], prov("org.Foo", "10.0.0.2", 1, 1))...)
	eventually(t, "add during hold", func() bool { return h.has(fooName, "10.0.0.2:1") })
	if h.reg.count(fooName) != 21 {
		t.Fatalf("count %d", h.reg.count(fooName))
	}
	h.e.Confirm()
	eventually(t, "released", func() bool { return h.reg.count(fooName) == 6 })
	if h.events.count(EventMassReleased) != 1 {
		t.Fatal("no release event")
	}

	// Grace period: hold again, then let the clock pass it.
	var more []Provider
	for i := range 20 {
		more = append(more, prov("org.Bar", "10.0.1.1", 1000+i, 1))
	}
	h.clock.Advance(2 * time.Minute) // leave the confirmation window
	h.src.set("org.Bar", more...)
	eventually(t, "bar registered", func() bool { return h.reg.count("providers:org.Bar::") == 20 })
	h.clock.Advance(2 * time.Minute) // the window has no recent removals now
	h.src.set("org.Bar")
	eventually(t, "held again", func() bool { return h.events.count(EventMassHeld) == 2 })
	eventually(t, "grace passed", func() bool {
		h.clock.Advance(10 * time.Second)
		return h.reg.count("providers:org.Bar::") == 0
	})
}

// An operator's switch of an app to native removes its synced instances
// at once, however many: the mass-removal hold guards against ZooKeeper
// losing providers, not against a previewed, confirmed switch. The same
// count vanishing from ZooKeeper is still held.
func TestEngineModeSwitchIsNotAMassRemoval(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MassMin = 5; c.MassGrace = time.Minute })
	h.start()
	var provs []Provider
	for i := range 20 {
		provs = append(provs, prov("org.Foo", "10.0.0.1", 1000+i, 1))
	}
	h.src.set("org.Foo", provs...)
	eventually(t, "registered", func() bool { return h.reg.count(fooName) == 20 })
	h.apps.set("app-org.Foo", ModeNative)
	eventually(t, "the native app's synced instances removed", func() bool { return h.reg.count(fooName) == 0 })
	if n := h.events.count(EventMassHeld); n != 0 {
		t.Fatalf("%d mass holds for a mode switch", n)
	}
	h.apps.set("app-org.Foo", ModeSync)
	eventually(t, "restored", func() bool { return h.reg.count(fooName) == 20 })
	h.clock.Advance(2 * time.Minute) // out of any window
	h.src.set("org.Foo", provs[:5]...)
	eventually(t, "ZooKeeper losing 15 of 20 is held", func() bool { return h.events.count(EventMassHeld) == 1 })
	h.idle()
	if n := h.reg.count(fooName); n != 20 {
		t.Fatalf("mass removal applied: %d left", n)
	}
}

func TestEngineRetriesWithBackoff(t *testing.T) {
	h := newHarness(t, nil)
	h.reg.mu.Lock()
	h.reg.failCalls = 3
	h.reg.mu.Unlock()
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	eventually(t, "registered after retries", func() bool {
		h.clock.Advance(time.Second)
		return h.has(fooName, "10.0.0.1:1")
	})
	if got := testutil.ToFloat64(h.e.m.applyErrors); got != 3 {
		t.Fatalf("apply errors = %v", got)
	}
	for a := 1; a < 40; a++ {
		d := h.e.backoff(a)
		if d < 0 || d > h.e.cfg.RetryMax {
			t.Fatalf("backoff(%d) = %v", a, d)
		}
	}
	if d := h.e.backoff(1); d < h.e.cfg.RetryBase/2 || d > h.e.cfg.RetryBase {
		t.Fatalf("backoff(1) = %v", d)
	}
}

func TestEnginePortProbe(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ProbeInterval = 0 }) // sweeps driven by the test
	h.start()
	present, gone := prov("org.Foo", "10.0.0.1", 1, 1), prov("org.Foo", "10.0.0.2", 1, 1)
	h.src.set("org.Foo", present, gone)
	eventually(t, "registered", func() bool { return h.reg.count(fooName) == 2 })
	h.idle()
	h.prober.mu.Lock()
	h.prober.down["10.0.0.1:1"], h.prober.down["10.0.0.2:1"] = true, true
	h.prober.mu.Unlock()
	h.src.mu.Lock()
	h.src.exists[gone.Node] = false // ZooKeeper lost it; the cache has not caught up
	h.src.mu.Unlock()
	h.e.Sweep(context.Background())
	eventually(t, "evicted", func() bool { return !h.has(fooName, "10.0.0.2:1") })
	h.idle()
	if !h.has(fooName, "10.0.0.1:1") {
		t.Fatal("instance with its node present evicted")
	}
	if h.events.count(EventEvicted) != 1 || testutil.ToFloat64(h.e.m.evictions) != 1 ||
		testutil.ToFloat64(h.e.m.probeFailures.WithLabelValues("present")) != 1 {
		t.Fatalf("events %d evictions %v", h.events.count(EventEvicted), testutil.ToFloat64(h.e.m.evictions))
	}
	// The lagging cache still lists the gone node: it is not re-registered.
	h.src.set("org.Foo", present, gone)
	h.idle()
	if h.has(fooName, "10.0.0.2:1") {
		t.Fatal("evicted instance re-registered from a lagging cache")
	}
	// ZooKeeper unreachable: kept.
	h.src.mu.Lock()
	h.src.existsE = errors.New("zk down")
	h.src.mu.Unlock()
	h.e.Sweep(context.Background())
	h.idle()
	if !h.has(fooName, "10.0.0.1:1") || testutil.ToFloat64(h.e.m.probeFailures.WithLabelValues("unknown")) != 1 {
		t.Fatal("instance evicted with ZooKeeper unreachable")
	}
}

// A burst of change notifications for one service becomes a handful of
// registry calls, not one per notification.
func TestEngineCoalesces(t *testing.T) {
	h := newHarness(t, nil)
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	for range 1000 {
		h.src.notify("org.Foo")
	}
	h.start()
	eventually(t, "registered", func() bool { return h.has(fooName, "10.0.0.1:1") })
	h.idle()
	h.reg.mu.Lock()
	keeps := h.reg.keeps
	h.reg.mu.Unlock()
	if keeps != 1 {
		t.Fatalf("keeps = %d, want 1", keeps)
	}
}

func TestEngineFullReconcileHealsRegistryLoss(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1))
	eventually(t, "registered", func() bool { return h.has(fooName, "10.0.0.1:1") })
	h.idle()
	h.reg.mu.Lock()
	delete(h.reg.insts[fooName], "10.0.0.1:1") // e.g. the registry restarted
	h.reg.mu.Unlock()
	eventually(t, "healed by full reconcile", func() bool {
		h.clock.Advance(time.Minute)
		return h.has(fooName, "10.0.0.1:1")
	})
}

func TestNewValidates(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty cluster accepted: %v", err)
	}
	cfg.Cluster, cfg.Worker = "c", "w"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.MassShare = 1.5
	if err := bad.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatal("MassShare 1.5 accepted")
	}
	bad = cfg
	bad.Filter.Include = []string{"["}
	if err := bad.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatal("bad glob accepted")
	}
	if _, err := New(cfg, Deps{}); !errors.Is(err, ErrDeps) {
		t.Fatalf("New without deps = %v", err)
	}
}

// Takeover race: the previous owner registered a newer provider than the one
// this worker's ZooKeeper view shows; the downgrade is held, then ZooKeeper
// wins when the hold ends (the engine comes back by itself).
func TestEngineStaleDowngradeHeldThenApplied(t *testing.T) {
	h := newHarness(t, nil)
	newer := BuildInstance(prov("org.Foo", "10.0.0.1", 1, 2000), Marker{Cluster: "zk1", Worker: "w0"})
	h.reg.put(fooName, newer)
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 1, 1000))
	h.start()
	eventually(t, "held", func() bool { return h.events.count(EventStaleHeld) == 1 })
	h.idle()
	if in, _ := h.reg.get(fooName, "10.0.0.1:1"); in.Metadata["timestamp"] != "2000" {
		t.Fatalf("downgraded during the hold: %v", in.Metadata["timestamp"])
	}
	if h.reg.beatCount() != 1 {
		t.Fatal("held instance not beaten")
	}
	h.clock.Advance(h.e.cfg.StaleHold)
	eventually(t, "applied after the hold", func() bool {
		in, _ := h.reg.get(fooName, "10.0.0.1:1")
		return in.Metadata["timestamp"] == "1000"
	})
	if h.events.count(EventStaleHeld) != 1 {
		t.Fatalf("held events = %d", h.events.count(EventStaleHeld))
	}
}

// One interface exported twice on one port (two versions): the watcher keys
// providers by host:port and shadows one of them, but each is the newest of
// its own registry service and both are synced.
func TestEngineTwoVersionsOnOnePort(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	v1 := prov("org.Foo", "10.0.0.1", 1, 100, "version", "1")
	v2 := prov("org.Foo", "10.0.0.1", 1, 200, "version", "2")
	v2.Node += "&version=2"
	h.src.set("org.Foo", v1, v2)
	eventually(t, "both versions", func() bool {
		return h.has("providers:org.Foo:1:", "10.0.0.1:1") && h.has("providers:org.Foo:2:", "10.0.0.1:1")
	})
	h.idle()
	if got := testutil.ToFloat64(h.e.m.registered); got != 2 {
		t.Fatalf("registered gauge = %v", got)
	}
}

// A ZooKeeper change is taken before bulk work queued earlier (a full
// reconcile of every key), a bulk key that gets a change moves to the
// change lane, and no key is taken twice.
func TestEngineChangeLaneFirst(t *testing.T) {
	h := newHarness(t, nil)
	h.e.mu.Lock()
	h.e.owned = map[int]uint64{0: 1, 1: 1}
	h.e.mu.Unlock()
	for _, s := range []string{"a", "b", "c", "d"} {
		h.e.enqueue(s, true, false)
	}
	h.e.enqueue("x", false, true)
	h.e.enqueue("c", false, true)
	h.e.enqueue("x", false, true) // coalesced
	var got []string
	for {
		s, w, ok := h.e.next()
		if !ok {
			break
		}
		if (s == "x" || s == "c") != !w.since.IsZero() {
			t.Fatalf("%s: since %v", s, w.since)
		}
		got = append(got, s)
		h.e.mu.Lock()
		delete(h.e.inflight, s)
		h.e.mu.Unlock()
	}
	if want := []string{"x", "c", "a", "b", "d"}; !slices.Equal(got, want) {
		t.Fatalf("taken %v, want %v", got, want)
	}
	if h.e.Status().Pending != 0 {
		t.Fatal("work left pending")
	}
}

package registryclient

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrysync/ferry/wire"
)

func instances(n int, base string) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = Instance{IP: fmt.Sprintf("%s.%d.%d", base, i/250, i%250), Port: 20880, Metadata: map[string]string{"side": "provider"}}
	}
	return out
}

// The schedule alone: instances spread evenly, each due once per period.
func TestBeatScheduleSpreadsEvenly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BeatInterval, cfg.BeatPeriod, cfg.BeatBuffer = time.Second, 5*time.Second, 1000
	var b beatState
	b.init(cfg)
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "s"}
	if fresh := b.keep(svc, instances(103, "10.0")); len(fresh) != 103 {
		t.Fatalf("fresh %d", len(fresh))
	}
	for _, s := range b.slots {
		if len(s) < 20 || len(s) > 21 {
			t.Fatalf("uneven slot %d", len(s))
		}
	}
	seen := map[Addr]int{}
	for i := 0; i < 5; i++ {
		b.advance()
		for _, bb := range b.drain() {
			for _, e := range bb.entries {
				seen[e.key.addr]++
			}
		}
	}
	if len(seen) != 103 {
		t.Fatalf("beaten %d of 103", len(seen))
	}
	for a, n := range seen {
		if n != 1 {
			t.Fatalf("%v beaten %d times in one period", a, n)
		}
	}
	// Idempotent: the same set changes nothing; a smaller set removes.
	if fresh := b.keep(svc, instances(103, "10.0")); len(fresh) != 0 {
		t.Fatalf("re-keep fresh %d", len(fresh))
	}
	b.keep(svc, instances(50, "10.0"))
	if b.size() != 50 {
		t.Fatalf("size %d", b.size())
	}
	changed := instances(50, "10.0")
	changed[7].Weight = 3
	if fresh := b.keep(svc, changed); len(fresh) != 1 || fresh[0].key.addr != changed[7].Addr() {
		t.Fatalf("changed fresh %d", len(fresh))
	}
	if got := b.release(svc, []Addr{changed[0].Addr()}); len(got) != 1 || b.size() != 49 {
		t.Fatalf("release one: %d, size %d", len(got), b.size())
	}
	b.release(svc, nil)
	if b.size() != 0 || len(b.bySvc) != 0 {
		t.Fatalf("release all: size %d", b.size())
	}
}

func TestBeatBufferDropsOldest(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BeatBuffer = 3
	var b beatState
	b.init(cfg)
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "s"}
	b.keep(svc, instances(5, "10.0"))
	var all []*beatEntry
	for _, s := range b.slots {
		all = append(all, s...)
	}
	dropped := 0
	for _, e := range all {
		dropped += b.enqueue(e)
	}
	if dropped != 2 {
		t.Fatalf("dropped %d", dropped)
	}
	out := b.drain()
	if len(out) != 1 || len(out[0].entries) != 3 {
		t.Fatalf("drained %+v", out)
	}
	for i, e := range out[0].entries {
		if e != all[i+2] {
			t.Fatalf("kept beat %d is not among the newest", i)
		}
	}
}

func TestMergedBeatsKeepTenThousand(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	// Services whose name ends in an odd digit belong to node b.
	owner := func(svc ServiceRef) string {
		n, _ := strconv.Atoi(svc.Name[len(svc.Name)-1:])
		if n%2 == 1 {
			return b.addr
		}
		return a.addr
	}
	a.redirectTo, b.redirectTo = owner, owner
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, a.addr) // the client knows only a
	cfg.Registerer = reg
	c := startClient(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	const services, per = 100, 100
	for s := 0; s < services; s++ {
		svc := ServiceRef{Name: fmt.Sprintf("providers:com.example.Svc%d", s)}
		if err := c.Keep(ctx, svc, instances(per, fmt.Sprintf("10.%d", s))); err != nil {
			t.Fatal(err)
		}
	}
	if c.KeptCount() != services*per {
		t.Fatalf("kept %d", c.KeptCount())
	}
	// The odd services were redirected: a cached redirect to b.
	odd := ServiceRef{Name: "providers:com.example.Svc1"}
	if n, ok := c.Redirect(odd); !ok || n != b.addr {
		t.Fatalf("redirect of %v = %q %v", odd, n, ok)
	}
	if a.keptCount() != services*per/2 {
		t.Fatalf("a holds %d after Keep", a.keptCount())
	}
	// Two periods of intervals, driven by hand: at most one batch per node
	// per interval, and every instance is beaten once per period.
	a.mu.Lock()
	a.lightRPCs, a.regRPCs, a.beatCount = 0, 0, map[string]int{}
	a.mu.Unlock()
	b.mu.Lock()
	b.lightRPCs, b.regRPCs, b.beatCount = 0, 0, map[string]int{}
	b.mu.Unlock()
	for i := 0; i < 10; i++ {
		c.beatOnce(ctx)
	}
	for _, f := range []*fakeServer{a, b} {
		f.mu.Lock()
		rpcs, beaten := f.lightRPCs+f.regRPCs, len(f.beatCount)
		min, max := 1<<30, 0
		for _, n := range f.beatCount {
			min, max = minInt(min, n), maxInt(max, n)
		}
		f.mu.Unlock()
		if rpcs > 10 {
			t.Errorf("%s: %d batch RPCs in 10 intervals", f.addr, rpcs)
		}
		if beaten != services*per/2 || min < 2 || max > 3 {
			t.Errorf("%s: %d instances beaten, %d..%d times in two periods", f.addr, beaten, min, max)
		}
	}
	if b.keptCount() != services*per/2 {
		t.Fatalf("b holds %d", b.keptCount())
	}
	if got := testutil.ToFloat64(c.m.beatsSent); got < 2*services*per {
		t.Fatalf("beats_sent %v", got)
	}
	if got := testutil.ToFloat64(c.m.redirects); got < services/2 {
		t.Fatalf("redirects %v", got)
	}
}

func TestBeatRedirectCachedAndCleared(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "moved"}
	a.redirectTo = func(ServiceRef) string { return b.addr }
	c := startClient(t, testConfig(t, a.addr))
	ctx := ctxT(t, 10*time.Second)
	if err := c.Keep(ctx, svc, instances(3, "10.0")); err != nil {
		t.Fatal(err)
	}
	if n, ok := c.Redirect(svc); !ok || n != b.addr {
		t.Fatalf("redirect %q %v", n, ok)
	}
	c.beatOnce(ctx) // the redirected beats go to b, registering them there
	if b.keptCount() != 3 || a.keptCount() != 0 {
		t.Fatalf("a %d b %d", a.keptCount(), b.keptCount())
	}
	for i := 0; i < 5; i++ {
		c.beatOnce(ctx)
	}
	if n := b.count(wire.TypeFerryBatchBeatRequest); n < 2 {
		t.Fatalf("b got %d batches", n)
	}
	// b dies: the next batch to it fails, the entry is cleared, the beats
	// go back to the main server, which redirects again.
	b.stop()
	a.redirectTo = nil
	for i := 0; i < 5; i++ {
		c.beatOnce(ctx)
	}
	if _, ok := c.Redirect(svc); ok {
		t.Fatal("redirect not cleared after an error")
	}
	eventually(t, "beats back on a", func() bool { c.beatOnce(ctx); return a.keptCount() == 3 })
}

func TestBeatUnknownReRegisters(t *testing.T) {
	f := startFake(t, true)
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 10*time.Second)
	svc := ServiceRef{Name: "s"}
	if err := c.Keep(ctx, svc, instances(10, "10.0")); err != nil {
		t.Fatal(err)
	}
	// The server forgets them (e.g. it restarted).
	f.mu.Lock()
	f.kept = map[ServiceRef]map[string]wire.Instance{}
	f.mu.Unlock()
	for i := 0; i < 5; i++ {
		c.beatOnce(ctx) // light beats: answered unknown
	}
	c.beatOnce(ctx) // the unknown ones, now full with registerIfUnknown
	if f.keptCount() != 10 {
		t.Fatalf("re-registered %d", f.keptCount())
	}
	f.mu.Lock()
	last := f.lastBeats
	f.mu.Unlock()
	if len(last) == 0 || last[0].Instance.Metadata["side"] != "provider" {
		t.Fatalf("re-register batch without the full instance: %+v", last)
	}
	// A changed instance is rewritten on the server (a beat alone would not).
	upd := instances(10, "10.0")
	upd[3].Metadata = map[string]string{"side": "provider", "version": "2"}
	if err := c.Keep(ctx, svc, upd); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := f.kept[svc.withDefaults()][upd[3].IP+":20880:"]
	f.mu.Unlock()
	if got.Metadata["version"] != "2" {
		t.Fatalf("changed instance not upserted: %+v", got)
	}
	// Forget deregisters; Release only stops beating.
	if err := c.Forget(ctx, svc, instances(1, "10.0")[0].Addr()); err != nil {
		t.Fatal(err)
	}
	if f.keptCount() != 9 || c.KeptCount() != 9 {
		t.Fatalf("after forget: server %d client %d", f.keptCount(), c.KeptCount())
	}
	c.Release(svc)
	if f.keptCount() != 9 || c.KeptCount() != 0 {
		t.Fatalf("after release: server %d client %d", f.keptCount(), c.KeptCount())
	}
}

func TestBeatOverflowDropsAndReports(t *testing.T) {
	f := startFake(t, true)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, f.addr)
	cfg.Registerer = reg
	cfg.BeatBuffer = 100
	logs := &logCapture{}
	cfg.Logger = newCaptureLogger(t, logs)
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Keep(ctx, ServiceRef{Name: "s"}, instances(1000, "10.0")); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx) // 200 due, room for 100: the 100 oldest dropped
	c.beatOnce(ctx)
	if got := testutil.ToFloat64(c.m.drops); got != 200 {
		t.Fatalf("drops %v", got)
	}
	f.mu.Lock()
	n := len(f.lastBeats)
	f.mu.Unlock()
	if n != 100 {
		t.Fatalf("last batch %d beats", n)
	}
	if got := strings.Count(logs.String(), "beat buffer full"); got != 1 {
		t.Fatalf("drop logged %d times, want once a minute", got)
	}
}

// The beat loop proper (real ticker): instances stay registered.
func TestBeatLoopRuns(t *testing.T) {
	f := startFake(t, true)
	cfg := testConfig(t, f.addr)
	cfg.BeatInterval, cfg.BeatPeriod = 20*time.Millisecond, 100*time.Millisecond
	c := startClient(t, cfg)
	if err := c.Keep(ctxT(t, 5*time.Second), ServiceRef{Name: "s"}, instances(50, "10.0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every instance beaten twice", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.beatCount) != 50 {
			return false
		}
		for _, n := range f.beatCount {
			if n < 3 {
				return false
			}
		}
		return true
	})
}

func minInt(a, b int) int { return min(a, b) }
func maxInt(a, b int) int { return max(a, b) }

func (r ServiceRef) withDefaults() ServiceRef {
	if r.Namespace == "" {
		r.Namespace = "public"
	}
	if r.Group == "" {
		r.Group = DefaultGroup
	}
	return r
}

// A slow node's batch in flight does not hold back the other nodes' beats:
// its due beats wait in the buffer instead.
func TestSlowNodeDoesNotDelayOthers(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	slow := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "slow"}
	fast := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "fast"}
	a.redirectTo = func(s ServiceRef) string {
		if s == slow {
			return b.addr
		}
		return ""
	}
	cfg := testConfig(t, a.addr)
	cfg.BeatPeriod = cfg.BeatInterval // one slot: everything is due every round
	cfg.RequestTimeout = 3 * time.Second
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Keep(ctx, slow, instances(3, "10.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Keep(ctx, fast, instances(3, "10.2")); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx) // registers the slow ones on b
	b.mu.Lock()
	b.beatDelay = 5 * time.Second
	b.mu.Unlock()
	base := a.count(wire.TypeFerryBatchBeatRequest)
	c.beatRound(ctx, false)
	eventually(t, "a beaten", func() bool { return a.count(wire.TypeFerryBatchBeatRequest) == base+1 })
	c.beatRound(ctx, false)
	eventually(t, "a beaten again", func() bool { return a.count(wire.TypeFerryBatchBeatRequest) == base+2 })
	c.beats.mu.Lock()
	inflight := c.beats.inflight[b.addr]
	queued := c.beats.n
	c.beats.mu.Unlock()
	if !inflight || queued != 3 {
		t.Fatalf("b in flight %v, %d beats waiting (want the 3 slow ones)", inflight, queued)
	}
}

package registryclient

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	owner := func(svc ServiceRef, _ string) string {
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
	// A 5,000-entry batch under -race on a loaded machine can take longer
	// than the usual test timeout of 1 s; a timed-out batch goes back into
	// the buffer and is sent again, so the fake would count its beats twice.
	// This test is about merging, not about timeouts.
	cfg.RequestTimeout = 15 * time.Second
	c := startClient(t, cfg)
	ctx := ctxT(t, 60*time.Second)
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
	// The odd services' addresses were redirected: cached redirects to b.
	odd := instances(per, "10.1")[7]
	if n, ok := c.Redirect(odd.IP, odd.Port); !ok || n != b.addr {
		t.Fatalf("redirect of %v = %q %v", odd.Addr(), n, ok)
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
		if failed := testutil.ToFloat64(c.m.beatResults.WithLabelValues("error")); failed > 0 {
			t.Errorf("%v beats failed (timed out?) and were sent again", failed)
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
	a.redirectTo = func(ServiceRef, string) string { return b.addr }
	c := startClient(t, testConfig(t, a.addr))
	ctx := ctxT(t, 10*time.Second)
	insts := instances(3, "10.0")
	if err := c.Keep(ctx, svc, insts); err != nil {
		t.Fatal(err)
	}
	if n, ok := c.Redirect(insts[2].IP, insts[2].Port); !ok || n != b.addr {
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
	for _, in := range insts {
		if _, ok := c.Redirect(in.IP, in.Port); ok {
			t.Fatal("redirect not cleared after an error")
		}
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
	a.redirectTo = func(s ServiceRef, _ string) string {
		if s == slow {
			return b.addr
		}
		return ""
	}
	cfg := testConfig(t, a.addr)
	cfg.BeatPeriod = cfg.BeatInterval // one slot: everything is due every round
	// b's beat must stay in flight through both rounds: far longer than a
	// loaded machine takes for them (3 s and 5 s were too little with
	// GOMAXPROCS=1).
	cfg.RequestTimeout = 30 * time.Second
	c := startClient(t, cfg)
	ctx := ctxT(t, 90*time.Second)
	if err := c.Keep(ctx, slow, instances(3, "10.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Keep(ctx, fast, instances(3, "10.2")); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx) // registers the slow ones on b
	b.mu.Lock()
	b.beatDelay = time.Minute
	b.mu.Unlock()
	base := a.count(wire.TypeFerryBatchBeatRequest)
	c.beatRound(ctx, false)
	// The fake counts a's beat when it arrives; the client clears a's
	// in-flight mark only once the answer is back. A round in between
	// drops a's beats as still in flight (seen with GOMAXPROCS=1), so wait
	// for both.
	inflight := func(node string) bool {
		c.beats.mu.Lock()
		defer c.beats.mu.Unlock()
		return c.beats.inflight[node]
	}
	eventually(t, "a beaten", func() bool {
		return a.count(wire.TypeFerryBatchBeatRequest) == base+1 && !inflight(a.addr)
	})
	c.beatRound(ctx, false)
	eventually(t, "a beaten again", func() bool { return a.count(wire.TypeFerryBatchBeatRequest) == base+2 })
	c.beats.mu.Lock()
	bInflight := c.beats.inflight[b.addr]
	queued := c.beats.n
	c.beats.mu.Unlock()
	if !bInflight || queued != 3 {
		t.Fatalf("b in flight %v, %d beats waiting (want the 3 slow ones)", bInflight, queued)
	}
}

// LightOnly: while on, instances the server no longer knows (another owner
// removed them) are not registered again and no full item is sent; the
// others go on being beaten. Lifting it registers the unknown ones at the
// next beat.
func TestLightOnlyRegistersNothing(t *testing.T) {
	f := startFake(t, true)
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 10*time.Second)
	svc := ServiceRef{Name: "s"}
	insts := instances(10, "10.0")
	if err := c.Keep(ctx, svc, insts); err != nil {
		t.Fatal(err)
	}
	c.LightOnly(svc, true)
	f.mu.Lock()
	for _, in := range insts[:4] {
		delete(f.kept[svc.withDefaults()], in.IP+":20880:")
	}
	f.mu.Unlock()
	fresh := Instance{IP: "10.9.9.9", Port: 20880}
	if err := c.Keep(ctx, svc, append(insts, fresh)); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		c.beatOnce(ctx)
		f.mu.Lock()
		last := f.lastBeats
		f.mu.Unlock()
		for _, b := range last {
			if b.Full() {
				t.Fatalf("light-only service sent a full item: %+v", b)
			}
		}
	}
	if n := f.keptCount(); n != 6 {
		t.Fatalf("server holds %d instances, want the 6 still known (nothing re-registered)", n)
	}
	c.LightOnly(svc, false)
	c.beatOnce(ctx)
	if n := f.keptCount(); n != 11 {
		t.Fatalf("after LightOnly off: server holds %d, want 11", n)
	}
}

// Distro makes one member responsible for each ip:port, so one service's
// instances are spread over the members: the redirect cache is per
// address. Two addresses of one service redirected to two different nodes
// are each beaten on their own node, interval after interval, with no
// bouncing (no further redirects) and still one merged batch per node per
// interval; a redirect answer moves only its address; a failed node drops
// only its entries; a released address loses its entry.
func TestBeatRedirectPerAddress(t *testing.T) {
	a, b, d := startFake(t, true), startFake(t, true), startFake(t, true)
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "spread"}
	insts := instances(5, "10.7") // 10.7.0.0 … 10.7.0.4
	owners := map[string]string{
		wire.BeatAddr(insts[0].IP, insts[0].Port): b.addr,
		wire.BeatAddr(insts[1].IP, insts[1].Port): d.addr,
		wire.BeatAddr(insts[2].IP, insts[2].Port): b.addr,
		wire.BeatAddr(insts[3].IP, insts[3].Port): d.addr,
		// insts[4]: a, the main server
	}
	var mu sync.Mutex
	owner := func(_ ServiceRef, addr string) string {
		mu.Lock()
		defer mu.Unlock()
		if o, ok := owners[addr]; ok {
			return o
		}
		return a.addr
	}
	for _, f := range []*fakeServer{a, b, d} {
		f.mu.Lock()
		f.redirectTo = owner
		f.mu.Unlock()
	}
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, a.addr) // the client knows only a
	cfg.Registerer = reg
	cfg.BeatPeriod = cfg.BeatInterval // one slot: every instance every interval
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Keep(ctx, svc, insts); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx) // the redirected ones are registered on their nodes
	eventually(t, "registered on their nodes", func() bool {
		return a.keptCount() == 1 && b.keptCount() == 2 && d.keptCount() == 2
	})
	for i, want := range []string{b.addr, d.addr, b.addr, d.addr} {
		if n, ok := c.Redirect(insts[i].IP, insts[i].Port); !ok || n != want {
			t.Fatalf("redirect of %s = %q %v, want %s", insts[i].IP, n, ok, want)
		}
	}
	if _, ok := c.Redirect(insts[4].IP, insts[4].Port); ok {
		t.Fatal("an address a is responsible for has a redirect entry")
	}
	// rounds runs n intervals and checks that every node got exactly one
	// batch per interval carrying its own addresses, and that no beat was
	// redirected (bounced).
	rounds := func(n int, want map[*fakeServer][]int) {
		t.Helper()
		base := map[*fakeServer]int{}
		for _, f := range []*fakeServer{a, b, d} {
			f.mu.Lock()
			f.beatCount = map[string]int{}
			f.mu.Unlock()
			base[f] = f.count(wire.TypeFerryBatchBeatRequest)
		}
		redirects := testutil.ToFloat64(c.m.redirects)
		for range n {
			c.beatOnce(ctx)
		}
		if got := testutil.ToFloat64(c.m.redirects) - redirects; got != 0 {
			t.Fatalf("%v beats redirected in %d intervals: they bounce", got, n)
		}
		for f, idx := range want {
			if rpcs := f.count(wire.TypeFerryBatchBeatRequest) - base[f]; rpcs != n {
				t.Errorf("%s: %d batch RPCs in %d intervals, want one per interval", f.addr, rpcs, n)
			}
			f.mu.Lock()
			beaten := len(f.beatCount)
			for _, i := range idx {
				if k := svc.String() + "|" + insts[i].IP + ":20880:"; f.beatCount[k] != n {
					t.Errorf("%s: %s beaten %d times in %d intervals (%v)", f.addr, insts[i].IP, f.beatCount[k], n, f.beatCount)
				}
			}
			f.mu.Unlock()
			if beaten != len(idx) {
				t.Errorf("%s: %d addresses beaten, want %d", f.addr, beaten, len(idx))
			}
		}
	}
	rounds(4, map[*fakeServer][]int{a: {4}, b: {0, 2}, d: {1, 3}})

	// Responsibility for insts[0] moves to d: b's redirect answer moves
	// that address alone; insts[2] stays on b.
	mu.Lock()
	owners[wire.BeatAddr(insts[0].IP, insts[0].Port)] = d.addr
	mu.Unlock()
	c.beatOnce(ctx) // b redirects insts[0]
	c.beatOnce(ctx) // insts[0] registered on d
	if n, _ := c.Redirect(insts[0].IP, insts[0].Port); n != d.addr {
		t.Fatalf("moved address cached at %q, want %s", n, d.addr)
	}
	if n, _ := c.Redirect(insts[2].IP, insts[2].Port); n != b.addr {
		t.Fatalf("the other address of b cached at %q, want %s still", n, b.addr)
	}
	rounds(4, map[*fakeServer][]int{a: {4}, b: {2}, d: {0, 1, 3}})

	// d fails: its entries (and only those) are dropped; the membership
	// now makes a responsible for them.
	mu.Lock()
	for k, o := range owners {
		if o == d.addr {
			delete(owners, k)
		}
	}
	mu.Unlock()
	d.stop()
	c.beatOnce(ctx) // the batch to d fails
	for _, i := range []int{0, 1, 3} {
		if n, ok := c.Redirect(insts[i].IP, insts[i].Port); ok {
			t.Fatalf("%s still cached at %q after its node failed", insts[i].IP, n)
		}
	}
	if n, _ := c.Redirect(insts[2].IP, insts[2].Port); n != b.addr {
		t.Fatalf("b's address cached at %q after d failed, want %s", n, b.addr)
	}
	// Back on a: answered unknown there, then registered.
	eventually(t, "d's addresses on a", func() bool { c.beatOnce(ctx); return a.keptCount() == 4 })
	rounds(3, map[*fakeServer][]int{a: {0, 1, 3, 4}, b: {2}})

	// Bounded: a released address loses its entry.
	c.Release(svc, insts[2].Addr())
	if n, ok := c.Redirect(insts[2].IP, insts[2].Port); ok {
		t.Fatalf("released address still cached at %q", n)
	}
	c.beats.mu.Lock()
	entries, clients := len(c.beats.redirect), len(c.beats.clients)
	c.beats.mu.Unlock()
	if entries != 0 || clients != 4 {
		t.Fatalf("after release: %d redirect entries, %d clients counted", entries, clients)
	}
}

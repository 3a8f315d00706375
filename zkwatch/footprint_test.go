package zkwatch

import (
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/go-zookeeper/zk"
)

// within reports whether s's bytes lie inside base's.
func within(s, base string) bool {
	if len(s) == 0 || len(base) == 0 {
		return false
	}
	p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(base)))
	return p >= b && p < b+uintptr(len(base))
}

// A parsed URL holds no substring of the string it was parsed from: the
// engine's metadata built from it must not keep every provider's whole
// decoded node name alive. Shared values are one copy across providers.
func TestParsedURLSharesNothingWithItsInput(t *testing.T) {
	const iface = "org.apache.dubbo.demo.DemoService"
	a := strings.Clone(provURL(iface, "10.0.0.1", 20880, 1700000000000, "pid=4242"))
	b := strings.Clone(provURL(iface, "10.0.0.2", 20880, 1700000000001, "pid=4343"))
	ua, err := ParseURL(a)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := ParseURL(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{ua.Protocol, ua.Host, ua.Path} {
		if within(s, a) {
			t.Errorf("%q points into the parsed string", s)
		}
	}
	for k, v := range ua.Params {
		if within(k, a) || within(v, a) {
			t.Errorf("param %s=%s points into the parsed string", k, v)
		}
		if k == "timestamp" || k == "pid" {
			continue
		}
		if vb := ub.Params[k]; vb == v && unsafe.StringData(vb) != unsafe.StringData(v) {
			t.Errorf("param %s=%s: two copies for two providers", k, v)
		}
	}
	if ua.Params["timestamp"] != "1700000000000" || ua.Params["pid"] != "4242" || ua.Host != "10.0.0.1" {
		t.Fatalf("parsed %+v", ua)
	}
}

// The watcher keeps each provider's path once: its map key is a substring
// of the kept path, and snapshots hand out that same string as Node.
func TestProviderPathKeptOnce(t *testing.T) {
	w, err := New(func() Config { c := DefaultConfig(); c.Servers = []string{"127.0.0.1:1"}; return c }(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const iface = "org.apache.dubbo.demo.DemoService"
	p := "/dubbo/" + url.QueryEscape(iface) + "/providers"
	listing := func() []string { // a fresh copy per listing, as the ZooKeeper client decodes them
		return []string{
			strings.Clone(url.QueryEscape(provURL(iface, "10.0.0.1", 20880, 1700000000000, ""))),
			strings.Clone(url.QueryEscape(provURL(iface, "10.0.0.2", 20880, 1700000000000, ""))),
		}
	}
	s := &service{name: iface, raw: url.QueryEscape(iface)}
	w.mu.Lock()
	w.services[iface], w.byRaw[s.raw] = s, s
	w.applyProvidersLocked(s, p, listing(), false)
	kept := map[string]string{}
	for k, e := range s.providers {
		kept[k] = e.node
	}
	if w.applyProvidersLocked(s, p, listing(), false) {
		t.Error("the same listing again reported a change")
	}
	for k, e := range s.providers {
		if !within(k, e.node) {
			t.Errorf("key %.40s... is not a substring of the kept path", k)
		}
		if unsafe.StringData(e.node) != unsafe.StringData(kept[k]) {
			t.Errorf("an unchanged provider's path was copied again")
		}
	}
	w.mu.Unlock()
	snap, ok := w.Snapshot(iface)
	if !ok || len(snap.Providers) != 2 {
		t.Fatalf("snapshot %+v %v", snap, ok)
	}
	for _, pr := range snap.Providers {
		e, ok := s.providers[pr.Node[len(p)+1:]]
		if !ok || unsafe.StringData(pr.Node) != unsafe.StringData(e.node) {
			t.Errorf("snapshot Node %.40s... is a copy, not the kept path", pr.Node)
		}
	}
}

// A provider node created and deleted in a loop makes its service
// flapping: counted and reported once per window, while another service's
// providers stay as they are and its final state is right.
func TestFlappingNodeCountedAndReportedOnce(t *testing.T) {
	e := newEnv(t)
	const flappy, calm = "com.foo.Flappy", "com.foo.Calm"
	addProvider(t, e.c, "dubbo", flappy, provURL(flappy, "10.7.0.1", 20880, 1700000000000, ""), true)
	addProvider(t, e.c, "dubbo", calm, provURL(calm, "10.7.0.2", 20880, 1700000000000, ""), true)
	var mu sync.Mutex
	reports := map[string]int{}
	w := e.watcher(t, func(c *Config) {
		c.FlapChanges, c.FlapWindow = 20, time.Hour
		c.OnFlap = func(service string, changes int, window time.Duration) {
			mu.Lock()
			reports[service]++
			mu.Unlock()
		}
	})
	rec := record(t, w, nil)
	waitFor(t, "synced", w.Synced)
	node := provURL(flappy, "10.7.0.9", 20880, 1700000000000, "")
	// Each round waits for the watcher to see the node, so every round is
	// two changes the watcher lists (a bounded loop, 100 rounds).
	for i := range 100 {
		p := addProvider(t, e.c, "dubbo", flappy, node, true)
		waitFor(t, "flap "+itoa(i)+" seen", func() bool { _, ok := w.mustSnapshot(t, flappy).Providers["10.7.0.9:20880"]; return ok })
		del(t, e.c, p)
		waitFor(t, "flap "+itoa(i)+" gone", func() bool { _, ok := w.mustSnapshot(t, flappy).Providers["10.7.0.9:20880"]; return !ok })
	}
	mu.Lock()
	got := maps.Clone(reports)
	mu.Unlock()
	if got[flappy] != 1 || len(got) != 1 {
		t.Fatalf("flap reports %v, want one for %s", got, flappy)
	}
	if n := counter(t, w.m.flapping); n != 1 {
		t.Fatalf("zkwatch_flapping_total %v, want 1 (once per window)", n)
	}
	if s := w.mustSnapshot(t, calm); len(s.Providers) != 1 {
		t.Fatalf("the calm service has %v", providerAddrs(s))
	}
	if s := w.mustSnapshot(t, flappy); len(s.Providers) != 1 {
		t.Fatalf("the flapping service ends with %v, want its one stable provider", providerAddrs(s))
	}
	if rec.count(calm) > 1 {
		t.Fatalf("the calm service was notified %d times", rec.count(calm))
	}
}

// Ten times more changes than live providers — services created and
// deleted in a loop, providers restarted, bad nodes — leave the watcher's
// structures at the live size (bad nodes at most MaxSkipped).
func TestWatcherBoundedUnderChurn(t *testing.T) {
	e := newEnv(t)
	const services, perSvc, maxSkipped = 4, 5, 4
	live := services * perSvc
	mkdirs(t, e.c, "/dubbo")
	w := e.watcher(t, func(c *Config) { c.MaxSkipped = maxSkipped })
	record(t, w, nil) // a reader of Changes, as the engine
	waitFor(t, "synced", w.Synced)
	nodes := make([][]string, services)
	iface := func(s int) string { return "com.foo.Bounded" + itoa(s) }
	for s := range services {
		for j := range perSvc {
			nodes[s] = append(nodes[s], addProvider(t, e.c, "dubbo", iface(s), provURL(iface(s), "10.8."+itoa(s)+"."+itoa(j), 20880, 1700000000000, ""), true))
		}
	}
	ts := int64(1700000000001)
	changes := 0
	for round := 0; changes < 10*live; round++ {
		for s := range services {
			j := round % perSvc
			ts++
			n := addProvider(t, e.c, "dubbo", iface(s), provURL(iface(s), "10.8."+itoa(s)+"."+itoa(j), 20880, ts, ""), true)
			del(t, e.c, nodes[s][j])
			nodes[s][j] = n
			changes += 2
		}
		if round%5 == 0 { // a throwaway service, created and deleted
			tmp := "com.foo.Temp" + itoa(round)
			p := addProvider(t, e.c, "dubbo", tmp, provURL(tmp, "10.9.0.1", 20880, ts, ""), true)
			waitFor(t, "temp service seen", func() bool { _, ok := w.Snapshot(tmp); return ok })
			del(t, e.c, p)
			dir := "/dubbo/" + url.QueryEscape(tmp)
			del(t, e.c, dir+"/providers")
			del(t, e.c, dir)
			changes += 4
		}
		if round%3 == 0 { // a bad node, never the same name
			dir := "/dubbo/" + url.QueryEscape(iface(0)) + "/providers/"
			if _, err := e.c.Create(dir+"not-a-url-"+itoa(round), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
				t.Fatal(err)
			}
			changes++
		}
	}
	waitFor(t, "the churn applied", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.provCount == live && len(w.services) == services && w.q.busy() == 0
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byRaw) != services {
		t.Errorf("byRaw %d, want %d", len(w.byRaw), services)
	}
	n := 0
	for _, s := range w.services {
		n += len(s.providers)
	}
	if n != live {
		t.Errorf("%d provider entries, want %d", n, live)
	}
	if len(w.skipped) > maxSkipped {
		t.Errorf("%d skipped paths remembered, want ≤ %d", len(w.skipped), maxSkipped)
	}
	w.mu.Unlock()
	if g := counter(t, w.m.remembered); g != float64(maxSkipped) {
		t.Errorf("zkwatch_skipped_paths_remembered %v, want %d (the bound, reached)", g, maxSkipped)
	}
	w.mu.Lock()
	if n := scanUnready(w); n != w.unready || n != 0 {
		t.Errorf("unready count %d, a scan finds %d", w.unready, n)
	}
}

// scanUnready counts the services not listed in this session the slow way
// (what Synced did before it kept the count). w.mu held.
func scanUnready(w *Watcher) int {
	n := 0
	for _, s := range w.services {
		if s.svcGen != w.gen || (s.hasProvChild && s.provGen != w.gen) {
			n++
		}
	}
	return n
}

// A provider with a very large URL (a 10 KiB parameter) is watched and
// parsed like any other, and its neighbours are unaffected.
func TestLargeProviderURL(t *testing.T) {
	e := newEnv(t)
	const iface = "com.foo.Large"
	big := strings.Repeat("m", 10<<10)
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.10.0.1", 20880, 1700000000000, "methods2="+big), true)
	addProvider(t, e.c, "dubbo", iface, provURL(iface, "10.10.0.2", 20880, 1700000000000, ""), true)
	w := e.watcher(t, nil)
	waitFor(t, "synced", w.Synced)
	s := w.mustSnapshot(t, iface)
	if len(s.Providers) != 2 || s.Providers["10.10.0.1:20880"].URL.Params["methods2"] != big {
		t.Fatalf("snapshot of the large provider: %d providers", len(s.Providers))
	}
	if s.Providers["10.10.0.2:20880"].URL.Params["side"] != "provider" {
		t.Fatal("the neighbour lost its parameters")
	}
}

package syncer

// Deterministic in-package fakes for the parts that do not exist on this
// branch yet (zkwatch, registryclient, store). Integration tests against the
// real ZooKeeper, registry and store replace them after the merge.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
)

// fakeClock fires After channels only when advanced.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), c: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.c <- c.now
			continue
		}
		keep = append(keep, w)
	}
	c.waiters = keep
}

// fakeSource is a ZooKeeper catalog held in memory.
type fakeSource struct {
	mu      sync.Mutex
	snaps   map[string]ServiceSnapshot
	synced  bool
	exists  map[string]bool // ProviderExists answers; missing → false
	existsE error
	changes chan string
	sent    atomic.Uint64
}

func newFakeSource() *fakeSource {
	return &fakeSource{snaps: map[string]ServiceSnapshot{}, synced: true, exists: map[string]bool{}, changes: make(chan string, 4096)}
}

func (f *fakeSource) Changes() <-chan string { return f.changes }

func (f *fakeSource) Snapshot(s string) (ServiceSnapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, ok := f.snaps[s]
	return snap, ok
}

func (f *fakeSource) Services() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.snaps))
	for s := range f.snaps {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (f *fakeSource) Synced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeSource) setSynced(v bool) {
	f.mu.Lock()
	f.synced = v
	f.mu.Unlock()
}

func (f *fakeSource) ProviderExists(_ context.Context, node string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists[node], f.existsE
}

// set replaces a service's providers (zkwatch's view: newest per address,
// older ones shadowed) and notifies.
func (f *fakeSource) set(service string, provs ...Provider) {
	f.mu.Lock()
	snap := ServiceSnapshot{Service: service, Providers: map[string]Provider{}, Revision: f.snaps[service].Revision + 1}
	for _, p := range provs {
		a := Addr(p.URL.Host, p.URL.Port)
		cur, ok := snap.Providers[a]
		switch {
		case !ok:
			snap.Providers[a] = p
		case p.Timestamp > cur.Timestamp:
			snap.Shadowed = append(snap.Shadowed, cur)
			snap.Providers[a] = p
		default:
			snap.Shadowed = append(snap.Shadowed, p)
		}
		f.exists[p.Node] = true
	}
	f.snaps[service] = snap
	f.mu.Unlock()
	f.notify(service)
}

func (f *fakeSource) notify(service string) {
	f.sent.Add(1)
	f.changes <- service
}

func (f *fakeSource) remove(service string) {
	f.mu.Lock()
	delete(f.snaps, service)
	f.mu.Unlock()
	f.notify(service)
}

func prov(iface, host string, port int, ts int64, kv ...string) Provider {
	params := map[string]string{"interface": iface, "application": "app-" + iface, "timestamp": fmt.Sprint(ts), "side": "provider"}
	for i := 0; i+1 < len(kv); i += 2 {
		params[kv[i]] = kv[i+1]
	}
	node := fmt.Sprintf("/dubbo/%s/providers/dubbo://%s:%d/%s?timestamp=%d", iface, host, port, iface, ts)
	// Timestamp in ms as zkwatch normalises it (small test values count as seconds).
	return Provider{Node: node, Timestamp: metaTimestamp(fmt.Sprint(ts)), URL: URL{Protocol: "dubbo", Host: host, Port: port, Path: iface, Params: params}}
}

var errInjected = errors.New("injected registry failure")

// fakeRegistry is the target registry plus the client's beat set.
type fakeRegistry struct {
	mu        sync.Mutex
	insts     map[string]map[string]Instance // service name → addr → instance
	beating   map[string]map[string]bool     // service name → addrs the client beats
	keeps     int
	deregs    []string // "name addr"
	releases  int
	light     map[string]bool // service name → LightOnly on
	failCalls int             // fail the next n calls
	// keepFailKept makes the next n Keeps fail after keeping the set, as
	// the real client does when the immediate registration fails.
	keepFailKept int
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{insts: map[string]map[string]Instance{}, beating: map[string]map[string]bool{}}
}

func (r *fakeRegistry) fail() error {
	if r.failCalls > 0 {
		r.failCalls--
		return errInjected
	}
	return nil
}

func (r *fakeRegistry) Keep(_ context.Context, svc ServiceRef, insts []Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail(); err != nil {
		return err
	}
	r.keeps++
	if r.insts[svc.Name] == nil {
		r.insts[svc.Name] = map[string]Instance{}
	}
	b := map[string]bool{}
	for _, in := range insts {
		r.insts[svc.Name][in.Addr()] = in
		b[in.Addr()] = true
	}
	r.beating[svc.Name] = b
	if r.keepFailKept > 0 {
		r.keepFailKept--
		return errInjected
	}
	return nil
}

func (r *fakeRegistry) Deregister(_ context.Context, svc ServiceRef, insts []Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail(); err != nil {
		return err
	}
	for _, in := range insts {
		delete(r.insts[svc.Name], in.Addr())
		delete(r.beating[svc.Name], in.Addr())
		r.deregs = append(r.deregs, svc.Name+" "+in.Addr())
	}
	return nil
}

func (r *fakeRegistry) Release(svc ServiceRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releases++
	delete(r.beating, svc.Name)
	delete(r.light, svc.Name)
}

func (r *fakeRegistry) LightOnly(svc ServiceRef, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.light == nil {
		r.light = map[string]bool{}
	}
	if on {
		r.light[svc.Name] = true
	} else {
		delete(r.light, svc.Name)
	}
}

func (r *fakeRegistry) isLight(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.light[name]
}

func (r *fakeRegistry) List(_ context.Context, svc ServiceRef) ([]Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail(); err != nil {
		return nil, err
	}
	var out []Instance
	for _, in := range r.insts[svc.Name] {
		in.Metadata = maps.Clone(in.Metadata)
		out = append(out, in)
	}
	return out, nil
}

// expireUnbeaten drops the instances nobody beats (the registry's beat
// timeout).
func (r *fakeRegistry) expireUnbeaten() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, insts := range r.insts {
		for a := range insts {
			if !r.beating[name][a] {
				delete(insts, a)
			}
		}
	}
}

func (r *fakeRegistry) get(name, addr string) (Instance, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.insts[name][addr]
	return in, ok
}

func (r *fakeRegistry) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.insts[name])
}

func (r *fakeRegistry) beatCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.beating {
		n += len(b)
	}
	return n
}

func (r *fakeRegistry) put(name string, in Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.insts[name] == nil {
		r.insts[name] = map[string]Instance{}
	}
	r.insts[name][in.Addr()] = in
}

// fakeOwnership: shard leases.
type fakeOwnership struct {
	mu      sync.Mutex
	owned   map[int]uint64
	kept    map[int]uint64
	changed chan struct{}
}

func newFakeOwnership(shards ...int) *fakeOwnership {
	o := &fakeOwnership{owned: map[int]uint64{}, kept: map[int]uint64{}, changed: make(chan struct{}, 1)}
	for _, s := range shards {
		o.owned[s] = 1
	}
	return o
}

func (o *fakeOwnership) Owned() map[int]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.owned)
}

func (o *fakeOwnership) Owns(shard int, epoch uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	ep, ok := o.owned[shard]
	return ok && ep == epoch
}

func (o *fakeOwnership) Kept() map[int]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.kept)
}

func (o *fakeOwnership) Changed() <-chan struct{} { return o.changed }

// outage moves every owned shard to kept (a store outage lapsed them).
func (o *fakeOwnership) outage() {
	o.mu.Lock()
	maps.Copy(o.kept, o.owned)
	o.owned = map[int]uint64{}
	o.mu.Unlock()
	o.signal()
}

// recover ends an outage: kept shards in confirm are owned again with
// their epoch, the others moved.
func (o *fakeOwnership) recover(confirm ...int) {
	o.mu.Lock()
	for _, sh := range confirm {
		if ep, ok := o.kept[sh]; ok {
			o.owned[sh] = ep
		}
	}
	o.kept = map[int]uint64{}
	o.mu.Unlock()
	o.signal()
}

func (o *fakeOwnership) signal() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *fakeOwnership) set(shard int, epoch uint64, own bool) {
	o.mu.Lock()
	if own {
		o.owned[shard] = epoch
	} else {
		delete(o.owned, shard)
	}
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// fakeApps: app modes.
type fakeApps struct {
	mu      sync.Mutex
	modes   map[string]AppMode
	changed chan struct{}
}

func newFakeApps() *fakeApps {
	return &fakeApps{modes: map[string]AppMode{}, changed: make(chan struct{}, 1)}
}

func (a *fakeApps) Mode(app string) AppMode {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m, ok := a.modes[app]; ok {
		return m
	}
	return ModeSync
}

func (a *fakeApps) Changed() <-chan struct{} { return a.changed }

func (a *fakeApps) set(app string, m AppMode) {
	a.mu.Lock()
	a.modes[app] = m
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// fakeEvents collects events.
type fakeEvents struct {
	mu  sync.Mutex
	evs []Event
}

func (f *fakeEvents) Record(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, ev)
}

func (f *fakeEvents) count(k EventKind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ev := range f.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// fakeProber fails for the addresses in down.
type fakeProber struct {
	mu   sync.Mutex
	down map[string]bool
}

func (p *fakeProber) Probe(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[addr] {
		return errors.New("connection refused")
	}
	return nil
}

// testLogger routes slog to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return testlog.New(t, slog.LevelDebug)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 15*time.Second, what, cond)
}

func (r *fakeRegistry) keepCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keeps
}

// beating1 reports whether the client beats addr of name.
func (r *fakeRegistry) beating1(name, addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.beating[name][addr]
}

package naming

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func newTestRegistry(t *testing.T) (*Registry, *fakeClock, *[]ServiceKey) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	r := NewRegistry(DefaultConfig(), clk.Now)
	var mu sync.Mutex
	changes := &[]ServiceKey{}
	r.OnChange(func(k ServiceKey) { mu.Lock(); *changes = append(*changes, k); mu.Unlock() })
	return r, clk, changes
}

var demo = ServiceKey{Name: "demo"}
var demoFull = ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

func inst(ip string, port int) Instance {
	return Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
}

func hostsOf(t *testing.T, r *Registry, k ServiceKey, healthyOnly bool, clusters ...string) []Instance {
	t.Helper()
	si, err := r.Select(k, clusters, healthyOnly)
	if err != nil {
		t.Fatal(err)
	}
	return si.Hosts
}

func TestRegisterDefaultsAndIDs(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	in := inst("10.0.0.1", 8080)
	in.Metadata = map[string]string{"k": "v"}
	if err := r.Register("c1", demo, in); err != nil {
		t.Fatal(err)
	}
	in2 := inst("10.0.0.2", 8080)
	in2.Cluster = "C1"
	if err := r.Register("c2", demo, in2); err != nil {
		t.Fatal(err)
	}
	hosts := hostsOf(t, r, demo, false)
	if len(hosts) != 2 {
		t.Fatalf("hosts = %+v", hosts)
	}
	// The id uses the cluster as sent (empty), the cluster defaults to DEFAULT.
	if hosts[0].ID != "10.0.0.1#8080##DEFAULT_GROUP@@demo" || hosts[0].Cluster != "DEFAULT" || !hosts[0].Ephemeral {
		t.Errorf("host 0 = %+v", hosts[0])
	}
	if hosts[1].ID != "10.0.0.2#8080#C1#DEFAULT_GROUP@@demo" || hosts[1].Cluster != "C1" {
		t.Errorf("host 1 = %+v", hosts[1])
	}
	if got := hostsOf(t, r, demo, false, "C1"); len(got) != 1 || got[0].IP != "10.0.0.2" {
		t.Errorf("cluster filter: %+v", got)
	}
	si, _ := r.Select(demo, []string{"C1", "DEFAULT"}, false)
	if si.Clusters != "C1,DEFAULT" || si.Key != demoFull || si.CacheMillis != 10000 {
		t.Errorf("info = %+v", si)
	}
}

func TestReRegisterReplacesAndDeregister(t *testing.T) {
	r, _, changes := newTestRegistry(t)
	must(t, r.Register("c1", demo, inst("10.0.0.1", 1)))
	must(t, r.Register("c1", demo, inst("10.0.0.1", 2)))
	if h := hostsOf(t, r, demo, false); len(h) != 1 || h[0].Port != 2 {
		t.Fatalf("re-register did not replace: %+v", h)
	}
	n := len(*changes)
	must(t, r.Register("c1", demo, inst("10.0.0.1", 2))) // idempotent redo
	if len(*changes) != n {
		t.Errorf("identical re-registration notified")
	}
	must(t, r.Register("c1", demo, inst("10.0.0.1", 3), inst("10.0.0.1", 4))) // batch replaces
	if h := hostsOf(t, r, demo, false); len(h) != 2 || h[0].Port != 3 || h[1].Port != 4 {
		t.Fatalf("batch: %+v", h)
	}
	must(t, r.Register("c2", demo, inst("10.0.0.9", 1)))
	must(t, r.Deregister("c1", demo)) // whatever the instance fields
	if h := hostsOf(t, r, demo, false); len(h) != 1 || h[0].IP != "10.0.0.9" {
		t.Fatalf("deregister: %+v", h)
	}
	must(t, r.Deregister("nobody", demo))
}

func TestDropClient(t *testing.T) {
	r, _, changes := newTestRegistry(t)
	other := ServiceKey{Name: "other"}
	must(t, r.Register("c1", demo, inst("10.0.0.1", 1)))
	must(t, r.Register("c1", other, inst("10.0.0.1", 1)))
	must(t, r.Register("c2", demo, inst("10.0.0.2", 1)))
	must(t, r.Subscribe("c1", demo, ""))
	*changes = nil
	r.DropClient("c1")
	if h := hostsOf(t, r, demo, false); len(h) != 1 || h[0].IP != "10.0.0.2" {
		t.Fatalf("after drop: %+v", h)
	}
	if h := hostsOf(t, r, other, false); len(h) != 0 {
		t.Fatalf("after drop: %+v", h)
	}
	if len(r.Subscribers(demoFull)) != 0 {
		t.Errorf("subscription survived")
	}
	if len(*changes) != 2 {
		t.Errorf("changes = %v", *changes)
	}
	r.DropClient("c1") // twice is fine
}

func TestValidation(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	bad := func(f func(*Instance)) Instance { in := inst("10.0.0.1", 80); f(&in); return in }
	tests := []struct {
		name string
		key  ServiceKey
		in   Instance
		want error
	}{
		{"empty service", ServiceKey{}, inst("1.1.1.1", 1), ErrInvalidParam},
		{"grouped service", ServiceKey{Name: "g@@x"}, inst("1.1.1.1", 1), ErrInvalidParam},
		{"empty ip", demo, bad(func(i *Instance) { i.IP = "" }), ErrInvalidParam},
		{"port 0", demo, bad(func(i *Instance) { i.Port = 0 }), ErrInvalidParam},
		{"port big", demo, bad(func(i *Instance) { i.Port = 70000 }), ErrInvalidParam},
		{"weight negative", demo, bad(func(i *Instance) { i.Weight = -1 }), ErrInvalidParam},
		{"weight big", demo, bad(func(i *Instance) { i.Weight = 10001 }), ErrInvalidParam},
		{"cluster chars", demo, bad(func(i *Instance) { i.Cluster = "a_b" }), ErrInvalidParam},
		{"beat timeout < interval", demo, bad(func(i *Instance) {
			i.Metadata = map[string]string{MetaHeartBeatInterval: "10000", MetaHeartBeatTimeout: "5000"}
		}), ErrInvalidParam},
		{"bad beat number", demo, bad(func(i *Instance) { i.Metadata = map[string]string{MetaIPDeleteTimeout: "x"} }), ErrInvalidParam},
		{"metadata too big", demo, bad(func(i *Instance) {
			i.Metadata = map[string]string{"k": string(make([]byte, 70000))}
		}), ErrLimitExceeded},
		{"name too long", ServiceKey{Name: string(make([]byte, 600))}, inst("1.1.1.1", 1), ErrLimitExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Register("c", tt.key, tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if len(r.Services()) != 0 {
		t.Errorf("invalid registrations left services: %v", r.Services())
	}
	many := make([]Instance, r.cfg.MaxBatch+1)
	if err := r.Register("c", demo, many...); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("batch limit: %v", err)
	}
}

func TestFiltersAndProtectThreshold(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	a, b, c := inst("10.0.0.1", 1), inst("10.0.0.2", 1), inst("10.0.0.3", 1)
	b.Healthy = false
	c.Enabled = false
	must(t, r.Register("c1", demo, a, b, c))
	if h := hostsOf(t, r, demo, false); len(h) != 2 {
		t.Errorf("enabled filter: %+v", h)
	}
	if h := hostsOf(t, r, demo, true); len(h) != 1 || h[0].IP != "10.0.0.1" {
		t.Errorf("healthyOnly: %+v", h)
	}
	// Threshold 0.6: 1 healthy of 2 enabled = 0.5 ≤ 0.6 → all, flipped healthy.
	r.SetServiceMeta(demo, ServiceMeta{ProtectThreshold: 0.6, Ephemeral: true})
	si, _ := r.Select(demo, nil, true)
	if !si.ReachProtectionThreshold || len(si.Hosts) != 2 || !si.Hosts[1].Healthy {
		t.Errorf("protect: %+v", si)
	}
	// Nacos' default threshold 0: protection only when none is healthy.
	r.SetServiceMeta(demo, ServiceMeta{ProtectThreshold: 0, Ephemeral: true})
	if si, _ := r.Select(demo, nil, true); si.ReachProtectionThreshold || len(si.Hosts) != 1 {
		t.Errorf("threshold 0 with a healthy host: %+v", si)
	}
}

func TestLastRefTimeStrictlyIncreases(t *testing.T) {
	r, _, _ := newTestRegistry(t) // the clock never moves
	var last int64
	for i := 0; i < 100; i++ {
		si, _ := r.Select(demo, nil, false)
		if si.LastRefTime <= last {
			t.Fatalf("lastRefTime %d after %d", si.LastRefTime, last)
		}
		last = si.LastRefTime
	}
}

func TestBeatKeptExpiry(t *testing.T) {
	r, clk, changes := newTestRegistry(t)
	x := inst("10.0.0.1", 20880)
	res, err := r.Beat(demo, x, false)
	if err != nil || res.Status != BeatUnknown {
		t.Fatalf("unknown beat: %+v %v", res, err)
	}
	res, err = r.Beat(demo, x, true)
	if err != nil || res.Status != BeatRegistered || res.Interval != 5*time.Second {
		t.Fatalf("register beat: %+v %v", res, err)
	}
	y := inst("10.0.0.2", 20880)
	y.Metadata = map[string]string{MetaHeartBeatTimeout: "3000", MetaIPDeleteTimeout: "6000", MetaHeartBeatInterval: "1000"}
	must(t, r.RegisterBeatKept(demo, y))

	r.Expire(clk.Add(3 * time.Second)) // exactly y's timeout: not yet
	if h := hostsOf(t, r, demo, true); len(h) != 2 {
		t.Fatalf("early: %+v", h)
	}
	r.Expire(clk.Add(time.Millisecond))
	if h := hostsOf(t, r, demo, true); len(h) != 1 || h[0].IP != "10.0.0.1" {
		t.Fatalf("y should be unhealthy: %+v", h)
	}
	*changes = nil
	res, _ = r.Beat(demo, Instance{IP: "10.0.0.2", Port: 20880}, false) // a beat heals
	if res.Status != BeatOK || res.Interval != time.Second || len(*changes) != 1 {
		t.Fatalf("heal: %+v %v", res, *changes)
	}
	if h := hostsOf(t, r, demo, true); len(h) != 2 {
		t.Fatalf("healed: %+v", h)
	}
	r.Expire(clk.Add(6*time.Second + time.Millisecond)) // y deleted; x (beat at 0) at 9s: healthy
	h := hostsOf(t, r, demo, false)
	if len(h) != 1 || h[0].IP != "10.0.0.1" || !h[0].Healthy {
		t.Fatalf("after y delete: %+v", h)
	}
	r.Expire(clk.Add(6 * time.Second)) // x at 15.001 s → unhealthy
	if h := hostsOf(t, r, demo, true); len(h) != 0 {
		t.Fatalf("x should be unhealthy: %+v", h)
	}
	r.Expire(clk.Add(15 * time.Second)) // x at 30.001 s → gone
	if h := hostsOf(t, r, demo, false); len(h) != 0 {
		t.Fatalf("x should be gone: %+v", h)
	}
	if !r.ServiceExists(demo) {
		t.Fatal("empty service cleaned too early")
	}
	r.Expire(clk.Add(61 * time.Second))
	if r.ServiceExists(demo) {
		t.Fatal("empty service not cleaned")
	}
	must(t, r.RegisterBeatKept(demo, x))
	must(t, r.DeregisterBeatKept(demo, Addr{IP: "10.0.0.1", Port: 20880}))
	if h := hostsOf(t, r, demo, false); len(h) != 0 {
		t.Fatalf("deregister beat-kept: %+v", h)
	}
}

func TestPersistentOverridesHealth(t *testing.T) {
	r, _, changes := newTestRegistry(t)
	p := Instance{IP: "10.0.0.5", Port: 3306, Weight: 1, Healthy: true, Enabled: true}
	r.SetPersistent(demo, []Instance{p})
	if err := r.Register("c1", demo, inst("10.0.0.1", 1)); !errors.Is(err, ErrEphemeralMismatch) {
		t.Fatalf("ephemeral into persistent: %v", err)
	}
	if err := r.CheckKind(demo, false); err != nil {
		t.Fatal(err)
	}
	h := hostsOf(t, r, demo, false)
	if len(h) != 1 || h[0].Ephemeral || h[0].Cluster != "DEFAULT" {
		t.Fatalf("persistent: %+v", h)
	}
	*changes = nil
	r.SetHealth(demo, Addr{IP: "10.0.0.5", Port: 3306}, false)
	r.SetHealth(demo, Addr{IP: "10.0.0.5", Port: 3306}, false) // no change, no notify
	if len(*changes) != 1 {
		t.Errorf("changes %v", *changes)
	}
	if h := hostsOf(t, r, demo, true); len(h) != 0 {
		t.Fatalf("unhealthy persistent shown: %+v", h)
	}
	if ps := r.Persistent(demo); len(ps) != 1 || ps[0].Healthy {
		t.Fatalf("Persistent: %+v", ps)
	}
	// Overrides survive re-registration of ephemeral instances.
	eph := ServiceKey{Name: "eph"}
	off, w := false, 3.0
	r.SetOverrides(eph, []Override{{Addr: Addr{IP: "10.0.0.1", Port: 1}, Enabled: &off}, {Addr: Addr{IP: "10.0.0.2", Port: 1}, Weight: &w, Metadata: map[string]string{"x": "y"}}})
	must(t, r.Register("c1", eph, inst("10.0.0.1", 1), inst("10.0.0.2", 1)))
	must(t, r.Register("c1", eph, inst("10.0.0.1", 1), inst("10.0.0.2", 1)))
	h = hostsOf(t, r, eph, false)
	if len(h) != 1 || h[0].IP != "10.0.0.2" || h[0].Weight != 3 || h[0].Metadata["x"] != "y" {
		t.Fatalf("overrides: %+v", h)
	}
	if all := r.Instances(eph); len(all) != 2 || all[0].Enabled {
		t.Fatalf("Instances: %+v", all)
	}
}

func TestListServices(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	for _, n := range []string{"c", "a", "b"} {
		must(t, r.Register("x", ServiceKey{Name: n}, inst("1.1.1.1", 1)))
	}
	must(t, r.Register("x", ServiceKey{Group: "G", Name: "z"}, inst("1.1.1.1", 1)))
	count, names := r.ListServices("", "", 1, 2)
	if count != 3 || len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Errorf("page 1: %d %v", count, names)
	}
	if count, names = r.ListServices("public", "DEFAULT_GROUP", 2, 2); count != 3 || len(names) != 1 || names[0] != "c" {
		t.Errorf("page 2: %d %v", count, names)
	}
	if count, names = r.ListServices("public", "G", 1, 10); count != 1 || names[0] != "z" {
		t.Errorf("group G: %d %v", count, names)
	}
	if _, names = r.ListServices("", "", 5, 10); len(names) != 0 {
		t.Errorf("past the end: %v", names)
	}
}

func TestSubscribers(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	must(t, r.Subscribe("b", demo, ""))
	must(t, r.Subscribe("a", demo, "C1"))
	must(t, r.Subscribe("a", demo, "C2"))
	subs := r.Subscribers(demoFull)
	if len(subs) != 2 || subs[0] != (Subscription{"a", "C2"}) || subs[1].ClientID != "b" {
		t.Fatalf("%+v", subs)
	}
	must(t, r.Unsubscribe("a", demo))
	if subs := r.Subscribers(demoFull); len(subs) != 1 {
		t.Fatalf("%+v", subs)
	}
}

func TestConcurrent(t *testing.T) {
	r, clk, _ := newTestRegistry(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			id := string(rune('a' + g))
			for i := 0; i < 200; i++ {
				_ = r.Register(id, demo, inst("10.0.0.1", i+1))
				_, _ = r.Select(demo, nil, false)
				_, _ = r.Beat(ServiceKey{Name: "b"}, inst("10.0.1.1", g+1), true)
				r.Expire(clk.Now())
				_ = r.Subscribe(id, demo, "")
			}
			r.DropClient(id)
		}(g)
	}
	wg.Wait()
	if h := hostsOf(t, r, demo, false); len(h) != 0 {
		t.Fatalf("left: %+v", h)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestZeroServiceMetaRemoves(t *testing.T) {
	r, clk, _ := newTestRegistry(t)
	r.SetServiceMeta(demo, ServiceMeta{ProtectThreshold: 0.5, Metadata: map[string]string{"a": "b"}})
	if m, ok := r.ServiceMeta(demo); !ok || m.Metadata["a"] != "b" {
		t.Fatalf("%+v %v", m, ok)
	}
	r.SetServiceMeta(demo, ServiceMeta{}) // the Raft store's "no metadata"
	if _, ok := r.ServiceMeta(demo); ok {
		t.Fatal("zero meta kept")
	}
	r.Expire(clk.Add(2 * time.Minute))
	if r.ServiceExists(demo) {
		t.Fatal("empty service without metadata not cleaned")
	}
}

// TestKeptIndex drives beat-kept registrations, replacements, deregistrations,
// beats and expiry in a random order and checks after every step that the
// expiry index holds exactly the beat-kept entries, each at its own index,
// and that expiry removes an instance exactly when it stopped being beaten.
func TestKeptIndex(t *testing.T) {
	r, clk, _ := newTestRegistry(t)
	rnd := uint64(42)
	next := func(n int) int { rnd = rnd*6364136223846793005 + 1442695040888963407; return int(rnd>>33) % n }
	for step := 0; step < 5000; step++ {
		key := ServiceKey{Name: "svc-" + string(rune('a'+next(5)))}
		in := Instance{IP: "10.0.0." + string(rune('1'+next(6))), Port: 20880, Metadata: map[string]string{"v": string(rune('a' + next(3)))}}
		switch next(6) {
		case 0, 1:
			if err := r.RegisterBeatKept(key, in); err != nil {
				t.Fatal(err)
			}
		case 2:
			_ = r.DeregisterBeatKept(key, Addr{IP: in.IP, Port: in.Port})
		case 3:
			r.BeatMany([]BeatRequest{{Key: key, Instance: in}}, false)
		case 4:
			r.Expire(clk.Add(time.Duration(next(20)) * time.Second))
		case 5:
			_ = r.Register("conn-1", key, in) // a connection client never enters the index
		}
		r.mu.RLock()
		n := 0
		for _, c := range r.clients {
			for _, e := range c.entries {
				if c.kind == BeatKeptClient {
					n++
					if e.keptIdx == 0 || r.kept[e.keptIdx-1] != e {
						r.mu.RUnlock()
						t.Fatalf("step %d: beat-kept entry %s %s not at its index %d", step, e.client, e.key.Name, e.keptIdx)
					}
				} else if e.keptIdx != 0 {
					r.mu.RUnlock()
					t.Fatalf("step %d: connection entry in the index", step)
				}
			}
		}
		if n != len(r.kept) {
			r.mu.RUnlock()
			t.Fatalf("step %d: %d beat-kept entries, index holds %d", step, n, len(r.kept))
		}
		for _, e := range r.kept {
			if idle := clk.Now().Sub(e.lastBeat); idle > e.del {
				r.mu.RUnlock()
				t.Fatalf("step %d: %s idle %v kept past the delete timeout", step, e.client, idle)
			}
		}
		r.mu.RUnlock()
	}
}

func TestDeregisterBeatKeptMany(t *testing.T) {
	r, _, changes := newTestRegistry(t)
	other := ServiceKey{Name: "other"}
	for i := 1; i <= 3; i++ {
		must(t, r.RegisterBeatKept(demo, inst("10.0.0."+strconv.Itoa(i), 20880)))
	}
	c1 := inst("10.0.0.9", 1)
	c1.Cluster = "c1"
	must(t, r.RegisterBeatKept(other, c1))
	must(t, r.Register("conn", other, inst("10.0.0.8", 2))) // connection-bound: untouched
	*changes = nil
	errs := r.DeregisterBeatKeptMany([]BeatRequest{
		{Key: demo, Instance: Instance{IP: "10.0.0.1", Port: 20880}},
		{Key: demo, Instance: Instance{IP: "10.0.0.2", Port: 20880, Cluster: "DEFAULT"}},
		{Key: demo, Instance: Instance{IP: "10.0.0.3", Port: 20880, Cluster: "c9"}}, // other cluster: kept
		{Key: demo, Instance: Instance{IP: "10.0.0.7", Port: 20880}},                // unknown: no error
		{Key: demo, Instance: Instance{IP: "10.0.0.1", Port: 0}},                    // invalid
		{Key: ServiceKey{Name: "bad@@name"}, Instance: Instance{IP: "10.0.0.1", Port: 1}},
		{Key: other, Instance: Instance{IP: "10.0.0.9", Port: 1, Cluster: "c1"}},
		{Key: other, Instance: Instance{IP: "10.0.0.8", Port: 2}}, // not beat-kept: nothing
		{Key: demo, Instance: Instance{IP: "10.0.0.3", Port: 20880, Cluster: "bad cluster"}},
	})
	for i, want := range []bool{false, false, false, false, true, true, false, false, true} {
		if (errs[i] != nil) != want {
			t.Errorf("item %d: err %v", i, errs[i])
		}
	}
	if !errors.Is(errs[4], ErrInvalidParam) {
		t.Errorf("invalid port: %v", errs[4])
	}
	if h := hostsOf(t, r, demo, false); len(h) != 1 || h[0].IP != "10.0.0.3" {
		t.Fatalf("demo after bulk deregister: %+v", h)
	}
	if h := hostsOf(t, r, other, false); len(h) != 1 || h[0].IP != "10.0.0.8" {
		t.Fatalf("other after bulk deregister: %+v", h)
	}
	if len(*changes) != 2 || (*changes)[0] != demoFull || (*changes)[1].Name != "other" {
		t.Fatalf("listeners told %v, want each service once", *changes)
	}
	// Nothing to remove: no notification.
	*changes = nil
	r.DeregisterBeatKeptMany([]BeatRequest{{Key: demo, Instance: Instance{IP: "10.0.0.1", Port: 20880}}})
	if len(*changes) != 0 {
		t.Fatalf("notified %v for nothing removed", *changes)
	}
}

func TestBeatGroups(t *testing.T) {
	r, clk, changes := newTestRegistry(t)
	a := ServiceKey{Name: "providers:a"}
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		if err := r.RegisterBeatKept(a, Instance{IP: ip, Port: 20880, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.RegisterBeatKept(a, Instance{IP: "10.0.0.3", Port: 20880, Cluster: "c1", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	r.Expire(clk.Add(20 * time.Second)) // past the 15 s beat timeout: unhealthy
	*changes = nil
	out := r.BeatGroups([]BeatGroup{
		{Key: a, Addrs: []Addr{{IP: "10.0.0.1", Port: 20880}, {IP: "10.0.0.9", Port: 20880}, {IP: "10.0.0.3", Port: 20880}, {IP: "10.0.0.3", Port: 20880, Cluster: "c1"}, {Port: 1}}},
		{Key: ServiceKey{Name: ""}, Addrs: []Addr{{IP: "10.0.0.1", Port: 20880}}},
	})
	want := []string{"ok", "unknown", "unknown", "ok", "err", "err"}
	if len(out) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(out), len(want))
	}
	for i, o := range out {
		got := map[BeatStatus]string{BeatOK: "ok", BeatUnknown: "unknown", BeatRegistered: "registered"}[o.Status]
		if o.Err != nil {
			got = "err"
		}
		if got != want[i] {
			t.Errorf("outcome %d = %q (%v), want %q", i, got, o.Err, want[i])
		}
	}
	si, _ := r.Select(a, nil, false)
	healthy := map[string]bool{}
	for _, h := range si.Hosts {
		healthy[h.IP] = h.Healthy
	}
	if !healthy["10.0.0.1"] || healthy["10.0.0.2"] || !healthy["10.0.0.3"] {
		t.Fatalf("health after the group beat: %v", healthy)
	}
	if len(*changes) != 1 || (*changes)[0].Name != "providers:a" {
		t.Fatalf("changes %v, want providers:a once", *changes)
	}
}

package registryclient

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// A worker lists every service it syncs: without a subscription or a
// CacheDir the answers are returned, not kept (a second copy of the whole
// registry otherwise, one entry per service ever listed).
func TestQueryCachedOnlyWhenSubscribedOrOnDisk(t *testing.T) {
	srv := startReal(t)
	ctx := ctxT(t, 10*time.Second)
	c := startClient(t, testConfig(t, srv.addr))
	for i := range 20 {
		svc := ServiceRef{Name: fmt.Sprintf("listed-%d", i)}
		if err := c.Register(ctx, svc, Instance{IP: "10.0.0.1", Port: 20880 + i}); err != nil {
			t.Fatal(err)
		}
		if info, err := c.Query(ctx, svc, "", false); err != nil || len(info.Hosts) != 1 {
			t.Fatalf("query %s: %+v %v", svc.Name, info, err)
		}
		if _, err := c.Service(svc); !errors.Is(err, ErrNotCached) {
			t.Fatalf("an unsubscribed query was cached: %v", err)
		}
	}
	c.naming.mu.Lock()
	n := len(c.naming.cache)
	c.naming.mu.Unlock()
	if n != 0 {
		t.Fatalf("cache holds %d services after 20 unsubscribed queries, want 0", n)
	}

	// Subscribed: the query refreshes what the listeners see.
	sub := ServiceRef{Name: "subscribed"}
	if err := c.Subscribe(ctx, sub, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, sub, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Service(sub); err != nil {
		t.Fatalf("subscribed service not cached: %v", err)
	}

	// With CacheDir every queried service is kept (and written).
	cfg := testConfig(t, srv.addr)
	cfg.CacheDir = t.TempDir()
	d := startClient(t, cfg)
	svc := ServiceRef{Name: "listed-0"}
	if _, err := d.Query(ctx, svc, "", false); err != nil {
		t.Fatal(err)
	}
	if info, err := d.Service(svc); err != nil || len(info.Hosts) != 1 {
		t.Fatalf("with CacheDir: %+v %v", info, err)
	}
}

// Keeping an equal set again adopts the caller's copies: the beat state
// must not keep an older, equal metadata map alive beside the caller's.
func TestKeepAdoptsCallersEqualCopy(t *testing.T) {
	cfg := DefaultConfig()
	var b beatState
	b.init(cfg)
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "s"}
	first := instances(10, "10.0")
	b.keep(svc, first)
	second := instances(10, "10.0") // equal content, new maps
	if fresh := b.keep(svc, second); len(fresh) != 0 {
		t.Fatalf("equal set: %d fresh", len(fresh))
	}
	for _, in := range second {
		e := b.bySvc[svc][in.Addr()]
		if reflect.ValueOf(e.full.Instance.Metadata).Pointer() != reflect.ValueOf(in.Metadata).Pointer() {
			t.Fatalf("%v: the beat entry holds the old metadata map", in.Addr())
		}
	}
}

// The beat state grows with the live instances, not with the changes: ten
// times more replacements (new addresses in, old ones out, services coming
// and going) than live instances leave every structure at the live size.
func TestBeatStateBoundedUnderChurn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BeatBuffer = 64
	var b beatState
	b.init(cfg)
	const services, perSvc = 20, 5
	live := services * perSvc
	gen := make([]int, services) // each service's current generation of addresses
	set := func(s int) []Instance {
		out := make([]Instance, perSvc)
		for j := range out {
			out[j] = Instance{IP: fmt.Sprintf("10.%d.%d.%d", s, gen[s]%250, j), Port: 20880, Metadata: map[string]string{"g": fmt.Sprint(gen[s])}}
		}
		return out
	}
	ref := func(s int) ServiceRef {
		return ServiceRef{Namespace: "public", Group: DefaultGroup, Name: fmt.Sprintf("svc-%d", s)}
	}
	for s := range services {
		b.keep(ref(s), set(s))
	}
	for i := range 10 * live {
		s := i % services
		gen[s]++
		switch i % 7 {
		case 0: // the service goes away and comes back
			b.release(ref(s), nil)
			b.keep(ref(s), set(s))
		default: // its providers restart on new addresses
			b.keep(ref(s), set(s))
		}
		b.redirected(set(s)[0].IP+":20880", "127.0.0.1:1", "127.0.0.1:2") // a redirect per live address
		b.advance()
		b.drain()
	}
	if n := b.size(); n != live {
		t.Errorf("size %d, want %d", n, live)
	}
	if n := len(b.bySvc); n != services {
		t.Errorf("bySvc %d services, want %d", n, services)
	}
	if n := len(b.clients); n > live {
		t.Errorf("clients %d, want ≤ %d", n, live)
	}
	if n := len(b.redirect); n > live {
		t.Errorf("redirect cache %d, want ≤ %d (entries for gone addresses kept)", n, live)
	}
	if n := len(b.ring); n != cfg.BeatBuffer {
		t.Errorf("ring %d, want %d", n, cfg.BeatBuffer)
	}
}

// A listing of what the client keeps beating shares the kept metadata
// maps: the worker's reconcile adopts listings as its registered state,
// and must not hold an equal second copy of every instance's metadata.
func TestShareKeptSharesEqualMetadata(t *testing.T) {
	srv := startReal(t)
	ctx := ctxT(t, 10*time.Second)
	c := startClient(t, testConfig(t, srv.addr))
	svc := ServiceRef{Name: "kept"}
	insts := instances(3, "10.1")
	if err := c.Keep(ctx, svc, insts); err != nil {
		t.Fatal(err)
	}
	info, err := c.Query(ctx, svc, "", false)
	if err != nil || len(info.Hosts) != 3 {
		t.Fatalf("query: %+v %v", info, err)
	}
	info.Hosts[2].Metadata = map[string]string{"side": "consumer"} // differs: left alone
	if n := c.ShareKept(svc, info.Hosts); n != 2 {
		t.Fatalf("shared %d, want 2", n)
	}
	byIP := map[string]map[string]string{}
	for _, in := range insts {
		byIP[in.IP] = in.Metadata
	}
	for _, h := range info.Hosts[:2] {
		if reflect.ValueOf(h.Metadata).Pointer() != reflect.ValueOf(byIP[h.IP]).Pointer() {
			t.Errorf("%s: listed metadata is a copy, not the kept map", h.IP)
		}
	}
	if info.Hosts[2].Metadata["side"] != "consumer" {
		t.Error("a differing listing was replaced")
	}
	if n := c.ShareKept(ServiceRef{Name: "not-kept"}, info.Hosts); n != 0 {
		t.Fatalf("shared %d for a service not kept", n)
	}
}

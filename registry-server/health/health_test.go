package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

func TestStateMachine(t *testing.T) {
	tests := []struct {
		start   bool
		results string // o = ok, x = fail
		flips   string // index of results after which the status flipped, as "." or "F"
		end     bool
	}{
		{true, "ooooo", ".....", true},
		{true, "xx", "..", true},
		{true, "xxx", "..F", false},
		{true, "xxoxx", ".....", true}, // a success resets the failure run
		{true, "xxxxxx", "..F...", false},
		{false, "oo", "..", false},
		{false, "ooo", "..F", true},
		{false, "ooxooo", ".....F", true},
		{true, "xxxooo", "..F..F", true},
	}
	for _, tt := range tests {
		s := &state{healthy: tt.start}
		var flips strings.Builder
		for _, r := range tt.results {
			if s.observe(r == 'o', 3) {
				flips.WriteByte('F')
			} else {
				flips.WriteByte('.')
			}
		}
		if flips.String() != tt.flips || s.healthy != tt.end {
			t.Errorf("start=%t %s: flips %s healthy=%t, want %s %t", tt.start, tt.results, flips.String(), s.healthy, tt.flips, tt.end)
		}
	}
}

type fakeTargets struct {
	mu   sync.Mutex
	list []raftstore.Keyed
}

func (f *fakeTargets) AllInstances() []raftstore.Keyed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]raftstore.Keyed(nil), f.list...)
}

func (f *fakeTargets) set(l ...raftstore.Keyed) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = l
}

type report struct {
	addr    string
	healthy bool
}

type fakeReporter struct {
	mu  sync.Mutex
	got []report
}

func (f *fakeReporter) SetHealth(_ naming.ServiceKey, a naming.Addr, healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, report{fmt.Sprintf("%s:%d:%s", a.IP, a.Port, a.Cluster), healthy})
}

func (f *fakeReporter) reports() []report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]report(nil), f.got...)
}

var svc = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "p"}

func keyed(addr string) raftstore.Keyed {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	return raftstore.Keyed{Key: svc, Instance: naming.Instance{IP: host, Port: p, Healthy: true, Enabled: true}}
}

func newTestProber(t *testing.T, cfg Config, deps Deps) *Prober {
	t.Helper()
	p, err := New(cfg, deps, testlog.New(t, slog.LevelDebug), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// listen opens a loopback listener that accepts and closes connections.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

func TestRoundsWithRealListeners(t *testing.T) {
	up := listen(t, "127.0.0.1:0")
	defer up.Close()
	flap := listen(t, "127.0.0.1:0")
	flapAddr := flap.Addr().String()
	targets := &fakeTargets{}
	targets.set(keyed(up.Addr().String()), keyed(flapAddr))
	rep := &fakeReporter{}
	p := newTestProber(t, DefaultConfig(), Deps{Targets: targets, Reporter: rep})
	ctx := context.Background()

	p.Round(ctx)
	if r := rep.reports(); len(r) != 0 {
		t.Fatalf("reports while all up: %v", r)
	}
	flap.Close()
	p.Round(ctx)
	p.Round(ctx)
	if r := rep.reports(); len(r) != 0 {
		t.Fatalf("flipped before 3 failures: %v", r)
	}
	p.Round(ctx)
	want := fmt.Sprintf("%s:DEFAULT", flapAddr)
	if r := rep.reports(); len(r) != 1 || r[0] != (report{want, false}) {
		t.Fatalf("after 3 failures: %v", r)
	}
	if h, ok := p.Healthy(svc, addrOf(keyed(flapAddr).Instance)); !ok || h {
		t.Fatalf("Healthy = %t %t", h, ok)
	}
	p.Round(ctx) // still down: re-asserted (a re-registration may have reset the view)
	if r := rep.reports(); len(r) != 2 || r[1] != (report{want, false}) {
		t.Fatalf("still down: %v", r)
	}
	flap = listen(t, flapAddr)
	defer flap.Close()
	p.Round(ctx)
	p.Round(ctx)
	if r := rep.reports(); len(r) != 4 || r[3].healthy {
		t.Fatalf("flipped back before 3 successes: %v", r)
	}
	p.Round(ctx)
	if r := rep.reports(); len(r) != 5 || r[4] != (report{want, true}) {
		t.Fatalf("after 3 successes: %v", r)
	}
	p.Round(ctx) // healthy as registered: nothing to say
	if r := rep.reports(); len(r) != 5 {
		t.Fatalf("reports while healthy as registered: %v", r)
	}
	// A vanished target is forgotten, never reported as removed.
	targets.set(keyed(up.Addr().String()))
	p.Round(ctx)
	if _, ok := p.Healthy(svc, addrOf(keyed(flapAddr).Instance)); ok {
		t.Fatal("vanished target still tracked")
	}
	if r := rep.reports(); len(r) != 5 {
		t.Fatalf("reports after target vanished: %v", r)
	}
}

// Addr is a test helper.
func addrOf(in naming.Instance) naming.Addr {
	return naming.Addr{IP: in.IP, Port: in.Port, Cluster: in.Cluster}
}

// countingDialer records concurrency and answers from a function.
type countingDialer struct {
	inFlight, maxInFlight, calls atomic.Int64
	release                      chan struct{}
	ok                           func(addr string) bool
}

func (d *countingDialer) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	d.calls.Add(1)
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		m := d.maxInFlight.Load()
		if n <= m || d.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if d.release != nil {
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.ok != nil && d.ok(addr) {
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}
	return nil, errors.New("refused")
}

func TestBoundedConcurrency(t *testing.T) {
	targets := &fakeTargets{}
	var list []raftstore.Keyed
	for i := 1; i <= 40; i++ {
		list = append(list, keyed(fmt.Sprintf("10.0.0.%d:80", i)))
	}
	targets.set(list...)
	d := &countingDialer{release: make(chan struct{}), ok: func(string) bool { return true }}
	cfg := DefaultConfig()
	cfg.Concurrency = 4
	p := newTestProber(t, cfg, Deps{Targets: targets, Reporter: &fakeReporter{}, Dialer: d})
	done := make(chan struct{})
	go func() { p.Round(context.Background()); close(done) }()
	// Let the probes through one at a time; at most 4 ever wait together.
	for i := 0; i < 40; i++ {
		d.release <- struct{}{}
	}
	<-done
	if got := d.maxInFlight.Load(); got > 4 || got < 1 {
		t.Fatalf("max in flight = %d, want 1..4", got)
	}
	if d.calls.Load() != 40 {
		t.Fatalf("calls = %d", d.calls.Load())
	}
}

func TestConnectTimeout(t *testing.T) {
	targets := &fakeTargets{}
	targets.set(keyed("10.0.0.1:80"))
	d := &countingDialer{release: make(chan struct{})} // never released: only the timeout ends it
	cfg := DefaultConfig()
	cfg.ConnectTimeout = 20 * time.Millisecond
	cfg.Threshold = 1
	rep := &fakeReporter{}
	p := newTestProber(t, cfg, Deps{Targets: targets, Reporter: rep, Dialer: d})
	p.Round(context.Background())
	if r := rep.reports(); len(r) != 1 || r[0].healthy {
		t.Fatalf("timeout not a failure: %v", r)
	}
}

// tickClock delivers ticks when the test says so and signals each time the
// loop starts waiting for one.
type tickClock struct {
	c       chan time.Time
	waiting chan struct{}
}

func (c *tickClock) After(time.Duration) <-chan time.Time {
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	return c.c
}

func TestLoopWithInjectedClock(t *testing.T) {
	targets := &fakeTargets{}
	targets.set(keyed("10.0.0.1:80"))
	var up atomic.Bool
	d := &countingDialer{ok: func(string) bool { return up.Load() }}
	clock := &tickClock{c: make(chan time.Time), waiting: make(chan struct{}, 1)}
	rep := &fakeReporter{}
	var active atomic.Bool
	active.Store(true)
	p := newTestProber(t, DefaultConfig(), Deps{Targets: targets, Reporter: rep, Dialer: d, Clock: clock, Active: active.Load})
	p.Start()
	p.Start() // idempotent
	<-clock.waiting
	// step delivers one tick and returns once that iteration is over.
	step := func() { clock.c <- time.Time{}; <-clock.waiting }
	step()
	step()
	if r := rep.reports(); len(r) != 0 || d.calls.Load() != 2 {
		t.Fatalf("after 2 rounds: %v, %d calls", r, d.calls.Load())
	}
	step()
	if r := rep.reports(); len(r) != 1 || r[0].healthy {
		t.Fatalf("after 3 failed rounds: %v", r)
	}
	active.Store(false) // not leader: no probes
	step()
	step()
	if d.calls.Load() != 3 {
		t.Fatalf("probed while inactive: %d calls", d.calls.Load())
	}
	active.Store(true)
	up.Store(true)
	step()
	step()
	if r := rep.reports(); len(r) != 3 || r[2].healthy {
		t.Fatalf("after 2 good rounds: %v", r)
	}
	step()
	if r := rep.reports(); len(r) != 4 || !r[3].healthy {
		t.Fatalf("after 3 good rounds: %v", r)
	}
	p.Stop()
	p.Stop()
}

func TestStopWithoutStart(t *testing.T) {
	p := newTestProber(t, DefaultConfig(), Deps{Targets: &fakeTargets{}, Reporter: &fakeReporter{}})
	p.Stop()
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		field string
		mod   func(*Config)
	}{
		{"Interval", func(c *Config) { c.Interval = 0 }},
		{"ConnectTimeout", func(c *Config) { c.ConnectTimeout = 0 }},
		{"Threshold", func(c *Config) { c.Threshold = 0 }},
		{"Concurrency", func(c *Config) { c.Concurrency = 0 }},
	} {
		c := DefaultConfig()
		tt.mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: %v", tt.field, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing deps: %v", err)
	}
}

// The Raft store is what the server wiring passes as Targets.
var _ Targets = (*raftstore.Store)(nil)

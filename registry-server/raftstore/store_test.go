package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

// fakeApplier records the latest state the FSM handed over.
type fakeApplier struct {
	mu    sync.Mutex
	insts map[naming.ServiceKey][]naming.Instance
	ovrs  map[naming.ServiceKey][]naming.Override
	metas map[naming.ServiceKey]naming.ServiceMeta
	calls int
}

func newFakeApplier() *fakeApplier {
	return &fakeApplier{
		insts: map[naming.ServiceKey][]naming.Instance{},
		ovrs:  map[naming.ServiceKey][]naming.Override{},
		metas: map[naming.ServiceKey]naming.ServiceMeta{},
	}
}

func (a *fakeApplier) SetPersistent(k naming.ServiceKey, in []naming.Instance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if len(in) == 0 {
		delete(a.insts, k)
		return
	}
	a.insts[k] = in
}

func (a *fakeApplier) SetOverrides(k naming.ServiceKey, o []naming.Override) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if len(o) == 0 {
		delete(a.ovrs, k)
		return
	}
	a.ovrs[k] = o
}

func (a *fakeApplier) SetServiceMeta(k naming.ServiceKey, m naming.ServiceMeta) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if reflect.DeepEqual(m, naming.ServiceMeta{}) {
		delete(a.metas, k)
		return
	}
	a.metas[k] = m
}

func (a *fakeApplier) snapshot() (map[naming.ServiceKey][]naming.Instance, map[naming.ServiceKey][]naming.Override, map[naming.ServiceKey]naming.ServiceMeta) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.insts), maps.Clone(a.ovrs), maps.Clone(a.metas)
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dir = dir
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	return c
}

func openTest(t *testing.T, cfg Config, a Applier) *Store {
	t.Helper()
	s, err := Open(cfg, testLogger(t), a, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.WaitReady(10 * time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s
}

var (
	svcA = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "a"}
	svcB = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "b"}
	svcC = naming.ServiceKey{Namespace: "dev", Group: "DEFAULT_GROUP", Name: "c"}
)

func pinst(ip string, port int) naming.Instance {
	return naming.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Cluster: "DEFAULT", Metadata: map[string]string{"k": "v"}}
}

func ptr[T any](v T) *T { return &v }

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestApplyAndRead(t *testing.T) {
	a := newFakeApplier()
	s := openTest(t, testConfig(t.TempDir()), a)
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 80)))
	in := pinst("10.0.0.2", 80)
	in.Cluster = "" // defaults to DEFAULT
	mustNil(t, s.PutInstance(svcA, in))
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 80))) // replace, not add
	got := s.Instances(svcA)
	if len(got) != 2 || got[0].IP != "10.0.0.1" || got[1].Cluster != "DEFAULT" {
		t.Fatalf("instances = %+v", got)
	}
	insts, _, _ := a.snapshot()
	if !reflect.DeepEqual(insts[svcA], got) {
		t.Fatalf("applier has %+v, store %+v", insts[svcA], got)
	}
	mustNil(t, s.RemoveInstance(svcA, naming.Addr{IP: "10.0.0.2", Port: 80}))
	mustNil(t, s.RemoveInstance(svcA, naming.Addr{IP: "10.0.0.9", Port: 80})) // idempotent
	if got := s.Instances(svcA); len(got) != 1 {
		t.Fatalf("after remove: %+v", got)
	}
	mustNil(t, s.PutOverride(svcA, naming.Override{Addr: naming.Addr{IP: "10.0.0.1", Port: 80}, Enabled: ptr(false), Weight: ptr(3.0)}))
	o := s.Overrides(svcA)
	if len(o) != 1 || *o[0].Enabled || *o[0].Weight != 3 || o[0].Addr.Cluster != "DEFAULT" {
		t.Fatalf("overrides = %+v", o)
	}
	mustNil(t, s.PutServiceMeta(svcB, naming.ServiceMeta{ProtectThreshold: 0.5, Metadata: map[string]string{"x": "y"}, Ephemeral: true}))
	if m, ok := s.ServiceMeta(svcB); !ok || m.ProtectThreshold != 0.5 || m.Metadata["x"] != "y" {
		t.Fatalf("meta = %+v %v", m, ok)
	}
	if keys := s.Services(); !reflect.DeepEqual(keys, []naming.ServiceKey{svcA, svcB}) {
		t.Fatalf("services = %v", keys)
	}
	mustNil(t, s.RemoveService(svcB))
	if _, ok := s.ServiceMeta(svcB); ok {
		t.Fatal("meta survived RemoveService")
	}
	_, _, metas := a.snapshot()
	if _, ok := metas[svcB]; ok {
		t.Fatal("applier still has svcB meta")
	}
	mustNil(t, s.RemoveOverride(svcA, naming.Addr{IP: "10.0.0.1", Port: 80, Cluster: "DEFAULT"}))
	if o := s.Overrides(svcA); len(o) != 0 {
		t.Fatalf("override survived: %+v", o)
	}
}

func TestDomainErrors(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir()), newFakeApplier())
	mustNil(t, s.PutServiceMeta(svcB, naming.ServiceMeta{Ephemeral: true}))
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 80)))
	eph := pinst("10.0.0.1", 81)
	eph.Ephemeral = true
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"ephemeral instance into raft", func() error { return s.PutInstance(svcA, eph) }, ErrKindClash},
		{"persistent instance into ephemeral service", func() error { return s.PutInstance(svcB, pinst("10.0.0.1", 80)) }, ErrKindClash},
		{"ephemeral meta on persistent service", func() error { return s.PutServiceMeta(svcA, naming.ServiceMeta{Ephemeral: true}) }, ErrKindClash},
		{"flip ephemeral flag", func() error { return s.PutServiceMeta(svcB, naming.ServiceMeta{Ephemeral: false}) }, ErrKindClash},
		{"kind clash is invalid param", func() error { return s.PutInstance(svcA, eph) }, ErrInvalidParam},
		{"missing namespace", func() error { return s.PutInstance(naming.ServiceKey{Group: "g", Name: "n"}, pinst("1.1.1.1", 1)) }, ErrInvalidParam},
		{"missing ip", func() error { return s.PutInstance(svcA, pinst("", 80)) }, ErrInvalidParam},
		{"port 0", func() error { return s.PutInstance(svcA, pinst("10.0.0.1", 0)) }, ErrInvalidParam},
		{"port 65536", func() error { return s.PutInstance(svcA, pinst("10.0.0.1", 65536)) }, ErrInvalidParam},
		{"instance weight", func() error { in := pinst("10.0.0.1", 80); in.Weight = -1; return s.PutInstance(svcA, in) }, ErrInvalidParam},
		{"instance weight NaN does not encode", func() error { in := pinst("10.0.0.1", 80); in.Weight = math.NaN(); return s.PutInstance(svcA, in) }, ErrInvalidParam},
		{"override weight", func() error {
			return s.PutOverride(svcA, naming.Override{Addr: naming.Addr{IP: "1.1.1.1", Port: 1}, Weight: ptr(10001.0)})
		}, ErrInvalidParam},
		{"override bad addr", func() error { return s.PutOverride(svcA, naming.Override{Addr: naming.Addr{Port: 1}}) }, ErrInvalidParam},
		{"protect threshold", func() error { return s.PutServiceMeta(svcC, naming.ServiceMeta{ProtectThreshold: 1.5}) }, ErrInvalidParam},
		{"remove non-empty service", func() error { return s.RemoveService(svcA) }, ErrServiceNotEmpty},
		{"offline without ip", func() error { return s.SetEnabledByIP("public", "", 0, false, nil) }, ErrInvalidParam},
		{"offline bad port", func() error { return s.SetEnabledByIP("public", "1.1.1.1", -1, false, nil) }, ErrInvalidParam},
		{"ok: remove unknown service", func() error { return s.RemoveService(svcC) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Nothing of the refused writes landed.
	if got := s.Instances(svcA); len(got) != 1 {
		t.Fatalf("instances = %+v", got)
	}
	if got := s.Instances(svcB); len(got) != 0 {
		t.Fatalf("svcB instances = %+v", got)
	}
}

func TestSetEnabledByIP(t *testing.T) {
	a := newFakeApplier()
	s := openTest(t, testConfig(t.TempDir()), a)
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 80)))
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 81)))
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.2", 80)))
	mustNil(t, s.PutOverride(svcB, naming.Override{Addr: naming.Addr{IP: "10.0.0.1", Port: 90}, Weight: ptr(5.0)}))
	mustNil(t, s.PutInstance(svcC, pinst("10.0.0.1", 80))) // other namespace
	eph := naming.ServiceKey{Namespace: "public", Group: "g", Name: "eph"}
	targets := []Target{
		{Key: eph, Addr: naming.Addr{IP: "10.0.0.1", Port: 7000}},
		{Key: eph, Addr: naming.Addr{IP: "10.0.0.3", Port: 7000}},  // other ip: ignored
		{Key: svcC, Addr: naming.Addr{IP: "10.0.0.1", Port: 7000}}, // other namespace: ignored
	}
	mustNil(t, s.SetEnabledByIP("public", "10.0.0.1", 0, false, targets))
	disabled := func(k naming.ServiceKey) []string {
		var out []string
		for _, o := range s.Overrides(k) {
			if o.Enabled != nil && !*o.Enabled {
				out = append(out, addrKey(o.Addr))
			}
		}
		return out
	}
	if got := disabled(svcA); !reflect.DeepEqual(got, []string{"10.0.0.1:80:DEFAULT", "10.0.0.1:81:DEFAULT"}) {
		t.Fatalf("svcA disabled = %v", got)
	}
	if got := disabled(svcB); !reflect.DeepEqual(got, []string{"10.0.0.1:90:DEFAULT"}) {
		t.Fatalf("svcB disabled = %v", got)
	}
	if got := disabled(eph); !reflect.DeepEqual(got, []string{"10.0.0.1:7000:DEFAULT"}) {
		t.Fatalf("eph disabled = %v", got)
	}
	if got := disabled(svcC); got != nil {
		t.Fatalf("other namespace touched: %v", got)
	}
	if o := s.Overrides(svcB); *o[0].Weight != 5 {
		t.Fatalf("weight lost: %+v", o)
	}
	_, ovrs, _ := a.snapshot()
	if len(ovrs[eph]) != 1 || len(ovrs[svcA]) != 2 {
		t.Fatalf("applier overrides = %+v", ovrs)
	}
	// Online again, port-scoped first.
	mustNil(t, s.SetEnabledByIP("public", "10.0.0.1", 81, true, nil))
	if got := disabled(svcA); !reflect.DeepEqual(got, []string{"10.0.0.1:80:DEFAULT"}) {
		t.Fatalf("svcA disabled after port online = %v", got)
	}
	mustNil(t, s.SetEnabledByIP("public", "10.0.0.1", 0, true, nil))
	for _, k := range []naming.ServiceKey{svcA, eph} {
		if o := s.Overrides(k); len(o) != 0 {
			t.Fatalf("%v overrides left: %+v", k, o)
		}
	}
	if o := s.Overrides(svcB); len(o) != 1 || o[0].Enabled != nil || *o[0].Weight != 5 {
		t.Fatalf("svcB override = %+v", o)
	}
	_, ovrs, _ = a.snapshot()
	if _, ok := ovrs[eph]; ok {
		t.Fatalf("applier still has eph overrides")
	}
}

func populate(t *testing.T, s *Store) {
	t.Helper()
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.1", 80)))
	mustNil(t, s.PutInstance(svcA, pinst("10.0.0.2", 80)))
	mustNil(t, s.PutOverride(svcA, naming.Override{Addr: naming.Addr{IP: "10.0.0.2", Port: 80}, Enabled: ptr(false), Metadata: map[string]string{"m": "1"}}))
	mustNil(t, s.PutServiceMeta(svcB, naming.ServiceMeta{ProtectThreshold: 0.3, Ephemeral: true}))
	mustNil(t, s.SetEnabledByIP("public", "10.0.0.9", 0, false, []Target{{Key: svcB, Addr: naming.Addr{IP: "10.0.0.9", Port: 1}}}))
}

func TestRestartKeepsState(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot bool
		tcp      bool
	}{{"log replay", false, false}, {"snapshot then log", true, false}, {"tcp transport", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			if tc.tcp {
				cfg.BindAddr = "127.0.0.1:0"
			}
			a1 := newFakeApplier()
			s1 := openTest(t, cfg, a1)
			populate(t, s1)
			if tc.snapshot {
				mustNil(t, s1.Snapshot())
				mustNil(t, s1.PutInstance(svcA, pinst("10.0.0.3", 80))) // after the snapshot
			}
			i1, o1, m1 := a1.snapshot()
			mustNil(t, s1.Stop())
			mustNil(t, s1.Stop()) // idempotent
			if err := s1.PutInstance(svcA, pinst("10.0.0.4", 80)); !errors.Is(err, ErrStopped) {
				t.Fatalf("write after stop: %v", err)
			}

			a2 := newFakeApplier()
			s2 := openTest(t, cfg, a2)
			i2, o2, m2 := a2.snapshot()
			if !reflect.DeepEqual(i1, i2) || !reflect.DeepEqual(o1, o2) || !reflect.DeepEqual(m1, m2) {
				t.Fatalf("state after restart differs:\n%+v\n%+v\n%+v\n%+v\n%+v\n%+v", i1, i2, o1, o2, m1, m2)
			}
			if len(i2[svcA]) < 2 || len(o2[svcA]) != 1 || len(o2[svcB]) != 1 || m2[svcB].ProtectThreshold != 0.3 {
				t.Fatalf("restored state incomplete: %+v %+v %+v", i2, o2, m2)
			}
			if !reflect.DeepEqual(s2.Instances(svcA), i1[svcA]) {
				t.Fatalf("store reads differ after restart")
			}
			// Still writable.
			mustNil(t, s2.RemoveInstance(svcA, naming.Addr{IP: "10.0.0.1", Port: 80}))
		})
	}
}

func TestOpenTwiceOnSameDirFails(t *testing.T) {
	dir := t.TempDir()
	openTest(t, testConfig(dir), nil)
	if _, err := Open(testConfig(dir), testLogger(t), nil, nil); err == nil {
		t.Fatal("second Open on a locked dir succeeded")
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM(nil, nil)
	apply := func(typ byte, body any) {
		b, err := encode(typ, body)
		mustNil(t, err)
		if r := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b}); r != nil {
			t.Fatalf("apply: %v", r)
		}
	}
	apply(cmdPutInstance, putInstanceCmd{Key: svcA, Instance: pinst("10.0.0.1", 80)})
	apply(cmdPutOverride, putOverrideCmd{Key: svcB, Override: naming.Override{Addr: naming.Addr{IP: "10.0.0.1", Port: 80}, Enabled: ptr(false)}})
	apply(cmdPutServiceMeta, putServiceMetaCmd{Key: svcC, Meta: naming.ServiceMeta{ProtectThreshold: 0.1}})
	snap, err := f.Snapshot()
	mustNil(t, err)
	var buf bytes.Buffer
	mustNil(t, snap.Persist(&bufSink{Buffer: &buf}))

	a := newFakeApplier()
	g := newFSM(a, nil)
	// g had a service that the snapshot does not: it must be cleared.
	g.services[naming.ServiceKey{Namespace: "x", Group: "g", Name: "old"}] = &service{Instances: map[string]naming.Instance{"1.1.1.1:1:DEFAULT": pinst("1.1.1.1", 1)}}
	a.insts[naming.ServiceKey{Namespace: "x", Group: "g", Name: "old"}] = []naming.Instance{pinst("1.1.1.1", 1)}
	mustNil(t, g.Restore(io.NopCloser(&buf)))
	if !reflect.DeepEqual(f.allInstances(), g.allInstances()) || !reflect.DeepEqual(f.overrides(svcB), g.overrides(svcB)) {
		t.Fatal("restored state differs")
	}
	i, o, m := a.snapshot()
	if len(i) != 1 || len(i[svcA]) != 1 || len(o[svcB]) != 1 || m[svcC].ProtectThreshold != 0.1 {
		t.Fatalf("applier after restore: %+v %+v %+v", i, o, m)
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("{not json"))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

type bufSink struct{ *bytes.Buffer }

func (bufSink) ID() string    { return "test" }
func (bufSink) Cancel() error { return nil }
func (bufSink) Close() error  { return nil }

func TestUndecodableEntryPanics(t *testing.T) {
	for _, data := range [][]byte{
		nil,
		{200},
		append([]byte{cmdPutInstance}, "{not json"...),
		append([]byte{cmdRemoveService}, `{"Key":5}`...),
	} {
		t.Run(fmt.Sprintf("%q", data), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			newFSM(nil, nil).Apply(&raft.Log{Type: raft.LogCommand, Data: data})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig("/tmp/x")
	mustNil(t, ok.Validate())
	tests := []struct {
		field string
		mod   func(*Config)
	}{
		{"Dir", func(c *Config) { c.Dir = "" }},
		{"ServerID", func(c *Config) { c.ServerID = "" }},
		{"ApplyTimeout", func(c *Config) { c.ApplyTimeout = 0 }},
		{"SnapshotRetain", func(c *Config) { c.SnapshotRetain = 0 }},
		{"SnapshotThreshold", func(c *Config) { c.SnapshotThreshold = 0 }},
		{"SnapshotInterval", func(c *Config) { c.SnapshotInterval = 0 }},
		{"HeartbeatTimeout", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }},
		{"ElectionTimeout", func(c *Config) { c.ElectionTimeout = time.Millisecond * 10 }},
		{"LeaderLeaseTimeout", func(c *Config) { c.LeaderLeaseTimeout = time.Hour }},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err = %v", tt.field, err)
		}
	}
	bad := testConfig(t.TempDir())
	bad.BindAddr = "127.0.0.1:0"
	bad.AdvertiseAddr = "no-port"
	if _, err := Open(bad, testLogger(t), nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad advertise: %v", err)
	}
}

func TestTCPPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustNil(t, err)
	defer l.Close()
	cfg := testConfig(t.TempDir())
	cfg.BindAddr = l.Addr().String()
	if _, err := Open(cfg, testLogger(t), nil, nil); err == nil {
		t.Fatal("Open on a used port succeeded")
	}
	// The failed Open released the data dir.
	cfg.BindAddr = ""
	openTest(t, cfg, nil)
}

// BenchmarkApply measures committed writes per second on one node (BoltDB
// fsync per batch): serial, and from 64 concurrent writers (Raft batches
// what queues up while the leader writes). Instances are spread over 1,000
// services, as in a real estate.
func BenchmarkApply(b *testing.B) {
	cfg := testConfig(b.TempDir())
	s, err := Open(cfg, slog.New(slog.DiscardHandler), newFakeApplier(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	if err := s.WaitReady(10 * time.Second); err != nil {
		b.Fatal(err)
	}
	put := func(i int) error {
		key := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i%1000)}
		return s.PutInstance(key, pinst(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 1+i%60000))
	}
	b.Run("serial", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := put(i); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
	b.Run("parallel64", func(b *testing.B) {
		b.SetParallelism(32)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := put(int(n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
}

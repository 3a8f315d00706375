package registryclient

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// registryCount sums the in-repo server's counter name over the series
// whose label has value.
func (r *realServer) registryCount(t testing.TB, name, label, value string) int {
	t.Helper()
	mfs, err := r.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

func (r *realServer) deregisterRPCs(t testing.TB) int {
	return r.registryCount(t, "ferry_registry_grpc_requests_total", "type", wire.TypeFerryBatchDeregisterRequest)
}

func (r *realServer) httpDeletes(t testing.TB) int {
	return r.registryCount(t, "ferry_registry_http_requests_total", "route", "DELETE /nacos/v1/ns/instance")
}

// Forget against the in-repo registry: one FerryBatchDeregisterRequest per
// MaxBatchBeats instances, no HTTP DELETE, nothing left on the server;
// instances it does not know are no error.
func TestRealServerForgetBatch(t *testing.T) {
	r := startReal(t)
	cfg := testConfig(t, r.addr)
	cfg.MaxBatchBeats = 100
	c := startClient(t, cfg)
	ctx := ctxT(t, 20*time.Second)
	big, small := ServiceRef{Name: "providers:big"}, ServiceRef{Name: "providers:small"}
	if err := c.Keep(ctx, big, instances(250, "10.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Keep(ctx, small, instances(5, "10.2")); err != nil {
		t.Fatal(err)
	}
	if got := r.hosts(t, big); got != 250 {
		t.Fatalf("kept %d", got)
	}
	// Some addresses of small, one the server never saw.
	some := []Addr{instances(5, "10.2")[0].Addr(), instances(5, "10.2")[1].Addr(), {IP: "10.9.9.9", Port: 1}}
	if err := c.Forget(ctx, small, some...); err != nil {
		t.Fatal(err)
	}
	if got := r.hosts(t, small); got != 3 {
		t.Fatalf("small after forgetting 2: %d hosts", got)
	}
	if got := r.deregisterRPCs(t); got != 1 {
		t.Fatalf("%d FerryBatchDeregisterRequests, want 1", got)
	}
	// The whole of big: 250 instances in 3 requests of at most 100.
	if err := c.Forget(ctx, big); err != nil {
		t.Fatal(err)
	}
	if got := r.hosts(t, big); got != 0 {
		t.Fatalf("big after Forget: %d hosts", got)
	}
	if got := r.deregisterRPCs(t); got != 4 {
		t.Fatalf("%d FerryBatchDeregisterRequests, want 4", got)
	}
	if got := r.httpDeletes(t); got != 0 {
		t.Fatalf("%d HTTP DELETEs with the extension on", got)
	}
	if got := testutil.ToFloat64(c.m.deregistered.WithLabelValues("batch")); got != 253 {
		t.Fatalf("batch deregistered %v", got)
	}
	if c.KeptCount() != 3 {
		t.Fatalf("client still beats %d", c.KeptCount())
	}
	// An invalid address is an error naming it; the others are removed.
	err := c.Forget(ctx, small, Addr{IP: "10.2.0.2", Port: 20880}, Addr{IP: "10.2.0.3", Port: 20880, Cluster: "bad cluster!"})
	if err == nil {
		t.Fatal("invalid cluster accepted")
	}
	t.Log(err)
	if got := r.hosts(t, small); got != 2 {
		t.Fatalf("small: %d hosts", got)
	}
}

// With the extension off (a real Nacos), Forget deregisters over HTTP.
func TestRealServerForgetWithoutExtension(t *testing.T) {
	r := startRealBy(t, registryserver.Open, func(c *registryserver.Config) { c.GRPC.FerryBatchBeat = false })
	c := startClient(t, testConfig(t, r.addr))
	ctx := ctxT(t, 20*time.Second)
	svc := ServiceRef{Name: "providers:http"}
	// Beat-kept instances, as a 1.x HTTP client registers them.
	for _, in := range instances(3, "10.3") {
		if err := r.s.Naming().RegisterBeatKept(naming.ServiceKey{Name: svc.Name}, naming.Instance{IP: in.IP, Port: in.Port, Weight: 1, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.hosts(t, svc); got != 3 {
		t.Fatalf("registered %d", got)
	}
	if err := c.Forget(ctx, svc, instances(3, "10.3")[0].Addr(), instances(3, "10.3")[1].Addr()); err != nil {
		t.Fatal(err)
	}
	if got := r.hosts(t, svc); got != 1 {
		t.Fatalf("after Forget: %d hosts", got)
	}
	if got, want := r.httpDeletes(t), 2; got != want {
		t.Fatalf("%d HTTP DELETEs, want %d", got, want)
	}
	if got := r.registryCount(t, "ferry_registry_grpc_requests_total", "type", wire.TypeFerryBatchDeregisterRequest); got != 0 {
		t.Fatalf("%d bulk deregisters sent to a server without the extension", got)
	}
}

// An older Ferry (batch beats, no bulk deregister) answers 302: Forget
// falls back to HTTP DELETE, and stops trying the bulk request.
func TestForgetFallsBackOn302(t *testing.T) {
	f := startFake(t, true) // batchDereg off
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 10*time.Second)
	svc := ServiceRef{Name: "s"}
	if err := c.Keep(ctx, svc, instances(10, "10.0")); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, svc, instances(10, "10.0")[0].Addr()); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if f.keptCount() != 0 || c.KeptCount() != 0 {
		t.Fatalf("server %d client %d", f.keptCount(), c.KeptCount())
	}
	if n := f.count(wire.TypeFerryBatchDeregisterRequest); n != 1 {
		t.Fatalf("%d bulk deregisters after a 302, want 1", n)
	}
	if got := testutil.ToFloat64(c.m.deregistered.WithLabelValues("http")); got != 10 {
		t.Fatalf("http deregistered %v", got)
	}
	// Merged beats are not given up for it.
	if ok, known := c.BatchBeatSupported(); !ok || !known {
		t.Fatal("a 302 on the bulk deregister turned merged beats off")
	}
}

// A server check without the capability (a real Nacos): HTTP at once.
func TestForgetWithoutCapability(t *testing.T) {
	f := startFake(t, false)
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 10*time.Second)
	eventually(t, "connected", func() bool { _, known := c.BatchBeatSupported(); return known })
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "s"}
	f.mu.Lock()
	f.kept[svc] = map[string]wire.Instance{"10.0.0.1:1:": {}, "10.0.0.2:1:": {}}
	f.mu.Unlock()
	if err := c.Forget(ctx, svc, Addr{IP: "10.0.0.1", Port: 1}, Addr{IP: "10.0.0.2", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if f.keptCount() != 0 {
		t.Fatalf("server holds %d", f.keptCount())
	}
	if n := f.count(wire.TypeFerryBatchDeregisterRequest); n != 0 {
		t.Fatalf("%d bulk deregisters to a server without the capability", n)
	}
}

// A redirect is followed (for addresses not kept: not cached, the cache
// holds kept clients only); the cached node of a kept address takes its
// deregistration directly and loses its entry with it; the redirected
// node's failure sends the batch back to the main server; an invalid
// answer is an error.
func TestForgetFollowsRedirect(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	a.batchDereg, b.batchDereg = true, true
	svc := ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "moved"}
	c := startClient(t, testConfig(t, a.addr))
	ctx := ctxT(t, 10*time.Second)
	eventually(t, "connected", func() bool { _, known := c.BatchBeatSupported(); return known })
	put := func(f *fakeServer, n int) {
		f.mu.Lock()
		f.kept[svc] = map[string]wire.Instance{}
		for i := 0; i < n; i++ {
			f.kept[svc][fmt.Sprintf("10.0.0.%d:1:", i)] = wire.Instance{}
		}
		f.mu.Unlock()
	}
	addrs := func(n int) []Addr {
		var out []Addr
		for i := 0; i < n; i++ {
			out = append(out, Addr{IP: fmt.Sprintf("10.0.0.%d", i), Port: 1})
		}
		return out
	}
	put(a, 4)
	put(b, 4)
	a.mu.Lock()
	a.redirectTo = func(ServiceRef, string) string { return b.addr }
	a.mu.Unlock()
	if err := c.Forget(ctx, svc, addrs(4)...); err != nil {
		t.Fatal(err)
	}
	if b.keptCount() != 0 || a.keptCount() != 4 {
		t.Fatalf("a %d b %d", a.keptCount(), b.keptCount())
	}
	if n, ok := c.Redirect("10.0.0.0", 1); ok {
		t.Fatalf("a forgotten address is cached (%q): the cache would grow without bound", n)
	}
	if a.count(wire.TypeFerryBatchDeregisterRequest) != 1 || b.count(wire.TypeFerryBatchDeregisterRequest) != 1 {
		t.Fatalf("requests a %d b %d", a.count(wire.TypeFerryBatchDeregisterRequest), b.count(wire.TypeFerryBatchDeregisterRequest))
	}
	// Kept instances: the redirect is cached per address, and Forget goes
	// straight to b, dropping the entries.
	kept := []Instance{{IP: "10.0.0.0", Port: 1}, {IP: "10.0.0.1", Port: 1}}
	if err := c.Keep(ctx, svc, kept); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx) // registered on b
	if n, ok := c.Redirect("10.0.0.1", 1); !ok || n != b.addr || b.keptCount() != 2 {
		t.Fatalf("redirect %q %v, b holds %d", n, ok, b.keptCount())
	}
	if err := c.Forget(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if b.keptCount() != 0 || a.count(wire.TypeFerryBatchDeregisterRequest) != 1 {
		t.Fatalf("cached redirect not used: b %d, a got %d", b.keptCount(), a.count(wire.TypeFerryBatchDeregisterRequest))
	}
	if _, ok := c.Redirect("10.0.0.1", 1); ok {
		t.Fatal("redirect entry left after Forget")
	}
	// b dies: the entries are cleared and a (no longer redirecting) serves it.
	if err := c.Keep(ctx, svc, kept); err != nil {
		t.Fatal(err)
	}
	c.beatOnce(ctx)
	if n, ok := c.Redirect("10.0.0.0", 1); !ok || n != b.addr {
		t.Fatalf("redirect %q %v", n, ok)
	}
	b.stop()
	a.mu.Lock()
	a.redirectTo = nil
	a.mu.Unlock()
	if err := c.Forget(ctx, svc, addrs(2)...); err != nil {
		t.Fatal(err)
	}
	if a.keptCount() != 2 || a.count(wire.TypeFerryBatchDeregisterRequest) != 2 {
		t.Fatalf("a holds %d, got %d requests", a.keptCount(), a.count(wire.TypeFerryBatchDeregisterRequest))
	}
	// An address refused as invalid is an error; the rest is removed.
	if err := c.Forget(ctx, svc, Addr{IP: "bad", Port: 1}, Addr{IP: "10.0.0.2", Port: 1}); err == nil {
		t.Fatal("invalid address not reported")
	}
	if a.keptCount() != 1 {
		t.Fatalf("a holds %d", a.keptCount())
	}
}

// registrySum is the sum of the in-repo server's histogram name over the
// series whose label has value (seconds spent in handlers).
func (r *realServer) registrySum(t testing.TB, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return sum
}

// BenchmarkForget1000: one op forgets 1,000 beat-kept instances of one
// service on the in-repo registry node (registered again, untimed, before
// each op): "batch" with one FerryBatchDeregisterRequest, "http" with one
// HTTP DELETE per instance (the path without the extension). Reported:
// registry requests, handler time and change notifications per op, and the
// process CPU (client and registry: both ends of the loopback).
func BenchmarkForget1000(b *testing.B) {
	for _, path := range []string{"batch", "http"} {
		b.Run(path, func(b *testing.B) {
			r := startRealBy(b, registryserver.Open, nil)
			notified := 0
			var mu sync.Mutex
			r.s.Naming().OnChange(func(naming.ServiceKey) { mu.Lock(); notified++; mu.Unlock() })
			cfg := testConfig(b, r.addr)
			cfg.Logger = slog.New(slog.DiscardHandler)
			c := startClient(b, cfg)
			ctx := context.Background()
			svc := ServiceRef{Name: "providers:com.example.Forget"}
			insts := instances(1000, "10.4")
			var cpu time.Duration
			var handler float64
			var requests, notes int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := c.Keep(ctx, svc, insts); err != nil {
					b.Fatal(err)
				}
				if path == "http" {
					c.batchDereg.Store(capUnsupported)
				}
				mu.Lock()
				n0 := notified
				mu.Unlock()
				rq0 := r.deregisterRPCs(b) + r.httpDeletes(b)
				h0 := r.registrySum(b, "ferry_registry_grpc_request_seconds", "type", wire.TypeFerryBatchDeregisterRequest) +
					r.registrySum(b, "ferry_registry_http_request_seconds", "route", "DELETE /nacos/v1/ns/instance")
				b.StartTimer()
				c0 := cpuNow()
				if err := c.Forget(ctx, svc); err != nil {
					b.Fatal(err)
				}
				cpu += cpuNow() - c0
				b.StopTimer()
				requests += r.deregisterRPCs(b) + r.httpDeletes(b) - rq0
				handler += r.registrySum(b, "ferry_registry_grpc_request_seconds", "type", wire.TypeFerryBatchDeregisterRequest) +
					r.registrySum(b, "ferry_registry_http_request_seconds", "route", "DELETE /nacos/v1/ns/instance") - h0
				mu.Lock()
				notes += notified - n0
				mu.Unlock()
				if got := r.hosts(b, svc); got != 0 {
					b.Fatalf("%d instances left", got)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(notes)/float64(b.N), "notifications/op")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			b.ReportMetric(handler*1000/float64(b.N), "handler-ms/op")
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
		})
	}
}

package naming

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// dubboMeta is a typical synced Dubbo provider's metadata (URL params).
func dubboMeta(i int) map[string]string {
	return map[string]string{
		"side": "provider", "application": "app-" + strconv.Itoa(i%50), "dubbo": "2.0.2", "release": "2.7.23",
		"interface": "com.example.Service" + strconv.Itoa(i%1000), "version": "1.0.0", "timestamp": "1700000000000",
		"methods": "get,put,list",
	}
}

func BenchmarkRegisterBatch100(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	batch := make([]Instance, 100)
	for i := range batch {
		batch[i] = Instance{IP: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Metadata: dubboMeta(i)}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Register("c"+strconv.Itoa(i%1000), ServiceKey{Name: "svc" + strconv.Itoa(i%1000)}, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "instances/s")
}

func BenchmarkSelect(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	for s := 0; s < 100; s++ {
		insts := make([]Instance, 10)
		for i := range insts {
			insts[i] = Instance{IP: "10.0.0." + strconv.Itoa(i+1), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Metadata: dubboMeta(i)}
		}
		if err := r.Register("c", ServiceKey{Name: "svc" + strconv.Itoa(s)}, insts...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Select(ServiceKey{Name: "svc" + strconv.Itoa(i%100)}, nil, false); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkBeatMany1000(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	items := make([]BeatRequest, 1000)
	for i := range items {
		items[i] = BeatRequest{Key: ServiceKey{Namespace: DefaultNamespace, Group: DefaultGroup, Name: "svc" + strconv.Itoa(i%100)},
			Instance: Instance{IP: "10.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Metadata: dubboMeta(i)}}
	}
	r.BeatMany(items, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range r.BeatMany(items, false) {
			if o.Err != nil || o.Status != BeatOK {
				b.Fatal(o)
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "beats/s")
}

// BenchmarkMemoryPerInstance registers 100,000 instances (1,000 services ×
// 100, Dubbo-like metadata, 100 connections) and reports heap per instance.
func BenchmarkMemoryPerInstance(b *testing.B) {
	for n := 0; n < b.N; n++ {
		perInst := MemoryPerInstance(100_000)
		b.ReportMetric(perInst, "B/instance")
	}
}

// MemoryPerInstance measures the registry's heap per instance with n
// instances registered through connection batches of 100.
func MemoryPerInstance(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewRegistry(DefaultConfig(), func() time.Time { return time.Unix(0, 0) })
	for s := 0; s < n/100; s++ {
		batch := make([]Instance, 100)
		for i := range batch {
			idx := s*100 + i
			batch[i] = Instance{IP: fmt.Sprintf("10.%d.%d.%d", idx>>16&255, idx>>8&255, idx&255), Port: 20880, Weight: 1,
				Healthy: true, Enabled: true, Metadata: dubboMeta(idx)}
		}
		if err := r.Register("conn-"+strconv.Itoa(s%100), ServiceKey{Name: "providers:com.example.Service" + strconv.Itoa(s) + ":1.0.0:"}, batch...); err != nil {
			panic(err)
		}
	}
	for s := 0; s < n/100; s++ { // materialise every view, as queries do
		_, _ = r.Select(ServiceKey{Name: "providers:com.example.Service" + strconv.Itoa(s) + ":1.0.0:"}, nil, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkExpire30k: one expiry scan of 30,000 beat-kept instances (3,000
// hosts × 10 services each) of which none is due.
func BenchmarkExpire30k(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	for h := 0; h < 3000; h++ {
		for s := 0; s < 10; s++ {
			in := Instance{IP: fmt.Sprintf("10.0.%d.%d", h/250, h%250), Port: 20880}
			if err := r.RegisterBeatKept(ServiceKey{Name: fmt.Sprintf("svc-%d-%d", h/10, s)}, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Expire(now)
	}
}

// BenchmarkDeregisterBeatKept1000 removes 1,000 beat-kept instances of 10
// services one call each (HTTP DELETE's path) and in one call (the bulk
// deregister's path); registering them again is outside the timer.
func BenchmarkDeregisterBeatKept1000(b *testing.B) {
	items := make([]BeatRequest, 1000)
	for i := range items {
		items[i] = BeatRequest{Key: ServiceKey{Name: "svc" + strconv.Itoa(i%10)},
			Instance: Instance{IP: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), Port: 20880, Weight: 1, Healthy: true, Enabled: true, Metadata: dubboMeta(i)}}
	}
	run := func(b *testing.B, deregister func(r *Registry)) {
		r := NewRegistry(DefaultConfig(), nil)
		notified := 0
		r.OnChange(func(ServiceKey) { notified++ })
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			for _, it := range items {
				if err := r.RegisterBeatKept(it.Key, it.Instance); err != nil {
					b.Fatal(err)
				}
			}
			notified = 0
			b.StartTimer()
			deregister(r)
		}
		b.ReportMetric(float64(notified), "notifications/op")
	}
	b.Run("one-by-one", func(b *testing.B) {
		run(b, func(r *Registry) {
			for _, it := range items {
				if err := r.DeregisterBeatKept(it.Key, Addr{IP: it.Instance.IP, Port: it.Instance.Port}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("many", func(b *testing.B) {
		run(b, func(r *Registry) {
			for _, err := range r.DeregisterBeatKeptMany(items) {
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkBeatGroups5400: one merged beat interval of a worker holding
// 27,000 instances (3,000 services × 9): 5,400 light beats, 9 per service,
// each service's items sharing one key as the gRPC handler builds them.
func BenchmarkBeatGroups5400(b *testing.B) {
	r := NewRegistry(DefaultConfig(), nil)
	var items []BeatRequest
	for s := 0; s < 3000; s++ {
		key := ServiceKey{Namespace: DefaultNamespace, Group: DefaultGroup, Name: fmt.Sprintf("providers:com.example.load.app%04d.Service%05d:1.0.1:", s/10, s)}
		for i := 0; i < 9; i++ {
			in := Instance{IP: fmt.Sprintf("10.0.%d.%d", (s/10)/250, (s/10)%250*9/10+i), Port: 20880 + i, Metadata: dubboMeta(i)}
			if err := r.RegisterBeatKept(key, in); err != nil {
				b.Fatal(err)
			}
			if s < 600 {
				items = append(items, BeatRequest{Key: key, Instance: Instance{IP: in.IP, Port: in.Port}})
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range r.BeatMany(items, false) {
			if o.Err != nil || o.Status != BeatOK {
				b.Fatal(o)
			}
		}
	}
}

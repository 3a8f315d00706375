package worker

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
)

// estate30k is the console benchmark's estate: 3,000 services of 10
// providers each (30,000 instances) in 300 apps, every provider synced,
// with node names as long as real Dubbo URLs.
func estate30k() []syncer.ServiceState {
	const services, perSvc, perApp = 3000, 10, 10
	out := make([]syncer.ServiceState, 0, services)
	for i := 0; i < services; i++ {
		iface := fmt.Sprintf("com.example.app%04d.Service%05d", i/perApp, i)
		ss := syncer.ServiceState{Service: iface, Desired: perSvc, Skipped: map[syncer.SkipReason]int{}}
		for j := 0; j < perSvc; j++ {
			addr := fmt.Sprintf("10.%d.%d.%d:20880", i>>8&255, i&255, j+1)
			u := fmt.Sprintf("dubbo://%s/%s?anyhost=true&application=load-app-%04d&background=false&deprecated=false&dubbo=2.0.2"+
				"&dynamic=true&environment=product&generic=false&interface=%s&methods=create,delete,get,list,update&pid=%d"+
				"&prefer.serialization=fastjson2,hessian2&release=3.2.0&side=provider&timeout=3000&timestamp=1700000000000",
				addr, iface, i/perApp, iface, 1000+j)
			ss.Providers = append(ss.Providers, syncer.ProviderState{Node: "/dubbo/" + iface + "/providers/" + url.QueryEscape(u),
				Name: "providers:" + iface + "::", Addr: addr, Synced: true})
		}
		out = append(out, ss)
	}
	return out
}

// BenchmarkCountsDerive30k: one counts round's derivation for a worker
// holding 30,000 instances, node cache warm (the steady state; a round
// runs every CountsInterval, 5 s).
func BenchmarkCountsDerive30k(b *testing.B) {
	states := estate30k()
	c := &countsWriter{nodes: map[string]*nodeEntry{}}
	mode := func(string) syncer.AppMode { return syncer.ModeSync }
	c.taskCounts(1, states, mode)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.rounds++
		apps, svcs := c.taskCounts(1, states, mode)
		if len(apps) != 300 || len(svcs) != 3000 {
			b.Fatalf("%d apps, %d services", len(apps), len(svcs))
		}
	}
}

// countStores runs bench on the embedded SQLite store and on a private
// MariaDB (skipped when MariaDB is not installed, failed with CI=true).
func countStores(b *testing.B, bench func(b *testing.B, st *store.Store)) {
	b.Run("sqlite", func(b *testing.B) {
		st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "ferry.db"), testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		bench(b, st)
	})
	b.Run("mariadb", func(b *testing.B) {
		ctx := context.Background()
		dsn, err := mysqlserver.ForTest(b).CreateDatabase(ctx, "counts")
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(ctx, dsn, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		bench(b, st)
	})
}

// BenchmarkCountsPut30k: one round's full write of those counts (300 app
// rows, 3,000 service rows).
func BenchmarkCountsPut30k(b *testing.B) {
	countStores(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		c := &countsWriter{nodes: map[string]*nodeEntry{}}
		apps, svcs := c.taskCounts(1, estate30k(), func(string) syncer.AppMode { return syncer.ModeSync })
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := st.PutCounts(ctx, "w1", 1, apps, svcs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCountsUpdate30k: a steady round's write (nothing changed: the
// rows are restamped).
func BenchmarkCountsUpdate30k(b *testing.B) {
	countStores(b, func(b *testing.B, st *store.Store) {
		ctx := context.Background()
		c := &countsWriter{nodes: map[string]*nodeEntry{}}
		apps, svcs := c.taskCounts(1, estate30k(), func(string) syncer.AppMode { return syncer.ModeSync })
		if err := st.PutCounts(ctx, "w1", 1, apps, svcs); err != nil {
			b.Fatal(err)
		}
		last := newWritten(apps, svcs)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ca, cs, ga, gs := last.changes(newWritten(apps, svcs))
			if err := st.UpdateCounts(ctx, "w1", 1, ca, cs, ga, gs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppModeChange: a worker at its defaults (settings generation
// read every second, counts every 5 s) over 200 services × 5 instances in
// 20 apps on real ZooKeeper, a registry node and SQLite; one app (10
// services, 50 instances) is switched to native and back 10 times.
// Reported: from the store write to the app's last synced instance gone
// from a healthy-only listing (and back), and to the app's counts showing
// the change, p50 and p99 over the 20 switches. Run with -benchtime 1x.
func BenchmarkAppModeChange(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const services, instances, perApp = 200, 5, 10
	zks := zkserver.ForTest(b)
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zks.Addr()}
	lcfg.Services, lcfg.Instances, lcfg.ServicesPerApp = services, instances, perApp
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer loader.Close()
	if _, err := loader.Seed(ctx); err != nil {
		b.Fatal(err)
	}
	rcfg := registryserver.DefaultConfig()
	rcfg.Port, rcfg.DataDir = 0, b.TempDir()
	reg, err := registryserver.Open(rcfg, testLogger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		b.Fatal(err)
	}
	defer reg.Stop()
	stk := &stack{zk: zks, loader: loader, regAddr: reg.HTTPAddr().String()}
	cfg := DefaultConfig()
	cfg.DB = "sqlite://" + filepath.Join(b.TempDir(), "ferry.db")
	cfg.ZK, cfg.Registry, cfg.HTTP, cfg.WorkerID = []string{zks.Addr()}, []string{stk.regAddr}, "", "w1"
	w, err := Start(ctx, cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop(context.Background())
	appNames := make([]string, perApp)
	for i := range appNames {
		appNames[i] = nacosName(loader.Interface(i))
	}
	healthy := func() int {
		h, err := healthyMarkers(stk.regAddr, appNames)
		if err != nil {
			return -1
		}
		return len(h)
	}
	poll.Until(b, 2*time.Minute, "the app synced", func() bool { return healthy() == perApp*instances })
	taskID := w.Status().Tasks[0].ID
	app := loader.Application(0)
	native := func() int {
		as, err := w.st.ListAppCounts(ctx, taskID, 10*time.Second)
		if err != nil {
			return -1
		}
		for _, a := range as {
			if a.App == app {
				return a.Native
			}
		}
		return -1
	}
	var reach, counts []time.Duration
	b.ResetTimer()
	for i := 0; i < 10; i++ {
		for _, mode := range []store.AppMode{store.AppNative, store.AppSync} {
			start := time.Now()
			if _, err := w.st.SetAppMode(ctx, app, mode, "bench"); err != nil {
				b.Fatal(err)
			}
			wantHealthy, wantNative := 0, perApp*instances
			if mode == store.AppSync {
				wantHealthy, wantNative = perApp*instances, 0
			}
			reachDone, countsDone := time.Duration(0), time.Duration(0)
			poll.Every(b, time.Minute, 20*time.Millisecond, "the switch applied and counted", func() bool {
				if reachDone == 0 && healthy() == wantHealthy {
					reachDone = time.Since(start)
				}
				if countsDone == 0 && native() == wantNative {
					countsDone = time.Since(start)
				}
				return reachDone != 0 && countsDone != 0
			})
			reach, counts = append(reach, reachDone), append(counts, countsDone)
		}
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, int(p*float64(len(s))))].Seconds()
	}
	b.ReportMetric(q(reach, 0.5), "registry-p50-s")
	b.ReportMetric(q(reach, 0.99), "registry-p99-s")
	b.ReportMetric(q(counts, 0.5), "counts-p50-s")
	b.ReportMetric(q(counts, 0.99), "counts-p99-s")
}

// Package zkwatchbench measures zkwatch against a real ZooKeeper seeded by
// zkload: cold start to a full catalog, write-to-notification latency under
// churn, and memory per watched provider. Both `go test -bench` in zkwatch
// and `ferry bench zkwatch` run it.
package zkwatchbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/zkwatch"
)

// Options of one run.
type Options struct {
	Servers   []string // ZooKeeper to use (seeded under Root)
	Root      string   // default "ferrybench"
	Services  int      // default 3000
	Instances int      // per service, default 10
	// ChurnRate is provider replacements per second during the latency
	// phase (each is a create then, RemoveAfter later, a delete: 2 writes).
	// Default 50 (100 writes/s).
	ChurnRate   float64
	RemoveAfter time.Duration // default 200ms
	ChurnFor    time.Duration // default 10s; 0 with SkipChurn skips the phase
	SkipChurn   bool
	// ListConcurrency of the watcher (0: zkwatch's default).
	ListConcurrency int
	Logger          *slog.Logger
}

func (o *Options) defaults() {
	if o.Root == "" {
		o.Root = "ferrybench"
	}
	if o.Services == 0 {
		o.Services = 3000
	}
	if o.Instances == 0 {
		o.Instances = 10
	}
	if o.ChurnRate == 0 {
		o.ChurnRate = 50
	}
	if o.RemoveAfter == 0 {
		o.RemoveAfter = 200 * time.Millisecond
	}
	if o.ChurnFor == 0 {
		o.ChurnFor = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Result of one run.
type Result struct {
	Services, Providers int
	SeedTime            time.Duration // zkload writing the catalog
	ColdStart           time.Duration // watcher Start → Synced
	AllNotified         time.Duration // watcher Start → every service notified once
	HeapPerProvider     float64       // bytes of Go heap held by the watcher per provider
	Writes              int           // churn writes measured
	Missed              int           // writes never seen in a snapshot
	P50, P99, Max       time.Duration // write start → change visible in a notified snapshot
	WriteP50            time.Duration // ZooKeeper write call alone (p50)
	Notifications       int
}

func (r Result) String() string {
	s := fmt.Sprintf("catalog %d services / %d providers: seeded in %v; cold start to Synced %v, all notified %v; heap %.0f B/provider",
		r.Services, r.Providers, r.SeedTime.Round(time.Millisecond), r.ColdStart.Round(time.Millisecond),
		r.AllNotified.Round(time.Millisecond), r.HeapPerProvider)
	if r.Writes > 0 {
		s += fmt.Sprintf("\nchurn: %d writes, %d notifications; write→notification p50 %v p99 %v max %v (zk write alone p50 %v); missed %d",
			r.Writes, r.Notifications, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
			r.Max.Round(10*time.Microsecond), r.WriteP50.Round(10*time.Microsecond), r.Missed)
	}
	return s
}

// Run seeds the catalog, starts a watcher, and measures.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	lcfg := zkload.DefaultConfig()
	lcfg.Servers, lcfg.Root, lcfg.Services, lcfg.Instances = o.Servers, o.Root, o.Services, o.Instances
	lcfg.Prefix = "com.example.bench"
	l, err := zkload.Connect(ctx, lcfg, o.Logger)
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	st, err := l.Seed(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Result{Services: st.Services, Providers: st.Providers, SeedTime: st.Duration}

	wcfg := zkwatch.DefaultConfig()
	wcfg.Servers, wcfg.Root, wcfg.AppRoot = o.Servers, o.Root, ""
	if o.ListConcurrency > 0 {
		wcfg.ListConcurrency = o.ListConcurrency
	}
	w, err := zkwatch.New(wcfg, o.Logger, nil)
	if err != nil {
		return res, err
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	notified := map[string]bool{}
	var lat latencies
	var nmu sync.Mutex
	allNotified := make(chan struct{})
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	start := time.Now()
	if err := w.Start(); err != nil {
		return res, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(sctx)
	}()
	go func() {
		defer close(readerDone)
		for {
			select {
			case name := <-w.Changes():
				nmu.Lock()
				res.Notifications++
				if !notified[name] {
					notified[name] = true
					if len(notified) == o.Services {
						res.AllNotified = time.Since(start)
						close(allNotified)
					}
				}
				nmu.Unlock()
				lat.observe(w, name)
			case <-stopReader:
				return
			}
		}
	}()
	defer func() { close(stopReader); <-readerDone }()

	deadline := time.Now().Add(5 * time.Minute)
	for !w.Synced() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, fmt.Errorf("zkwatchbench: not synced after %v", time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.ColdStart = time.Since(start)
	select {
	case <-allNotified:
	case <-time.After(time.Minute):
		return res, fmt.Errorf("zkwatchbench: not every service notified")
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if n := len(w.Services()); n != o.Services {
		return res, fmt.Errorf("zkwatchbench: %d services listed, want %d", n, o.Services)
	}
	total := 0
	for _, name := range w.Services() {
		s, _ := w.Snapshot(name)
		total += len(s.Providers)
	}
	if total != st.Providers {
		return res, fmt.Errorf("zkwatchbench: %d providers in snapshots, want %d", total, st.Providers)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res.HeapPerProvider = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(st.Providers)

	if o.SkipChurn {
		return res, nil
	}
	lat.names = make(map[int]string)
	for i := 0; i < o.Services; i++ {
		lat.names[i] = l.Interface(i)
	}
	cctx, cancel := context.WithTimeout(ctx, o.ChurnFor)
	defer cancel()
	var writeDur []time.Duration
	var wmu sync.Mutex
	err = l.Churn(cctx, zkload.ChurnConfig{
		Rate: o.ChurnRate, RemoveAfter: o.RemoveAfter,
		BeforeWrite: lat.expect,
		OnWrite: func(wr zkload.Write) {
			wmu.Lock()
			writeDur = append(writeDur, wr.Duration)
			wmu.Unlock()
		},
	})
	if err != nil {
		return res, err
	}
	// Let the last writes arrive.
	waitUntil := time.Now().Add(5 * time.Second)
	for lat.pendingCount() > 0 && time.Now().Before(waitUntil) {
		time.Sleep(5 * time.Millisecond)
	}
	res.Writes, res.Missed, res.P50, res.P99, res.Max = lat.summary()
	slices.Sort(writeDur)
	if len(writeDur) > 0 {
		res.WriteP50 = writeDur[len(writeDur)/2]
	}
	return res, nil
}

// latencies matches churn writes with the notified snapshots that show them.
type latencies struct {
	mu      sync.Mutex
	names   map[int]string                     // service index -> name
	pending map[string]map[string]pendingWrite // service -> node -> write
	got     []time.Duration
}

type pendingWrite struct {
	at      time.Time
	created bool
}

func (l *latencies) expect(w zkload.Write) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = map[string]map[string]pendingWrite{}
	}
	name := l.names[w.Service]
	if l.pending[name] == nil {
		l.pending[name] = map[string]pendingWrite{}
	}
	l.pending[name][w.Node] = pendingWrite{at: w.At, created: w.Created}
}

func (l *latencies) observe(w *zkwatch.Watcher, name string) {
	l.mu.Lock()
	n := len(l.pending[name])
	l.mu.Unlock()
	if n == 0 {
		return
	}
	snap, _ := w.Snapshot(name)
	now := time.Now()
	present := map[string]bool{}
	for _, p := range snap.Providers {
		present[p.Node] = true
	}
	for _, p := range snap.Shadowed {
		present[p.Node] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for node, pw := range l.pending[name] {
		if present[node] == pw.created {
			l.got = append(l.got, now.Sub(pw.at))
			delete(l.pending[name], node)
		}
	}
}

func (l *latencies) pendingCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.pending {
		n += len(m)
	}
	return n
}

func (l *latencies) summary() (writes, missed int, p50, p99, maxd time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.pending {
		missed += len(m)
	}
	got := slices.Clone(l.got)
	slices.Sort(got)
	writes = len(got) + missed
	if len(got) == 0 {
		return
	}
	p50 = got[len(got)/2]
	p99 = got[min(len(got)-1, len(got)*99/100)]
	maxd = got[len(got)-1]
	return
}

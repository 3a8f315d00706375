package worker

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
)

// Counts for the console (store/counts.go): every CountsInterval the
// worker derives, for each task it runs, per-app and per-service counts of
// the services it owns from its engines' state (syncer.Engine.Services:
// no ZooKeeper or registry call) and writes only what changed since its
// last write (store.UpdateCounts, which restamps the other rows in one
// statement per table; nothing when nothing changed and the rows were
// stamped within restampAge; a full PutCounts at a task's first round,
// after a failed write and every fullEvery rounds); rows of tasks it
// stopped running are deleted. Every
// interval it also writes the current minute's metric history (lag
// histogram, beats and registry errors since the last write) with
// PutMetricMinutes. Owned by the counts loop goroutine.
//
// What a provider counts as (one per registry service and address):
//   - Synced: registered and beaten by this worker now;
//   - Native: not synced because it registers in the registry itself
//     (withNacos=true, or its app's mode is native);
//   - Skipped[reason]: native ones by their reason, and app_excluded;
//   - Failing: should be synced, is not, and the service's last reconcile
//     failed (retried with backoff);
//   - otherwise pending (neither: the next reconcile syncs it).
//
// ServiceCount.Registry is Synced + Native: the instances expected in the
// registry, not a registry query (one query per service every few
// seconds would cost the registry more than the sync itself).

// nodeInfo is what a provider node's name says about it.
type nodeInfo struct {
	app       string
	withNacos bool
}

// parseNode reads the application and withNacos parameters out of a
// provider node path (its last segment is the URL-encoded provider URL).
func parseNode(node string) nodeInfo {
	base := node[strings.LastIndexByte(node, '/')+1:]
	dec, err := url.PathUnescape(base)
	if err != nil {
		return nodeInfo{}
	}
	i := strings.IndexByte(dec, '?')
	if i < 0 {
		return nodeInfo{}
	}
	q, _ := url.ParseQuery(dec[i+1:])
	return nodeInfo{app: q.Get("application"), withNacos: strings.EqualFold(q.Get("withNacos"), "true")}
}

// countsWriter is the counts loop's state.
type countsWriter struct {
	w *Worker
	// nodes caches parseNode by node path (a node's name never changes),
	// each entry stamped with the last round that saw it; entries not seen
	// for a sweep period are dropped (sweep).
	nodes map[string]*nodeEntry
	// last is what was written per task (nil entry or none: write
	// everything next round).
	last map[int64]*writtenCounts
	// rounds counts rounds: every fullEvery-th writes everything, which
	// heals a row another worker deleted while this one thought it
	// unchanged (a shard that moved away and back within a round).
	rounds int
	// metrics: the previous cumulative values by series, and the current
	// minute's running totals.
	prev   map[string]float64
	prevH  map[string][]uint64
	minute store.MetricMinute
}

func newCountsWriter(w *Worker) *countsWriter {
	return &countsWriter{w: w, nodes: map[string]*nodeEntry{}, last: map[int64]*writtenCounts{}, prev: map[string]float64{},
		prevH: map[string][]uint64{}}
}

// nodeEntry is one cached node.
type nodeEntry struct {
	info nodeInfo
	seen int // the round that last saw it
}

// node returns what a node's name says, from the cache.
func (c *countsWriter) node(path string) nodeInfo {
	e := c.nodes[path]
	if e == nil {
		e = &nodeEntry{info: parseNode(path)}
		c.nodes[path] = e
	}
	e.seen = c.rounds
	return e.info
}

// sweep drops the cached nodes no round saw since round since.
func (c *countsWriter) sweep(since int) {
	for k, e := range c.nodes {
		if e.seen < since {
			delete(c.nodes, k)
		}
	}
}

// taskCounts derives one task's rows from its engine's service states.
func (c *countsWriter) taskCounts(taskID int64, states []syncer.ServiceState, mode func(string) syncer.AppMode) ([]store.AppCount, []store.ServiceCount) {
	apps := map[string]*store.AppCount{}
	var svcs []store.ServiceCount
	for _, ss := range states {
		type addrKey struct{ name, addr string }
		type prov struct {
			info   nodeInfo
			synced bool
		}
		byAddr := make(map[addrKey]prov, len(ss.Providers))
		for _, p := range ss.Providers {
			info := c.node(p.Node)
			k := addrKey{p.Name, p.Addr}
			cur, seen := byAddr[k]
			if !seen {
				cur.info = info
			}
			cur.synced = cur.synced || p.Synced
			byAddr[k] = cur
		}
		per := map[string]*store.ServiceCount{}
		perApp := map[string]map[string]int{} // registry name → app → providers
		for k, p := range byAddr {
			a := apps[p.info.app]
			if a == nil {
				a = &store.AppCount{TaskID: taskID, App: p.info.app, Kind: store.KindInterface, Skipped: map[string]int{}}
				apps[p.info.app] = a
			}
			sc := per[k.name]
			if sc == nil {
				sc = &store.ServiceCount{TaskID: taskID, Service: k.name, Kind: store.KindInterface}
				per[k.name] = sc
				perApp[k.name] = map[string]int{}
			}
			perApp[k.name][p.info.app]++
			a.ZK++
			sc.ZK++
			m := mode(p.info.app)
			switch {
			case p.synced:
				a.Synced++
				sc.Synced++
			case p.info.withNacos:
				a.Native++
				sc.Native++
				a.Skipped[string(syncer.SkipWithNacos)]++
			case m == syncer.ModeNative:
				a.Native++
				sc.Native++
				a.Skipped[string(syncer.SkipAppNative)]++
			case m == syncer.ModeExcluded:
				a.Skipped[string(syncer.SkipAppExcluded)]++
			case ss.Failing:
				a.Failing++
			}
		}
		for name, sc := range per {
			sc.Registry = sc.Synced + sc.Native
			best := -1
			for app, n := range perApp[name] {
				if n > best || (n == best && app < sc.App) {
					sc.App, best = app, n
				}
			}
			svcs = append(svcs, *sc)
		}
	}
	out := make([]store.AppCount, 0, len(apps))
	for _, a := range apps {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Service < svcs[j].Service })
	return out, svcs
}

// fullEvery: every this many rounds a full PutCounts (every 5 minutes at
// the default 5 s). At 30,000 instances on SQLite a full put costs about
// 560 ms of CPU and a steady update 21 ms (BenchmarkCountsPut30k,
// BenchmarkCountsUpdate30k), the derivation 20-65 ms on a quiet machine
// (BenchmarkCountsDerive30k): about 1.5% of one core in all.
const fullEvery = 60

// sweepEvery: every this many rounds the node cache drops the nodes none
// of them saw (a minute at the default 5 s; with 100 provider changes/s
// that bounds the dead entries to about 12,000).
const sweepEvery = 12

// restampAge: a round with nothing changed writes nothing unless the
// rows were last stamped this long ago (readers take rows up to 30 s old,
// web.ServiceConfig.CountsFresh); a restamp of 3,000 service rows costs
// MariaDB about 0.25 s, so every other round, not every round.
const restampAge = 10 * time.Second

// writtenCounts is one task's rows as last written.
type writtenCounts struct {
	apps map[store.AppCountKey]store.AppCount
	svcs map[string]store.ServiceCount
	at   time.Time // when the write that stamped them was sent
}

func newWritten(apps []store.AppCount, svcs []store.ServiceCount) *writtenCounts {
	w := &writtenCounts{apps: make(map[store.AppCountKey]store.AppCount, len(apps)), svcs: make(map[string]store.ServiceCount, len(svcs))}
	for _, a := range apps {
		w.apps[store.AppCountKey{App: a.App, Kind: a.Kind}] = a
	}
	for _, sc := range svcs {
		w.svcs[sc.Service] = sc
	}
	return w
}

func sameApp(a, b store.AppCount) bool {
	if a.App != b.App || a.Kind != b.Kind || a.ZK != b.ZK || a.Synced != b.Synced || a.Native != b.Native ||
		a.Failing != b.Failing || len(a.Skipped) != len(b.Skipped) {
		return false
	}
	for k, v := range a.Skipped {
		if w, ok := b.Skipped[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// changes is what differs between the last write and now.
func (w *writtenCounts) changes(next *writtenCounts) (apps []store.AppCount, svcs []store.ServiceCount,
	goneApps []store.AppCountKey, goneSvcs []string) {
	for k, a := range next.apps {
		if old, ok := w.apps[k]; !ok || !sameApp(old, a) {
			apps = append(apps, a)
		}
	}
	for k := range w.apps {
		if _, ok := next.apps[k]; !ok {
			goneApps = append(goneApps, k)
		}
	}
	for k, sc := range next.svcs {
		if old, ok := w.svcs[k]; !ok || old != sc {
			svcs = append(svcs, sc)
		}
	}
	for k := range w.svcs {
		if _, ok := next.svcs[k]; !ok {
			goneSvcs = append(goneSvcs, k)
		}
	}
	return apps, svcs, goneApps, goneSvcs
}

// round writes every running task's counts and deletes those of tasks
// no longer run here. A store error is retried at the next round.
func (c *countsWriter) round(ctx context.Context) {
	m := c.w.mgr
	m.mu.Lock()
	engines := make(map[int64]*syncer.Engine, len(m.running))
	for id, r := range m.running {
		engines[id] = r.engine
	}
	m.mu.Unlock()
	c.rounds++
	full := c.rounds%fullEvery == 0
	for id, e := range engines {
		apps, svcs := c.taskCounts(id, e.Services(), c.w.apps.Mode)
		now := newWritten(apps, svcs)
		now.at = time.Now()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if prev := c.last[id]; prev == nil || full {
			err = c.w.st.PutCounts(wctx, c.w.cfg.WorkerID, id, apps, svcs)
		} else {
			ca, cs, ga, gs := prev.changes(now)
			if len(ca)+len(cs)+len(ga)+len(gs) == 0 && now.at.Sub(prev.at) < restampAge {
				cancel()
				continue // unchanged and fresh: nothing to write
			}
			err = c.w.st.UpdateCounts(wctx, c.w.cfg.WorkerID, id, ca, cs, ga, gs)
		}
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.w.log.Debug("counts: write failed (retried)", "task", id, "err", err)
			}
			c.last[id] = nil // everything again next round
			continue
		}
		c.last[id] = now
	}
	if c.rounds%sweepEvery == 0 {
		c.sweep(c.rounds - sweepEvery + 1)
	}
	var gone []int64
	for id := range c.last {
		if _, ok := engines[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.w.st.DeleteCounts(dctx, c.w.cfg.WorkerID, gone...)
		cancel()
		if err == nil {
			for _, id := range gone {
				delete(c.last, id)
			}
		}
	}
	c.writeMetrics(ctx, time.Now())
}

// Metric families read for the metric history.
const (
	metricLag    = "ferry_sync_zk_to_registry_seconds"
	metricErrors = "ferry_sync_apply_errors_total"
	metricBeats  = "ferry_registryclient_beats_sent_total"
)

func seriesKey(name string, m *dto.Metric) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range m.GetLabel() {
		b.WriteByte('|')
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
	}
	return b.String()
}

// delta is cur minus the series' previous value; a series that went back
// (its part restarted) counts from zero.
func delta(prev map[string]float64, next map[string]float64, key string, cur float64) float64 {
	next[key] = cur
	if p, ok := prev[key]; ok && cur >= p {
		return cur - p
	}
	return cur
}

// writeMetrics adds what the counters did since the last round to the
// current minute and upserts it.
func (c *countsWriter) writeMetrics(ctx context.Context, now time.Time) {
	fams, _ := c.w.gather.Gather() // partial results are fine
	minute := now.UTC().Truncate(time.Minute)
	if !c.minute.Minute.Equal(minute) {
		c.minute = store.MetricMinute{WorkerID: c.w.cfg.WorkerID, Minute: minute}
	}
	next := make(map[string]float64, len(c.prev))
	nextH := make(map[string][]uint64, len(c.prevH))
	for _, f := range fams {
		switch f.GetName() {
		case metricBeats, metricErrors:
			for _, m := range f.GetMetric() {
				d := int64(delta(c.prev, next, seriesKey(f.GetName(), m), m.GetCounter().GetValue()))
				if f.GetName() == metricBeats {
					c.minute.Beats += d
				} else {
					c.minute.Errors += d
				}
			}
		case metricLag:
			for _, m := range f.GetMetric() {
				h := m.GetHistogram()
				bs := h.GetBucket()
				if len(bs) != len(store.LagBuckets) {
					continue
				}
				cum := make([]uint64, len(bs)+1)
				for i, b := range bs {
					cum[i] = b.GetCumulativeCount()
				}
				cum[len(bs)] = h.GetSampleCount()
				key := seriesKey(f.GetName(), m)
				nextH[key] = cum
				prev := c.prevH[key]
				if len(prev) == len(cum) && cum[len(bs)] >= prev[len(bs)] {
					d := make([]uint64, len(cum))
					for i := range cum {
						d[i] = cum[i] - min(prev[i], cum[i])
					}
					cum = d
				}
				lag, err := store.LagHistogram(cum[:len(bs)], cum[len(bs)])
				if err != nil {
					continue
				}
				if c.minute.Lag == nil {
					c.minute.Lag = make([]int64, len(store.LagBuckets)+1)
				}
				c.minute.Lag = store.AddLag(c.minute.Lag, lag)
			}
		}
	}
	c.prev, c.prevH = next, nextH
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.w.st.PutMetricMinutes(wctx, c.minute); err != nil && ctx.Err() == nil {
		c.w.log.Debug("metric history: write failed (retried)", "err", err)
	}
}

// writeCounts runs the counts rounds until ctx ends.
func (w *Worker) writeCounts(ctx context.Context, every time.Duration) {
	c := newCountsWriter(w)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.round(ctx)
	}
}

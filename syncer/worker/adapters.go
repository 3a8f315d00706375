package worker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
)

func ref(s syncer.ServiceRef) registryclient.ServiceRef {
	return registryclient.ServiceRef{Namespace: s.Namespace, Group: s.Group, Name: s.Name}
}

func toClient(insts []syncer.Instance) []registryclient.Instance {
	out := make([]registryclient.Instance, 0, len(insts))
	for _, in := range insts {
		out = append(out, registryclient.Instance{IP: in.IP, Port: in.Port, Weight: in.Weight,
			Metadata: in.Metadata, Disabled: !in.Enabled, Unhealthy: !in.Healthy})
	}
	return out
}

func (r *clientRegistry) List(ctx context.Context, svc syncer.ServiceRef) ([]syncer.Instance, error) {
	info, err := r.c.Query(ctx, ref(svc), "", false)
	if err != nil {
		return nil, err
	}
	// What we keep comes back as an equal copy: hold the kept metadata
	// instead (the engine adopts the listing as its registered state).
	r.c.ShareKept(ref(svc), info.Hosts)
	out := make([]syncer.Instance, 0, len(info.Hosts))
	for _, h := range info.Hosts {
		out = append(out, syncer.Instance{IP: h.IP, Port: h.Port, Weight: h.Weight, Enabled: h.Enabled,
			Healthy: h.Healthy, Ephemeral: h.Ephemeral, Metadata: h.Metadata})
	}
	return out, nil
}

// appModes caches the store's apps table, refreshed every poll interval;
// Changed is signalled when any mode changes. Owned by its loop goroutine;
// readers see an immutable map through an atomic pointer.
type appModes struct {
	st      *store.Store
	log     *slog.Logger
	modes   atomic.Pointer[map[string]syncer.AppMode]
	changed chan struct{}
}

func newAppModes(st *store.Store, log *slog.Logger) *appModes {
	a := &appModes{st: st, log: log, changed: make(chan struct{}, 1)}
	empty := map[string]syncer.AppMode{}
	a.modes.Store(&empty)
	return a
}

func (a *appModes) Mode(app string) syncer.AppMode {
	if m, ok := (*a.modes.Load())[app]; ok {
		return m
	}
	return syncer.ModeSync
}

func (a *appModes) Changed() <-chan struct{} { return a.changed }

// refresh reloads the table and reports whether it could; an error keeps
// the last known modes.
func (a *appModes) refresh(ctx context.Context) bool {
	apps, err := a.st.ListApps(ctx, "")
	if err != nil {
		a.log.Warn("app modes: reload failed, keeping the last known modes", "err", err)
		return false
	}
	next := make(map[string]syncer.AppMode, len(apps))
	for _, app := range apps {
		next[app.Name] = syncer.AppMode(app.Mode)
	}
	prev := *a.modes.Load()
	same := len(prev) == len(next)
	for k, v := range next {
		if prev[k] != v {
			same = false
			break
		}
	}
	if same {
		return true
	}
	a.modes.Store(&next)
	select {
	case a.changed <- struct{}{}:
	default:
	}
	return true
}

func (a *appModes) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.refresh(ctx)
		}
	}
}

// eventLinger is how long the event writer waits for more events after the
// first of a batch; eventBatch caps a batch.
const (
	eventLinger = 200 * time.Millisecond
	eventBatch  = 256
)

// eventSink buffers engine events and writes them to the store in batches
// from one goroutine; when the buffer is full events are dropped and counted
// (Record never blocks the engine).
type eventSink struct {
	st      *store.Store
	log     *slog.Logger
	ch      chan syncer.Event
	dropped atomic.Int64
	once    sync.Once
}

func newEventSink(st *store.Store, log *slog.Logger, size int) *eventSink {
	return &eventSink{st: st, log: log, ch: make(chan syncer.Event, size)}
}

// collectors are the buffer's bound and losses on /metrics.
func (e *eventSink) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_worker_events_buffered",
			Help: "Events waiting to be written to the store; bounded by the buffer (ferry_worker_events_buffer_size)."},
			func() float64 { return float64(len(e.ch)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_worker_events_buffer_size",
			Help: "Capacity of the event buffer: events beyond it are dropped and counted."},
			func() float64 { return float64(cap(e.ch)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_worker_events_dropped_total",
			Help: "Events dropped because the buffer was full (the store too slow or unreachable)."},
			func() float64 { return float64(e.dropped.Load()) }),
	}
}

func (e *eventSink) Record(ev syncer.Event) {
	select {
	case e.ch <- ev:
	default:
		if e.dropped.Add(1) == 1 {
			e.log.Warn("event buffer full: dropping events (counted)")
		}
	}
}

func toStore(ev syncer.Event) store.Event {
	detail := ev.Detail
	if ev.Task != "" {
		detail = "task=" + ev.Task + " " + detail
	}
	return store.Event{Time: ev.At, Kind: string(ev.Kind), Service: ev.Service, Instance: ev.Instance,
		Worker: ev.Worker, Detail: detail}
}

// run writes events until ctx ends, then flushes what is buffered.
func (e *eventSink) run(ctx context.Context) {
	flush := func(batch []store.Event) {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.st.AppendEvents(wctx, batch...); err != nil {
			e.log.Warn("events not written", "n", len(batch), "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			var batch []store.Event
			for {
				select {
				case ev := <-e.ch:
					batch = append(batch, toStore(ev))
				default:
					flush(batch)
					return
				}
			}
		case ev := <-e.ch:
			// Linger a little for more: a restart storm's stale-removal
			// events (one per restart) then cost one transaction per
			// eventLinger instead of one each.
			batch := []store.Event{toStore(ev)}
			linger := time.NewTimer(eventLinger)
		collect:
			for len(batch) < eventBatch {
				select {
				case ev := <-e.ch:
					batch = append(batch, toStore(ev))
				case <-linger.C:
					break collect
				case <-ctx.Done():
					break collect
				}
			}
			linger.Stop()
			flush(batch)
		}
	}
}

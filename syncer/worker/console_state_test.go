package worker

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/store"
)

// healthySampler samples the registry as a consumer does (healthy
// instances only, every 100 ms) and records every sample in which one of
// the watched instances was missing.
type healthySampler struct {
	regAddr string
	names   []string

	mu      sync.Mutex // guards watch, missing, samples
	watch   map[string]bool
	missing []string
	samples int

	stop chan struct{}
	done chan struct{}
}

func newHealthySampler(regAddr string, names []string) *healthySampler {
	s := &healthySampler{regAddr: regAddr, names: names, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *healthySampler) run() {
	defer close(s.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		h, err := healthyMarkers(s.regAddr, s.names)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.samples++
		for k := range s.watch {
			if _, ok := h[k]; !ok {
				s.missing = append(s.missing, k)
			}
		}
		s.mu.Unlock()
	}
}

// expect makes the sampler check that every key of want stays healthy
// (from its next sample on) and returns what went missing since the last
// call.
func (s *healthySampler) expect(want map[string]bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.missing
	s.missing, s.watch = nil, want
	return out
}

func (s *healthySampler) close() { close(s.stop); <-s.done }

// TestWorkersFollowConsoleState: two workers on one MariaDB store follow
// what the console writes, sampled through the registry as consumers see
// it (healthy instances only). Task and app reloads are slowed to minutes,
// so the settings generation is what makes them act.
//   - both report the settings generation they applied, in Status and in
//     their worker rows;
//   - a resync-service command is acked once by each, by its owner with a
//     queued reconcile and by the other with "not owner"; confirm-removals
//     is applied on both;
//   - an app switched to native leaves the registry and comes back when
//     switched to sync; the other app's instances never miss a sample;
//   - narrowing a task's include removes only the services it left (the
//     others never miss a sample);
//   - pausing removes every instance of the task within seconds, resuming
//     restores them, deleting removes them.
func TestWorkersFollowConsoleState(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	db := mysqlserver.ForTest(t)
	dsn, err := db.CreateDatabase(ctx, "consolestate")
	if err != nil {
		t.Fatal(err)
	}
	const services, instances = 6, 2
	_, stk := newStack(ctx, t, services, instances, 0, func(c *zkload.Config) { c.ServicesPerApp = 3 })
	loader := stk.loader
	names := make([]string, services)
	for i := range names {
		names[i] = nacosName(loader.Interface(i))
	}
	keys := func(svcs ...int) map[string]bool {
		out := map[string]bool{}
		for _, i := range svcs {
			for j := 0; j < instances; j++ {
				out[names[i]+"/"+loader.Host(i, j)+":20880"] = true
			}
		}
		return out
	}
	// present reports whether exactly the instances of svcs are healthy.
	present := func(svcs ...int) func() bool {
		want := keys(svcs...)
		return func() bool {
			h, err := healthyMarkers(stk.regAddr, names)
			if err != nil || len(h) != len(want) {
				return false
			}
			for k := range want {
				if _, ok := h[k]; !ok {
					return false
				}
			}
			return true
		}
	}

	// A confirmation issued before the workers start is acked, not applied:
	// they held nothing when it was given.
	st0, err := store.Open(ctx, dsn, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	early := &store.Command{Kind: store.CommandConfirmRemovals, CreatedBy: "test"}
	if err := st0.IssueCommand(ctx, early, 0); err != nil {
		t.Fatal(err)
	}
	_ = st0.Close()

	workers := map[string]*Worker{}
	for _, id := range []string{"w1", "w2"} {
		cfg := stk.workerConfig(t, "")
		cfg.DB, cfg.WorkerID = dsn, id
		cfg.TaskPoll, cfg.AppPoll = 10*time.Minute, 10*time.Minute
		cfg.SettingsPoll, cfg.CommandPoll, cfg.CountsInterval = 100*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
		w, err := Start(ctx, cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w.Stop(sctx)
		})
		workers[id] = w
	}
	st := workers["w1"].st
	all := []int{0, 1, 2, 3, 4, 5}
	waitFor(t, "every provider healthy in the registry", 60*time.Second, present(all...))
	if h, _ := healthyMarkers(stk.regAddr, names); len(h) > 0 {
		if got := loader.Host(0, 0) + ":20880"; !strings.Contains(strings.Join(mapKeys(h), " "), got) {
			t.Fatalf("healthy instances %v lack %s (the test's address rule is wrong)", mapKeys(h), got)
		}
	}
	tasks, err := st.ListTasks(ctx, store.TaskFilter{})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks = %v, %v", tasks, err)
	}
	task := tasks[0]

	// atGeneration waits until both workers applied the store's generation
	// and wrote it into their rows.
	atGeneration := func(what string) {
		t.Helper()
		g, err := st.SettingsGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "both workers at settings generation after "+what, 30*time.Second, func() bool {
			for _, w := range workers {
				if w.Status().AppliedGeneration < g {
					return false
				}
			}
			ws, err := st.ListWorkers(ctx, time.Minute)
			if err != nil || len(ws) != 2 {
				return false
			}
			for _, r := range ws {
				if r.AppliedGeneration < g {
					return false
				}
			}
			return true
		})
	}
	atGeneration("start")

	// Counts: per app summed over the two workers, per service by its
	// owner; metric history from both.
	appCounts := func(want map[string]store.AppCount) func() bool {
		return func() bool {
			got, err := st.ListAppCounts(ctx, task.ID, 30*time.Second)
			if err != nil || len(got) != len(want) {
				return false
			}
			for _, a := range got {
				w, ok := want[a.App]
				if !ok || a.ZK != w.ZK || a.Synced != w.Synced || a.Native != w.Native || a.Failing != w.Failing ||
					len(a.Skipped) != len(w.Skipped) || a.Kind != store.KindInterface {
					return false
				}
				for r, n := range w.Skipped {
					if a.Skipped[r] != n {
						return false
					}
				}
			}
			return true
		}
	}
	app0, app1 := loader.Application(0), loader.Application(3)
	synced := func(app string) store.AppCount {
		return store.AppCount{App: app, ZK: 3 * instances, Synced: 3 * instances}
	}
	waitFor(t, "app counts of both apps, every provider synced", 90*time.Second,
		appCounts(map[string]store.AppCount{app0: synced(app0), app1: synced(app1)}))
	waitFor(t, "service counts of every service", 30*time.Second, func() bool {
		got, err := st.ListServiceCounts(ctx, store.ServiceCountFilter{TaskID: task.ID}, 30*time.Second)
		if err != nil || len(got) != services {
			return false
		}
		for i, c := range got {
			if c.Service != names[i] || c.ZK != instances || c.Synced != instances || c.Registry != instances ||
				c.App != loader.Application(i) || (c.WorkerID != "w1" && c.WorkerID != "w2") {
				return false
			}
		}
		return true
	})
	waitFor(t, "metric history of both workers with beats", 30*time.Second, func() bool {
		now := time.Now()
		ms, err := st.ListMetricMinutes(ctx, "", now.Add(-2*time.Minute), now.Add(time.Minute))
		if err != nil {
			return false
		}
		beats := map[string]int64{}
		for _, m := range ms {
			beats[m.WorkerID] += m.Beats
		}
		return beats["w1"] > 0 && beats["w2"] > 0
	})

	// Commands: each worker acks once; one owns the service.
	acks := func(c *store.Command) []store.CommandAck {
		t.Helper()
		var out []store.CommandAck
		waitFor(t, "both workers to ack command "+string(c.Kind), 30*time.Second, func() bool {
			var err error
			out, err = st.CommandAcks(ctx, c.ID)
			return err == nil && len(out) == 2
		})
		return out
	}
	for _, a := range acks(early) {
		if a.Result != "skipped: issued before this worker started" {
			t.Fatalf("ack of a confirmation older than the worker: %+v", a)
		}
	}
	resync := &store.Command{Kind: store.CommandResyncService, TaskID: task.ID, Service: loader.Interface(0), CreatedBy: "test"}
	if err := st.IssueCommand(ctx, resync, 0); err != nil {
		t.Fatal(err)
	}
	owners := 0
	for _, a := range acks(resync) {
		switch {
		case a.Error != "":
			t.Fatalf("resync ack %+v has an error", a)
		case strings.HasPrefix(a.Result, "full reconcile of "+loader.Interface(0)):
			owners++
		case a.Result != "not owner":
			t.Fatalf("resync ack result %q, want a queued reconcile or \"not owner\"", a.Result)
		}
	}
	if owners != 1 {
		t.Fatalf("%d workers resynced the service, want its one owner", owners)
	}
	// A registry name works as well as the ZooKeeper name.
	resync2 := &store.Command{Kind: store.CommandResyncService, TaskID: task.ID, Service: names[1], CreatedBy: "test"}
	if err := st.IssueCommand(ctx, resync2, 0); err != nil {
		t.Fatal(err)
	}
	owners = 0
	for _, a := range acks(resync2) {
		if strings.HasPrefix(a.Result, "full reconcile of "+loader.Interface(1)) {
			owners++
		}
	}
	if owners != 1 {
		t.Fatalf("%d workers resynced service 1 by its registry name, want 1", owners)
	}
	confirm := &store.Command{Kind: store.CommandConfirmRemovals, CreatedBy: "test"}
	if err := st.IssueCommand(ctx, confirm, 0); err != nil {
		t.Fatal(err)
	}
	for _, a := range acks(confirm) {
		if a.Result != "confirmed on 1 task(s)" || a.Error != "" {
			t.Fatalf("confirm ack %+v, want confirmed on the one task", a)
		}
	}

	sampler := newHealthySampler(stk.regAddr, names)
	defer sampler.close()
	check := func(what string, stay map[string]bool) {
		t.Helper()
		if miss := sampler.expect(stay); len(miss) > 0 {
			t.Fatalf("%s: instances missed healthy samples: %v", what, miss)
		}
	}

	// App 0 (services 0-2) to native and back; app 1's never miss.
	check("before the app switch", keys(3, 4, 5))
	if _, err := st.SetAppMode(ctx, app0, store.AppNative, "test"); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "app 0's synced instances to leave", 30*time.Second, present(3, 4, 5))
	t.Logf("app switched to native: its instances gone after %v", took)
	atGeneration("the app switch")
	waitFor(t, "app 0 counted native", 30*time.Second, appCounts(map[string]store.AppCount{
		app0: {App: app0, ZK: 3 * instances, Native: 3 * instances, Skipped: map[string]int{"app_native": 3 * instances}},
		app1: synced(app1)}))
	if _, err := st.SetAppMode(ctx, app0, store.AppSync, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "app 0's instances to return", 30*time.Second, present(all...))
	check("the app switch to native and back", keys(0, 1, 2, 3, 4))

	// Narrowing the include: service 5 leaves, the others stay throughout.
	task.Include = []string{loader.Interface(0), loader.Interface(1), loader.Interface(2), loader.Interface(3), loader.Interface(4)}
	if err := st.UpdateTask(ctx, &task, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the excluded service to leave", 30*time.Second, present(0, 1, 2, 3, 4))
	atGeneration("the include edit")
	check("narrowing the include", nil)

	// Pause removes everything within seconds (on both workers), resume
	// restores it, delete removes it.
	if err := st.SetTaskState(ctx, task.ID, store.TaskPaused, "test"); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, "the paused task's instances to leave", 15*time.Second, present())
	t.Logf("task paused: every instance gone after %v", took)
	if err := st.SetTaskState(ctx, task.ID, store.TaskRunning, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed task's instances to return", 30*time.Second, present(0, 1, 2, 3, 4))
	if err := st.SetTaskState(ctx, task.ID, store.TaskDeleted, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted task's instances to leave", 15*time.Second, present())
	waitFor(t, "the deleted task's counts to go", 15*time.Second, func() bool {
		a, err1 := st.ListAppCounts(ctx, task.ID, time.Hour)
		s, err2 := st.ListServiceCounts(ctx, store.ServiceCountFilter{TaskID: task.ID}, time.Hour)
		return err1 == nil && err2 == nil && len(a) == 0 && len(s) == 0
	})
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWorkerRunsRetention: `ferry sync`'s worker starts the store's
// retention job: an event older than EventMaxAge goes, a fresh one stays.
func TestWorkerRunsRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, stk := newStack(ctx, t, 1, 1, 0)
	cfg := stk.workerConfig(t, "")
	cfg.Retention.Schedule, cfg.Retention.EventMaxAge = "@every 1s", time.Hour
	w, err := Start(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	now := time.Now().UTC()
	if err := w.st.AppendEvents(ctx, store.Event{Time: now.Add(-2 * time.Hour), Kind: "test_old"},
		store.Event{Time: now, Kind: "test_new"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old event pruned", 30*time.Second, func() bool {
		old, err1 := w.st.ListEvents(ctx, store.EventFilter{Kind: "test_old"})
		fresh, err2 := w.st.ListEvents(ctx, store.EventFilter{Kind: "test_new"})
		return err1 == nil && err2 == nil && len(old) == 0 && len(fresh) == 1
	})
}

// TestWorkerWritesMetricHistory: a ZooKeeper change applied shows in the
// current minute's lag histogram in the store, with the beats sent.
func TestWorkerWritesMetricHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lcfg, stk := newStack(ctx, t, 1, 1, 0)
	cfg := stk.workerConfig(t, "")
	cfg.CountsInterval = 100 * time.Millisecond
	w, err := Start(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	name := nacosName(stk.loader.Interface(0))
	waitFor(t, "the service synced", 90*time.Second, func() bool { return len(hosts(t, stk.regAddr, name)) == 1 })
	p := stk.loader.ProviderPath(0, stk.loader.ProviderURL(0, lcfg.Instances, time.Now().UnixMilli()))
	if _, err := stk.loader.Conn().Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change's lag and the beats in the metric history", 30*time.Second, func() bool {
		now := time.Now()
		ms, err := w.st.ListMetricMinutes(ctx, "w1", now.Add(-2*time.Minute), now.Add(time.Minute))
		if err != nil {
			return false
		}
		merged := store.MergeMetricMinutes(ms)
		var lag []int64
		var beats int64
		for _, m := range merged {
			lag = store.AddLag(lag, m.Lag)
			beats += m.Beats
		}
		_, ok := store.LagQuantile(lag, 0.99)
		return ok && beats > 0
	})
}

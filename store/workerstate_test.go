package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Every mutator of clusters, tasks and apps bumps the settings generation
// once, in its transaction; a failed change bumps nothing.
func TestSettingsGeneration(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		gen := func() int64 {
			t.Helper()
			g, err := s.SettingsGeneration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		last := gen()
		if last < 1 {
			t.Fatalf("initial generation %d", last)
		}
		step := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if g := gen(); g != last+1 {
				t.Fatalf("%s: generation %d, want %d", what, g, last+1)
			}
			last++
		}
		noStep := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s: succeeded, want an error", what)
			}
			if g := gen(); g != last {
				t.Fatalf("%s failed but generation moved %d -> %d", what, last, g)
			}
		}
		zk := &ZKCluster{Name: "zk", ConnectString: "z:2181"}
		step("create zk cluster", s.CreateZKCluster(ctx, zk))
		noStep("duplicate zk cluster", s.CreateZKCluster(ctx, &ZKCluster{Name: "zk", ConnectString: "z:2181"}))
		zk.Root = "/dubbo2"
		step("update zk cluster", s.UpdateZKCluster(ctx, zk))
		noStep("update missing zk cluster", s.UpdateZKCluster(ctx, &ZKCluster{ID: 999, Name: "x", ConnectString: "z:1"}))
		reg := &RegistryCluster{Name: "r", Kind: RegistryBundled, ServerList: []string{"r:8848"}}
		step("create registry cluster", s.CreateRegistryCluster(ctx, reg))
		reg.Namespace = "ns"
		step("update registry cluster", s.UpdateRegistryCluster(ctx, reg))
		task := &SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull}
		step("create task", s.CreateTask(ctx, task))
		noStep("create task on a missing cluster", s.CreateTask(ctx, &SyncTask{SourceClusterID: 999, DestClusterID: reg.ID, Scope: ScopeFull}))
		task.Include = []string{"com.a.*"}
		step("update task", s.UpdateTask(ctx, task, "op"))
		step("pause task", s.SetTaskState(ctx, task.ID, TaskPaused, "op"))
		noStep("delete zk cluster in use", s.DeleteZKCluster(ctx, zk.ID))
		step("delete task", s.SetTaskState(ctx, task.ID, TaskDeleted, "op"))
		step("purge task", s.PurgeTask(ctx, task.ID))
		step("delete zk cluster", s.DeleteZKCluster(ctx, zk.ID))
		step("delete registry cluster", s.DeleteRegistryCluster(ctx, reg.ID))
		_, err := s.SetAppMode(ctx, "app-1", AppNative, "op")
		step("set app mode", err)
		_, err = s.SetAppMode(ctx, "", AppNative, "op")
		noStep("set app mode without a name", err)
		step("delete app", s.DeleteApp(ctx, "app-1"))
		noStep("delete missing app", s.DeleteApp(ctx, "app-1"))
		g, err := s.BumpSettingsGeneration(ctx)
		step("bump", err)
		if g != last {
			t.Fatalf("bump returned %d, want %d", g, last)
		}
		// Inside a caller's transaction: rolled back with it.
		boom := errors.New("boom")
		noStep("bump in a failed tx", s.InTx(ctx, func(tx *Store) error {
			if _, err := tx.BumpSettingsGeneration(ctx); err != nil {
				return err
			}
			return boom
		}))

		// The heartbeat carries the applied generation.
		if err := s.RegisterWorker(ctx, "w1", "h:1", "v"); err != nil {
			t.Fatal(err)
		}
		if err := s.HeartbeatWorkerGeneration(ctx, "w1", last); err != nil {
			t.Fatal(err)
		}
		ws, err := s.ListWorkers(ctx, time.Minute)
		if err != nil || len(ws) != 1 || ws[0].AppliedGeneration != last || !ws[0].Live {
			t.Fatalf("workers = %+v, %v", ws, err)
		}
		if err := s.SetWorkerGeneration(ctx, "w1", last+5); err != nil {
			t.Fatal(err)
		}
		if ws, _ = s.ListWorkers(ctx, time.Minute); ws[0].AppliedGeneration != last+5 {
			t.Fatalf("after set: %+v", ws)
		}
		if err := s.HeartbeatWorkerGeneration(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("heartbeat of a missing worker: %v", err)
		}
		if err := s.SetWorkerGeneration(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("set generation of a missing worker: %v", err)
		}
		// Registering again (a restart) starts from nothing applied.
		if err := s.RegisterWorker(ctx, "w1", "h:1", "v"); err != nil {
			t.Fatal(err)
		}
		if ws, _ = s.ListWorkers(ctx, time.Minute); ws[0].AppliedGeneration != 0 {
			t.Fatalf("after re-register: %+v", ws)
		}
	})
}

// The lessor reports the generation its callback returns.
func TestLessorReportsGeneration(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		cfg := DefaultLessorConfig("w-gen")
		cfg.Shards = 4
		cfg.Generation = func() int64 { return 42 }
		l, err := NewLessor(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		defer l.Stop(ctx)
		waitFor(t, 10*time.Second, "worker row reports generation 42", func() bool {
			ws, err := s.ListWorkers(ctx, time.Minute)
			return err == nil && len(ws) == 1 && ws[0].AppliedGeneration == 42
		})
	})
}

func TestCommands(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		bad := []struct {
			c    Command
			want string
		}{
			{Command{Kind: "reboot"}, "kind"},
			{Command{Kind: CommandResyncService, Service: "s"}, "task id"},
			{Command{Kind: CommandResyncService, TaskID: 1}, "service"},
			{Command{Kind: CommandConfirmRemovals, Service: "s"}, "service"},
			{Command{Kind: CommandConfirmRemovals, TaskID: -1}, "task id"},
		}
		for _, tt := range bad {
			if err := s.IssueCommand(ctx, &tt.c, 0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%+v: err = %v, want ErrInvalid naming %q", tt.c, err, tt.want)
			}
		}
		all := &Command{Kind: CommandConfirmRemovals, CreatedBy: "op"}
		if err := s.IssueCommand(ctx, all, 0); err != nil {
			t.Fatal(err)
		}
		if all.ID == 0 || all.ExpiresAt.Sub(all.CreatedAt) != DefaultCommandTTL {
			t.Fatalf("issued %+v", all)
		}
		resync := &Command{Kind: CommandResyncService, TaskID: 3, Service: "providers:a.B::"}
		if err := s.IssueCommand(ctx, resync, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Expired at once: never pending.
		gone := &Command{Kind: CommandConfirmRemovals, TaskID: 3}
		if err := s.IssueCommand(ctx, gone, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the 1 ms command expires", func() bool {
			p, err := s.PendingCommands(ctx, "w1", 0)
			return err == nil && len(p) == 2
		})
		p, _ := s.PendingCommands(ctx, "w1", 0)
		if p[0].ID != all.ID || p[1].ID != resync.ID || p[1].Service != resync.Service || p[1].TaskID != 3 || p[1].Kind != CommandResyncService {
			t.Fatalf("pending = %+v", p)
		}
		if p, _ := s.PendingCommands(ctx, "w1", all.ID); len(p) != 1 || p[0].ID != resync.ID {
			t.Fatalf("pending after %d = %+v", all.ID, p)
		}
		if err := s.AckCommand(ctx, all.ID, "w1", "released 2 holds", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.AckCommand(ctx, all.ID, "w1", "second ack", "ignored"); err != nil {
			t.Fatal(err)
		}
		if err := s.AckCommand(ctx, 99999, "w1", "", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ack of a missing command: %v", err)
		}
		if p, _ := s.PendingCommands(ctx, "w1", 0); len(p) != 1 || p[0].ID != resync.ID {
			t.Fatalf("w1 pending after ack = %+v", p)
		}
		if p, _ := s.PendingCommands(ctx, "w2", 0); len(p) != 2 {
			t.Fatalf("w2 pending = %+v", p)
		}
		if err := s.AckCommand(ctx, all.ID, "w2", "", "task 7 not running"); err != nil {
			t.Fatal(err)
		}
		acks, err := s.CommandAcks(ctx, all.ID)
		if err != nil || len(acks) != 2 || acks[0].WorkerID != "w1" || acks[0].Result != "released 2 holds" || acks[0].Error != "" ||
			acks[1].Error != "task 7 not running" || acks[0].AppliedAt.IsZero() {
			t.Fatalf("acks = %+v, %v", acks, err)
		}
		cs, err := s.ListCommands(ctx, 0)
		if err != nil || len(cs) != 3 || cs[0].ID != gone.ID {
			t.Fatalf("list = %+v, %v", cs, err)
		}
		if c, err := s.GetCommand(ctx, resync.ID); err != nil || c.Service != resync.Service {
			t.Fatalf("get = %+v, %v", c, err)
		}
		if _, err := s.GetCommand(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		if n, err := s.PruneCommands(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("prune recent = %d, %v", n, err)
		}
		// Everything expired "an hour from now" goes, acks with it.
		if n, err := s.PruneCommands(ctx, -time.Hour); err != nil || n != 3 {
			t.Fatalf("prune all = %d, %v", n, err)
		}
		if acks, _ := s.CommandAcks(ctx, all.ID); len(acks) != 0 {
			t.Fatalf("acks after prune = %+v", acks)
		}
	})
}

func TestCounts(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		svc := func(name, app string, zk, reg int) ServiceCount {
			return ServiceCount{TaskID: 1, Service: name, App: app, Kind: KindInterface, ZK: zk, Registry: reg, Synced: reg}
		}
		if err := s.PutCounts(ctx, "w1", 1,
			[]AppCount{{TaskID: 1, App: "app-1", Kind: KindInterface, ZK: 4, Synced: 3, Failing: 1, Skipped: map[string]int{"withNacos": 1}}},
			[]ServiceCount{svc("providers:a.A::", "app-1", 2, 2), svc("providers:a.B::", "app-1", 2, 1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCounts(ctx, "w2", 1,
			[]AppCount{
				{TaskID: 1, App: "app-1", Kind: KindInterface, ZK: 2, Synced: 2, Skipped: map[string]int{"withNacos": 2, "excluded": 1}},
				{TaskID: 1, App: "app-2", Kind: KindApplication, ZK: 5, Native: 5},
			},
			[]ServiceCount{svc("providers:a.C::", "app-1", 2, 2)}); err != nil {
			t.Fatal(err)
		}
		apps, err := s.ListAppCounts(ctx, 0, time.Minute)
		if err != nil || len(apps) != 2 {
			t.Fatalf("apps = %+v, %v", apps, err)
		}
		a := apps[0]
		if a.App != "app-1" || a.ZK != 6 || a.Synced != 5 || a.Failing != 1 || a.Skipped["withNacos"] != 3 || a.Skipped["excluded"] != 1 ||
			a.WorkerID != "" || a.UpdatedAt.IsZero() {
			t.Fatalf("app-1 summed = %+v", a)
		}
		if b := apps[1]; b.App != "app-2" || b.Kind != KindApplication || b.Native != 5 || b.WorkerID != "w2" {
			t.Fatalf("app-2 = %+v", b)
		}
		if apps, _ := s.ListAppCounts(ctx, 2, time.Minute); len(apps) != 0 {
			t.Fatalf("task 2 apps = %+v", apps)
		}
		svcs, err := s.ListServiceCounts(ctx, ServiceCountFilter{}, time.Minute)
		if err != nil || len(svcs) != 3 || svcs[1].Service != "providers:a.B::" || svcs[1].WorkerID != "w1" || svcs[1].Registry != 1 {
			t.Fatalf("services = %+v, %v", svcs, err)
		}
		if short, _ := s.ListServiceCounts(ctx, ServiceCountFilter{Short: true}, time.Minute); len(short) != 1 || short[0].Service != "providers:a.B::" {
			t.Fatalf("short = %+v", short)
		}
		// w2 takes a.B over (shard moved) and w1's next put no longer has
		// it: w1's put must not delete the row w2 now owns.
		if err := s.PutCounts(ctx, "w2", 1, nil, []ServiceCount{svc("providers:a.C::", "app-1", 2, 2), svc("providers:a.B::", "app-1", 2, 2)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCounts(ctx, "w1", 1, nil, []ServiceCount{svc("providers:a.A::", "app-1", 2, 2)}); err != nil {
			t.Fatal(err)
		}
		svcs, _ = s.ListServiceCounts(ctx, ServiceCountFilter{TaskID: 1}, time.Minute)
		if len(svcs) != 3 || svcs[1].WorkerID != "w2" || svcs[1].Registry != 2 {
			t.Fatalf("after takeover = %+v", svcs)
		}
		// Both puts replaced their app rows: w2's put had none.
		if apps, _ := s.ListAppCounts(ctx, 1, time.Minute); len(apps) != 0 {
			t.Fatalf("apps after empty puts = %+v", apps)
		}
		if one, _ := s.ListServiceCounts(ctx, ServiceCountFilter{Service: "providers:a.A::", App: "app-1"}, time.Minute); len(one) != 1 {
			t.Fatalf("filter by service = %+v", one)
		}
		if err := s.PutCounts(ctx, "w1", 1, []AppCount{{TaskID: 2, App: "x", Kind: KindInterface}}, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("wrong task id: %v", err)
		}
		if err := s.PutCounts(ctx, "w1", 1, nil, []ServiceCount{{TaskID: 1, Service: "s", Kind: "rpc"}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "kind") {
			t.Fatalf("bad kind: %v", err)
		}
		if err := s.DeleteCounts(ctx, "w2"); err != nil {
			t.Fatal(err)
		}
		if svcs, _ = s.ListServiceCounts(ctx, ServiceCountFilter{}, time.Minute); len(svcs) != 1 || svcs[0].WorkerID != "w1" {
			t.Fatalf("after delete w2 = %+v", svcs)
		}
		if n, err := s.PruneCounts(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("prune fresh = %d, %v", n, err)
		}
		if n, err := s.PruneCounts(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("prune stale = %d, %v", n, err)
		}
	})
}

func TestMetricMinutes(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		m0 := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
		lag := func(bucket int, n int64) []int64 {
			out := make([]int64, len(LagBuckets)+1)
			out[bucket] = n
			return out
		}
		if err := s.PutMetricMinutes(ctx,
			MetricMinute{WorkerID: "w1", Minute: m0, Beats: 100, Errors: 1, Lag: lag(3, 99)},
			MetricMinute{WorkerID: "w2", Minute: m0, Beats: 50, Lag: lag(10, 1)},
			MetricMinute{WorkerID: "w1", Minute: m0.Add(time.Minute), Beats: 10},
		); err != nil {
			t.Fatal(err)
		}
		// Running totals of the same minute replace the row.
		if err := s.PutMetricMinutes(ctx, MetricMinute{WorkerID: "w1", Minute: m0.Add(time.Minute), Beats: 20}); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []MetricMinute{
			{Minute: m0},
			{WorkerID: "w1", Minute: m0.Add(time.Second)},
			{WorkerID: "w1", Minute: m0, Lag: []int64{1}},
			{WorkerID: "w1", Minute: m0, Beats: -1},
		} {
			if err := s.PutMetricMinutes(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: err = %v, want ErrInvalid", bad, err)
			}
		}
		ms, err := s.ListMetricMinutes(ctx, "", m0, m0.Add(time.Hour))
		if err != nil || len(ms) != 3 || ms[2].Beats != 20 || ms[2].Lag != nil || !ms[0].Minute.Equal(m0) || ms[0].Lag[3] != 99 {
			t.Fatalf("list = %+v, %v", ms, err)
		}
		if ms, _ := s.ListMetricMinutes(ctx, "w2", m0, m0.Add(time.Hour)); len(ms) != 1 {
			t.Fatalf("w2 = %+v", ms)
		}
		merged := MergeMetricMinutes(ms)
		if len(merged) != 2 || merged[0].Beats != 150 || merged[0].Errors != 1 || merged[0].WorkerID != "" || merged[1].Beats != 20 {
			t.Fatalf("merged = %+v", merged)
		}
		// p99 of the merge: 99 samples in (4 ms, 8 ms], one in (512 ms,
		// 1024 ms]: the 99th is still in the 8 ms bucket, p100 the slow one.
		if p99, ok := LagQuantile(merged[0].Lag, 0.99); !ok || p99 > 8*time.Millisecond || p99 <= 4*time.Millisecond {
			t.Fatalf("p99 = %v, %v", p99, ok)
		}
		if p100, ok := LagQuantile(merged[0].Lag, 1); !ok || p100 != 1024*time.Millisecond {
			t.Fatalf("p100 = %v, %v", p100, ok)
		}
		if n, err := s.PruneMetricMinutes(ctx, m0.Add(time.Minute)); err != nil || n != 2 {
			t.Fatalf("prune = %d, %v", n, err)
		}
	})
}

func TestLagQuantile(t *testing.T) {
	if _, ok := LagQuantile(nil, 0.5); ok {
		t.Fatal("empty histogram answered")
	}
	h := make([]int64, len(LagBuckets)+1)
	h[0] = 10 // (0, 1 ms]
	if d, _ := LagQuantile(h, 0.5); d != 500*time.Microsecond {
		t.Fatalf("p50 of [0,1ms] = %v", d)
	}
	h[len(LagBuckets)] = 90
	if d, _ := LagQuantile(h, 0.99); d != LagBuckets[len(LagBuckets)-1] {
		t.Fatalf("p99 in the overflow = %v", d)
	}
	if _, ok := LagQuantile(h, 0); ok {
		t.Fatal("q=0 answered")
	}
	cum := make([]uint64, len(LagBuckets))
	for i := range cum {
		cum[i] = uint64(i + 1)
	}
	got, err := LagHistogram(cum, 20)
	if err != nil || got[0] != 1 || got[5] != 1 || got[len(LagBuckets)] != 4 {
		t.Fatalf("LagHistogram = %v, %v", got, err)
	}
	if _, err := LagHistogram(cum[:3], 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short histogram: %v", err)
	}
	cum[4] = 0
	if _, err := LagHistogram(cum, 20); !errors.Is(err, ErrInvalid) {
		t.Fatalf("decreasing histogram: %v", err)
	}
}

// Retention prunes the new tables too.
func TestRetentionWorkerState(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := time.Now().UTC().Truncate(time.Minute).Add(-8 * 24 * time.Hour)
		if err := s.PutMetricMinutes(ctx, MetricMinute{WorkerID: "w1", Minute: old, Beats: 1},
			MetricMinute{WorkerID: "w1", Minute: time.Now().UTC().Truncate(time.Minute), Beats: 1}); err != nil {
			t.Fatal(err)
		}
		c := &Command{Kind: CommandConfirmRemovals}
		if err := s.IssueCommand(ctx, c, time.Minute); err != nil {
			t.Fatal(err)
		}
		r, err := NewRetention(s, RetentionConfig{Schedule: "@every 1h", EventMaxAge: time.Hour, WorkerDeadFor: time.Hour,
			CommandsExpiredFor: -2 * time.Minute, RunTimeout: time.Minute})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "CommandsExpiredFor") {
			t.Fatalf("negative CommandsExpiredFor: %v", err)
		}
		r, err = NewRetention(s, RetentionConfig{Schedule: "@every 1h", EventMaxAge: time.Hour, WorkerDeadFor: time.Hour, RunTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		ms, _ := s.ListMetricMinutes(ctx, "", old.Add(-time.Hour), time.Now().Add(time.Hour))
		if len(ms) != 1 || ms[0].Minute.Equal(old) {
			t.Fatalf("metric minutes after retention = %+v", ms)
		}
		if _, err := s.GetCommand(ctx, c.ID); err != nil {
			t.Fatalf("unexpired command pruned: %v", err)
		}
	})
}

func TestUpdateCounts(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		svc := func(name string, zk int) ServiceCount {
			return ServiceCount{TaskID: 1, Service: name, App: "app-1", Kind: KindInterface, ZK: zk, Registry: zk, Synced: zk}
		}
		app := func(name string, zk int) AppCount {
			return AppCount{TaskID: 1, App: name, Kind: KindInterface, ZK: zk, Synced: zk}
		}
		if err := s.PutCounts(ctx, "w1", 1, []AppCount{app("app-1", 4), app("app-2", 2)},
			[]ServiceCount{svc("providers:a.A::", 2), svc("providers:a.B::", 2), svc("providers:a.D::", 2)}); err != nil {
			t.Fatal(err)
		}
		// w2 took a.D over; w1 then reports it gone with its other changes.
		if err := s.PutCounts(ctx, "w2", 1, nil, []ServiceCount{svc("providers:a.D::", 3)}); err != nil {
			t.Fatal(err)
		}
		// Age every row by a minute: the update must restamp the untouched ones.
		for _, tb := range []string{"app_counts", "service_counts"} {
			if err := s.q(ctx).Exec("UPDATE " + tb + " SET updated_at_ms = updated_at_ms - 60000").Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UpdateCounts(ctx, "w1", 1, []AppCount{app("app-1", 5)}, []ServiceCount{svc("providers:a.C::", 1)},
			[]AppCountKey{{App: "app-2", Kind: KindInterface}}, []string{"providers:a.B::", "providers:a.D::"}); err != nil {
			t.Fatal(err)
		}
		apps, err := s.ListAppCounts(ctx, 1, 30*time.Second)
		if err != nil || len(apps) != 1 || apps[0].App != "app-1" || apps[0].ZK != 5 {
			t.Fatalf("apps = %+v, %v", apps, err)
		}
		fresh, err := s.ListServiceCounts(ctx, ServiceCountFilter{TaskID: 1}, 30*time.Second)
		if err != nil || len(fresh) != 2 || fresh[0].Service != "providers:a.A::" || fresh[0].ZK != 2 ||
			fresh[1].Service != "providers:a.C::" || fresh[1].WorkerID != "w1" {
			t.Fatalf("fresh services = %+v, %v (a.A restamped, a.C new)", fresh, err)
		}
		all, _ := s.ListServiceCounts(ctx, ServiceCountFilter{TaskID: 1}, time.Hour)
		if len(all) != 3 || all[2].Service != "providers:a.D::" || all[2].WorkerID != "w2" || all[2].ZK != 3 {
			t.Fatalf("all services = %+v: w2's a.D must survive w1 calling it gone", all)
		}
		if err := s.UpdateCounts(ctx, "", 1, nil, nil, nil, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no worker: %v", err)
		}
	})
}

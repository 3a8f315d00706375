package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in       string
		dialect  string
		path     string
		masked   string
		wantErr  bool
		errNoPwd bool
	}{
		{in: "sqlite:///var/lib/ferry/ferry.db", dialect: "sqlite", path: "/var/lib/ferry/ferry.db", masked: "sqlite:///var/lib/ferry/ferry.db"},
		{in: "sqlite://./data/ferry.db", dialect: "sqlite", path: "./data/ferry.db", masked: "sqlite://./data/ferry.db"},
		{in: "mysql://ferry:s3cret@tcp(db:3306)/ferry?parseTime=true", dialect: "mysql", masked: "mysql://ferry:***@tcp(db:3306)/ferry"},
		{in: "mysql://root@tcp(127.0.0.1:3306)/ferry", dialect: "mysql", masked: "mysql://root@tcp(127.0.0.1:3306)/ferry"},
		{in: "sqlite://", wantErr: true},
		{in: "sqlite://:memory:", wantErr: true},
		{in: "mysql://u:s3cret@tcp(h:1)/", wantErr: true, errNoPwd: true},
		{in: "mysql://u:s3cret@bogus(h:1/x", wantErr: true, errNoPwd: true},
		{in: "postgres://u:s3cret@h/x", wantErr: true, errNoPwd: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		d, err := ParseDSN(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "DSN") {
				t.Errorf("ParseDSN(%q) err = %v, want ErrInvalid naming the DSN", tt.in, err)
			}
			if err != nil && tt.errNoPwd && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ParseDSN(%q) leaks the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.in, err)
			continue
		}
		if string(d.Dialect) != tt.dialect || d.Path != tt.path || !strings.HasPrefix(d.Masked, tt.masked) {
			t.Errorf("ParseDSN(%q) = %+v", tt.in, d)
		}
		if strings.Contains(d.Masked, "s3cret") {
			t.Errorf("masked DSN leaks password: %q", d.Masked)
		}
		if tt.dialect == "mysql" && (!strings.Contains(d.Driver, "clientFoundRows=true") || !strings.Contains(d.Driver, "parseTime=true")) {
			t.Errorf("mysql driver DSN %q lacks clientFoundRows/parseTime", d.Driver)
		}
	}
}

func TestOpenDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "mysql://u:s3cret@tcp(127.0.0.1:1)/x", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "mysql://u:***@tcp(127.0.0.1:1)/x") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestShardOf(t *testing.T) {
	// Stable across processes: FNV-1a of the name.
	if got := ShardOf("providers:com.example.Foo:1.0.0:"); got != ShardOfN("providers:com.example.Foo:1.0.0:", 256) || got < 0 || got > 255 {
		t.Fatalf("ShardOf = %d", got)
	}
	if ShardOfN("", 256) != int(2166136261%256) {
		t.Fatalf("ShardOf(\"\") is not FNV-1a")
	}
	counts := make([]int, 16)
	for i := range 16000 {
		counts[ShardOfN(fmt.Sprintf("com.example.Service%d", i), 16)]++
	}
	for sh, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("shard %d got %d of 16000 names: uneven", sh, n)
		}
	}
}

func TestZKClusters(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		bad := []struct {
			name string
			c    ZKCluster
			want string
		}{
			{"no name", ZKCluster{ConnectString: "h:2181"}, "name"},
			{"no connect", ZKCluster{Name: "a"}, "connect string"},
			{"relative root", ZKCluster{Name: "a", ConnectString: "h:2181", Root: "dubbo"}, "root"},
			{"negative timeout", ZKCluster{Name: "a", ConnectString: "h:2181", SessionTimeoutMS: -1}, "session timeout"},
		}
		for _, tt := range bad {
			err := s.CreateZKCluster(ctx, &tt.c)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err = %v, want ErrInvalid naming %q", tt.name, err, tt.want)
			}
		}
		c := &ZKCluster{Name: "prod", ConnectString: "zk1:2181,zk2:2181"}
		if err := s.CreateZKCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
		if c.ID == 0 || c.Root != "/dubbo" || c.SessionTimeoutMS != 30000 {
			t.Fatalf("created %+v", c)
		}
		if err := s.CreateZKCluster(ctx, &ZKCluster{Name: "prod", ConnectString: "x:1"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate name: %v", err)
		}
		got, err := s.GetZKCluster(ctx, c.ID)
		if err != nil || got.ConnectString != c.ConnectString || got.CreatedAt.IsZero() {
			t.Fatalf("get = %+v, %v", got, err)
		}
		if _, err := s.GetZKCluster(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		c.Root = "/dubbo2"
		if err := s.UpdateZKCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateZKCluster(ctx, &ZKCluster{ID: 9999, Name: "x", ConnectString: "x:1"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		list, err := s.ListZKClusters(ctx)
		if err != nil || len(list) != 1 || list[0].Root != "/dubbo2" {
			t.Fatalf("list = %+v, %v", list, err)
		}
		// In use by a task: refused. Deleted task: allowed.
		r := &RegistryCluster{Name: "nacos", Kind: RegistryNacos, ServerList: []string{"n1:8848"}}
		if err := s.CreateRegistryCluster(ctx, r); err != nil {
			t.Fatal(err)
		}
		task := &SyncTask{SourceClusterID: c.ID, DestClusterID: r.ID, Scope: ScopeFull, CreatedBy: "alice"}
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteZKCluster(ctx, c.ID); !errors.Is(err, ErrConflict) {
			t.Fatalf("delete in use: %v", err)
		}
		if err := s.DeleteRegistryCluster(ctx, r.ID); !errors.Is(err, ErrConflict) {
			t.Fatalf("delete registry in use: %v", err)
		}
		if err := s.SetTaskState(ctx, task.ID, TaskDeleted, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteZKCluster(ctx, c.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := s.DeleteZKCluster(ctx, c.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete again: %v", err)
		}
	})
}

func TestRegistryClusters(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		bad := []struct {
			name string
			c    RegistryCluster
			want string
		}{
			{"no name", RegistryCluster{Kind: RegistryNacos, ServerList: []string{"a:1"}}, "name"},
			{"kind", RegistryCluster{Name: "a", Kind: "eureka", ServerList: []string{"a:1"}}, "kind"},
			{"no servers", RegistryCluster{Name: "a", Kind: RegistryBundled}, "server list"},
			{"bad server", RegistryCluster{Name: "a", Kind: RegistryBundled, ServerList: []string{"a:1,b:2"}}, "server list"},
		}
		for _, tt := range bad {
			if err := s.CreateRegistryCluster(ctx, &tt.c); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err = %v, want ErrInvalid naming %q", tt.name, err, tt.want)
			}
		}
		c := &RegistryCluster{Name: "bundled", Kind: RegistryBundled, ServerList: []string{"r1:8848", "r2:8848"}, Namespace: "dev", Username: "u"}
		if err := s.CreateRegistryCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRegistryCluster(ctx, c.ID)
		if err != nil || len(got.ServerList) != 2 || got.ServerList[1] != "r2:8848" || got.GroupName != "DEFAULT_GROUP" || got.Namespace != "dev" {
			t.Fatalf("get = %+v, %v", got, err)
		}
		got.Kind = RegistryNacos
		got.ServerList = []string{"n:8848"}
		if err := s.UpdateRegistryCluster(ctx, got); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListRegistryClusters(ctx)
		if err != nil || len(list) != 1 || list[0].Kind != RegistryNacos || list[0].ServerList[0] != "n:8848" {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if err := s.DeleteRegistryCluster(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTasks(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		zk := &ZKCluster{Name: "zk", ConnectString: "z:2181"}
		reg := &RegistryCluster{Name: "r", Kind: RegistryBundled, ServerList: []string{"r:8848"}}
		if err := s.CreateZKCluster(ctx, zk); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRegistryCluster(ctx, reg); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name string
			t    SyncTask
			want string
		}{
			{"no source", SyncTask{DestClusterID: reg.ID, Scope: ScopeFull}, "source"},
			{"missing source", SyncTask{SourceClusterID: 999, DestClusterID: reg.ID, Scope: ScopeFull}, "source"},
			{"missing dest", SyncTask{SourceClusterID: zk.ID, DestClusterID: 999, Scope: ScopeFull}, "destination"},
			{"scope", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: "some"}, "scope"},
			{"service scope without service", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeService}, "service"},
			{"full scope with service", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, Service: "a.B"}, "service"},
			{"pattern", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, Include: []string{"[a"}}, "pattern"},
			{"state", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, State: "gone"}, "state"},
			{"created deleted", SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, State: TaskDeleted}, "state"},
		}
		for _, tt := range bad {
			if err := s.CreateTask(ctx, &tt.t); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err = %v, want ErrInvalid naming %q", tt.name, err, tt.want)
			}
		}
		full := &SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, Include: []string{"com.example.*"}, Exclude: []string{"com.example.internal*"}, CreatedBy: "alice"}
		one := &SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeService, Service: "org.Other", CreatedBy: "bob", State: TaskPaused}
		for _, tk := range []*SyncTask{full, one} {
			if err := s.CreateTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetTask(ctx, full.ID)
		if err != nil || got.State != TaskRunning || got.UpdatedBy != "alice" || len(got.Include) != 1 || len(got.Exclude) != 1 {
			t.Fatalf("get = %+v, %v", got, err)
		}
		running, err := s.ListTasks(ctx, TaskFilter{States: []TaskState{TaskRunning}})
		if err != nil || len(running) != 1 || running[0].ID != full.ID {
			t.Fatalf("running = %+v, %v", running, err)
		}
		got.Exclude = nil
		if err := s.UpdateTask(ctx, got, "carol"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetTask(ctx, full.ID)
		if got.UpdatedBy != "carol" || len(got.Exclude) != 0 || got.CreatedBy != "alice" {
			t.Fatalf("after update %+v", got)
		}
		if err := s.SetTaskState(ctx, one.ID, TaskRunning, "dave"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTaskState(ctx, one.ID, "bogus", "dave"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bogus state: %v", err)
		}
		if err := s.PurgeTask(ctx, one.ID); !errors.Is(err, ErrConflict) {
			t.Fatalf("purge running: %v", err)
		}
		if err := s.SetTaskState(ctx, one.ID, TaskDeleted, "dave"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTaskState(ctx, one.ID, TaskRunning, "dave"); !errors.Is(err, ErrConflict) {
			t.Fatalf("resurrect deleted: %v", err)
		}
		if err := s.UpdateTask(ctx, one, "dave"); !errors.Is(err, ErrConflict) {
			t.Fatalf("edit deleted: %v", err)
		}
		if err := s.PurgeTask(ctx, one.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTask(ctx, one.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after purge: %v", err)
		}
		if err := s.SetTaskState(ctx, 999, TaskPaused, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing task: %v", err)
		}
	})
}

func TestTaskMatches(t *testing.T) {
	full := SyncTask{Scope: ScopeFull, Include: []string{"com.example.*", "org.a.B"}, Exclude: []string{"com.example.internal*"}}
	all := SyncTask{Scope: ScopeFull}
	one := SyncTask{Scope: ScopeService, Service: "org.a.B"}
	tests := []struct {
		t       SyncTask
		service string
		want    bool
	}{
		{full, "com.example.Foo", true},
		{full, "com.example.internalAdmin", false},
		{full, "org.a.B", true},
		{full, "org.a.C", false},
		{all, "anything.at.All", true},
		{one, "org.a.B", true},
		{one, "org.a.C", false},
	}
	for _, tt := range tests {
		if got := tt.t.Matches(tt.service); got != tt.want {
			t.Errorf("%+v.Matches(%q) = %v", tt.t, tt.service, got)
		}
	}
}

func TestApps(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		bad := []struct {
			name, app string
			mode      AppMode
			want      string
		}{
			{"empty name", "", AppSync, "name"},
			{"mode", "orders", "half", "mode"},
		}
		for _, tt := range bad {
			if _, err := s.SetAppMode(ctx, tt.app, tt.mode, "x"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		a, err := s.SetAppMode(ctx, "orders", AppSync, "alice")
		if err != nil || a.Mode != AppSync || a.ChangedBy != "alice" || a.ChangedAt.IsZero() {
			t.Fatalf("set = %+v, %v", a, err)
		}
		first := a.ChangedAt
		b, err := s.SetAppMode(ctx, "orders", AppNative, "bob")
		if err != nil || b.ID != a.ID || b.Mode != AppNative || b.ChangedBy != "bob" || b.ChangedAt.Before(first) {
			t.Fatalf("update = %+v, %v", b, err)
		}
		if _, err := s.SetAppMode(ctx, "billing", AppExcluded, "carol"); err != nil {
			t.Fatal(err)
		}
		native, err := s.ListApps(ctx, AppNative)
		if err != nil || len(native) != 1 || native[0].Name != "orders" {
			t.Fatalf("native = %+v, %v", native, err)
		}
		all, err := s.ListApps(ctx, "")
		if err != nil || len(all) != 2 || all[0].Name != "billing" {
			t.Fatalf("all = %+v, %v", all, err)
		}
		if err := s.DeleteApp(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetApp(ctx, "orders"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if err := s.DeleteApp(ctx, "orders"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete again: %v", err)
		}
	})
}

func TestEvents(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.AppendEvents(ctx, Event{Kind: ""}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "kind") {
			t.Fatalf("empty kind: %v", err)
		}
		base := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
		var evs []Event
		for i := range 30 {
			kind := EventRegistered
			if i%3 == 0 {
				kind = EventEvicted
			}
			evs = append(evs, Event{Time: base.Add(time.Duration(i) * time.Minute), Kind: kind, Service: fmt.Sprintf("svc%d", i%5), Instance: "10.0.0.1:20880", Worker: fmt.Sprintf("w%d", i%2), Detail: "d"})
		}
		if err := s.AppendEvents(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			f     EventFilter
			count int
			first int // minute offset of the newest match
		}{
			{"all", EventFilter{}, 30, 29},
			{"limit", EventFilter{Limit: 5}, 5, 29},
			{"kind", EventFilter{Kind: EventEvicted}, 10, 27},
			{"service", EventFilter{Service: "svc1"}, 6, 26},
			{"worker", EventFilter{Worker: "w0", Kind: EventEvicted}, 5, 24},
			{"since", EventFilter{Since: base.Add(20 * time.Minute)}, 10, 29},
			{"until", EventFilter{Until: base.Add(10 * time.Minute)}, 10, 9},
			{"window", EventFilter{Since: base.Add(10 * time.Minute), Until: base.Add(12 * time.Minute)}, 2, 11},
		}
		for _, tt := range tests {
			got, err := s.ListEvents(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if len(got) != tt.count {
				t.Errorf("%s: %d events, want %d", tt.name, len(got), tt.count)
				continue
			}
			if want := base.Add(time.Duration(tt.first) * time.Minute); !got[0].Time.Equal(want) {
				t.Errorf("%s: newest %v, want %v", tt.name, got[0].Time, want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time.After(got[i-1].Time) {
					t.Errorf("%s: not newest first", tt.name)
				}
			}
		}
		if _, err := s.ListEvents(ctx, EventFilter{Limit: -1}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("negative limit: %v", err)
		}
		n, err := s.PruneEvents(ctx, base.Add(10*time.Minute))
		if err != nil || n != 10 {
			t.Fatalf("prune = %d, %v", n, err)
		}
		left, _ := s.ListEvents(ctx, EventFilter{})
		if len(left) != 20 {
			t.Fatalf("%d left after prune", len(left))
		}
	})
}

func TestWorkers(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.RegisterWorker(ctx, "", "a", "v"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("empty id: %v", err)
		}
		if err := s.HeartbeatWorker(ctx, "w1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("heartbeat unregistered: %v", err)
		}
		for _, id := range []string{"w1", "w2"} {
			if err := s.RegisterWorker(ctx, id, "10.0.0.1:7070", "1.0"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RegisterWorker(ctx, "w1", "10.0.0.2:7070", "1.1"); err != nil {
			t.Fatalf("re-register: %v", err)
		}
		if err := s.HeartbeatWorker(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		// Make w2 look dead for two days, by the database's clock.
		if err := s.q(ctx).Exec("UPDATE workers SET heartbeat_at_ms = heartbeat_at_ms - ? WHERE id = 'w2'", (48 * time.Hour).Milliseconds()).Error; err != nil {
			t.Fatal(err)
		}
		ws, err := s.ListWorkers(ctx, 10*time.Second)
		if err != nil || len(ws) != 2 || !ws[0].Live || ws[1].Live || ws[0].Address != "10.0.0.2:7070" || ws[0].Version != "1.1" {
			t.Fatalf("workers = %+v, %v", ws, err)
		}
		now, err := s.Now(ctx)
		if err != nil || now.Sub(ws[0].HeartbeatAt).Abs() > 5*time.Second || now.Sub(time.Now()).Abs() > 5*time.Second {
			t.Fatalf("db now %v, heartbeat %v, err %v", now, ws[0].HeartbeatAt, err)
		}
		live, err := s.LiveWorkerIDs(ctx, 10*time.Second)
		if err != nil || len(live) != 1 || live[0] != "w1" {
			t.Fatalf("live = %v, %v", live, err)
		}
		r, err := NewRetention(s, RetentionConfig{Schedule: "@every 1h", EventMaxAge: time.Hour, WorkerDeadFor: 24 * time.Hour, RunTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, Event{Kind: "old", Time: now.Add(-2 * time.Hour)}, Event{Kind: "new", Time: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		evs, wks, err := r.RunOnce(ctx)
		if err != nil || evs != 1 || wks != 1 {
			t.Fatalf("retention pruned %d events, %d workers, %v", evs, wks, err)
		}
		left, _ := s.ListEvents(ctx, EventFilter{})
		if len(left) != 1 || left[0].Kind != "new" {
			t.Fatalf("events left %+v", left)
		}
		if err := s.DeleteWorker(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		if ws, _ := s.ListWorkers(ctx, time.Second); len(ws) != 0 {
			t.Fatalf("workers left %+v", ws)
		}
	})
}

func TestRetentionConfig(t *testing.T) {
	tests := []struct {
		edit  func(*RetentionConfig)
		field string
	}{
		{func(*RetentionConfig) {}, ""},
		{func(c *RetentionConfig) { c.Schedule = "every day" }, "Schedule"},
		{func(c *RetentionConfig) { c.EventMaxAge = 0 }, "EventMaxAge"},
		{func(c *RetentionConfig) { c.WorkerDeadFor = -1 }, "WorkerDeadFor"},
		{func(c *RetentionConfig) { c.RunTimeout = 0 }, "RunTimeout"},
	}
	for _, tt := range tests {
		c := DefaultRetentionConfig()
		tt.edit(&c)
		err := c.Validate()
		if (tt.field == "") != (err == nil) || (err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field))) {
			t.Errorf("field %q: err %v", tt.field, err)
		}
	}
}

// TestRetentionSchedule runs the cron job for real (every second) and
// waits for it to prune.
func TestRetentionSchedule(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	if err := s.AppendEvents(ctx, Event{Kind: "old", Time: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultRetentionConfig()
	cfg.Schedule, cfg.EventMaxAge, cfg.Logger = "@every 1s", time.Minute, testLogger(t)
	r, err := NewRetention(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	defer r.Stop(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := s.ListEvents(ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention job did not prune within 10s")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestInTx(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx *Store) error {
			if _, err := tx.SetAppMode(ctx, "a", AppSync, "x"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if _, err := s.GetApp(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rolled back app still there: %v", err)
		}
		if err := s.InTx(ctx, func(tx *Store) error {
			_, err := tx.SetAppMode(ctx, "a", AppSync, "x")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetApp(ctx, "a"); err != nil {
			t.Fatalf("committed app missing: %v", err)
		}
	})
}

package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUsersSessionsTokens(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		pw, err := s.EnsureAdmin(ctx)
		if err != nil || len(pw) < MinPasswordLen {
			t.Fatalf("EnsureAdmin = %q, %v", pw, err)
		}
		if again, err := s.EnsureAdmin(ctx); err != nil || again != "" {
			t.Fatalf("second EnsureAdmin = %q, %v; want none", again, err)
		}
		if _, err := s.CheckPassword(ctx, "admin", pw); err != nil {
			t.Fatalf("admin login: %v", err)
		}
		for _, bad := range []struct{ name, pw string }{{"admin", pw + "x"}, {"nobody", pw}, {"", ""}} {
			if _, err := s.CheckPassword(ctx, bad.name, bad.pw); !errors.Is(err, ErrBadLogin) {
				t.Errorf("CheckPassword(%q) = %v, want ErrBadLogin", bad.name, err)
			}
		}
		for _, c := range []struct {
			name  string
			role  Role
			pw    string
			field string
		}{
			{"<script>", RoleViewer, "password1", "name"},
			{"ok", "root", "password1", "role"},
			{"ok", RoleViewer, "short", "password"},
		} {
			if _, err := s.CreateUser(ctx, c.name, c.role, c.pw, "t"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("CreateUser(%q,%q) = %v, want ErrInvalid naming %s", c.name, c.role, err, c.field)
			}
		}
		op, err := s.CreateUser(ctx, "op", RoleOperator, "operator-pw", "admin")
		if err != nil || op.Version != 1 || op.Role != RoleOperator {
			t.Fatalf("CreateUser op = %+v, %v", op, err)
		}
		if _, err := s.CreateUser(ctx, "op", RoleViewer, "operator-pw", "admin"); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate user: %v", err)
		}
		// Versioned update: a stale one names who changed the row.
		if _, err := s.UpdateUser(ctx, "op", RoleViewer, "", "alice", 1); err != nil {
			t.Fatal(err)
		}
		var stale *StaleError
		if _, err := s.UpdateUser(ctx, "op", RoleAdmin, "", "bob", 1); !errors.As(err, &stale) || stale.By != "alice" || !errors.Is(err, ErrConflict) {
			t.Fatalf("stale UpdateUser = %v, want StaleError by alice", err)
		}

		// Sessions.
		sess, err := s.CreateSession(ctx, op.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := s.SessionUser(ctx, sess); err != nil || u.Name != "op" || u.Role != RoleViewer {
			t.Fatalf("SessionUser = %+v, %v", u, err)
		}
		expired, err := s.CreateSession(ctx, op.ID, -time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, expired); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("expired session: %v", err)
		}
		if n, err := s.PruneSessions(ctx); err != nil || n != 1 {
			t.Fatalf("PruneSessions = %d, %v; want 1", n, err)
		}
		if err := s.DeleteSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, sess); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("deleted session: %v", err)
		}

		// Tokens: stored hashed, prefixed.
		tok, err := s.CreateToken(ctx, "op", "ci")
		if err != nil || !strings.HasPrefix(tok, TokenPrefix) {
			t.Fatalf("CreateToken = %q, %v", tok, err)
		}
		var raw int64
		if err := s.q(ctx).Raw("SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?", tok).Scan(&raw).Error; err != nil || raw != 0 {
			t.Fatalf("token stored in clear (%d rows), %v", raw, err)
		}
		if u, err := s.TokenUser(ctx, tok); err != nil || u.Name != "op" {
			t.Fatalf("TokenUser = %+v, %v", u, err)
		}
		if _, err := s.TokenUser(ctx, tok+"x"); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("wrong token: %v", err)
		}
		toks, err := s.ListTokens(ctx, "op")
		if err != nil || len(toks) != 1 || toks[0].Label != "ci" {
			t.Fatalf("ListTokens = %+v, %v", toks, err)
		}
		if err := s.DeleteUser(ctx, "op"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenUser(ctx, tok); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("token of a deleted user: %v", err)
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		cfg := ThrottleConfig{Failures: 3, Window: time.Minute, Lockout: time.Hour}
		for i := 1; i <= 3; i++ {
			locked, err := s.LoginFailed(ctx, "user:admin", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if want := i == 3; (locked > 0) != want {
				t.Fatalf("failure %d: locked %v, want locked=%v", i, locked, want)
			}
		}
		if left, err := s.LoginLocked(ctx, "user:admin"); err != nil || left < 59*time.Minute {
			t.Fatalf("LoginLocked = %v, %v; want about an hour", left, err)
		}
		if left, err := s.LoginLocked(ctx, "user:other"); err != nil || left != 0 {
			t.Fatalf("other key locked %v, %v", left, err)
		}
		if err := s.LoginSucceeded(ctx, "user:admin"); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.LoginLocked(ctx, "user:admin"); left != 0 {
			t.Fatalf("still locked after success: %v", left)
		}
	})
}

func TestAuditLog(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, tgt := range []string{"app a", "app b", "app a"} {
			e := &AuditEntry{Actor: "alice", Action: "app.mode", Target: tgt, Before: AuditJSON(map[string]string{"mode": "sync"}),
				After: AuditJSON(map[string]string{"mode": "native"}), BatchID: "b1"}
			if i == 2 {
				e.BatchID = ""
			}
			if err := s.AppendAudit(ctx, e); err != nil || e.ID == 0 || e.At.IsZero() {
				t.Fatalf("AppendAudit = %+v, %v", e, err)
			}
		}
		if err := s.AppendAudit(ctx, &AuditEntry{Action: "x"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("audit without actor: %v", err)
		}
		all, err := s.ListAudit(ctx, AuditFilter{})
		if err != nil || len(all) != 3 || all[0].Target != "app a" || all[0].ID < all[1].ID {
			t.Fatalf("ListAudit = %+v, %v", all, err)
		}
		batch, _ := s.ListAudit(ctx, AuditFilter{BatchID: "b1"})
		page, _ := s.ListAudit(ctx, AuditFilter{BeforeID: all[0].ID, Limit: 1})
		if len(batch) != 2 || len(page) != 1 || page[0].ID != all[1].ID {
			t.Fatalf("batch %+v, page %+v", batch, page)
		}
	})
}

// Clusters, tasks and apps carry a version; a write naming an old one is
// a StaleError naming who changed the row.
func TestVersionedWrites(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		zk := &ZKCluster{Name: "zk", ConnectString: "z:2181"}
		if err := s.CreateZKCluster(ctx, zk); err != nil || zk.Version != 1 {
			t.Fatalf("create: version %d, %v", zk.Version, err)
		}
		a, b := *zk, *zk
		a.Root, a.UpdatedBy = "/a", "alice"
		if err := s.UpdateZKCluster(ctx, &a); err != nil || a.Version != 2 {
			t.Fatalf("update: version %d, %v", a.Version, err)
		}
		b.Root, b.UpdatedBy = "/b", "bob"
		var stale *StaleError
		if err := s.UpdateZKCluster(ctx, &b); !errors.As(err, &stale) || stale.By != "alice" || stale.Current != 2 || stale.At.IsZero() {
			t.Fatalf("stale update = %v", err)
		}
		if got, _ := s.GetZKCluster(ctx, zk.ID); got.Root != "/a" || got.Version != 2 || got.UpdatedBy != "alice" {
			t.Fatalf("row after refused write: %+v", got)
		}
		reg := &RegistryCluster{Name: "r", Kind: RegistryBundled, ServerList: []string{"r:1"}}
		if err := s.CreateRegistryCluster(ctx, reg); err != nil {
			t.Fatal(err)
		}
		reg.Namespace, reg.UpdatedBy = "ns", "alice"
		if err := s.UpdateRegistryCluster(ctx, reg); err != nil || reg.Version != 2 {
			t.Fatalf("registry update: %d %v", reg.Version, err)
		}
		if got, _ := s.GetRegistryCluster(ctx, reg.ID); got.Namespace != "ns" || got.ServerList[0] != "r:1" {
			t.Fatalf("registry row %+v", got)
		}
		task := &SyncTask{SourceClusterID: zk.ID, DestClusterID: reg.ID, Scope: ScopeFull, CreatedBy: "t"}
		if err := s.CreateTask(ctx, task); err != nil || task.Version != 1 {
			t.Fatal(err)
		}
		v, err := s.SetTaskStateIf(ctx, task.ID, TaskPaused, "alice", 1)
		if err != nil || v != 2 {
			t.Fatalf("pause: %d %v", v, err)
		}
		if _, err := s.SetTaskStateIf(ctx, task.ID, TaskRunning, "bob", 1); !errors.As(err, &stale) || stale.By != "alice" {
			t.Fatalf("stale resume = %v", err)
		}
		task.Version, task.Include = 2, []string{"com.*"}
		if err := s.UpdateTask(ctx, task, "carol"); err != nil || task.Version != 3 {
			t.Fatalf("edit: %d %v", task.Version, err)
		}
		if got, _ := s.GetTask(ctx, task.ID); got.State != TaskPaused || len(got.Include) != 1 || got.UpdatedBy != "carol" {
			t.Fatalf("task row %+v", got)
		}
		app, err := s.SetAppModeIf(ctx, "billing", AppNative, "alice", 0)
		if err != nil || app.Version != 1 {
			t.Fatalf("new app: %+v %v", app, err)
		}
		if _, err := s.SetAppModeIf(ctx, "billing", AppSync, "bob", 0); !errors.As(err, &stale) || stale.By != "alice" {
			t.Fatalf("second create = %v", err)
		}
		if app, err = s.SetAppModeIf(ctx, "billing", AppSync, "bob", 1); err != nil || app.Version != 2 {
			t.Fatalf("app update: %+v %v", app, err)
		}
		if app, err = s.SetAppMode(ctx, "billing", AppExcluded, "carol"); err != nil || app.Version != 3 || app.Mode != AppExcluded {
			t.Fatalf("unversioned app update: %+v %v", app, err)
		}
		if _, err := s.SetAppModeIf(ctx, "nope", AppSync, "bob", 4); !errors.Is(err, ErrNotFound) {
			t.Fatalf("versioned update of a missing app = %v", err)
		}
	})
}

// The console's event filters: by task (the engine's "task=" detail
// prefix), by a set of services, paged by id.
func TestEventFilters(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		evs := []Event{
			{Kind: EventRegistered, Service: "a", Detail: "task=task-1 x"},
			{Kind: EventRegistered, Service: "b", Detail: "task=task-10 x"},
			{Kind: EventError, Service: "c", Detail: "task=task_1 x"},
			{Kind: EventError, Service: "a", Detail: "no task"},
		}
		if err := s.AppendEvents(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListEvents(ctx, EventFilter{Task: "task-1"})
		if err != nil || len(got) != 1 || got[0].Service != "a" {
			t.Fatalf("task-1 events = %+v, %v", got, err)
		}
		if got, _ := s.ListEvents(ctx, EventFilter{Task: "task%"}); len(got) != 0 {
			t.Fatalf("a %% in the task matched %+v", got)
		}
		if got, _ := s.ListEvents(ctx, EventFilter{Services: []string{"a", "c"}}); len(got) != 3 {
			t.Fatalf("services a,c: %+v", got)
		}
		all, _ := s.ListEvents(ctx, EventFilter{})
		page, _ := s.ListEvents(ctx, EventFilter{BeforeID: all[1].ID})
		if len(page) != 2 {
			t.Fatalf("page before %d: %+v", all[1].ID, page)
		}
	})
}

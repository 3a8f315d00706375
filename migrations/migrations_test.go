package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/glebarez/go-sqlite"
	_ "github.com/go-sql-driver/mysql"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/migrations"
)

var tables = []string{"zk_clusters", "registry_clusters", "sync_tasks", "apps", "workers", "shard_leases", "events", "task_status", "settings_generation", "commands", "command_acks", "app_counts", "service_counts", "worker_metrics"}

func TestLatest(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.MySQL, migrations.SQLite} {
		v, err := migrations.Latest(d)
		if err != nil || v < 1 {
			t.Errorf("Latest(%s) = %d, %v", d, v, err)
		}
	}
	if _, err := migrations.Latest("oracle"); !errors.Is(err, migrations.ErrDialect) {
		t.Errorf("Latest(oracle) err = %v", err)
	}
	// Both dialects must carry the same versions.
	m, _ := migrations.Latest(migrations.MySQL)
	s, _ := migrations.Latest(migrations.SQLite)
	if m != s {
		t.Errorf("mysql latest %d != sqlite latest %d", m, s)
	}
}

func TestSQLite(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(t, db, migrations.SQLite)
}

func TestMySQL(t *testing.T) {
	srv := mysqlserver.ForTest(t)
	db, err := sql.Open("mysql", strings.TrimPrefix(srv.DSN(), "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(t, db, migrations.MySQL)
}

func check(t *testing.T, db *sql.DB, d migrations.Dialect) {
	ctx := context.Background()
	latest, err := migrations.Latest(d)
	if err != nil {
		t.Fatal(err)
	}
	st, err := migrations.Status(ctx, db, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != int(latest) {
		t.Fatalf("status lists %d migrations, want %d", len(st), latest)
	}
	for _, m := range st {
		if m.Applied {
			t.Fatalf("empty database: %+v applied", m)
		}
	}
	unlock, err := migrations.Lock(ctx, db, d, 5e9)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := migrations.Up(ctx, db, d, nil)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != int(latest) || applied[0].Name != "00001_init.sql" {
		t.Fatalf("applied %+v", applied)
	}
	for _, tb := range tables {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + tb).Scan(&n); err != nil {
			t.Errorf("table %s: %v", tb, err)
		}
	}
	again, err := migrations.Up(ctx, db, d, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Up applied %+v, err %v", again, err)
	}
	st, err = migrations.Status(ctx, db, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("after Up: %+v", m)
		}
	}
	// A newer binary migrated this database: refuse.
	if _, err := db.Exec("INSERT INTO "+migrations.VersionTable+" (version_id, is_applied) VALUES (?, ?)", latest+100, true); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, db, d, nil); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Up on newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if _, err := migrations.Status(ctx, db, d); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Status on newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

package mysqlserver

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"ok", func(*Config) {}, ""},
		{"port", func(c *Config) { c.Port = -1 }, "Port"},
		{"database", func(c *Config) { c.Database = "a;b" }, "Database"},
		{"pool", func(c *Config) { c.BufferPoolSize = "" }, "BufferPoolSize"},
		{"start", func(c *Config) { c.StartTimeout = 0 }, "StartTimeout"},
		{"stop", func(c *Config) { c.StopTimeout = 0 }, "StopTimeout"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.edit(&c)
		err := c.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err %v, want it to name %s", tt.name, err, tt.field)
		}
	}
}

func query(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStartRestartStop(t *testing.T) {
	s := ForTest(t)
	if !strings.HasPrefix(s.DSN(), "mysql://root@tcp(127.0.0.1:") || !strings.HasSuffix(s.DSN(), "/ferry?parseTime=true") {
		t.Fatalf("DSN %q", s.DSN())
	}
	if got := query(t, s.DSN()); got != "ferry" {
		t.Fatalf("DATABASE() = %q", got)
	}
	ctx := context.Background()
	dsn, err := s.CreateDatabase(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn); got != "other" {
		t.Fatalf("DATABASE() = %q", got)
	}
	port := s.Port()
	start := time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(start))
	if s.Port() != port {
		t.Fatalf("port changed %d -> %d", port, s.Port())
	}
	if got := query(t, dsn); got != "other" {
		t.Fatalf("after restart DATABASE() = %q", got)
	}
	s.Kill()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn); got != "other" {
		t.Fatalf("after kill+restart DATABASE() = %q", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Restart(ctx); err != ErrStopped {
		t.Fatalf("Restart after Stop = %v, want ErrStopped", err)
	}
}

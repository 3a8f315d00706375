package zkserver

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
)

// ForTest starts a private server for t in t.TempDir() on a free port and
// stops it in t.Cleanup. Without java or the jar it skips t, unless the
// environment says CI=true, where a missing ZooKeeper fails t.
func ForTest(t testing.TB) *Server {
	t.Helper()
	return ForTestConfig(t, Config{})
}

// ForTestConfig is ForTest with settings (Dir defaults to t.TempDir()).
func ForTestConfig(t testing.TB, cfg Config) *Server {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testlog.New(t, slog.LevelWarn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("zkserver: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

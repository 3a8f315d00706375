package mysqlserver

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/ferrysync/ferry/internal/testlog"
)

// ForTest starts a private server in t.TempDir() and stops it when the test
// ends. Without the binaries it skips the test, or fails it when CI=true.
func ForTest(t testing.TB) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Logger = testlog.New(t, slog.LevelInfo)
	s, err := Start(context.Background(), cfg)
	if errors.Is(err, ErrNotInstalled) {
		SkipOrFail(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("mysqlserver stop: %v", err)
		}
	})
	return s
}

// SkipOrFail skips t because MariaDB is missing, or fails it when CI=true.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and MariaDB is needed: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

package mysqlserver

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// ForTest starts a private server in t.TempDir() and stops it when the test
// ends. Without the binaries it skips the test, or fails it when CI=true.
func ForTest(t testing.TB) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
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

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

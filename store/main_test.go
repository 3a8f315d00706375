package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/testlog"
)

// One MariaDB per test binary, started by the first test that needs it; a
// fresh database per test.
var shared struct {
	once sync.Once
	srv  *mysqlserver.Server
	err  error
	n    atomic.Int64
}

func TestMain(m *testing.M) {
	// go-sql-driver logs dropped connections to stderr through a global
	// logger; the MariaDB restart test drops them on purpose.
	_ = mysqldrv.SetLogger(log.New(io.Discard, "", 0))
	code := m.Run()
	if shared.srv != nil {
		_ = shared.srv.Stop()
	}
	os.Exit(code)
}

func sharedMySQL(t testing.TB) *mysqlserver.Server {
	t.Helper()
	shared.once.Do(func() {
		cfg := mysqlserver.DefaultConfig()
		shared.srv, shared.err = mysqlserver.Start(context.Background(), cfg)
	})
	if errors.Is(shared.err, mysqlserver.ErrNotInstalled) {
		mysqlserver.SkipOrFail(t, shared.err)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelInfo)
}

func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openSQLite(t testing.TB) *Store {
	return openDSN(t, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"))
}

func openMySQL(t testing.TB) *Store {
	srv := sharedMySQL(t)
	dsn, err := srv.CreateDatabase(context.Background(), fmt.Sprintf("t%d", shared.n.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return openDSN(t, dsn)
}

// bothBackends runs fn on a fresh SQLite file and a fresh MariaDB database.
func bothBackends(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, openMySQL(t)) })
}

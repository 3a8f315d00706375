// Package migrations holds the store's versioned SQL schema, one directory
// per dialect (mysql/ for MySQL 8 and MariaDB 10.11, sqlite/ for SQLite),
// embedded in the binary and applied with pressly/goose (as a library).
// Operators review the DDL here; the store never derives its schema from Go
// structs.
//
// Rules for a new migration: add NNNNN_name.sql to BOTH directories with the
// same version number, never edit an applied file, keep each file runnable on
// a database that holds data.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// Dialect names a SQL dialect with its own migration directory.
type Dialect string

// The supported dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// VersionTable is where goose records applied versions.
const VersionTable = "goose_db_version"

// ErrSchemaTooNew means the database was migrated by a newer binary: this
// one refuses to run rather than misread a schema it does not know.
var ErrSchemaTooNew = errors.New("migrations: database schema is newer than this binary")

// ErrDialect means a dialect this package has no migrations for.
var ErrDialect = errors.New("migrations: unknown dialect")

// Migration is one migration and its state in a database.
type Migration struct {
	Version   int64
	Name      string // file name, e.g. 00001_init.sql
	Applied   bool
	AppliedAt time.Time // zero when pending
}

func provider(db *sql.DB, d Dialect, log *slog.Logger) (*goose.Provider, error) {
	var gd goose.Dialect
	switch d {
	case MySQL:
		gd = goose.DialectMySQL
	case SQLite:
		gd = goose.DialectSQLite3
	default:
		return nil, fmt.Errorf("%w %q", ErrDialect, d)
	}
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	return goose.NewProvider(gd, db, sub, opts...)
}

// Latest is the newest version this binary knows for d.
func Latest(d Dialect) (int64, error) {
	if d != MySQL && d != SQLite {
		return 0, fmt.Errorf("%w %q", ErrDialect, d)
	}
	names, err := fs.Glob(files, string(d)+"/*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, fmt.Errorf("migrations: %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// checkNotNewer refuses a database whose recorded version is beyond Latest.
func checkNotNewer(ctx context.Context, p *goose.Provider) error {
	dbv, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrations: read schema version: %w", err)
	}
	src := p.ListSources()
	var latest int64
	if len(src) > 0 {
		latest = src[len(src)-1].Version
	}
	if dbv > latest {
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade ferry", ErrSchemaTooNew, dbv, latest)
	}
	return nil
}

// Up applies every pending migration and returns the ones it applied. It
// refuses (ErrSchemaTooNew) a database migrated by a newer binary. Callers
// that may race (several workers starting at once on MySQL) serialise
// through Lock.
func Up(ctx context.Context, db *sql.DB, d Dialect, log *slog.Logger) ([]Migration, error) {
	p, err := provider(db, d, log)
	if err != nil {
		return nil, err
	}
	if err := checkNotNewer(ctx, p); err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: up: %w", err)
	}
	out := make([]Migration, 0, len(res))
	for _, r := range res {
		out = append(out, Migration{Version: r.Source.Version, Name: baseName(r.Source.Path), Applied: true})
	}
	return out, nil
}

// Status reports every known migration and whether it is applied. It also
// returns ErrSchemaTooNew (with the status) for a database beyond this binary.
func Status(ctx context.Context, db *sql.DB, d Dialect) ([]Migration, error) {
	p, err := provider(db, d, nil)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		m := Migration{Version: s.Source.Version, Name: baseName(s.Source.Path), Applied: s.State == goose.StateApplied}
		if m.Applied {
			m.AppliedAt = s.AppliedAt.UTC()
		}
		out = append(out, m)
	}
	return out, checkNotNewer(ctx, p)
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// Lock serialises migration runs of several processes on one MySQL server
// with a named lock held by conn's session (GET_LOCK). It returns the
// unlock function. For SQLite it is a no-op: the file has one writer.
func Lock(ctx context.Context, db *sql.DB, d Dialect, timeout time.Duration) (unlock func(), err error) {
	if d != MySQL {
		return func() {}, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: lock: %w", err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('ferry_migrations', ?)", int(timeout.Seconds())).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("migrations: lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		conn.Close()
		return nil, fmt.Errorf("migrations: lock: another process holds ferry_migrations for more than %v", timeout)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK('ferry_migrations')")
		conn.Close()
	}, nil
}

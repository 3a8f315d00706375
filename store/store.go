// Package store keeps the state Ferry's sync workers share in one
// relational database: clusters, sync tasks, app migration modes, workers,
// shard leases and the event trail. MySQL (or MariaDB) in production, an
// embedded SQLite file on a laptop. The schema lives in ../migrations.
//
// Every call takes a context. A *Store is safe for concurrent use; a Store
// handed to an InTx callback is bound to that transaction and must not
// outlive it.
//
// Time that decides ownership (worker heartbeats, lease expiry) is taken
// from the database's clock, never from the caller's: two workers with
// skewed clocks still agree on who owns what.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/ferrysync/ferry/migrations"
)

// Sentinel errors; test with errors.Is. Messages name the field or entity.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrConflict    = errors.New("store: conflict")
	ErrInvalid     = errors.New("store: invalid")
	ErrUnavailable = errors.New("store: database unavailable")
)

// Store is the repository over one database.
type Store struct {
	db    *gorm.DB
	sqlDB *sql.DB
	dsn   DSN
	log   *slog.Logger
	// nowMS is the SQL expression of the database's clock in Unix
	// milliseconds (shared by the transaction copies; tests swap it to
	// make the database's clock jump).
	nowMS *atomic.Pointer[string]
	// schema is the version the database was at after Open (every known
	// migration applied); CheckSchema compares against it.
	schema  int64
	inTx    bool
	closeFn func() error
	secrets *Secrets // encrypts registry passwords (secrets.go); nil: none may be stored
	pwCost  int      // bcrypt cost of user passwords (users.go)
}

// Option adjusts Open.
type Option func(*openOptions)

type openOptions struct {
	migrate bool
	secrets *Secrets // secrets.go
	pwCost  int      // users.go
}

// WithPasswordCost sets the bcrypt cost of new user passwords (default
// bcrypt.DefaultCost; tests lower it, bcrypt being slow on purpose).
func WithPasswordCost(cost int) Option { return func(o *openOptions) { o.pwCost = cost } }

// WithoutMigrate opens without applying pending migrations (for
// `ferry migrate status`).
func WithoutMigrate() Option { return func(o *openOptions) { o.migrate = false } }

// Open parses dsn, connects, checks the database answers and applies
// pending migrations. Errors name the DSN with its password masked. For
// SQLite the file's directory is created.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*Store, error) {
	o := openOptions{migrate: true}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		// Silent: callers get every error wrapped; gorm logging each failed
		// statement too would flood the log while the database is down.
		Logger:                 logger.NewSlogLogger(log.With("component", "gorm"), logger.Config{SlowThreshold: time.Second, LogLevel: logger.Silent, IgnoreRecordNotFoundError: true}),
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var dialector gorm.Dialector
	s := &Store{dsn: d, log: log, nowMS: new(atomic.Pointer[string])}
	clock := func(expr string) { s.nowMS.Store(&expr) }
	switch d.Dialect {
	case migrations.MySQL:
		dialector = mysql.Open(d.Driver)
		clock("CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)")
	case migrations.SQLite:
		if dir := filepath.Dir(d.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("%w %s: create directory: %v", ErrUnavailable, d.Masked, err)
			}
		}
		dialector = sqlite.Open(d.Driver)
		clock("CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)")
	}
	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrUnavailable, d.Masked, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrUnavailable, d.Masked, err)
	}
	s.db, s.sqlDB, s.closeFn = db, sqlDB, sqlDB.Close
	if d.Dialect == migrations.MySQL {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(8)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	} else {
		// One connection: writers queue in Go instead of sleeping in
		// SQLite's busy handler, which is far slower under contention.
		sqlDB.SetMaxOpenConns(1)
	}
	if err := s.Ping(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	s.secrets = o.secrets
	s.pwCost = o.pwCost
	if o.migrate {
		if err := s.Migrate(ctx); err != nil {
			sqlDB.Close()
			return nil, err
		}
		if err := s.resealPasswords(ctx); err != nil {
			sqlDB.Close()
			return nil, err
		}
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("%w %s: %v", ErrUnavailable, s.dsn.Masked, err)
	}
	return nil
}

// Migrate applies pending migrations (serialised across processes on MySQL).
func (s *Store) Migrate(ctx context.Context) error {
	unlock, err := migrations.Lock(ctx, s.sqlDB, s.dsn.Dialect, time.Minute)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.dsn.Masked, err)
	}
	defer unlock()
	applied, err := migrations.Up(ctx, s.sqlDB, s.dsn.Dialect, s.log.With("component", "migrations"))
	if err != nil {
		return fmt.Errorf("store %s: %w", s.dsn.Masked, err)
	}
	for _, m := range applied {
		s.log.Info("migration applied", "version", m.Version, "name", m.Name)
	}
	if s.schema, err = migrations.Latest(s.dsn.Dialect); err != nil {
		return fmt.Errorf("store %s: %w", s.dsn.Masked, err)
	}
	return nil
}

// ErrSchemaChanged means the database's schema version is no longer the
// one this process migrated it to at Open: another binary migrated it
// meanwhile, or it was restored from an older backup. The process cannot
// tell what its statements would do, so it treats the store as
// unreachable (the lessor keeps its shards beaten, light beats only) and
// asks to be restarted with a binary that knows the version.
var ErrSchemaChanged = errors.New("store: schema version changed")

// CheckSchema reads the database's schema version and clock in one
// statement: ErrSchemaChanged when the version is not the one Open left
// (a store opened WithoutMigrate is not checked), and the database's clock
// for the caller's clock-jump check.
func (s *Store) CheckSchema(ctx context.Context) (dbNow time.Time, err error) {
	var row struct {
		Version int64 `gorm:"column:version"`
		NowMS   int64 `gorm:"column:now_ms"`
	}
	q := "SELECT COALESCE(MAX(version_id), 0) AS version, " + s.now() + " AS now_ms FROM " + migrations.VersionTable
	if err := s.q(ctx).Raw(q).Scan(&row).Error; err != nil {
		return time.Time{}, s.wrap(err, "read schema version")
	}
	dbNow = time.UnixMilli(row.NowMS).UTC()
	if s.schema != 0 && row.Version != s.schema {
		return dbNow, fmt.Errorf("%w: %s is at version %d, this process runs version %d (restart it with a ferry that knows version %d; "+
			"`ferry migrate status` lists them)", ErrSchemaChanged, s.dsn.Masked, row.Version, s.schema, row.Version)
	}
	return dbNow, nil
}

func (s *Store) now() string { return *s.nowMS.Load() }

// MigrationStatus reports the schema migrations and which are applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]migrations.Migration, error) {
	return migrations.Status(ctx, s.sqlDB, s.dsn.Dialect)
}

// DSN is the parsed address this store was opened with.
func (s *Store) DSN() DSN { return s.dsn }

// Dialect is mysql or sqlite.
func (s *Store) Dialect() migrations.Dialect { return s.dsn.Dialect }

// Close closes the connection pool. A transaction-bound Store ignores it.
func (s *Store) Close() error {
	if s.inTx || s.closeFn == nil {
		return nil
	}
	return s.closeFn()
}

// InTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise (fn's error is returned). The Store passed to fn is bound
// to the transaction; fn must use only it (on SQLite the pool has one
// connection, so calling the outer Store from fn would wait forever).
// Nested calls use a savepoint.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return s.db.WithContext(ctx).Transaction(func(gtx *gorm.DB) error {
		tx := *s
		tx.db, tx.inTx = gtx, true
		return fn(&tx)
	})
}

// q is the gorm handle for one call.
func (s *Store) q(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// Now is the database's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	ms, err := s.nowMillis(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

func (s *Store) nowMillis(ctx context.Context) (int64, error) {
	var ms int64
	if err := s.q(ctx).Raw("SELECT " + s.now()).Scan(&ms).Error; err != nil {
		return 0, s.wrap(err, "read clock")
	}
	return ms, nil
}

// checked is wrap for a statement whose RowsAffected the caller will use.
// A context that ended around the call makes the result unknown: the SQLite
// driver (glebarez/go-sqlite) returns success and the previous statement's
// row count when the context is done before the statement starts.
func (s *Store) checked(ctx context.Context, res *gorm.DB, what string) error {
	if res.Error != nil {
		return s.wrap(res.Error, what)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: outcome unknown: %w", what, err)
	}
	return nil
}

// wrap maps driver errors onto the package's sentinels.
func (s *Store) wrap(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %s: already exists", ErrConflict, what)
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%w: %s: still referenced or referencing a missing row", ErrConflict, what)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %s: %w", what, err)
	}
	var ne interface{ Timeout() bool }
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysqldrv.ErrInvalidConn) || errors.As(err, &ne) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

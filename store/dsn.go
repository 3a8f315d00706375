package store

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrysync/ferry/migrations"
)

// DefaultDSN is the embedded store a laptop or a demo uses.
const DefaultDSN = "sqlite://./data/ferry.db"

// DSN is a parsed store address.
type DSN struct {
	Dialect migrations.Dialect
	// Driver is what the database/sql driver is opened with.
	Driver string
	// Path is the database file (SQLite only).
	Path string
	// Masked is the DSN as given, password replaced by ***: safe to log.
	Masked string
}

func (d DSN) String() string { return d.Masked }

// ParseDSN parses mysql://user:pass@tcp(host:port)/db?params or
// sqlite:///abs/path.db / sqlite://./rel/path.db. The MySQL connection is
// always set to UTC, parseTime, and found-rows counting (the lease
// compare-and-swap relies on it).
func ParseDSN(s string) (DSN, error) {
	switch {
	case strings.HasPrefix(s, "mysql://"):
		cfg, err := mysql.ParseDSN(strings.TrimPrefix(s, "mysql://"))
		if err != nil {
			return DSN{}, fmt.Errorf("%w DSN %q: %v", ErrInvalid, maskGuess(s), err)
		}
		if cfg.DBName == "" {
			return DSN{}, fmt.Errorf("%w DSN %q: no database name", ErrInvalid, maskGuess(s))
		}
		masked := *cfg
		if masked.Passwd != "" {
			masked.Passwd = "***"
		}
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		cfg.ClientFoundRows = true
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = "'+00:00'"
		if cfg.Timeout == 0 {
			cfg.Timeout = 5 * time.Second
		}
		return DSN{
			Dialect: migrations.MySQL,
			Driver:  cfg.FormatDSN(),
			Masked:  "mysql://" + masked.FormatDSN(),
		}, nil
	case strings.HasPrefix(s, "sqlite://"):
		rest := strings.TrimPrefix(s, "sqlite://")
		path, rawQuery, _ := strings.Cut(rest, "?")
		if path == "" || path == "/" {
			return DSN{}, fmt.Errorf("%w DSN %q: no file path (want sqlite:///abs/path.db or sqlite://./rel/path.db)", ErrInvalid, s)
		}
		if strings.Contains(path, ":memory:") {
			return DSN{}, fmt.Errorf("%w DSN %q: in-memory databases are not supported (each connection would get its own)", ErrInvalid, s)
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return DSN{}, fmt.Errorf("%w DSN %q: %v", ErrInvalid, s, err)
		}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		q.Set("_time_format", "sqlite")
		return DSN{
			Dialect: migrations.SQLite,
			Driver:  path + "?" + q.Encode(),
			Path:    path,
			Masked:  s,
		}, nil
	}
	return DSN{}, fmt.Errorf("%w DSN %q: want mysql://user:pass@tcp(host:port)/db or sqlite:///path/ferry.db", ErrInvalid, maskGuess(s))
}

// maskGuess hides what looks like a password (user:PASS@) in a DSN that did
// not parse.
func maskGuess(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		rest, scheme = s, ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	out := user + ":***" + rest[at:]
	if ok {
		out = scheme + "://" + out
	}
	return out
}

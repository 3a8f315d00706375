package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferrysync/ferry/store"
)

// Service is the console's one service layer: the JSON API (api.go) and
// the pages call it and nothing else. It reads and writes the store only
// (the database is the only truth, so every replica answers the same);
// workers follow the store within seconds. Every call takes the acting
// user and checks the role first; every change is written with its audit
// row in one transaction, so nothing is half applied. Errors are *Error
// (errors.go) or errors asError maps. Safe for concurrent use.
type Service struct {
	st   *store.Store
	log  *slog.Logger
	cfg  ServiceConfig
	auth authCache
}

// ServiceConfig tunes the service layer.
type ServiceConfig struct {
	// LiveWithin: a worker whose heartbeat is older is not live (the
	// lessor's TTL).
	LiveWithin time.Duration
	// CountsFresh: count rows older than this are ignored (a stopped
	// worker's).
	CountsFresh time.Duration
	// ProbeTimeout bounds a "test connection".
	ProbeTimeout time.Duration
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// Throttle limits failed logins per user name and per client address.
	Throttle store.ThrottleConfig
	// OutageGrace: while the store does not answer, a token or session
	// verified this recently still authenticates reads (0: none).
	OutageGrace time.Duration
	// AuthTimeout bounds the store lookup of a credential (a hung database
	// must not hang /api/status; 3 s: a single SQLite connection busy with
	// the worker's writes answers a lookup in well under a second, but not
	// always on a loaded machine); RequestTimeout bounds a whole API call.
	AuthTimeout, RequestTimeout time.Duration
}

// DefaultServiceConfig matches the worker's defaults.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{LiveWithin: store.DefaultLessorConfig("").TTL, CountsFresh: 30 * time.Second,
		ProbeTimeout: 5 * time.Second, SessionTTL: 12 * time.Hour, Throttle: store.DefaultThrottle(),
		OutageGrace: 30 * time.Minute, AuthTimeout: 3 * time.Second, RequestTimeout: 30 * time.Second}
}

// Validate names the first bad field.
func (c ServiceConfig) Validate() error {
	switch {
	case c.LiveWithin <= 0:
		return fmt.Errorf("web: LiveWithin %v must be > 0", c.LiveWithin)
	case c.CountsFresh <= 0:
		return fmt.Errorf("web: CountsFresh %v must be > 0", c.CountsFresh)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("web: ProbeTimeout %v must be > 0", c.ProbeTimeout)
	case c.SessionTTL <= 0:
		return fmt.Errorf("web: SessionTTL %v must be > 0", c.SessionTTL)
	case c.AuthTimeout <= 0 || c.RequestTimeout <= 0:
		return fmt.Errorf("web: AuthTimeout %v and RequestTimeout %v must be > 0", c.AuthTimeout, c.RequestTimeout)
	case c.OutageGrace < 0:
		return fmt.Errorf("web: OutageGrace %v must be ≥ 0", c.OutageGrace)
	case c.Throttle.Failures < 1 || c.Throttle.Window <= 0 || c.Throttle.Lockout <= 0:
		return fmt.Errorf("web: Throttle %+v: want Failures ≥ 1, Window and Lockout > 0", c.Throttle)
	}
	return nil
}

// NewService validates cfg.
func NewService(st *store.Store, cfg ServiceConfig, log *slog.Logger) (*Service, error) {
	if st == nil {
		return nil, errors.New("web: NewService without a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, log: log, cfg: cfg, auth: authCache{m: map[string]authEntry{}}}, nil
}

// need refuses a user below role r.
func need(u *store.User, r store.Role) error {
	if u == nil {
		return unauthorized("log in or send Authorization: Bearer TOKEN")
	}
	if u.Role.Rank() < r.Rank() {
		return forbidden("needs role %s or above; %s is %s", r, u.Name, u.Role)
	}
	return nil
}

// audited runs fn and appends the audit row e (its Actor set from u) in
// one transaction.
func (s *Service) audited(ctx context.Context, u *store.User, e *store.AuditEntry, fn func(tx *store.Store) error) error {
	e.Actor = u.Name
	return s.st.InTx(ctx, func(tx *store.Store) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, e)
	})
}

// ---- field checks ----

func checkText(field, v string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return invalid(field, "required")
	case len(v) > max:
		return invalid(field, "longer than %d bytes", max)
	case !utf8.ValidString(v):
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

func checkHostPort(field, hp string) error {
	host, port, err := net.SplitHostPort(strings.TrimSpace(hp))
	if err != nil || host == "" {
		return invalid(field, "%q: want host:port", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return invalid(field, "%q: port must be 1-65535", hp)
	}
	return nil
}

func newBatchID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

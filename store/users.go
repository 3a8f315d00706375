package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// Console users, sessions, API tokens and login throttling (migration
// 00004). Passwords are bcrypt hashes; session cookies and API tokens are
// 32 random bytes of which only the SHA-256 is stored, so a copy of the
// database lets nobody in. Throttling rows live in the database so every
// replica behind a load balancer counts the same failures.

// Role is what a console user may do; each includes the ones below it.
type Role string

// Roles, weakest first.
const (
	RoleViewer   Role = "viewer"   // read everything
	RoleOperator Role = "operator" // app modes, offline by IP, confirm removals, pause/resume
	RoleAdmin    Role = "admin"    // clusters, tasks, users
)

// Rank orders roles (0 for an unknown one).
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// ErrBadLogin is a wrong user name, password or token (never says which).
var ErrBadLogin = errors.New("store: wrong user name or password")

// User is one console user.
type User struct {
	ID        int64
	Name      string
	Role      Role
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string
}

type userRow struct {
	ID           int64  `gorm:"column:id;primaryKey"`
	Name         string `gorm:"column:name"`
	Role         string `gorm:"column:role"`
	PasswordHash string `gorm:"column:password_hash"`
	Version      int64  `gorm:"column:version"`
	CreatedAtMS  int64  `gorm:"column:created_at_ms"`
	UpdatedAtMS  int64  `gorm:"column:updated_at_ms"`
	UpdatedBy    string `gorm:"column:updated_by"`
}

func (userRow) TableName() string { return "users" }

func (r userRow) user() User {
	return User{ID: r.ID, Name: r.Name, Role: Role(r.Role), Version: r.Version,
		CreatedAt: time.UnixMilli(r.CreatedAtMS).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAtMS).UTC(), UpdatedBy: r.UpdatedBy}
}

// MinPasswordLen is the shortest password CreateUser accepts.
const MinPasswordLen = 8

// ValidUserName reports whether name may name a user: 1–64 letters,
// digits, '.', '_', '-' or '@'.
func ValidUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r))) {
			return false
		}
	}
	return true
}

func validatePassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("%w user password: shorter than %d", ErrInvalid, MinPasswordLen)
	case len(pw) > 72:
		return fmt.Errorf("%w user password: longer than 72 bytes (bcrypt's limit)", ErrInvalid)
	}
	return nil
}

// CreateUser adds a user with a bcrypt hash of password. A taken name is
// ErrConflict.
func (s *Store) CreateUser(ctx context.Context, name string, role Role, password, by string) (*User, error) {
	switch {
	case !ValidUserName(name):
		return nil, fmt.Errorf("%w user name %q: 1-64 of letters, digits, . _ - @", ErrInvalid, name)
	case role.Rank() == 0:
		return nil, fmt.Errorf("%w user role %q: want admin, operator or viewer", ErrInvalid, role)
	}
	if err := validatePassword(password); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost())
	if err != nil {
		return nil, fmt.Errorf("store: hash password: %w", err)
	}
	now, err := s.nowMillis(ctx)
	if err != nil {
		return nil, err
	}
	row := userRow{Name: name, Role: string(role), PasswordHash: string(hash), Version: 1, CreatedAtMS: now, UpdatedAtMS: now, UpdatedBy: by}
	if err := s.q(ctx).Create(&row).Error; err != nil {
		return nil, s.wrap(err, "user "+name)
	}
	u := row.user()
	return &u, nil
}

// GetUser returns the user named name, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (*User, error) {
	var r userRow
	if err := s.q(ctx).Where("name = ?", name).First(&r).Error; err != nil {
		return nil, s.wrap(err, "user "+name)
	}
	u := r.user()
	return &u, nil
}

// ListUsers returns every user by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var rows []userRow
	if err := s.q(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, s.wrap(err, "list users")
	}
	out := make([]User, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.user())
	}
	return out, nil
}

// UpdateUser sets a user's role and, when password is not empty, its
// password, if the row is still at version expect (0: any; else a
// *StaleError). It returns the user as saved.
func (s *Store) UpdateUser(ctx context.Context, name string, role Role, password, by string, expect int64) (*User, error) {
	if role.Rank() == 0 {
		return nil, fmt.Errorf("%w user role %q: want admin, operator or viewer", ErrInvalid, role)
	}
	now, err := s.nowMillis(ctx)
	if err != nil {
		return nil, err
	}
	cols := map[string]any{"role": string(role), "updated_by": by, "updated_at_ms": now, "version": gorm.Expr("version + 1")}
	if password != "" {
		if err := validatePassword(password); err != nil {
			return nil, err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost())
		if err != nil {
			return nil, fmt.Errorf("store: hash password: %w", err)
		}
		cols["password_hash"] = string(hash)
	}
	var out *User
	err = s.InTx(ctx, func(tx *Store) error {
		q := tx.q(ctx).Model(&userRow{}).Where("name = ?", name)
		if expect > 0 {
			q = q.Where("version = ?", expect)
		}
		res := q.Updates(cols)
		if err := tx.checked(ctx, res, "user "+name); err != nil {
			return err
		}
		cur, err := tx.GetUser(ctx, name)
		if err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return &StaleError{What: "user " + name, Expected: expect, Current: cur.Version, By: cur.UpdatedBy, At: cur.UpdatedAt}
		}
		out = cur
		return nil
	})
	return out, err
}

// DeleteUser removes a user with its sessions and tokens.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.InTx(ctx, func(tx *Store) error {
		u, err := tx.GetUser(ctx, name)
		if err != nil {
			return err
		}
		for _, t := range []string{"sessions", "api_tokens"} {
			if err := tx.q(ctx).Exec("DELETE FROM "+t+" WHERE user_id = ?", u.ID).Error; err != nil {
				return tx.wrap(err, "delete user "+name)
			}
		}
		return tx.wrap(tx.q(ctx).Delete(&userRow{}, u.ID).Error, "delete user "+name)
	})
}

// CountUsers is how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	return n, s.wrap(s.q(ctx).Model(&userRow{}).Count(&n).Error, "count users")
}

// CheckPassword returns the user when password is theirs, else
// ErrBadLogin (an unknown name costs a bcrypt comparison too, so timing
// does not tell names apart).
func (s *Store) CheckPassword(ctx context.Context, name, password string) (*User, error) {
	var r userRow
	err := s.q(ctx).Where("name = ?", name).First(&r).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, s.wrap(err, "user "+name)
	}
	hash := r.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || r.ID == 0 {
		return nil, ErrBadLogin
	}
	u := r.user()
	return &u, nil
}

func (s *Store) passwordCost() int {
	if s.pwCost == 0 {
		return bcrypt.DefaultCost
	}
	return s.pwCost
}

// dummyHash is compared against for unknown names ("not a password").
var dummyHash = sync.OnceValue(func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	return string(h)
})

// EnsureAdmin creates user "admin" with a generated password when the
// users table is empty and returns that password (once: it is not kept);
// "" when users exist. Two workers starting together: one creates it, the
// other sees the taken name and returns "".
func (s *Store) EnsureAdmin(ctx context.Context) (string, error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := randomToken(18)
	if _, err := s.CreateUser(ctx, "admin", RoleAdmin, pw, "ferry sync"); err != nil {
		if errors.Is(err, ErrConflict) {
			return "", nil
		}
		return "", err
	}
	return pw, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// ---- sessions ----

// CreateSession starts a session of user id lasting ttl and returns the
// cookie value (only its hash is stored).
func (s *Store) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error) {
	tok := randomToken(32)
	now, err := s.nowMillis(ctx)
	if err != nil {
		return "", err
	}
	err = s.q(ctx).Exec("INSERT INTO sessions (token_hash, user_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)",
		tokenHash(tok), userID, now, now+ttl.Milliseconds()).Error
	if err != nil {
		return "", s.wrap(err, "create session")
	}
	return tok, nil
}

// SessionUser returns the user of an unexpired session, else ErrBadLogin.
func (s *Store) SessionUser(ctx context.Context, token string) (*User, error) {
	now, err := s.nowMillis(ctx)
	if err != nil {
		return nil, err
	}
	return s.userBy(ctx, "SELECT u.* FROM users u JOIN sessions x ON x.user_id = u.id WHERE x.token_hash = ? AND x.expires_at_ms > ?", token, now)
}

// DeleteSession ends a session (logout); an unknown one is no error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return s.wrap(s.q(ctx).Exec("DELETE FROM sessions WHERE token_hash = ?", tokenHash(token)).Error, "delete session")
}

// PruneSessions deletes expired sessions.
func (s *Store) PruneSessions(ctx context.Context) (int64, error) {
	now, err := s.nowMillis(ctx)
	if err != nil {
		return 0, err
	}
	res := s.q(ctx).Exec("DELETE FROM sessions WHERE expires_at_ms <= ?", now)
	return res.RowsAffected, s.checked(ctx, res, "prune sessions")
}

func (s *Store) userBy(ctx context.Context, query, token string, args ...any) (*User, error) {
	if token == "" {
		return nil, ErrBadLogin
	}
	var r userRow
	res := s.q(ctx).Raw(query, append([]any{tokenHash(token)}, args...)...).Scan(&r)
	if err := s.checked(ctx, res, "authenticate"); err != nil {
		return nil, err
	}
	if res.RowsAffected == 0 || r.ID == 0 {
		return nil, ErrBadLogin
	}
	u := r.user()
	return &u, nil
}

// ---- API tokens ----

// TokenPrefix starts every API token, so a leaked one is recognisable.
const TokenPrefix = "ferry_"

// APIToken is one token's record (never the token itself).
type APIToken struct {
	ID         int64
	UserID     int64
	Label      string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
}

// CreateToken issues a new API token for the user named name and returns
// it (only its hash is stored: it cannot be shown again).
func (s *Store) CreateToken(ctx context.Context, name, label string) (string, error) {
	if len(label) > 128 {
		return "", fmt.Errorf("%w token label: longer than 128", ErrInvalid)
	}
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return "", err
	}
	tok := TokenPrefix + randomToken(32)
	now, err := s.nowMillis(ctx)
	if err != nil {
		return "", err
	}
	err = s.q(ctx).Exec("INSERT INTO api_tokens (user_id, token_hash, label, created_at_ms, last_used_at_ms) VALUES (?, ?, ?, ?, 0)",
		u.ID, tokenHash(tok), label, now).Error
	if err != nil {
		return "", s.wrap(err, "create token for "+name)
	}
	return tok, nil
}

// TokenUser returns the user an API token belongs to, else ErrBadLogin.
func (s *Store) TokenUser(ctx context.Context, token string) (*User, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return nil, ErrBadLogin
	}
	return s.userBy(ctx, "SELECT u.* FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.token_hash = ?", token)
}

// ListTokens returns a user's tokens by id.
func (s *Store) ListTokens(ctx context.Context, name string) ([]APIToken, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		ID           int64  `gorm:"column:id"`
		UserID       int64  `gorm:"column:user_id"`
		Label        string `gorm:"column:label"`
		CreatedAtMS  int64  `gorm:"column:created_at_ms"`
		LastUsedAtMS int64  `gorm:"column:last_used_at_ms"`
	}
	if err := s.q(ctx).Table("api_tokens").Where("user_id = ?", u.ID).Order("id").Find(&rows).Error; err != nil {
		return nil, s.wrap(err, "tokens of "+name)
	}
	out := make([]APIToken, 0, len(rows))
	for _, r := range rows {
		t := APIToken{ID: r.ID, UserID: r.UserID, Label: r.Label, CreatedAt: time.UnixMilli(r.CreatedAtMS).UTC()}
		if r.LastUsedAtMS > 0 {
			t.LastUsedAt = time.UnixMilli(r.LastUsedAtMS).UTC()
		}
		out = append(out, t)
	}
	return out, nil
}

// DeleteToken revokes token id of the user named name.
func (s *Store) DeleteToken(ctx context.Context, name string, id int64) error {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	res := s.q(ctx).Exec("DELETE FROM api_tokens WHERE id = ? AND user_id = ?", id, u.ID)
	if err := s.checked(ctx, res, fmt.Sprintf("token %d", id)); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: token %d of %s", ErrNotFound, id, name)
	}
	return nil
}

// ---- login throttling ----

// ThrottleConfig is the login throttle: after Failures failed logins of
// one key within Window, the key is locked for Lockout.
type ThrottleConfig struct {
	Failures int
	Window   time.Duration
	Lockout  time.Duration
}

// DefaultThrottle allows 5 failures per 15 minutes, then 5 minutes off.
func DefaultThrottle() ThrottleConfig {
	return ThrottleConfig{Failures: 5, Window: 15 * time.Minute, Lockout: 5 * time.Minute}
}

// LoginLocked returns how long key stays locked (0: may try now).
func (s *Store) LoginLocked(ctx context.Context, key string) (time.Duration, error) {
	now, err := s.nowMillis(ctx)
	if err != nil {
		return 0, err
	}
	var left int64
	res := s.q(ctx).Raw("SELECT locked_until_ms - ? FROM login_throttle WHERE throttle_key = ? AND locked_until_ms > ?", now, clip(key, 255), now).Scan(&left)
	if err := s.checked(ctx, res, "login throttle"); err != nil {
		return 0, err
	}
	if res.RowsAffected == 0 || left <= 0 {
		return 0, nil
	}
	return time.Duration(left) * time.Millisecond, nil
}

// LoginFailed counts a failed login of key and locks it once cfg's limit
// is reached; it returns the lock (0: not locked).
func (s *Store) LoginFailed(ctx context.Context, key string, cfg ThrottleConfig) (time.Duration, error) {
	key = clip(key, 255)
	err := s.InTx(ctx, func(tx *Store) error {
		now, err := tx.nowMillis(ctx)
		if err != nil {
			return err
		}
		var row struct {
			Failures       int   `gorm:"column:failures"`
			FirstFailureMS int64 `gorm:"column:first_failure_ms"`
		}
		res := tx.q(ctx).Raw("SELECT failures, first_failure_ms FROM login_throttle WHERE throttle_key = ?", key).Scan(&row)
		if err := tx.checked(ctx, res, "login throttle"); err != nil {
			return err
		}
		if res.RowsAffected == 0 || now-row.FirstFailureMS > cfg.Window.Milliseconds() {
			row.Failures, row.FirstFailureMS = 0, now
		}
		row.Failures++
		var locked int64
		if row.Failures >= cfg.Failures {
			locked = now + cfg.Lockout.Milliseconds()
			row.Failures, row.FirstFailureMS = 0, now
		}
		if res.RowsAffected == 0 {
			err = tx.q(ctx).Exec("INSERT INTO login_throttle (throttle_key, failures, first_failure_ms, locked_until_ms) VALUES (?, ?, ?, ?)",
				key, row.Failures, row.FirstFailureMS, locked).Error
		} else {
			err = tx.q(ctx).Exec("UPDATE login_throttle SET failures = ?, first_failure_ms = ?, locked_until_ms = CASE WHEN ? > locked_until_ms THEN ? ELSE locked_until_ms END WHERE throttle_key = ?",
				row.Failures, row.FirstFailureMS, locked, locked, key).Error
		}
		return tx.wrap(err, "login throttle")
	})
	if err != nil {
		return 0, err
	}
	return s.LoginLocked(ctx, key)
}

// LoginSucceeded clears key's failures.
func (s *Store) LoginSucceeded(ctx context.Context, key string) error {
	return s.wrap(s.q(ctx).Exec("DELETE FROM login_throttle WHERE throttle_key = ?", clip(key, 255)).Error, "login throttle")
}

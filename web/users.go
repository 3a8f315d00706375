package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Users, API tokens, logins and the credential cache.

// UserView is a console user (never the password hash).
type UserView struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	UpdatedBy string    `json:"updatedBy"`
}

func userView(u store.User) UserView {
	return UserView{Name: u.Name, Role: string(u.Role), Version: u.Version, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, UpdatedBy: u.UpdatedBy}
}

// UserInput creates or edits a user; an empty Password on an edit keeps it.
type UserInput struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
	Version  int64  `json:"version"`
}

func checkRole(r string) error {
	if store.Role(r).Rank() == 0 {
		return invalid("role", "%q: want admin, operator or viewer", r)
	}
	return nil
}

func checkPassword(pw string, required bool) error {
	switch {
	case pw == "" && !required:
		return nil
	case len(pw) < store.MinPasswordLen:
		return invalid("password", "shorter than %d characters", store.MinPasswordLen)
	case len(pw) > 72:
		return invalid("password", "longer than 72 bytes")
	}
	return nil
}

// ListUsers lists users (admin).
func (s *Service) ListUsers(ctx context.Context, u *store.User) ([]UserView, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	us, err := s.st.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserView, 0, len(us))
	for _, x := range us {
		out = append(out, userView(x))
	}
	return out, nil
}

// CreateUser adds a user (admin).
func (s *Service) CreateUser(ctx context.Context, u *store.User, in UserInput) (*UserView, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	if !store.ValidUserName(in.Name) {
		return nil, invalid("name", "%q: 1-64 of letters, digits, . _ - @", in.Name)
	}
	if err := checkRole(in.Role); err != nil {
		return nil, err
	}
	if err := checkPassword(in.Password, true); err != nil {
		return nil, err
	}
	var out *store.User
	e := &store.AuditEntry{Action: "user.create", Target: "user " + in.Name, After: store.AuditJSON(map[string]string{"role": in.Role})}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		var err error
		out, err = tx.CreateUser(ctx, in.Name, store.Role(in.Role), in.Password, u.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	v := userView(*out)
	return &v, nil
}

// UpdateUser changes a user's role or password (admin; anyone may change
// their own password, not their role).
func (s *Service) UpdateUser(ctx context.Context, u *store.User, name string, in UserInput) (*UserView, error) {
	if u != nil && u.Name == name && in.Role == string(u.Role) {
		if err := need(u, store.RoleViewer); err != nil {
			return nil, err
		}
	} else if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	if err := checkRole(in.Role); err != nil {
		return nil, err
	}
	if err := checkPassword(in.Password, false); err != nil {
		return nil, err
	}
	if in.Version < 0 {
		return nil, invalid("version", "%d: must be ≥ 0", in.Version)
	}
	var out *store.User
	defer s.auth.reset() // a role change applies here at once (elsewhere within authFresh)
	e := &store.AuditEntry{Action: "user.update", Target: "user " + name,
		After: store.AuditJSON(map[string]any{"role": in.Role, "passwordChanged": in.Password != ""})}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		before, err := tx.GetUser(ctx, name)
		if err != nil {
			return err
		}
		e.Before = store.AuditJSON(map[string]string{"role": string(before.Role)})
		out, err = tx.UpdateUser(ctx, name, store.Role(in.Role), in.Password, u.Name, in.Version)
		return err
	})
	if err != nil {
		return nil, err
	}
	v := userView(*out)
	return &v, nil
}

// DeleteUser removes a user (admin; not oneself).
func (s *Service) DeleteUser(ctx context.Context, u *store.User, name string) error {
	if err := need(u, store.RoleAdmin); err != nil {
		return err
	}
	if u.Name == name {
		return invalid("name", "you cannot delete yourself")
	}
	e := &store.AuditEntry{Action: "user.delete", Target: "user " + name}
	defer s.auth.reset() // its sessions and tokens end here at once (elsewhere within authFresh)
	return s.audited(ctx, u, e, func(tx *store.Store) error { return tx.DeleteUser(ctx, name) })
}

// CreateToken issues an API token for user name (admin, or the user
// itself) and returns it; only its hash is kept.
func (s *Service) CreateToken(ctx context.Context, u *store.User, name, label string) (string, error) {
	if u == nil || u.Name != name {
		if err := need(u, store.RoleAdmin); err != nil {
			return "", err
		}
	}
	if err := checkText("label", label, 128, false); err != nil {
		return "", err
	}
	var tok string
	e := &store.AuditEntry{Action: "token.create", Target: "user " + name, After: store.AuditJSON(map[string]string{"label": label})}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		var err error
		tok, err = tx.CreateToken(ctx, name, label)
		return err
	})
	return tok, err
}

// ---- authentication ----

// Login checks a name and password, throttled per name and per client
// address across every replica, and starts a session: it returns the
// session cookie's value.
func (s *Service) Login(ctx context.Context, name, password, client string) (string, *store.User, error) {
	if name == "" {
		return "", nil, invalid("name", "required")
	}
	if password == "" {
		return "", nil, invalid("password", "required")
	}
	keys := []string{"user:" + name, "addr:" + client}
	for _, k := range keys {
		left, err := s.st.LoginLocked(ctx, k)
		if err != nil {
			return "", nil, err
		}
		if left > 0 {
			return "", nil, &Error{Status: 429, Code: CodeThrottled,
				Message: fmt.Sprintf("too many failed logins: try again in %s", left.Round(time.Second))}
		}
	}
	u, err := s.st.CheckPassword(ctx, name, password)
	if errors.Is(err, store.ErrBadLogin) {
		// An address gets addrFailures× the user limit: behind a load
		// balancer or NAT many users share one.
		addrCfg := s.cfg.Throttle
		addrCfg.Failures *= addrFailures
		for k, cfg := range map[string]store.ThrottleConfig{keys[0]: s.cfg.Throttle, keys[1]: addrCfg} {
			if _, ferr := s.st.LoginFailed(ctx, k, cfg); ferr != nil {
				return "", nil, ferr
			}
		}
		s.log.Warn("console login failed", "user", name, "client", client)
		return "", nil, unauthorized("wrong user name or password")
	}
	if err != nil {
		return "", nil, err
	}
	for _, k := range keys {
		if err := s.st.LoginSucceeded(ctx, k); err != nil {
			return "", nil, err
		}
	}
	tok, err := s.st.CreateSession(ctx, u.ID, s.cfg.SessionTTL)
	if err != nil {
		return "", nil, err
	}
	s.auth.put("s:"+tok, u) // just verified: the first reads need no lookup
	return tok, u, nil
}

// addrFailures multiplies the failed-login limit for a client address.
const addrFailures = 4

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, session string) error {
	s.auth.drop("s:" + session)
	return s.st.DeleteSession(ctx, session)
}

// Authenticate resolves a bearer token or a session cookie to its user
// (nil, nil when both are empty). While the store does not answer, a
// credential verified within ServiceConfig.OutageGrace still counts for
// reads (readOnly): the console stays readable, e.g. /api/status during
// a database outage, and accepts no change.
func (s *Service) Authenticate(ctx context.Context, bearer, session string, readOnly bool) (*store.User, error) {
	key := ""
	lookup := s.st.TokenUser
	switch {
	case bearer != "":
		key = "t:" + bearer
	case session != "":
		key, lookup = "s:"+session, s.st.SessionUser
	default:
		return nil, nil
	}
	// A read verified a moment ago skips the store (status polling).
	if readOnly {
		if u := s.auth.get(key, authFresh); u != nil {
			return u, nil
		}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AuthTimeout)
	defer cancel()
	cred := bearer
	if cred == "" {
		cred = session
	}
	u, err := lookup(actx, cred)
	switch {
	case err == nil:
		s.auth.put(key, u)
		return u, nil
	case errors.Is(err, store.ErrBadLogin):
		s.auth.drop(key)
		return nil, err
	}
	// A hung or unreachable store: a credential verified within the grace
	// still reads.
	down := errors.Is(err, store.ErrUnavailable) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
	if down {
		err = fmt.Errorf("%w: authenticate: %v", store.ErrUnavailable, err)
	}
	if readOnly && (down || s.asError(ctx, err).Code == CodeUnavailable) {
		if cached := s.auth.get(key, s.cfg.OutageGrace); cached != nil {
			return cached, nil
		}
	}
	return nil, err
}

// authFresh: a credential verified this recently is not looked up again
// for a read (a revoked token reads for at most this long).
const authFresh = 5 * time.Second

// authCache remembers the credentials verified lately, for reads while
// the store is down. Keys are hashed; mu guards m.
type authCache struct {
	mu sync.Mutex
	m  map[string]authEntry
}

type authEntry struct {
	user *store.User
	at   time.Time
}

// maxAuthCache bounds the cache; when full it is emptied.
const maxAuthCache = 10000

func authKey(k string) string {
	h := sha256.Sum256([]byte(k))
	return string(h[:])
}

func (c *authCache) put(k string, u *store.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxAuthCache {
		clear(c.m)
	}
	c.m[authKey(k)] = authEntry{user: u, at: time.Now()}
}

func (c *authCache) drop(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, authKey(k))
}

func (c *authCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func (c *authCache) get(k string, within time.Duration) *store.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[authKey(k)]
	if !ok || time.Since(e.at) > within {
		return nil
	}
	return e.user
}

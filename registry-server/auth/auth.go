// Package auth is the registry's Nacos-compatible authentication and
// authorisation: users, roles and permissions (kept in the Raft log by
// raftstore, so every node of a cluster shares them), bcrypt passwords,
// Nacos' JWT tokens (token.go), the login and user/role/permission HTTP
// APIs (http.go), the HTTP guard of every other route and the check of
// every gRPC request (guard.go).
//
// With auth off (the default, as Nacos), requests pass unchecked, except
// the operator endpoints (Ferry's graceful offline, user management),
// which then answer only callers on a loopback address.
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferrysync/ferry/internal/ratelimit"
)

// Errors. The messages after "auth: " are Nacos' own where Nacos has one;
// NacosMessage returns that part for the wire.
var (
	ErrConfig       = errors.New("auth: invalid config")
	ErrInvalidParam = errors.New("auth: invalid parameter")
	ErrExists       = errors.New("auth: already exists")
	ErrNotFound     = errors.New("auth: not found")

	ErrNoUser         = errors.New("auth: user not found!")
	ErrTokenInvalid   = errors.New("auth: token invalid!")
	ErrTokenExpired   = errors.New("auth: token expired!")
	ErrBadSignature   = errors.New("auth: Invalid signature")
	ErrUnsupportedAlg = errors.New("auth: unsupported signature algorithm")
	ErrForbidden      = errors.New("auth: authorization failed!")
	ErrThrottled      = errors.New("auth: too many login attempts")
	ErrLoopbackOnly   = errors.New("auth: operator endpoints answer only on loopback while auth is off (ferry registry -auth)")
	ErrNotReady       = errors.New("auth: store not ready")
)

// NacosMessage is err's message without the package prefix: what a 403
// body or a gRPC response message says (Nacos' AccessException texts).
func NacosMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "auth: ")
}

// Config configures auth. Flags and the registry config file map onto it.
type Config struct {
	// Enabled turns authentication and authorisation on (ferry registry
	// -auth). Off, only the operator endpoints are restricted (loopback).
	Enabled bool
	// TokenTTL is how long a token is valid (Nacos'
	// nacos.core.auth.plugin.nacos.token.expire.seconds, 18000 s).
	TokenTTL time.Duration
	// TokenKey is the base64 secret key tokens are signed with (Nacos'
	// nacos.core.auth.plugin.nacos.token.secret.key, at least 32 bytes
	// decoded). Empty: the key in KeyFile, created (random) when missing.
	// Every node of a cluster must use the same key.
	TokenKey string
	// KeyFile holds the base64 key when TokenKey is empty; the registry
	// sets it to DataDir/auth/token.key when empty.
	KeyFile string
	// BcryptCost is the cost of new password hashes (Nacos: 10).
	BcryptCost int
	// LoginRate and LoginBurst throttle logins (and username/password
	// requests) per client IP: a token bucket, since each attempt costs a
	// bcrypt comparison. Over it: HTTP 503, Nacos' too-many-requests code.
	LoginRate  float64
	LoginBurst int
	// MaxTrackedIPs bounds the throttle's memory.
	MaxTrackedIPs int
	// TokenCacheSize bounds the cache of verified tokens (the hot path
	// then skips the HMAC and JSON of a token it has seen).
	TokenCacheSize int
}

// DefaultConfig is auth off, Nacos' 5 h tokens, 5 logins/s per IP (burst 10).
func DefaultConfig() Config {
	return Config{
		TokenTTL:       18000 * time.Second,
		BcryptCost:     bcrypt.DefaultCost,
		LoginRate:      5,
		LoginBurst:     10,
		MaxTrackedIPs:  10000,
		TokenCacheSize: 10000,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.TokenTTL < time.Second:
		return fmt.Errorf("%w: TokenTTL %v must be at least 1s", ErrConfig, c.TokenTTL)
	case c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost:
		return fmt.Errorf("%w: BcryptCost %d must be %d..%d", ErrConfig, c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	case c.LoginRate < 0:
		return fmt.Errorf("%w: LoginRate %v must be >= 0", ErrConfig, c.LoginRate)
	case c.LoginBurst < 1:
		return fmt.Errorf("%w: LoginBurst %d must be >= 1", ErrConfig, c.LoginBurst)
	case c.MaxTrackedIPs < 1:
		return fmt.Errorf("%w: MaxTrackedIPs %d must be >= 1", ErrConfig, c.MaxTrackedIPs)
	case c.TokenCacheSize < 0:
		return fmt.Errorf("%w: TokenCacheSize %d must be >= 0", ErrConfig, c.TokenCacheSize)
	}
	if c.TokenKey != "" {
		if _, err := ParseKey(c.TokenKey); err != nil {
			return err
		}
	}
	return nil
}

// Store is where the auth data lives: the Raft store (raftstore/auth.go
// implements it). AuthState is called on every checked request and must
// be cheap (an atomic load of an immutable State). The Apply methods block
// until the op is committed and return the op's domain error, if any.
type Store interface {
	AuthState() *State
	ApplyUserOp(op UserOp) error
	ApplyRoleOp(op RoleOp) error
	ApplyPermissionOp(op PermissionOp) error
	// Ready reports whether the store accepts writes.
	Ready() bool
}

// Deps are the Authority's collaborators; Store is required.
type Deps struct {
	Store Store
	// AdminPassword is the password of the admin user created at the
	// first start with auth on (FERRY_REGISTRY_ADMIN_PASSWORD); empty
	// means a generated one, written once to Notice.
	AdminPassword string
	// Notice receives the generated admin password (the registry's
	// stdout); nil discards it. Never a log.
	Notice io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authority checks requests and serves the auth APIs. New validates,
// Start begins the admin bootstrap (when auth is on), Stop ends it.
type Authority struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	met    *metrics
	signer *Signer
	logins *ratelimit.Keyed

	cacheMu sync.Mutex // guards cache
	cache   map[string]Claims

	decMu    sync.Mutex // guards decState and decisions
	decState *State     // the State the decisions were made on
	decision map[decisionKey]bool

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New validates cfg, loads (or creates) the token key and builds the
// Authority.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) (*Authority, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, fmt.Errorf("%w: Deps.Store is required", ErrConfig)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Notice == nil {
		deps.Notice = io.Discard
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	key, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	signer, err := NewSigner(key)
	if err != nil {
		return nil, err
	}
	return &Authority{
		cfg: cfg, deps: deps, log: logger.With("subsystem", "auth"), met: newMetrics(reg), signer: signer,
		logins: ratelimit.NewKeyed(cfg.LoginRate, cfg.LoginBurst, cfg.MaxTrackedIPs),
		cache:  map[string]Claims{}, stop: make(chan struct{}),
	}, nil
}

// loadKey returns the configured key, or the key file's, creating the file
// with a random 32-byte key when it does not exist.
func loadKey(cfg Config) ([]byte, error) {
	if cfg.TokenKey != "" {
		return ParseKey(cfg.TokenKey)
	}
	if cfg.KeyFile == "" {
		return nil, fmt.Errorf("%w: neither TokenKey nor KeyFile is set", ErrConfig)
	}
	b, err := os.ReadFile(cfg.KeyFile)
	if err == nil {
		return ParseKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("auth: key file: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.KeyFile), 0o700); err != nil {
		return nil, fmt.Errorf("auth: key file: %w", err)
	}
	// O_EXCL: if another process created it meanwhile, read theirs.
	f, err := os.OpenFile(cfg.KeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: key file: %w", err)
		}
		return ParseKey(string(b))
	}
	if err != nil {
		return nil, fmt.Errorf("auth: key file: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("auth: key file: %w", werr)
	}
	return key, nil
}

// Enabled reports whether auth is on.
func (a *Authority) Enabled() bool { return a.cfg.Enabled }

// Signer is the token signer (tests, benchmarks).
func (a *Authority) Signer() *Signer { return a.signer }

// Start begins creating the admin user when auth is on and no global
// admin exists (once the store accepts writes). It does not block.
func (a *Authority) Start() error {
	if !a.cfg.Enabled {
		return nil
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.bootstrapLoop()
	}()
	return nil
}

// Stop ends the bootstrap loop; idempotent.
func (a *Authority) Stop() {
	a.stopOnce.Do(func() { close(a.stop) })
	a.wg.Wait()
}

func (a *Authority) bootstrapLoop() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if a.deps.Store.AuthState().HasGlobalAdmin() {
			return
		}
		if a.deps.Store.Ready() {
			err := a.bootstrap()
			if err == nil {
				return
			}
			a.log.Warn("admin user not created yet", "err", err)
		}
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// bootstrap creates user nacos as global admin (a no-op in the FSM if an
// admin appeared meanwhile).
func (a *Authority) bootstrap() error {
	pw, generated := a.deps.AdminPassword, false
	if pw == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		pw, generated = base64.RawURLEncoding.EncodeToString(b), true
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), a.cfg.BcryptCost)
	if err != nil {
		return err
	}
	if err := a.deps.Store.ApplyUserOp(UserOp{Op: OpBootstrap, Username: DefaultAdmin, PasswordHash: string(hash)}); err != nil {
		return err
	}
	u, ok := a.deps.Store.AuthState().User(DefaultAdmin)
	if !ok || u.PasswordHash != string(hash) {
		return nil // another node's bootstrap won
	}
	if generated {
		fmt.Fprintf(a.deps.Notice, "registry auth: created admin user %q with generated password %s (shown once; change it with PUT /nacos/v1/auth/users)\n", DefaultAdmin, pw)
	}
	a.log.Info("admin user created", "username", DefaultAdmin, "passwordFrom", map[bool]string{true: "generated", false: "FERRY_REGISTRY_ADMIN_PASSWORD"}[generated])
	return nil
}

// Login checks a username and password from client IP ip and returns a
// new token and its TTL in seconds. Errors: ErrThrottled, ErrNoUser (bad
// user or password: one message for both, as Nacos).
func (a *Authority) Login(username, password, ip string) (token string, ttl int64, globalAdmin bool, err error) {
	now := a.deps.Now()
	if err := a.checkPassword(username, password, ip, now); err != nil {
		return "", 0, false, err
	}
	token = a.signer.Issue(username, now, a.cfg.TokenTTL)
	a.met.logins.WithLabelValues("ok").Inc()
	return token, int64(a.cfg.TokenTTL / time.Second), a.deps.Store.AuthState().IsGlobalAdmin(username), nil
}

func (a *Authority) checkPassword(username, password, ip string, now time.Time) error {
	if !a.logins.Allow(ip, now) {
		a.met.logins.WithLabelValues("throttled").Inc()
		return ErrThrottled
	}
	if username == "" || password == "" || len(password) > MaxPasswordLen || ValidName("username", username) != nil {
		a.met.logins.WithLabelValues("denied").Inc()
		return ErrNoUser
	}
	u, ok := a.deps.Store.AuthState().User(username)
	if !ok || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		a.met.logins.WithLabelValues("denied").Inc()
		return ErrNoUser
	}
	return nil
}

// Identify verifies a token and returns its user. A token whose user was
// deleted is refused (ErrNoUser).
func (a *Authority) Identify(token string) (string, error) {
	now := a.deps.Now()
	a.cacheMu.Lock()
	c, ok := a.cache[token]
	a.cacheMu.Unlock()
	if !ok {
		var err error
		c, err = a.signer.Parse(token, now)
		if err != nil {
			return "", err
		}
		if a.cfg.TokenCacheSize > 0 {
			a.cacheMu.Lock()
			if len(a.cache) >= a.cfg.TokenCacheSize {
				clear(a.cache) // rare; the next requests re-verify
			}
			a.cache[token] = c
			a.cacheMu.Unlock()
		}
	} else if c.Expires < now.Unix() {
		a.cacheMu.Lock()
		delete(a.cache, token)
		a.cacheMu.Unlock()
		return "", ErrTokenExpired
	}
	if _, ok := a.deps.Store.AuthState().User(c.Username); !ok {
		return "", ErrNoUser
	}
	return c.Username, nil
}

// Identity is how a request presents itself: a token, or a username and
// password (Nacos accepts both; the password path is throttled as logins).
type Identity struct {
	Token    string
	Username string
	Password string
	IP       string
}

// Check authorises one request: nil when auth is off or the identity may
// do action on res. Errors are the Nacos access errors (ErrNoUser,
// ErrToken*, ErrBadSignature, ErrForbidden) and ErrThrottled.
func (a *Authority) Check(id Identity, res Resource, action Action) error {
	if !a.cfg.Enabled {
		return nil
	}
	err := a.check(id, res, action)
	if err != nil {
		a.met.denied.WithLabelValues(res.Type).Inc()
	}
	return err
}

func (a *Authority) check(id Identity, res Resource, action Action) error {
	user, err := a.identify(id)
	if err != nil {
		return err
	}
	if !a.allowed(a.deps.Store.AuthState(), user, res, action) {
		return ErrForbidden
	}
	return nil
}

type decisionKey struct {
	user   string
	res    Resource
	action Action
}

// allowed is st.Allowed, remembered per (user, resource, action) for as
// long as the State is the current one (a new State, after any auth
// write, starts afresh): the hot paths ask the same few questions.
func (a *Authority) allowed(st *State, user string, res Resource, action Action) bool {
	if st.IsGlobalAdmin(user) {
		return true
	}
	k := decisionKey{user: user, res: res, action: action}
	a.decMu.Lock()
	if a.decState != st {
		a.decState, a.decision = st, map[decisionKey]bool{}
	}
	ok, hit := a.decision[k]
	a.decMu.Unlock()
	if hit {
		return ok
	}
	ok = st.Allowed(user, res, action)
	a.decMu.Lock()
	if a.decState == st {
		if len(a.decision) >= max(a.cfg.TokenCacheSize, 1) {
			clear(a.decision)
		}
		a.decision[k] = ok
	}
	a.decMu.Unlock()
	return ok
}

func (a *Authority) identify(id Identity) (string, error) {
	if id.Token != "" {
		return a.Identify(id.Token)
	}
	if id.Username != "" {
		if err := a.checkPassword(id.Username, id.Password, id.IP, a.deps.Now()); err != nil {
			return "", err
		}
		return id.Username, nil
	}
	return "", ErrNoUser
}

// HashPassword hashes a new password with the configured cost.
func (a *Authority) HashPassword(pw string) (string, error) {
	if pw == "" || len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("%w: password must be 1..%d bytes", ErrInvalidParam, MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), a.cfg.BcryptCost)
	return string(h), err
}

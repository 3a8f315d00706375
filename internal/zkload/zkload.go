// Package zkload seeds a ZooKeeper with a Dubbo catalog (N services × M
// provider instances, realistic Java Dubbo 3.2 URLs) and churns it with the
// kill-restart pattern. `ferry zkload`, `ferry demo` and the zkwatch
// benchmarks use it.
//
// Layout: application k exports ServicesPerApp interfaces; each of its
// Instances hosts (10.x.y.z:20880) provides all of them, as in a real estate.
// Seeding is pipelined: many concurrent zk Multi batches on one connection.
package zkload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/zkwatch"
	"github.com/go-zookeeper/zk"
)

// Config describes the catalog to write.
type Config struct {
	// Servers are ZooKeeper addresses (for Connect).
	Servers []string
	// Root is the Dubbo registry root. Default "dubbo".
	Root string
	// Services is the number of interfaces. Default 100.
	Services int
	// Instances is the number of provider instances per service. Default 10.
	Instances int
	// ServicesPerApp: interfaces exported by one application. Default 10.
	ServicesPerApp int
	// Persistent writes persistent nodes with dynamic=false instead of
	// ephemeral ones (which vanish when the loader's session ends).
	Persistent bool
	// WithNacosShare is the share of instances whose URLs carry
	// withNacos=true (already registered in Nacos by themselves). Default 0.1.
	WithNacosShare float64
	// VersionShare and GroupShare: share of services with a version / group.
	// Defaults 0.5 and 0.2.
	VersionShare, GroupShare float64
	// Prefix of interface names. Default "com.example.load".
	Prefix string
	// Concurrency is the number of Multi batches in flight. Default 16.
	Concurrency int
	// Batch is the number of creates per Multi. Default 100.
	Batch int
	// Seed for the random choices (0: fixed default, so runs are repeatable).
	Seed uint64
	// SessionTimeout for Connect. Default 30s.
	SessionTimeout time.Duration
}

// DefaultConfig returns the defaults (Servers unset).
func DefaultConfig() Config {
	return Config{
		Root: "dubbo", Services: 100, Instances: 10, ServicesPerApp: 10,
		WithNacosShare: 0.1, VersionShare: 0.5, GroupShare: 0.2,
		Prefix: "com.example.load", Concurrency: 16, Batch: 100, SessionTimeout: 30 * time.Second,
	}
}

// ErrInvalidConfig wraps every Validate failure.
var ErrInvalidConfig = errors.New("zkload: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...)) }
	switch {
	case strings.Trim(c.Root, "/") == "":
		return bad("Root is empty")
	case c.Services < 0:
		return bad("Services %d negative", c.Services)
	case c.Instances < 0 || c.Instances > 1<<20:
		return bad("Instances %d out of range", c.Instances)
	case c.ServicesPerApp < 1:
		return bad("ServicesPerApp %d below 1", c.ServicesPerApp)
	case c.WithNacosShare < 0 || c.WithNacosShare > 1:
		return bad("WithNacosShare %v not in [0,1]", c.WithNacosShare)
	case c.VersionShare < 0 || c.VersionShare > 1:
		return bad("VersionShare %v not in [0,1]", c.VersionShare)
	case c.GroupShare < 0 || c.GroupShare > 1:
		return bad("GroupShare %v not in [0,1]", c.GroupShare)
	case c.Prefix == "":
		return bad("Prefix is empty")
	case c.Concurrency < 1:
		return bad("Concurrency %d below 1", c.Concurrency)
	case c.Batch < 1 || c.Batch > 1000:
		return bad("Batch %d not in [1,1000]", c.Batch)
	}
	apps := (c.Services + c.ServicesPerApp - 1) / c.ServicesPerApp
	if apps*c.Instances >= 1<<24 {
		return bad("Services/ServicesPerApp × Instances %d exceeds the 10.0.0.0/8 host space", apps*c.Instances)
	}
	return nil
}

// Stats says what Seed did.
type Stats struct {
	Services  int
	Providers int
	Duration  time.Duration
}

// Loader writes one catalog through one ZooKeeper connection. Seed first,
// then Churn; the methods are not meant to run concurrently with each other.
type Loader struct {
	cfg   Config
	conn  *zk.Conn
	owned bool // conn made by Connect
	log   *slog.Logger

	mu      sync.Mutex // guards current
	current [][]string // [service][instance] -> current node path
	tsClock atomic.Int64
}

// Connect dials cfg.Servers and waits for a session (or ctx).
func Connect(ctx context.Context, cfg Config, logger *slog.Logger) (*Loader, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("%w: Servers is empty", ErrInvalidConfig)
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 30 * time.Second
	}
	conn, events, err := zk.Connect(cfg.Servers, cfg.SessionTimeout, zk.WithDialer(zkwatch.Dialer(cfg.SessionTimeout)), zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		return nil, fmt.Errorf("zkload: connect: %w", err)
	}
	up := make(chan struct{})
	go func() {
		once := sync.Once{}
		for ev := range events {
			if ev.State == zk.StateHasSession {
				once.Do(func() { close(up) })
			}
		}
	}()
	select {
	case <-up:
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("zkload: no session with %v: %w", cfg.Servers, ctx.Err())
	}
	l, err := New(cfg, conn, logger)
	if err != nil {
		conn.Close()
		return nil, err
	}
	l.owned = true
	return l, nil
}

// New uses an existing connection (the caller keeps owning it).
func New(cfg Config, conn *zk.Conn, logger *slog.Logger) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Loader{cfg: cfg, conn: conn, log: logger.With("subsystem", "zkload")}
	l.tsClock.Store(time.Now().UnixMilli())
	return l, nil
}

// Close closes the connection if Connect made it (ephemeral nodes go).
func (l *Loader) Close() {
	if l.owned {
		l.conn.Close()
	}
}

// Conn is the loader's ZooKeeper connection.
func (l *Loader) Conn() *zk.Conn { return l.conn }

// Interface returns service i's interface name.
func (l *Loader) Interface(i int) string {
	return fmt.Sprintf("%s.app%04d.Service%05d", l.cfg.Prefix, i/l.cfg.ServicesPerApp, i)
}

// Application returns service i's application name.
func (l *Loader) Application(i int) string {
	return fmt.Sprintf("load-app-%04d", i/l.cfg.ServicesPerApp)
}

// Host returns the address of instance j of service i's application.
func (l *Loader) Host(i, j int) string {
	n := (i/l.cfg.ServicesPerApp)*l.cfg.Instances + j + 1
	return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
}

// ServicePath is /root/{enc(interface)}.
func (l *Loader) ServicePath(i int) string {
	return "/" + strings.Trim(l.cfg.Root, "/") + "/" + url.QueryEscape(l.Interface(i))
}

// ProviderURL is the provider URL of instance j of service i at ts (ms).
func (l *Loader) ProviderURL(i, j int, ts int64) string {
	iface := l.Interface(i)
	h := hash(uint64(i)*1_000_003 + l.cfg.Seed)
	params := map[string]string{
		"anyhost": "true", "application": l.Application(i), "background": "false",
		"deprecated": "false", "dubbo": "2.0.2", "dynamic": "true", "environment": "product",
		"executor-management-mode": "isolation", "file-cache": "true", "generic": "false",
		"interface": iface, "methods": "create,delete,get,list,update",
		"pid": strconv.Itoa(1000 + int(hash(uint64(j)+h)%60000)), "prefer.serialization": "fastjson2,hessian2",
		"release": "3.2.0", "service-name-mapping": "true", "side": "provider",
		"timeout": "3000", "timestamp": strconv.FormatInt(ts, 10),
	}
	if l.cfg.Persistent {
		params["dynamic"] = "false"
	}
	if frac(h) < l.cfg.VersionShare {
		params["version"] = "1.0." + strconv.Itoa(int(h%3))
	}
	if frac(hash(h)) < l.cfg.GroupShare {
		params["group"] = "group" + strconv.Itoa(int(h%2))
	}
	if frac(hash(h+uint64(j)*7919+1)) < l.cfg.WithNacosShare {
		params["withNacos"] = "true"
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(600)
	fmt.Fprintf(&b, "dubbo://%s:20880/%s", l.Host(i, j), iface)
	for n, k := range keys {
		if n == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

// ProviderPath is the node path of a provider URL under service i.
func (l *Loader) ProviderPath(i int, providerURL string) string {
	return l.ServicePath(i) + "/providers/" + url.QueryEscape(providerURL)
}

func (l *Loader) nextTS() int64 {
	for {
		now := time.Now().UnixMilli()
		old := l.tsClock.Load()
		next := max(now, old+1)
		if l.tsClock.CompareAndSwap(old, next) {
			return next
		}
	}
}

func (l *Loader) flags() int32 {
	if l.cfg.Persistent {
		return 0
	}
	return zk.FlagEphemeral
}

// Seed writes the whole catalog: service and providers nodes (kept if they
// exist) and one provider node per instance with a fresh timestamp.
func (l *Loader) Seed(ctx context.Context) (Stats, error) {
	start := time.Now()
	root := "/" + strings.Trim(l.cfg.Root, "/")
	if err := l.mkdirs(root); err != nil {
		return Stats{}, err
	}
	// Service and providers nodes (persistent), then the providers.
	var dirs []*zk.CreateRequest
	for i := 0; i < l.cfg.Services; i++ {
		sp := l.ServicePath(i)
		dirs = append(dirs, &zk.CreateRequest{Path: sp, Acl: zk.WorldACL(zk.PermAll)})
	}
	if err := l.createAll(ctx, dirs); err != nil {
		return Stats{}, err
	}
	dirs = dirs[:0]
	for i := 0; i < l.cfg.Services; i++ {
		dirs = append(dirs, &zk.CreateRequest{Path: l.ServicePath(i) + "/providers", Acl: zk.WorldACL(zk.PermAll)})
	}
	if err := l.createAll(ctx, dirs); err != nil {
		return Stats{}, err
	}
	current := make([][]string, l.cfg.Services)
	provs := make([]*zk.CreateRequest, 0, l.cfg.Services*l.cfg.Instances)
	for i := 0; i < l.cfg.Services; i++ {
		current[i] = make([]string, l.cfg.Instances)
		for j := 0; j < l.cfg.Instances; j++ {
			p := l.ProviderPath(i, l.ProviderURL(i, j, l.nextTS()))
			current[i][j] = p
			provs = append(provs, &zk.CreateRequest{Path: p, Data: []byte(l.Host(i, j)), Acl: zk.WorldACL(zk.PermAll), Flags: l.flags()})
		}
	}
	if err := l.createAll(ctx, provs); err != nil {
		return Stats{}, err
	}
	l.mu.Lock()
	l.current = current
	l.mu.Unlock()
	st := Stats{Services: l.cfg.Services, Providers: len(provs), Duration: time.Since(start)}
	l.log.Info("seeded", "services", st.Services, "providers", st.Providers, "took", st.Duration)
	return st, nil
}

func (l *Loader) mkdirs(p string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		if _, err := l.conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zkload: create %s: %w", cur, err)
		}
	}
	return nil
}

// createAll creates reqs in Multi batches, Concurrency at a time. A batch
// that fails (a node exists already) is redone one create at a time,
// ignoring existing nodes.
func (l *Loader) createAll(ctx context.Context, reqs []*zk.CreateRequest) error {
	g := newGroup(ctx, l.cfg.Concurrency)
	for off := 0; off < len(reqs); off += l.cfg.Batch {
		batch := reqs[off:min(off+l.cfg.Batch, len(reqs))]
		g.Go(func() error {
			ops := make([]any, len(batch))
			for k, r := range batch {
				ops[k] = r
			}
			_, err := l.conn.Multi(ops...)
			if err == nil {
				return nil
			}
			for _, r := range batch {
				if _, err := l.conn.Create(r.Path, r.Data, r.Flags, r.Acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
					return fmt.Errorf("zkload: create %s: %w", r.Path, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Write is one churn write, reported to ChurnConfig.OnWrite.
type Write struct {
	Service  int    // index
	Node     string // full path created or deleted
	Created  bool   // false: deleted
	At       time.Time
	Duration time.Duration // of the ZooKeeper call
}

// ChurnConfig drives Churn.
type ChurnConfig struct {
	// Rate of provider replacements per second (each is a create, then a delete later). Required.
	Rate float64
	// RemoveAfter is how long the old node outlives the new one. Default 1s.
	RemoveAfter time.Duration
	// Services limits churn to the first N services (0: all).
	Services int
	// BeforeWrite, if set, is called just before every create and delete
	// (Write.At is the time of the call; Duration is 0).
	BeforeWrite func(Write)
	// OnWrite, if set, is called after every create and delete.
	OnWrite func(Write)
}

// Churn replaces random providers with newer-timestamp nodes (the kill -9
// restart pattern: the new node first, the old one removed RemoveAfter
// later) at Rate per second until ctx is done. Seed must have run.
func (l *Loader) Churn(ctx context.Context, cc ChurnConfig) error {
	if cc.Rate <= 0 {
		return fmt.Errorf("%w: churn Rate %v must be positive", ErrInvalidConfig, cc.Rate)
	}
	if cc.RemoveAfter <= 0 {
		cc.RemoveAfter = time.Second
	}
	l.mu.Lock()
	nsvc := len(l.current)
	l.mu.Unlock()
	if nsvc == 0 || l.cfg.Instances == 0 {
		return fmt.Errorf("%w: nothing seeded to churn", ErrInvalidConfig)
	}
	if cc.Services > 0 && cc.Services < nsvc {
		nsvc = cc.Services
	}
	rng := rand.New(rand.NewPCG(l.cfg.Seed, 42))
	type pendingDelete struct {
		svc  int
		node string
		due  time.Time
	}
	deletes := make(chan pendingDelete, 1<<16)
	var wg sync.WaitGroup
	var delErr atomic.Value
	wg.Add(1)
	go func() { // deletes, in creation order, when due (they still run after ctx ends)
		defer wg.Done()
		for d := range deletes {
			if wait := time.Until(d.due); wait > 0 {
				time.Sleep(wait)
			}
			t0 := time.Now()
			if cc.BeforeWrite != nil {
				cc.BeforeWrite(Write{Service: d.svc, Node: d.node, Created: false, At: t0})
			}
			err := l.conn.Delete(d.node, -1)
			if err != nil && !errors.Is(err, zk.ErrNoNode) {
				delErr.Store(err)
				continue
			}
			if cc.OnWrite != nil {
				cc.OnWrite(Write{Service: d.svc, Node: d.node, Created: false, At: t0, Duration: time.Since(t0)})
			}
		}
	}()
	defer func() {
		close(deletes)
		wg.Wait()
	}()
	interval := time.Duration(float64(time.Second) / cc.Rate)
	next := time.Now()
	for {
		next = next.Add(interval)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
		if err, _ := delErr.Load().(error); err != nil {
			return fmt.Errorf("zkload: churn delete: %w", err)
		}
		i, j := rng.IntN(nsvc), rng.IntN(l.cfg.Instances)
		p := l.ProviderPath(i, l.ProviderURL(i, j, l.nextTS()))
		t0 := time.Now()
		if cc.BeforeWrite != nil {
			cc.BeforeWrite(Write{Service: i, Node: p, Created: true, At: t0})
		}
		if _, err := l.conn.Create(p, []byte(l.Host(i, j)), l.flags(), zk.WorldACL(zk.PermAll)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("zkload: churn create %s: %w", p, err)
		}
		if cc.OnWrite != nil {
			cc.OnWrite(Write{Service: i, Node: p, Created: true, At: t0, Duration: time.Since(t0)})
		}
		l.mu.Lock()
		old := l.current[i][j]
		l.current[i][j] = p
		l.mu.Unlock()
		select {
		case deletes <- pendingDelete{svc: i, node: old, due: time.Now().Add(cc.RemoveAfter)}:
		default:
			return errors.New("zkload: churn: too many pending deletes")
		}
	}
}

// Clean deletes every provider node Seed and Churn created (for persistent catalogs).
func (l *Loader) Clean(ctx context.Context) error {
	l.mu.Lock()
	var paths []string
	for _, row := range l.current {
		paths = append(paths, row...)
	}
	l.mu.Unlock()
	g := newGroup(ctx, l.cfg.Concurrency)
	for off := 0; off < len(paths); off += l.cfg.Batch {
		batch := paths[off:min(off+l.cfg.Batch, len(paths))]
		g.Go(func() error {
			for _, p := range batch {
				if err := l.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return fmt.Errorf("zkload: delete %s: %w", p, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func hash(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func frac(h uint64) float64 { return float64(h>>11) / float64(1<<53) }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// group runs functions with bounded concurrency and keeps the first error;
// once ctx is done or a function failed, Go runs nothing more.
type group struct {
	ctx  context.Context
	sem  chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	err  error
	bad  atomic.Bool
}

func newGroup(ctx context.Context, limit int) *group {
	return &group{ctx: ctx, sem: make(chan struct{}, limit)}
}

func (g *group) fail(err error) {
	g.once.Do(func() { g.err = err; g.bad.Store(true) })
}

func (g *group) Go(f func() error) {
	if g.bad.Load() {
		return
	}
	select {
	case g.sem <- struct{}{}:
	case <-g.ctx.Done():
		g.fail(g.ctx.Err())
		return
	}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sem; g.wg.Done() }()
		if err := f(); err != nil {
			g.fail(err)
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	if g.err == nil && g.ctx.Err() != nil {
		return g.ctx.Err()
	}
	return g.err
}

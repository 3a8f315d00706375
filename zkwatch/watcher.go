package zkwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the Watcher.
var (
	ErrNotStarted = errors.New("zkwatch: not started")
	ErrStopped    = errors.New("zkwatch: stopped")
	ErrBadPath    = errors.New("zkwatch: bad node path")
)

// Dubbo's categories under a service node.
const (
	catProviders     = "providers"
	catConsumers     = "consumers"
	catRouters       = "routers"
	catConfigurators = "configurators"
)

var categories = []string{catProviders, catConsumers, catRouters, catConfigurators}

// Watcher keeps the Dubbo catalog of one ZooKeeper cluster. Create it with
// New, then Start; every method is safe for concurrent use.
type Watcher struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	rootPath string // "/dubbo"
	appPath  string // "/services" or ""
	skip     map[string]bool

	q     *pathQueue
	notes *notifier
	quit  chan struct{}
	wg    sync.WaitGroup

	lifeMu   sync.Mutex // guards conn, started, stopped, stopErr
	conn     *zk.Conn
	started  bool
	stopped  bool
	stopDone chan struct{}

	// mu guards everything below. It is held only for map work, never
	// across a ZooKeeper call.
	mu          sync.Mutex
	gen         uint64        // session generation: starts at 1, +1 on every session expiry
	up          chan struct{} // closed while the session is up
	isUp        bool
	rootGen     uint64 // gen of the last successful root listing
	rootListed  bool
	rootMissing bool
	services    map[string]*service // by decoded name
	byRaw       map[string]*service // by znode name
	provCount   int
	svcCount    int               // services with hasProviders
	unready     int               // services of w.services not listed in this session (readyLocked false)
	skipped     map[string]string // path -> reason (logged once each)
	apps        map[string]*appState
	appRootGen  uint64 // gen of the last listing of the app root
	maps        mappingState
}

// service is what the watcher keeps per service node.
type service struct {
	name string // decoded
	raw  string // znode name

	svcGen       uint64 // gen of the last service-node listing
	hasProvChild bool   // the last service-node listing showed a providers child

	hasProviders bool                 // providers listed and present
	providers    map[string]provEntry // by provider node name (a substring of the entry's path)
	provGen      uint64               // gen of the last providers listing
	consumers    int
	routers      int
	rules        []overrideRule
	configs      int
	revision     uint64
	// flapSince starts the current flap window; flapChanges counts the
	// provider-set changes in it (kept here, not in a map: bounded by the
	// services).
	flapSince   time.Time
	flapChanges int
}

// New validates cfg and builds a Watcher (nothing runs until Start).
// logger and reg may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &Watcher{
		cfg:      cfg,
		log:      logger.With("subsystem", "zkwatch"),
		rootPath: "/" + strings.Trim(cfg.Root, "/"),
		skip:     map[string]bool{},
		q:        newPathQueue(),
		notes:    newNotifier(),
		quit:     make(chan struct{}),
		stopDone: make(chan struct{}),
		up:       make(chan struct{}),
		gen:      1, // 0 means "never listed"
		services: map[string]*service{},
		byRaw:    map[string]*service{},
		skipped:  map[string]string{},
		apps:     map[string]*appState{},
		maps:     mappingState{nodes: map[string]string{}},
	}
	if a := strings.Trim(cfg.AppRoot, "/"); a != "" {
		w.appPath = "/" + a
	}
	for _, s := range cfg.SkipChildren {
		w.skip[s] = true
	}
	m, err := newMetrics(reg, func() float64 {
		if w.Synced() {
			return 1
		}
		return 0
	}, func() float64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return float64(len(w.skipped))
	})
	if err != nil {
		return nil, err
	}
	w.m = m
	return w, nil
}

// Start connects to ZooKeeper and starts watching; it does not block. If the
// root does not exist yet the watcher waits for it.
func (w *Watcher) Start() error {
	w.lifeMu.Lock()
	defer w.lifeMu.Unlock()
	if w.stopped {
		return ErrStopped
	}
	if w.started {
		return nil
	}
	conn, events, err := zk.Connect(w.cfg.Servers, w.cfg.SessionTimeout,
		zk.WithEventCallback(w.onEvent),
		zk.WithDialer(Dialer(w.cfg.SessionTimeout)),
		zk.WithLogger(zkLogger{w.log}),
		zk.WithLogInfo(false))
	if err != nil {
		return fmt.Errorf("zkwatch: connect %v: %w", w.cfg.Servers, err)
	}
	w.conn = conn
	w.started = true
	// The session event channel drops events when full: drain it. The
	// callback already handled each event.
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for range events {
		}
	}()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.notes.run(w.quit, w.m.notifications.Inc)
	}()
	for i := 0; i < w.cfg.ListConcurrency; i++ {
		w.wg.Add(1)
		go w.worker()
	}
	w.q.add(w.rootPath)
	w.q.add(w.mappingPath())
	if w.appPath != "" {
		w.q.add(w.appPath)
	}
	w.log.Info("watching", "servers", w.cfg.Servers, "root", w.rootPath, "app_root", w.appPath)
	return nil
}

// Stop closes the session and waits for the watcher's goroutines, at most
// until ctx is done. It is idempotent.
func (w *Watcher) Stop(ctx context.Context) error {
	w.lifeMu.Lock()
	if w.stopped {
		w.lifeMu.Unlock()
		select {
		case <-w.stopDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.stopped = true
	conn := w.conn
	w.lifeMu.Unlock()

	close(w.quit)
	w.q.close()
	go func() {
		if conn != nil {
			conn.Close()
		}
		w.wg.Wait()
		close(w.stopDone)
	}()
	select {
	case <-w.stopDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zkwatch: stop: %w", ctx.Err())
	}
}

// Changes delivers the names of services whose snapshot changed (or that
// disappeared: Snapshot then returns false), and AppKey(app) for each
// application whose instances changed (AppInstances); read the snapshot
// after receiving.
// The channel is unbuffered and fed from a pending set, so the watcher never
// waits for the reader and a burst of changes on one service while the
// reader is busy is at most two names (the one being handed over, then one
// for everything after it). The channel is never closed; stop reading when
// you Stop the watcher.
func (w *Watcher) Changes() <-chan string { return w.notes.out }

// Synced reports whether the whole catalog has been listed since the session
// began (or since the last session expiry), the application-level tree
// (AppRoot) included. False while the root is missing.
func (w *Watcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	// O(1): the engine asks before and after every snapshot it takes.
	return w.rootListed && w.rootGen == w.gen && w.unready == 0 && w.appsSyncedLocked()
}

// readyLocked reports whether s has been listed in this session: its
// service node, and its providers child when it has one. w.mu held.
func (w *Watcher) readyLocked(s *service) bool {
	return s.svcGen == w.gen && (!s.hasProvChild || s.provGen == w.gen)
}

// listedLocked applies f, a change of s's listing state (svcGen, provGen,
// hasProvChild), keeping w.unready in step. w.mu held.
func (w *Watcher) listedLocked(s *service, f func()) {
	tracked := w.services[s.name] == s
	was := w.readyLocked(s)
	f()
	if now := w.readyLocked(s); tracked && now != was {
		if now {
			w.unready--
		} else {
			w.unready++
		}
	}
}

// Connected reports whether the ZooKeeper session is up now.
func (w *Watcher) Connected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.isUp
}

// Services lists the service nodes that have a providers child, sorted.
func (w *Watcher) Services() []string {
	w.mu.Lock()
	out := make([]string, 0, len(w.services))
	for name, s := range w.services {
		if s.hasProviders {
			out = append(out, name)
		}
	}
	w.mu.Unlock()
	slices.Sort(out)
	return out
}

// Snapshot returns the current state of one service; false when the service
// node is gone or has no providers child.
func (w *Watcher) Snapshot(name string) (ServiceSnapshot, bool) {
	w.mu.Lock()
	s := w.services[name]
	if s == nil || !s.hasProviders {
		w.mu.Unlock()
		return ServiceSnapshot{}, false
	}
	nodes := make([]string, 0, len(s.providers))
	for _, e := range s.providers {
		nodes = append(nodes, e.node)
	}
	rules := slices.Clone(s.rules)
	snap := ServiceSnapshot{Service: s.name, Consumers: s.consumers, Routers: s.routers,
		Configurators: s.configs, Revision: s.revision}
	w.mu.Unlock()
	slices.Sort(nodes)
	snap.Providers, snap.Shadowed = buildSnapshot(nodes, rules)
	return snap, true
}

// Catalog returns the snapshot of every service that has a providers child,
// sorted by name. Each snapshot is consistent on its own; the catalog is not
// one atomic cut across services.
func (w *Watcher) Catalog() []ServiceSnapshot {
	names := w.Services()
	out := make([]ServiceSnapshot, 0, len(names))
	for _, n := range names {
		if s, ok := w.Snapshot(n); ok {
			out = append(out, s)
		}
	}
	return out
}

// Skipped returns the node paths the watcher skipped, with the reason
// (undecodable, unparsable, acl, ...). At most Config.MaxSkipped are kept.
func (w *Watcher) Skipped() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.skipped))
	for k, v := range w.skipped {
		out[k] = v
	}
	return out
}

// ProviderExists asks ZooKeeper now whether a provider node exists (node is
// a full znode path, as in Provider.Node): a sync, then an exists, so the
// answer is not older than the call. It fails while disconnected.
func (w *Watcher) ProviderExists(ctx context.Context, node string) (bool, error) {
	if !strings.HasPrefix(node, "/") || strings.HasSuffix(node, "/") {
		return false, fmt.Errorf("%w: %q", ErrBadPath, node)
	}
	w.lifeMu.Lock()
	conn, started, stopped := w.conn, w.started, w.stopped
	w.lifeMu.Unlock()
	if stopped {
		return false, ErrStopped
	}
	if !started {
		return false, ErrNotStarted
	}
	type res struct {
		ok  bool
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// sync first: in an ensemble the server we talk to may lag the leader.
		if _, err := conn.Sync(node); err != nil && !errors.Is(err, zk.ErrNoNode) {
			ch <- res{false, err}
			return
		}
		ok, _, err := conn.Exists(node)
		ch <- res{ok, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return false, fmt.Errorf("zkwatch: exists %s: %w", node, r.err)
		}
		return r.ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// onEvent is the zk client's event callback. It runs on the zk receive loop:
// it only updates session state and marks paths dirty, never blocks.
func (w *Watcher) onEvent(ev zk.Event) {
	if ev.Type == zk.EventSession {
		w.onSession(ev.State)
		return
	}
	if ev.Path == "" || errors.Is(ev.Err, zk.ErrClosing) {
		return
	}
	w.q.add(ev.Path)
}

func (w *Watcher) onSession(st zk.State) {
	w.m.sessionEvents.WithLabelValues(st.String()).Inc()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch st {
	case zk.StateHasSession:
		if !w.isUp {
			w.isUp = true
			close(w.up)
			w.m.connected.Set(1)
		}
	case zk.StateExpired:
		w.gen++
		w.unready = len(w.services) // none is listed in the new session yet
		w.m.expiries.Inc()
		w.log.Warn("zookeeper session expired: re-listing everything", "generation", w.gen)
		w.setDownLocked()
		// Every watch is gone; re-list it all (the NotWatching events the
		// client sends for each watch add the same paths, coalesced).
		w.q.add(w.rootPath)
		for _, s := range w.services {
			w.q.add(w.rootPath + "/" + s.raw)
		}
		w.relistMappingsLocked()
		if w.appPath != "" {
			w.q.add(w.appPath)
			for app, a := range w.apps {
				w.q.add(w.appPath + "/" + app)
				for id := range a.instances {
					w.q.add(w.appPath + "/" + app + "/" + id)
				}
			}
		}
	case zk.StateDisconnected, zk.StateConnecting, zk.StateAuthFailed:
		w.setDownLocked()
	}
}

func (w *Watcher) setDownLocked() {
	if w.isUp {
		w.isUp = false
		w.up = make(chan struct{})
		w.m.connected.Set(0)
	}
}

// waitUp waits until the session is up; false when stopping.
func (w *Watcher) waitUp() bool {
	w.mu.Lock()
	up := w.up
	w.mu.Unlock()
	select {
	case <-up:
		return true
	case <-w.quit:
		return false
	}
}

func (w *Watcher) currentGen() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// isConnErr: the listing failed because ZooKeeper is not reachable now; the
// path must be listed again once the session is back.
func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved) ||
		errors.Is(err, zk.ErrClosing)
}

func (w *Watcher) worker() {
	defer w.wg.Done()
	for {
		p, ok := w.q.get()
		if !ok {
			return
		}
		err := w.process(p)
		w.q.done(p)
		if err == nil {
			continue
		}
		select {
		case <-w.quit:
			return
		default:
		}
		// Retry: after the session is back, and not in a tight loop.
		if !w.waitUp() {
			return
		}
		select {
		case <-time.After(w.cfg.RetryBackoff):
		case <-w.quit:
			return
		}
		w.q.add(p)
	}
}

// process lists one dirty path. A non-nil error means "list it again later".
func (w *Watcher) process(p string) error {
	if w.appPath != "" && (p == w.appPath || strings.HasPrefix(p, w.appPath+"/")) {
		return w.processApp(p)
	}
	if w.isMappingPath(p) {
		return w.processMapping(p)
	}
	if p == w.rootPath {
		return w.listRoot()
	}
	rest, ok := strings.CutPrefix(p, w.rootPath+"/")
	if !ok || rest == "" {
		return nil
	}
	svc, cat, deeper := strings.Cut(rest, "/")
	if !deeper {
		return w.listService(svc)
	}
	if slices.Contains(categories, cat) {
		return w.listCategory(svc, cat)
	}
	return nil
}

// childrenW lists p and sets a child watch; on connection trouble it returns
// an error that makes the worker retry.
func (w *Watcher) childrenW(kind, p string) ([]string, error) {
	w.m.listings.WithLabelValues(kind).Inc()
	children, _, _, err := w.conn.ChildrenW(p)
	if err != nil {
		w.m.listErrors.WithLabelValues(kind).Inc()
	}
	return children, err
}

// existsW sets an exists watch on a missing node; when it turns out to exist
// already, it asks for p to be listed again.
func (w *Watcher) existsW(p string) error {
	ok, _, _, err := w.conn.ExistsW(p)
	if err != nil {
		return err
	}
	if ok {
		w.q.add(p)
	}
	return nil
}

func (w *Watcher) listRoot() error {
	gen := w.currentGen()
	children, err := w.childrenW("root", w.rootPath)
	if errors.Is(err, zk.ErrNoNode) {
		w.mu.Lock()
		first := !w.rootMissing
		w.rootMissing = true
		w.mu.Unlock()
		if first {
			w.log.Warn("root does not exist yet: waiting for it", "root", w.rootPath)
		}
		return w.existsW(w.rootPath)
	}
	if err != nil {
		return w.handleListErr("root", w.rootPath, err)
	}
	seen := make(map[string]bool, len(children))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rootMissing {
		w.log.Info("root exists", "root", w.rootPath)
		w.rootMissing = false
	}
	for _, raw := range children {
		if w.skip[raw] {
			continue
		}
		seen[raw] = true
		if _, ok := w.byRaw[raw]; ok {
			continue
		}
		name, err := decodeNodeName(raw)
		if err != nil {
			w.skipLocked(w.rootPath+"/"+raw, "undecodable", err)
			continue
		}
		if other, dup := w.services[name]; dup {
			w.skipLocked(w.rootPath+"/"+raw, "duplicate", fmt.Errorf("decodes like %q", other.raw))
			continue
		}
		s := &service{name: name, raw: raw}
		w.services[name] = s
		w.byRaw[raw] = s
		w.unready++ // never listed
		w.q.add(w.rootPath + "/" + raw)
	}
	for raw, s := range w.byRaw {
		if seen[raw] {
			continue
		}
		if !w.readyLocked(s) {
			w.unready--
		}
		delete(w.byRaw, raw)
		delete(w.services, s.name)
		w.provCount -= len(s.providers)
		if s.hasProviders {
			w.svcCount--
			w.notes.mark(s.name)
		}
	}
	w.rootGen, w.rootListed = gen, true
	w.updateGaugesLocked()
	return nil
}

func (w *Watcher) listService(raw string) error {
	p := w.rootPath + "/" + raw
	w.mu.Lock()
	s := w.byRaw[raw]
	w.mu.Unlock()
	if s == nil {
		return nil // not a service we track (skipped, or removed)
	}
	gen := w.currentGen()
	children, err := w.childrenW("service", p)
	if errors.Is(err, zk.ErrNoNode) {
		// Gone; the root listing removes it. If it comes back before the
		// root is listed again, the exists watch brings us here again.
		return w.existsW(p)
	}
	if err != nil {
		if err := w.handleListErr("service", p, err); err != nil {
			return err
		}
		// Skipped (ACL...): it counts as listed, or Synced would wait forever.
		w.mu.Lock()
		w.listedLocked(s, func() { s.svcGen = gen })
		w.mu.Unlock()
		return nil
	}
	present := map[string]bool{}
	for _, c := range children {
		present[c] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byRaw[raw] != s {
		return nil
	}
	w.listedLocked(s, func() { s.svcGen, s.hasProvChild = gen, present[catProviders] })
	// The category listings are the only writers of category state: list
	// each one present now, and each one we hold state for (it may be gone).
	for _, cat := range categories {
		if present[cat] || s.hasCategory(cat) {
			w.q.add(p + "/" + cat)
		}
	}
	return nil
}

func (s *service) hasCategory(cat string) bool {
	switch cat {
	case catProviders:
		return s.hasProviders
	case catConsumers:
		return s.consumers > 0
	case catRouters:
		return s.routers > 0
	case catConfigurators:
		return s.configs > 0
	}
	return false
}

func (w *Watcher) listCategory(raw, cat string) error {
	p := w.rootPath + "/" + raw + "/" + cat
	w.mu.Lock()
	s := w.byRaw[raw]
	w.mu.Unlock()
	if s == nil {
		return nil
	}
	gen := w.currentGen()
	children, err := w.childrenW(cat, p)
	gone := errors.Is(err, zk.ErrNoNode) // the service node's watch tells us if it comes back
	if err != nil && !gone {
		if err := w.handleListErr(cat, p, err); err != nil {
			return err
		}
		if cat == catProviders { // skipped (ACL...): counts as listed for Synced
			w.mu.Lock()
			w.listedLocked(s, func() { s.provGen = gen })
			w.mu.Unlock()
		}
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byRaw[raw] != s {
		return nil
	}
	changed := false
	switch cat {
	case catProviders:
		changed = w.applyProvidersLocked(s, p, children, gone)
		if changed {
			w.flapLocked(s, time.Now())
		}
		if s.provGen != gen {
			changed = true // first listing in this session: a fresh snapshot
		}
		w.listedLocked(s, func() { s.provGen = gen })
	case catConsumers:
		changed = s.consumers != len(children)
		s.consumers = len(children)
	case catRouters:
		changed = s.routers != len(children)
		s.routers = len(children)
	case catConfigurators:
		var rules []overrideRule
		for _, c := range children {
			r, ok, err := parseOverride(c)
			if err != nil {
				w.skipLocked(p+"/"+c, "unparsable", err)
				continue
			}
			if ok {
				rules = append(rules, r)
			}
		}
		changed = s.configs != len(children) || !slices.Equal(rules, s.rules)
		s.configs, s.rules = len(children), rules
	}
	if changed && (s.hasProviders || cat == catProviders) {
		s.revision++
		w.notes.mark(s.name)
	} else if changed {
		s.revision++
	}
	w.updateGaugesLocked()
	return nil
}

// applyProvidersLocked replaces the provider set with a listing; it reports
// whether anything changed. w.mu held.
func (w *Watcher) applyProvidersLocked(s *service, p string, children []string, gone bool) bool {
	if gone {
		changed := s.hasProviders
		if s.hasProviders {
			w.svcCount--
		}
		w.provCount -= len(s.providers)
		s.hasProviders, s.providers = false, nil
		return changed
	}
	next := make(map[string]provEntry, len(children))
	changed := !s.hasProviders || len(children) != len(s.providers)
	for _, c := range children {
		if e, ok := s.providers[c]; ok {
			next[e.name()] = e // the kept key, not the listing's copy of the name
			continue
		}
		if _, bad := w.skipped[p+"/"+c]; bad {
			continue
		}
		if _, err := ParseProviderNode(c); err != nil {
			w.skipLocked(p+"/"+c, reasonOf(err), err)
			continue
		}
		e := provEntry{node: p + "/" + c}
		next[e.name()] = e
		changed = true
	}
	if len(next) != len(s.providers) {
		changed = true
	}
	w.provCount += len(next) - len(s.providers)
	if !s.hasProviders {
		w.svcCount++
	}
	s.hasProviders, s.providers = true, next
	return changed
}

// flapLocked counts one change of s's provider set; the FlapChanges-th
// change within FlapWindow makes s flapping: counted, logged and reported
// (OnFlap) once for the window. w.mu held.
func (w *Watcher) flapLocked(s *service, now time.Time) {
	if w.cfg.FlapChanges <= 0 {
		return
	}
	if now.Sub(s.flapSince) > w.cfg.FlapWindow {
		s.flapSince, s.flapChanges = now, 0
	}
	s.flapChanges++
	if s.flapChanges != w.cfg.FlapChanges {
		return
	}
	w.m.flapping.Inc()
	w.log.Warn("service flapping: its providers keep changing", "service", s.name, "changes", s.flapChanges, "within", w.cfg.FlapWindow)
	if w.cfg.OnFlap != nil {
		w.cfg.OnFlap(s.name, s.flapChanges, w.cfg.FlapWindow)
	}
}

func reasonOf(err error) string {
	if errors.Is(err, ErrUndecodable) {
		return "undecodable"
	}
	return "unparsable"
}

// handleListErr sorts a listing error: connection trouble is retried, other
// errors (ACL denied, bad path) are skipped, counted and logged once.
func (w *Watcher) handleListErr(kind, p string, err error) error {
	if isConnErr(err) {
		return err
	}
	reason := "error"
	if errors.Is(err, zk.ErrNoAuth) {
		reason = "acl"
	}
	w.mu.Lock()
	w.skipLocked(p, reason, err)
	w.mu.Unlock()
	return nil
}

// skipLocked records a skipped node: counted and logged once per path.
func (w *Watcher) skipLocked(p, reason string, err error) {
	if _, ok := w.skipped[p]; ok {
		return
	}
	w.m.skipped.WithLabelValues(reason).Inc()
	if len(w.skipped) < w.cfg.MaxSkipped {
		w.skipped[p] = reason
		w.log.Warn("skipping node", "path", clip(p), "reason", reason, "err", err)
		if w.cfg.OnSkip != nil {
			w.cfg.OnSkip(p, reason)
		}
	}
}

func (w *Watcher) updateGaugesLocked() {
	w.m.services.Set(float64(w.svcCount))
	w.m.providers.Set(float64(w.provCount))
}

// zkLogger sends the zk client's log lines to slog at debug level.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, a ...any) {
	z.l.Debug("zk client: " + fmt.Sprintf(format, a...))
}

package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/zkwatch"
)

// Event kinds the task manager records (besides the engines' own).
const (
	// EventTaskRejected: a running task cannot run as configured (a missing
	// cluster); the other tasks go on.
	EventTaskRejected syncer.EventKind = "task_rejected"
	// EventTaskFailed: a task's engine, watcher or client did not start; it
	// is retried at every reload.
	EventTaskFailed syncer.EventKind = "task_start_failed"
	// EventTaskStopped: a task's engine stopped (paused, deleted, changed).
	EventTaskStopped syncer.EventKind = "task_stopped"
	// EventTaskCredentials: a task's registry row names the same servers as
	// a lower-id row with other credentials; it logs in with that row's.
	EventTaskCredentials syncer.EventKind = "task_credentials_overridden"
	// EventNodeSkipped: a ZooKeeper node the watcher cannot use (a provider
	// URL that does not parse, an undecodable name, a node it may not
	// read); its service syncs without it.
	EventNodeSkipped syncer.EventKind = "zk_node_skipped"
	// EventFlapping: a ZooKeeper service whose providers keep changing (a
	// node created and deleted in a loop); reported once per flap window
	// (zkwatch.Config.FlapWindow). Its changes are still synced, coalesced.
	EventFlapping syncer.EventKind = "zk_service_flapping"
)

// retireTimeout bounds the deregistrations of one retired task.
const retireTimeout = 30 * time.Second

// taskRun is one running task.
type taskRun struct {
	spec    *taskSpec
	engine  *syncer.Engine
	src     *taskSource
	zk      *zkShare
	client  *clientShare
	own     chan struct{}
	apps    chan struct{}
	metrics *prometheus.Registry
}

// manager runs one engine per running task of the store and converges on
// the store's tasks and clusters every TaskPoll (and on Reload). One
// converge runs at a time (convergeMu); mu guards the maps, which Status
// and the HTTP handlers read.
type manager struct {
	d   managerDeps
	log *slog.Logger

	convergeMu sync.Mutex

	mu       sync.Mutex
	stopped  bool
	running  map[int64]*taskRun
	zks      map[string]*zkShare
	clients  map[string]*clientShare
	problems map[int64]string // task id → the reason last reported (rejected or failed start)
	rows     []store.SyncTask // the tasks last read
	zkNames  map[int64]string
	regNames map[int64]string
	// peers is every worker's task status last read from the store, by
	// task id (this worker's included).
	peers map[int64][]store.TaskStatus
	// stoppedRuns are the runs stopEngines stopped; closeShares lets go of
	// their watchers and clients.
	stoppedRuns []*taskRun

	kick chan struct{} // capacity 1
}

// managerDeps are the task manager's collaborators, given by the worker
// (the manager reaches into nothing else). Every part is shared with the
// rest of the worker and outlives the manager.
type managerDeps struct {
	st     *store.Store
	lessor *store.Lessor
	apps   *appModes
	events *eventSink
	// ownFan and appFan hand the lessor's and the app modes' change
	// signals to every engine.
	ownFan, appFan *fanout
	gather         *gatherers
	// log is the worker's logger; logger the caller's, for the parts' own
	// sub-loggers.
	log, logger *slog.Logger
	workerID    string
	// engine is every task's engine config (Task, Cluster, Worker,
	// Namespace, Group and Filter are set per task).
	engine         syncer.Config
	registryDialer func(ctx context.Context, addr string) (net.Conn, error)
	registryCAFile string
	taskPoll       time.Duration
	// status is the worker's status, of which each running task's view is
	// written to the store.
	status func() Status
}

func newManager(d managerDeps) *manager {
	return &manager{d: d, log: d.log.With("part", "tasks"), running: map[int64]*taskRun{}, zks: map[string]*zkShare{},
		clients: map[string]*clientShare{}, problems: map[int64]string{}, kick: make(chan struct{}, 1)}
}

// reload asks for a converge now.
func (m *manager) reload() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// statusInterval is how often a worker writes its task status to the store
// and reads everyone's (about 5 statements each time: 1 statement/s per
// worker); rows not rewritten for statusFresh are a stopped worker's.
const (
	statusInterval = 5 * time.Second
	statusFresh    = 4 * statusInterval
)

func (m *manager) run(ctx context.Context, every time.Duration) {
	var lastStatus time.Time
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		m.converge(ctx)
		if time.Since(lastStatus) >= statusInterval {
			lastStatus = time.Now()
			m.publishStatus(ctx)
		}
	}
}

// converge reads tasks and clusters and makes the running engines match:
// stops first (so a restarted task's successor never overlaps it on a
// shared client), then starts. A store error keeps everything as it is.
// It reports whether it read the store (a task that failed to start is
// retried at the next converge; it does not make this false).
func (m *manager) converge(ctx context.Context) bool {
	m.convergeMu.Lock()
	defer m.convergeMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	tasks, err := m.d.st.ListTasks(rctx, store.TaskFilter{})
	var zks []store.ZKCluster
	var regs []store.RegistryCluster
	if err == nil {
		zks, err = m.d.st.ListZKClusters(rctx)
	}
	if err == nil {
		regs, err = m.d.st.ListRegistryClusters(rctx)
	}
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("tasks: store read failed; running tasks unchanged", "err", err)
		}
		return false
	}
	specs, rejected := resolve(tasks, zks, regs)
	byID := make(map[int64]*taskSpec, len(specs))
	for _, s := range specs {
		byID[s.task.ID] = s
	}
	rows := make(map[int64]store.SyncTask, len(tasks))
	for _, t := range tasks {
		rows[t.ID] = t
	}

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return false
	}
	m.rows = tasks
	m.zkNames, m.regNames = map[int64]string{}, map[int64]string{}
	for _, c := range zks {
		m.zkNames[c.ID] = c.Name
	}
	for _, c := range regs {
		m.regNames[c.ID] = c.Name
	}
	var stops []*taskRun
	for id, r := range m.running {
		if s, ok := byID[id]; ok && s.fp == r.spec.fp {
			continue
		}
		stops = append(stops, r)
		delete(m.running, id)
	}
	m.mu.Unlock()

	for _, r := range stops {
		id := r.spec.task.ID
		row, exists := rows[id]
		why, remove := "", (func(string) bool)(nil)
		switch {
		case !exists || row.State == store.TaskDeleted:
			why = "deleted: its instances are deregistered"
			remove = uncovered(specs, r.spec.destKey())
		case row.State == store.TaskPaused:
			// NacosSync's "suspend" left instances registered (#306,
			// #173); a paused task removes what it registered, on every
			// worker (each retires the shards it owns). A service another
			// task covers is released to it instead.
			why = "paused: its instances are deregistered"
			remove = uncovered(specs, r.spec.destKey())
		case byID[id] == nil:
			why = "cannot run any more: its instances are no longer beaten"
		case movedRoot(r.spec, byID[id]):
			why = "ZooKeeper root changed: the old root's services are deregistered, the rest restarted"
			remove = m.oldRootOnly(ctx, r, byID[id], uncovered(specs, r.spec.destKey()))
		default:
			why = "changed: restarting it"
			remove = uncovered(specs, r.spec.destKey())
		}
		m.log.Info("task stopping", "task", r.spec.name(), "why", why)
		m.record(syncer.Event{Kind: EventTaskStopped, Task: r.spec.name(), Detail: why})
		m.stopRun(ctx, r, remove)
	}

	problems := map[int64]bool{}
	for _, r := range rejected {
		problems[r.task.ID] = true
		m.problem(r.task.ID, EventTaskRejected, r.reason)
	}
	for _, s := range specs {
		m.mu.Lock()
		_, ok := m.running[s.task.ID]
		m.mu.Unlock()
		if ok {
			continue
		}
		r, err := m.start(s)
		if err != nil {
			problems[s.task.ID] = true
			m.problem(s.task.ID, EventTaskFailed, fmt.Sprintf("task %d: start failed (retried at the next reload): %v", s.task.ID, err))
			continue
		}
		m.mu.Lock()
		if m.stopped {
			m.mu.Unlock()
			m.stopRun(context.Background(), r, nil)
			return false
		}
		m.running[s.task.ID] = r
		delete(m.problems, s.task.ID)
		m.mu.Unlock()
		m.log.Info("task started", "task", s.name(), "zk", s.zk.Name, "root", s.zk.Root, "registry", s.reg.Name,
			"namespace", s.namespace, "group", s.group, "scope", s.task.Scope, "service", s.task.Service,
			"include", s.task.Include, "exclude", s.task.Exclude)
		if c := s.credsFrom; c != nil {
			why := fmt.Sprintf("registry cluster %q (id %d) names the same servers as %q (id %d) with other credentials: "+
				"one registry is one login, so the task logs in as %q's user %q; give both rows the same credentials",
				s.reg.Name, s.reg.ID, c.Name, c.ID, c.Name, c.Username)
			m.log.Warn("task credentials overridden", "task", s.name(), "why", why)
			m.record(syncer.Event{Kind: EventTaskCredentials, Task: s.name(), Detail: why})
		}
	}
	// Forget the problems that are gone (fixed, paused, deleted).
	m.mu.Lock()
	for id := range m.problems {
		if !problems[id] {
			delete(m.problems, id)
		}
	}
	m.mu.Unlock()
	return true
}

// publishStatus writes this worker's view of every running task to the
// store and reads every worker's (what Status shows under each task). A
// store error keeps the last read; the write is bounded, so an unreachable
// store delays only the next converge.
func (m *manager) publishStatus(ctx context.Context) {
	st := m.d.status()
	rows := make([]store.TaskStatus, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		if t.State != store.TaskRunning {
			continue
		}
		rows = append(rows, store.TaskStatus{TaskID: t.ID, Running: t.Running, Error: t.Error, ZKSynced: t.ZKSynced,
			OwnedShards: t.Engine.OwnedShards, KeptShards: t.Engine.KeptShards, Services: t.Engine.Services,
			Desired: t.Engine.Desired, Registered: t.Engine.Registered, Pending: t.Engine.Pending})
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.d.st.PutTaskStatuses(wctx, m.d.workerID, rows); err != nil {
		if ctx.Err() == nil {
			m.log.Debug("task status: write failed", "err", err)
		}
		return
	}
	// A row is a live worker's while it is rewritten every poll.
	all, err := m.d.st.ListTaskStatuses(wctx, max(statusFresh, 2*m.d.taskPoll+statusInterval))
	if err != nil {
		return
	}
	peers := map[int64][]store.TaskStatus{}
	for _, r := range all {
		peers[r.TaskID] = append(peers[r.TaskID], r)
	}
	m.mu.Lock()
	m.peers = peers
	m.mu.Unlock()
}

// uncovered returns the services no spec on destKey covers any more: a
// stopped task deregisters those and releases the rest to their new task.
func uncovered(specs []*taskSpec, destKey string) func(string) bool {
	var same []*taskSpec
	for _, s := range specs {
		if s.destKey() == destKey {
			same = append(same, s)
		}
	}
	return func(svc string) bool {
		for _, s := range same {
			if s.covers(svc) {
				return false
			}
		}
		return true
	}
}

// problem reports a task's problem once (a Warn log and an event) until
// the reason changes.
func (m *manager) problem(id int64, kind syncer.EventKind, reason string) {
	m.mu.Lock()
	same := m.problems[id] == reason
	m.problems[id] = reason
	m.mu.Unlock()
	if same {
		return
	}
	m.log.Warn("task not running", "task", taskName(id), "kind", kind, "reason", reason)
	m.record(syncer.Event{Kind: kind, Task: taskName(id), Detail: reason})
}

func (m *manager) record(ev syncer.Event) {
	ev.At = time.Now()
	ev.Worker = m.d.workerID
	m.d.events.Record(ev)
}

// start builds and starts a task's engine on shared parts.
func (m *manager) start(s *taskSpec) (r *taskRun, err error) {
	r = &taskRun{spec: s}
	defer func() {
		if err != nil {
			m.stopRun(context.Background(), r, nil)
			r = nil
		}
	}()
	if r.zk, err = m.acquireZK(s); err != nil {
		return r, err
	}
	if r.client, err = m.acquireClient(s); err != nil {
		return r, err
	}
	r.src = r.zk.source(s.covers)
	r.own, r.apps = m.d.ownFan.sub(), m.d.appFan.sub()
	var reg prometheus.Registerer
	r.metrics, reg = m.d.gather.add(nil) // engine metrics carry their task label
	ecfg := m.d.engine
	ecfg.Task = s.name()
	ecfg.Cluster = s.marker()
	ecfg.Worker = m.d.workerID
	ecfg.Namespace, ecfg.Group = s.namespace, s.group
	ecfg.Filter = syncer.Filter{} // the task's scope and patterns act on services, in its source
	r.engine, err = syncer.New(ecfg, syncer.Deps{
		Source:    r.src,
		Registry:  r.client.reg,
		Ownership: ownershipSub{Ownership: m.d.lessor, ch: r.own},
		ShardOf:   store.ShardOf,
		Apps:      appModesSub{AppModes: m.d.apps, ch: r.apps},
		AppSource: r.src,
		Mappings:  r.src,
		Configs:   clientConfigs{c: r.client.c},
		Events:    m.d.events,
		Logger:    m.d.logger,
		Metrics:   reg,
	})
	if err != nil {
		return r, err
	}
	return r, r.engine.Start()
}

// stopRun stops a task's engine (releasing, or deregistering what remove
// selects) and lets go of its shared parts, bounded by retireTimeout (not
// by parent's end: the engine must be stopped before its parts go).
// Instances not deregistered in time expire unbeaten.
func (m *manager) stopRun(parent context.Context, r *taskRun, remove func(string) bool) {
	if r.engine != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), retireTimeout)
		var err error
		if remove != nil {
			err = r.engine.Retire(ctx, remove)
		} else {
			err = r.engine.Stop(ctx)
		}
		cancel()
		if err != nil {
			m.log.Warn("task engine stop", "task", r.spec.name(), "err", err)
		}
	}
	if r.src != nil {
		r.zk.unsubscribe(r.src)
	}
	if r.own != nil {
		m.d.ownFan.unsub(r.own)
	}
	if r.apps != nil {
		m.d.appFan.unsub(r.apps)
	}
	m.d.gather.remove(r.metrics)
	if r.client != nil {
		m.releaseClient(r.client)
	}
	if r.zk != nil {
		m.releaseZK(r.zk)
	}
}

// movedRoot reports whether a restarted task reads another tree: its
// cluster's root (chroot included) or ensemble changed.
func movedRoot(old, next *taskSpec) bool {
	oh, _, _ := strings.Cut(old.zk.ConnectString, "/")
	nh, _, _ := strings.Cut(next.zk.ConnectString, "/")
	return oh != nh || zkRoot(old.zk.ConnectString, old.zk.Root) != zkRoot(next.zk.ConnectString, next.zk.Root)
}

// oldRootOnly selects, for a task whose ZooKeeper root moved, the services
// to deregister: those no task covers any more (uncov) and those of the old
// root that the new root does not have (asked of ZooKeeper through the old
// watcher when the ensemble is the same; all of them when it is not). A
// service whose presence cannot be told is kept (released: it expires if
// nobody syncs it), as a failed probe never removes anything.
func (m *manager) oldRootOnly(ctx context.Context, r *taskRun, next *taskSpec, uncov func(string) bool) func(string) bool {
	oh, _, _ := strings.Cut(r.spec.zk.ConnectString, "/")
	nh, _, _ := strings.Cut(next.zk.ConnectString, "/")
	newRoot := "/" + zkRoot(next.zk.ConnectString, next.zk.Root)
	keep := map[string]bool{}
	if oh == nh && r.src != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, svc := range r.src.Services() {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				ok, err := r.src.ProviderExists(qctx, newRoot+"/"+svc)
				cancel()
				if ok || err != nil {
					mu.Lock()
					keep[svc] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	return func(svc string) bool {
		if strings.HasPrefix(svc, zkwatch.AppKeyPrefix) || strings.HasPrefix(svc, zkwatch.MappingKeyPrefix) {
			return uncov(svc) // applications live under /services; mappings hold no instances
		}
		return uncov(svc) || !keep[svc]
	}
}

// zkRoot folds a connect string's chroot ("h:p/chroot") into the Dubbo root.
func zkRoot(connect, root string) string {
	root = strings.Trim(root, "/")
	if i := strings.Index(connect, "/"); i >= 0 {
		if chroot := strings.Trim(connect[i:], "/"); chroot != "" {
			root = chroot + "/" + root
		}
	}
	return root
}

func (m *manager) acquireZK(s *taskSpec) (*zkShare, error) {
	key := s.zkKey()
	m.mu.Lock()
	defer m.mu.Unlock()
	if z, ok := m.zks[key]; ok {
		z.refs++
		return z, nil
	}
	zcfg := zkwatch.DefaultConfig()
	zcfg.Servers = zkServers(s.zk.ConnectString)
	zcfg.Root = zkRoot(s.zk.ConnectString, s.zk.Root)
	if s.zk.SessionTimeoutMS > 0 {
		zcfg.SessionTimeout = time.Duration(s.zk.SessionTimeoutMS) * time.Millisecond
	}
	zkName := s.zk.Name
	zcfg.OnSkip = func(path, reason string) {
		m.d.events.Record(syncer.Event{At: time.Now(), Kind: EventNodeSkipped, Worker: m.d.workerID,
			Detail: fmt.Sprintf("zk_cluster=%s reason=%s path=%s", zkName, reason, path)})
	}
	zcfg.OnFlap = func(service string, changes int, window time.Duration) {
		m.d.events.Record(syncer.Event{At: time.Now(), Kind: EventFlapping, Worker: m.d.workerID,
			Detail: fmt.Sprintf("zk_cluster=%s zk_service=%s: providers changed %d times within %s", zkName, service, changes, window)})
	}
	metrics, reg := m.d.gather.add(prometheus.Labels{"zk_cluster": s.zk.Name})
	w, err := zkwatch.New(zcfg, m.d.logger.With("zk_cluster", s.zk.Name), reg)
	if err == nil {
		err = w.Start()
	}
	if err != nil {
		m.d.gather.remove(metrics)
		return nil, fmt.Errorf("zookeeper cluster %q (id %d) %v: %w", s.zk.Name, s.zk.ID, zcfg.Servers, err)
	}
	z := newZKShare(key, s.zk.Name, w, metrics)
	z.refs = 1
	go z.route()
	m.zks[key] = z
	return z, nil
}

func (m *manager) releaseZK(z *zkShare) {
	m.mu.Lock()
	z.refs--
	last := z.refs == 0
	if last {
		delete(m.zks, z.key)
	}
	m.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := z.close(ctx); err != nil {
		m.log.Warn("zookeeper watcher stop", "zk_cluster", z.name, "err", err)
	}
	m.d.gather.remove(z.metrics)
}

// clientShare is one registry client shared by the tasks of one registry
// cluster, namespace and ZooKeeper cluster. refs is guarded by the
// manager's mutex.
type clientShare struct {
	key     string
	name    string
	c       *registryclient.Client
	reg     *clientRegistry // the engines' view of c, shared: it holds the fallback state
	metrics *prometheus.Registry
	refs    int
}

func (m *manager) acquireClient(s *taskSpec) (*clientShare, error) {
	key := s.clientKey()
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[key]; ok {
		c.refs++
		return c, nil
	}
	name := fmt.Sprintf("%s/%s", s.reg.Name, s.namespace)
	metrics, reg := m.d.gather.add(prometheus.Labels{"registry_cluster": s.reg.Name, "namespace": s.namespace,
		"zk_cluster": s.zk.Name})
	rcfg := registryclient.DefaultConfig()
	rcfg.Servers = s.reg.ServerList
	rcfg.Namespace = s.namespace
	rcfg.AppName = "ferry-sync"
	rcfg.Dialer = m.d.registryDialer
	rcfg.Username, rcfg.Password = s.reg.Username, s.reg.Password // the row's credentials: login, token refresh, 403 re-login
	rcfg.TLSCAFile = m.d.registryCAFile
	rcfg.Logger, rcfg.Registerer = m.d.logger.With("registry_cluster", name), reg
	c, err := registryclient.New(rcfg)
	if err == nil {
		if err = c.Start(); err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		m.d.gather.remove(metrics)
		return nil, fmt.Errorf("registry cluster %q (id %d) %v: %w", s.reg.Name, s.reg.ID, s.reg.ServerList, err)
	}
	cs := &clientShare{key: key, name: name, c: c, metrics: metrics, refs: 1,
		reg: newClientRegistry(c, s.reg.ServerList, m.d.logger.With("registry_cluster", name), reg)}
	m.clients[key] = cs
	return cs, nil
}

// clientShares lists the registry clients in use (tests).
func (m *manager) clientShares() []*clientShare {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*clientShare, 0, len(m.clients))
	for _, c := range m.clients {
		out = append(out, c)
	}
	return out
}

func (m *manager) releaseClient(c *clientShare) {
	m.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(m.clients, c.key)
	}
	m.mu.Unlock()
	if !last {
		return
	}
	if err := c.c.Close(); err != nil {
		m.log.Warn("registry client close", "registry_cluster", c.name, "err", err)
	}
	m.d.gather.remove(c.metrics)
}

// stopEngines stops every running engine (releasing: a graceful worker stop
// deregisters nothing) and refuses later converges.
func (m *manager) stopEngines(ctx context.Context) {
	m.convergeMu.Lock()
	defer m.convergeMu.Unlock()
	m.mu.Lock()
	m.stopped = true
	runs := make([]*taskRun, 0, len(m.running))
	for id, r := range m.running {
		runs = append(runs, r)
		delete(m.running, id)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.engine.Stop(ctx); err != nil {
				m.log.Warn("engine stop", "task", r.spec.name(), "err", err)
			}
		}()
	}
	wg.Wait()
	m.mu.Lock()
	m.stoppedRuns = runs
	m.mu.Unlock()
}

// closeShares closes the watchers and clients of the runs stopEngines
// stopped (after the lessor released its leases).
func (m *manager) closeShares() {
	m.mu.Lock()
	runs := m.stoppedRuns
	m.stoppedRuns = nil
	m.mu.Unlock()
	for _, r := range runs {
		m.stopRun(context.Background(), r, nil) // the engine is stopped already: Stop is a no-op
	}
}

// engine returns the running engine of task id, or nil.
func (m *manager) engine(id int64) *syncer.Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.running[id]; ok {
		return r.engine
	}
	return nil
}

// engines returns the running engines of task id (0: of every task).
func (m *manager) engines(id int64) []*syncer.Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*syncer.Engine
	for tid, r := range m.running {
		if id == 0 || tid == id {
			out = append(out, r.engine)
		}
	}
	return out
}

package worker

import (
	"context"
	"fmt"
	"log/slog"
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
	// EventNodeSkipped: a ZooKeeper node the watcher cannot use (a provider
	// URL that does not parse, an undecodable name, a node it may not
	// read); its service syncs without it.
	EventNodeSkipped syncer.EventKind = "zk_node_skipped"
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
	w   *Worker
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
	// stoppedRuns are the runs stopEngines stopped; closeShares lets go of
	// their watchers and clients.
	stoppedRuns []*taskRun

	kick chan struct{} // capacity 1
}

func newManager(w *Worker) *manager {
	return &manager{w: w, log: w.log.With("part", "tasks"), running: map[int64]*taskRun{}, zks: map[string]*zkShare{},
		clients: map[string]*clientShare{}, problems: map[int64]string{}, kick: make(chan struct{}, 1)}
}

// reload asks for a converge now.
func (m *manager) reload() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *manager) run(ctx context.Context, every time.Duration) {
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
	}
}

// converge reads tasks and clusters and makes the running engines match:
// stops first (so a restarted task's successor never overlaps it on a
// shared client), then starts. A store error keeps everything as it is.
func (m *manager) converge(ctx context.Context) {
	m.convergeMu.Lock()
	defer m.convergeMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	tasks, err := m.w.st.ListTasks(rctx, store.TaskFilter{})
	var zks []store.ZKCluster
	var regs []store.RegistryCluster
	if err == nil {
		zks, err = m.w.st.ListZKClusters(rctx)
	}
	if err == nil {
		regs, err = m.w.st.ListRegistryClusters(rctx)
	}
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("tasks: store read failed; running tasks unchanged", "err", err)
		}
		return
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
		return
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
			why = "paused: its instances are no longer beaten and expire on the registry"
		case byID[id] == nil:
			why = "cannot run any more: its instances are no longer beaten"
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
			return
		}
		m.running[s.task.ID] = r
		delete(m.problems, s.task.ID)
		m.mu.Unlock()
		m.log.Info("task started", "task", s.name(), "zk", s.zk.Name, "root", s.zk.Root, "registry", s.reg.Name,
			"namespace", s.namespace, "group", s.group, "scope", s.task.Scope, "service", s.task.Service,
			"include", s.task.Include, "exclude", s.task.Exclude)
	}
	// Forget the problems that are gone (fixed, paused, deleted).
	m.mu.Lock()
	for id := range m.problems {
		if !problems[id] {
			delete(m.problems, id)
		}
	}
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
	ev.Worker = m.w.cfg.WorkerID
	m.w.events.Record(ev)
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
	r.own, r.apps = m.w.ownFan.sub(), m.w.appFan.sub()
	var reg prometheus.Registerer
	r.metrics, reg = m.w.gather.add(nil) // engine metrics carry their task label
	ecfg := m.w.cfg.Engine
	ecfg.Task = s.name()
	ecfg.Cluster = s.marker()
	ecfg.Worker = m.w.cfg.WorkerID
	ecfg.Namespace, ecfg.Group = s.namespace, s.group
	ecfg.Filter = syncer.Filter{} // the task's scope and patterns act on services, in its source
	r.engine, err = syncer.New(ecfg, syncer.Deps{
		Source:    r.src,
		Registry:  r.client.reg,
		Ownership: ownershipSub{Ownership: m.w.lessor, ch: r.own},
		ShardOf:   store.ShardOf,
		Apps:      appModesSub{AppModes: m.w.apps, ch: r.apps},
		Events:    m.w.events,
		Logger:    m.w.logger,
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
		m.w.ownFan.unsub(r.own)
	}
	if r.apps != nil {
		m.w.appFan.unsub(r.apps)
	}
	m.w.gather.remove(r.metrics)
	if r.client != nil {
		m.releaseClient(r.client)
	}
	if r.zk != nil {
		m.releaseZK(r.zk)
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
		m.w.events.Record(syncer.Event{At: time.Now(), Kind: EventNodeSkipped, Worker: m.w.cfg.WorkerID,
			Detail: fmt.Sprintf("zk_cluster=%s reason=%s path=%s", zkName, reason, path)})
	}
	metrics, reg := m.w.gather.add(prometheus.Labels{"zk_cluster": s.zk.Name})
	w, err := zkwatch.New(zcfg, m.w.logger.With("zk_cluster", s.zk.Name), reg)
	if err == nil {
		err = w.Start()
	}
	if err != nil {
		m.w.gather.remove(metrics)
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
	m.w.gather.remove(z.metrics)
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
	metrics, reg := m.w.gather.add(prometheus.Labels{"registry_cluster": s.reg.Name, "namespace": s.namespace,
		"zk_cluster": s.zk.Name})
	rcfg := registryclient.DefaultConfig()
	rcfg.Servers = s.reg.ServerList
	rcfg.Namespace = s.namespace
	rcfg.AppName = "ferry-sync"
	rcfg.Logger, rcfg.Registerer = m.w.logger.With("registry_cluster", name), reg
	c, err := registryclient.New(rcfg)
	if err == nil {
		if err = c.Start(); err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		m.w.gather.remove(metrics)
		return nil, fmt.Errorf("registry cluster %q (id %d) %v: %w", s.reg.Name, s.reg.ID, s.reg.ServerList, err)
	}
	cs := &clientShare{key: key, name: name, c: c, metrics: metrics, refs: 1,
		reg: newClientRegistry(c, s.reg.ServerList, m.w.logger.With("registry_cluster", name), reg)}
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
	m.w.gather.remove(c.metrics)
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

// Package worker assembles one sync worker (`ferry sync`, `ferry demo`):
// the store (tasks and clusters, leases, app modes, events) and one sync
// engine per running task, on a ZooKeeper watcher shared per ZooKeeper
// cluster and a registry client with merged beats shared per registry
// cluster and namespace. A task manager follows the store: tasks started,
// paused, deleted or edited take effect within TaskPoll. The worker serves
// no HTTP itself: the console (package web, wired by `ferry sync`) serves
// /metrics, /api/status and /api/confirm-removals from Status, Confirm and
// Gatherer.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/diag"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
)

// Config is one worker. Flags of `ferry sync` map onto it.
type Config struct {
	// DB is the store's DSN (mysql://... or sqlite://...).
	DB string
	// ZK, ZKRoot, Registry, Namespace and Group seed the store when it has
	// no task: a ZooKeeper cluster, a registry cluster and a full-catalog
	// task from them. The tasks themselves run on their clusters' settings.
	// ZK is the ZooKeeper connect string's servers; ZKRoot Dubbo's root.
	ZK     []string
	ZKRoot string
	// ZKSessionTimeout is the seeded ZooKeeper cluster's session timeout
	// (default 30 s; ZooKeeper clamps it to its min/max session timeout).
	ZKSessionTimeout time.Duration
	// Registry is the target registry's servers ("host:port", HTTP port;
	// gRPC is port+1000).
	Registry  []string
	Namespace string
	Group     string
	// RegistryUser and RegistryPassword seed the registry cluster row's
	// credentials (ferry sync -registry-user, FERRY_REGISTRY_PASSWORD).
	RegistryUser     string
	RegistryPassword string
	// RegistryCAFile makes the registry clients use TLS trusting this PEM
	// file (ferry sync -registry-ca).
	RegistryCAFile string
	// Secrets encrypt the registry passwords in the store (nil: none may
	// be stored).
	Secrets *store.Secrets
	// HTTP is the address the console listens on for this worker (it is
	// recorded as the worker's address in the store); the worker does not
	// listen on it itself.
	HTTP string
	// WorkerID names this worker in leases, markers and events; empty means
	// hostname-pid.
	WorkerID string
	Version  string
	// Lessor tunes shard leases (WorkerID, Logger, Registerer are set here).
	Lessor store.LessorConfig
	// Engine tunes every task's sync engine (Task, Cluster, Worker,
	// Namespace, Group and Filter are set per task).
	Engine syncer.Config
	// AppPoll is how often app modes are re-read from the store.
	AppPoll time.Duration
	// RegistryGiveUp: a worker whose registry client has had no connection
	// for this long gives its shards up to the other live workers
	// (store.Lessor.SetDraining), so that its instances are beaten by one
	// that reaches the registry; it takes its share again once connected.
	// 0 disables. The default (4 s) plus the hand-over (about one renew
	// period and a reconcile) stays inside the registry's 15 s unhealthy
	// mark even for an instance last beaten a beat period (5 s) before
	// the cut.
	RegistryGiveUp time.Duration
	// RegistryDialer, when set, opens the registry clients' connections
	// (fault-injection tests); nil dials directly.
	RegistryDialer func(ctx context.Context, addr string) (net.Conn, error)
	// TaskPoll is how often tasks and clusters are re-read from the store;
	// a task started, paused, deleted or edited (or one of its clusters
	// edited) takes effect within it.
	TaskPoll time.Duration
	// SettingsPoll is how often the store's settings generation is read;
	// when it moved (a cluster, task or app changed), app modes and tasks
	// are reloaded at once and the generation applied is reported in the
	// worker's heartbeat (Status.AppliedGeneration).
	SettingsPoll time.Duration
	// CommandPoll is how often cluster-wide commands (confirm removals,
	// resync a service) are polled; each is applied and acked once.
	CommandPoll time.Duration
	// CountsInterval is how often the per-app and per-service counts of
	// the services this worker owns, and the current minute's metric
	// history, are written to the store for the console.
	CountsInterval time.Duration
	// Retention prunes old events, dead workers (with their task status
	// and count rows), metric history and expired commands on a cron
	// schedule (store.Retention; Logger is set here). Every worker runs it:
	// the deletes are idempotent, so N workers prune N times, harmlessly.
	// An empty Schedule disables it.
	Retention store.RetentionConfig
}

// DefaultConfig is a worker on the embedded SQLite store against a local
// ZooKeeper and registry.
func DefaultConfig() Config {
	return Config{
		DB:               "sqlite://./data/ferry.db",
		ZK:               []string{"127.0.0.1:2181"},
		ZKRoot:           "dubbo",
		ZKSessionTimeout: 30 * time.Second,
		Registry:         []string{"127.0.0.1:8848"},
		Namespace:        "public",
		Group:            "DEFAULT_GROUP",
		HTTP:             "127.0.0.1:8083",
		Lessor:           store.DefaultLessorConfig(""),
		Engine:           syncer.DefaultConfig(),
		AppPoll:          2 * time.Second,
		TaskPoll:         2 * time.Second,
		SettingsPoll:     time.Second,
		CommandPoll:      2 * time.Second,
		CountsInterval:   5 * time.Second,
		Retention:        store.DefaultRetentionConfig(),
		RegistryGiveUp:   4 * time.Second,
		Version:          "dev",
	}
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("worker: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.DB == "":
		return fmt.Errorf("%w: DB is empty", ErrConfig)
	case len(c.ZK) == 0:
		return fmt.Errorf("%w: ZK has no server", ErrConfig)
	case len(c.Registry) == 0:
		return fmt.Errorf("%w: Registry has no server", ErrConfig)
	case c.ZKSessionTimeout < 0:
		return fmt.Errorf("%w: ZKSessionTimeout %v must be ≥ 0", ErrConfig, c.ZKSessionTimeout)
	case c.AppPoll <= 0:
		return fmt.Errorf("%w: AppPoll %v must be > 0", ErrConfig, c.AppPoll)
	case c.TaskPoll <= 0:
		return fmt.Errorf("%w: TaskPoll %v must be > 0", ErrConfig, c.TaskPoll)
	case c.SettingsPoll <= 0:
		return fmt.Errorf("%w: SettingsPoll %v must be > 0", ErrConfig, c.SettingsPoll)
	case c.CommandPoll <= 0:
		return fmt.Errorf("%w: CommandPoll %v must be > 0", ErrConfig, c.CommandPoll)
	case c.CountsInterval <= 0:
		return fmt.Errorf("%w: CountsInterval %v must be > 0", ErrConfig, c.CountsInterval)
	case c.RegistryGiveUp < 0:
		return fmt.Errorf("%w: RegistryGiveUp %v must be ≥ 0 (0: never)", ErrConfig, c.RegistryGiveUp)
	}
	if c.Retention.Schedule != "" {
		if err := c.Retention.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	return nil
}

// Worker is one running sync worker.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	logger *slog.Logger // the caller's, for the parts' own sub-loggers
	prom   *prometheus.Registry
	gather *gatherers // engines', watchers' and clients' metrics

	st     *store.Store
	lessor *store.Lessor
	apps   *appModes
	events *eventSink
	ownFan *fanout // the lessor's Changed, to every engine
	appFan *fanout // the app modes' Changed, to every engine
	mgr    *manager
	ret    *store.Retention // nil when disabled
	// applied is the settings generation applied (settings.go).
	applied atomic.Int64
	// startedAt is when the worker started, by the database's clock (zero
	// if it could not be read): commands issued before do not confirm
	// removals here (commands.go).
	startedAt time.Time

	cancel    context.CancelFunc // the worker's loops
	mgrCancel context.CancelFunc // the task reloads (ended first at Stop)
	wg        sync.WaitGroup
	once      sync.Once
}

// Start opens the store (retrying, with one clear error per attempt, until
// ctx ends), records the clusters and a full-catalog task from cfg when the
// store has no task, starts an engine for every running task of the store
// and then follows the store (every TaskPoll). It returns once the worker
// runs; Stop ends it. A task that cannot start (a missing cluster, a
// watcher or client that does not start) is reported as an event and does
// not stop the worker.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.WorkerID == "" {
		host, _ := os.Hostname()
		cfg.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	w := &Worker{cfg: cfg, log: logger.With("subsystem", "worker", "worker", cfg.WorkerID), logger: logger,
		prom: prometheus.NewRegistry(), gather: newGatherers(), ownFan: newFanout(), appFan: newFanout()}
	if err := diag.RegisterRuntime(w.prom); err != nil {
		return nil, err
	}

	st, err := openStore(ctx, cfg.DB, logger, w.log, store.WithSecrets(cfg.Secrets))
	if err != nil {
		return nil, err
	}
	w.st = st
	if _, err := ensureTask(ctx, st, cfg); err != nil {
		_ = st.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Stop(context.Background())
		}
	}()

	lcfg := cfg.Lessor
	lcfg.WorkerID, lcfg.Version, lcfg.Logger, lcfg.Registerer = cfg.WorkerID, cfg.Version, logger, w.prom
	lcfg.Generation = w.applied.Load
	if lcfg.Address == "" {
		lcfg.Address = cfg.HTTP
	}
	if w.lessor, err = store.NewLessor(st, lcfg); err != nil {
		return nil, err
	}

	if now, err := st.Now(ctx); err == nil {
		w.startedAt = now
	}
	// The generation is read before the settings it stands for.
	gen, genErr := st.SettingsGeneration(ctx)
	w.apps = newAppModes(st, w.log)
	appsOK := w.apps.refresh(ctx)
	w.events = newEventSink(st, w.log, 4096)
	w.prom.MustRegister(w.events.collectors()...)
	w.mgr = newManager(managerDeps{st: st, lessor: w.lessor, apps: w.apps, events: w.events, ownFan: w.ownFan,
		appFan: w.appFan, gather: w.gather, log: w.log, logger: logger, workerID: cfg.WorkerID, engine: cfg.Engine,
		registryDialer: cfg.RegistryDialer, registryCAFile: cfg.RegistryCAFile, taskPoll: cfg.TaskPoll, status: w.Status})

	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(4)
	go func() { defer w.wg.Done(); w.apps.run(runCtx, cfg.AppPoll) }()
	go func() { defer w.wg.Done(); w.events.run(runCtx) }()
	go func() { defer w.wg.Done(); w.ownFan.run(runCtx, w.lessor.Changed()) }()
	go func() { defer w.wg.Done(); w.appFan.run(runCtx, w.apps.Changed()) }()

	if cfg.Retention.Schedule != "" {
		rcfg := cfg.Retention
		rcfg.Logger = w.log
		if w.ret, err = store.NewRetention(st, rcfg); err != nil {
			return nil, err
		}
		w.ret.Start()
	}
	if err := w.lessor.Start(); err != nil {
		return nil, err
	}
	// The first converge runs here, so the tasks run when Start returns.
	if tasksOK := w.mgr.converge(ctx); tasksOK && appsOK && genErr == nil {
		w.applied.Store(gen)
	}
	mgrCtx, mgrCancel := context.WithCancel(runCtx)
	w.mgrCancel = mgrCancel
	w.wg.Add(4)
	go func() { defer w.wg.Done(); w.mgr.run(mgrCtx, cfg.TaskPoll) }()
	go func() { defer w.wg.Done(); w.writeCounts(mgrCtx, cfg.CountsInterval) }()
	go func() { defer w.wg.Done(); w.followSettings(mgrCtx, cfg.SettingsPoll) }()
	go func() { defer w.wg.Done(); w.followCommands(mgrCtx, cfg.CommandPoll) }()
	if cfg.RegistryGiveUp > 0 {
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.watchRegistry(mgrCtx, cfg.RegistryGiveUp) }()
	}
	ok = true
	w.log.Info("sync worker started", "tasks", len(w.Status().Tasks), "address", cfg.HTTP)
	return w, nil
}

// registryUnreachable reports whether some registry client in use has had
// no connection for longer than giveUp.
func (w *Worker) registryUnreachable(giveUp time.Duration) bool {
	for _, c := range w.mgr.clientShares() {
		if since := c.c.DisconnectedSince(); !since.IsZero() && time.Since(since) > giveUp {
			return true
		}
	}
	return false
}

// watchRegistry drains the lessor while a registry is unreachable for
// longer than giveUp (the lessor hands the shards over only when another
// live worker exists), and ends draining once every client is connected.
func (w *Worker) watchRegistry(ctx context.Context, giveUp time.Duration) {
	t := time.NewTicker(min(giveUp/4, 500*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cut := w.registryUnreachable(giveUp)
		if cut != w.lessor.Draining() {
			if cut {
				w.log.Warn("registry unreachable: giving the shards up to a worker that reaches it", "after", giveUp)
			} else {
				w.log.Info("registry reachable again: taking a share of the shards again")
			}
			w.lessor.SetDraining(cut)
		}
	}
}

// Reload makes the worker re-read its tasks and clusters now instead of at
// the next TaskPoll tick.
func (w *Worker) Reload() { w.mgr.reload() }

// openStore retries until the database answers or ctx ends.
func openStore(ctx context.Context, dsn string, logger, log *slog.Logger, opts ...store.Option) (*store.Store, error) {
	backoff := 500 * time.Millisecond
	for {
		st, err := store.Open(ctx, dsn, logger, opts...)
		if err == nil {
			return st, nil
		}
		if errors.Is(err, store.ErrSecret) || errors.Is(err, store.ErrNoSecretKey) {
			return nil, err // a key problem does not heal by retrying
		}
		log.Error("store not reachable; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("worker: store: %w", err)
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// ensureTask returns the first running (else paused) task, creating the
// clusters and a full-catalog task from cfg when the store has none (deleted
// tasks do not count). Workers starting
// together race to create them: the loser's conflict makes it re-read.
func ensureTask(ctx context.Context, st *store.Store, cfg Config) (*store.SyncTask, error) {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var t *store.SyncTask
		// A conflict is another worker creating the same clusters: re-read.
		// Still no task half a second later: the clusters are left over
		// from deleted tasks, reuse them.
		if t, err = ensureTaskOnce(ctx, st, cfg, attempt >= 2); err == nil || !errors.Is(err, store.ErrConflict) {
			return t, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil, err
}

func ensureTaskOnce(ctx context.Context, st *store.Store, cfg Config, reuse bool) (*store.SyncTask, error) {
	tasks, err := st.ListTasks(ctx, store.TaskFilter{States: []store.TaskState{store.TaskRunning, store.TaskPaused}})
	if err != nil {
		return nil, err
	}
	for i := range tasks {
		if tasks[i].State == store.TaskRunning {
			return &tasks[i], nil
		}
	}
	if len(tasks) > 0 {
		return &tasks[0], nil // only paused tasks: the operator paused them
	}
	zc := &store.ZKCluster{Name: "zk-" + strings.Join(cfg.ZK, ","), ConnectString: strings.Join(cfg.ZK, ","),
		Root: "/" + strings.Trim(cfg.ZKRoot, "/"), SessionTimeoutMS: cfg.ZKSessionTimeout.Milliseconds()}
	rc := &store.RegistryCluster{Name: "registry-" + strings.Join(cfg.Registry, ","), Kind: store.RegistryBundled,
		ServerList: cfg.Registry, Namespace: cfg.Namespace, GroupName: cfg.Group,
		Username: cfg.RegistryUser, Password: cfg.RegistryPassword}
	if reuse {
		// The clusters exist with no live task using them (only deleted
		// tasks did): use them again.
		if zks, err := st.ListZKClusters(ctx); err == nil {
			for i := range zks {
				if zks[i].Name == zc.Name {
					zc = &zks[i]
				}
			}
		}
		if rcs, err := st.ListRegistryClusters(ctx); err == nil {
			for i := range rcs {
				if rcs[i].Name == rc.Name {
					rc = &rcs[i]
				}
			}
		}
	}
	if zc.ID == 0 {
		if err := st.CreateZKCluster(ctx, zc); err != nil {
			return nil, fmt.Errorf("worker: record ZooKeeper cluster: %w", err)
		}
	}
	if rc.ID == 0 {
		if err := st.CreateRegistryCluster(ctx, rc); err != nil {
			return nil, fmt.Errorf("worker: record registry cluster: %w", err)
		}
	}
	t := &store.SyncTask{SourceClusterID: zc.ID, DestClusterID: rc.ID, Scope: store.ScopeFull,
		State: store.TaskRunning, CreatedBy: "ferry sync", UpdatedBy: "ferry sync"}
	if err := st.CreateTask(ctx, t); err != nil {
		return nil, fmt.Errorf("worker: record task: %w", err)
	}
	return t, nil
}

// Confirm releases the removals held by the mass-removal guard of the task
// with id (0: of every running task) and returns how many engines it told.
func (w *Worker) Confirm(id int64) int {
	engines := w.mgr.engines(id)
	for _, e := range engines {
		e.Confirm()
	}
	return len(engines)
}

// Store is the worker's store (the console shares its pool). It is
// closed by Stop: stop the console first.
func (w *Worker) Store() *store.Store { return w.st }

// Gatherer is the worker's metrics: its own registry and those of the
// engines, watchers and clients that come and go.
func (w *Worker) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{w.prom, w.gather} }

// Status is what /api/status answers.
type Status struct {
	Worker string
	// ZKSynced: at least one task runs and every running task's ZooKeeper
	// view is synced.
	ZKSynced bool
	// Registry is the registry server the first running task talks to.
	Registry string
	// Engine sums the running tasks' engines (OwnedShards is the worker's,
	// shared by all tasks).
	Engine    syncer.Status
	OwnedKeys int
	// StoreReachable is false while the store does not answer the lessor;
	// StoreDownSince says since when. KeptShards are the shards kept alive
	// meanwhile with light beats only (no registration, no deregistration).
	StoreReachable bool
	StoreDownSince *time.Time `json:",omitempty"`
	KeptShards     int
	// Draining: a registry has been unreachable longer than RegistryGiveUp,
	// so the worker gives its shards up (when another live worker exists).
	Draining bool
	// AppliedGeneration is the settings generation this worker has applied
	// (reported in its heartbeat row).
	AppliedGeneration int64
	// Tasks lists every task of the store but deleted ones, by id.
	Tasks []TaskStatus
}

// TaskStatus is one task as this worker sees it.
type TaskStatus struct {
	ID              int64
	State           store.TaskState
	Scope           store.TaskScope
	Service         string   `json:",omitempty"`
	Include         []string `json:",omitempty"`
	Exclude         []string `json:",omitempty"`
	ZKCluster       string   // name (or "id N" when it does not exist)
	RegistryCluster string
	Namespace       string `json:",omitempty"`
	Group           string `json:",omitempty"`
	// Running: this worker runs the task's engine now.
	Running bool
	// Error says why a running task does not run.
	Error    string `json:",omitempty"`
	ZKSynced bool
	Registry string `json:",omitempty"`
	// RegistryMode is how synced instances are kept: "batch-beat" (Ferry's
	// merged beats) or "nacos-fallback" (connection-bound batches, a real
	// Nacos target).
	RegistryMode string        `json:",omitempty"`
	Engine       syncer.Status // zero unless Running
	// Workers is every live worker's view of the task as written to the
	// store (this one's included, as of its last write): running or why
	// not, synced, its shards and counts. Empty until the first write.
	Workers []store.TaskStatus `json:",omitempty"`
}

// Status reports the worker's state now.
func (w *Worker) Status() Status {
	st := Status{Worker: w.cfg.WorkerID, OwnedKeys: len(w.lessor.Owned()), Engine: syncer.Status{Skipped: map[syncer.SkipReason]int{}}}
	st.KeptShards = len(w.lessor.Kept())
	st.Draining = w.lessor.Draining()
	st.AppliedGeneration = w.applied.Load()
	st.StoreReachable = true
	if since := w.lessor.StoreDownSince(); !since.IsZero() {
		st.StoreReachable, st.StoreDownSince = false, &since
	}
	m := w.mgr
	m.mu.Lock()
	rows := m.rows
	runs := make(map[int64]*taskRun, len(m.running))
	for id, r := range m.running {
		runs[id] = r
	}
	problems := make(map[int64]string, len(m.problems))
	for id, p := range m.problems {
		problems[id] = p
	}
	zkNames, regNames := m.zkNames, m.regNames
	peers := m.peers
	m.mu.Unlock()
	name := func(names map[int64]string, id int64) string {
		if n, ok := names[id]; ok {
			return n
		}
		return fmt.Sprintf("id %d", id)
	}
	synced := len(runs) > 0
	for _, t := range rows {
		if t.State == store.TaskDeleted {
			continue
		}
		ts := TaskStatus{ID: t.ID, State: t.State, Scope: t.Scope, Service: t.Service, Include: t.Include, Exclude: t.Exclude,
			ZKCluster: name(zkNames, t.SourceClusterID), RegistryCluster: name(regNames, t.DestClusterID), Error: problems[t.ID],
			Workers: peers[t.ID]}
		if r, ok := runs[t.ID]; ok {
			ts.Running = true
			ts.Namespace, ts.Group = r.spec.namespace, r.spec.group
			ts.ZKSynced = r.src.Synced()
			ts.Registry = r.client.c.CurrentServer()
			ts.RegistryMode = r.client.reg.Mode()
			ts.Engine = r.engine.Status()
			synced = synced && ts.ZKSynced
			if st.Registry == "" {
				st.Registry = ts.Registry
			}
			e := &st.Engine
			e.OwnedShards = max(e.OwnedShards, ts.Engine.OwnedShards)
			e.KeptShards = max(e.KeptShards, ts.Engine.KeptShards)
			e.Services += ts.Engine.Services
			e.Pending += ts.Engine.Pending
			e.InFlight += ts.Engine.InFlight
			e.Desired += ts.Engine.Desired
			e.Registered += ts.Engine.Registered
			e.AppDesired += ts.Engine.AppDesired
			e.AppRegistered += ts.Engine.AppRegistered
			for k, v := range ts.Engine.Skipped {
				e.Skipped[k] += v
			}
			for _, s := range ts.Engine.MassHeld {
				e.MassHeld = append(e.MassHeld, taskName(t.ID)+":"+s)
			}
		}
		st.Tasks = append(st.Tasks, ts)
	}
	st.ZKSynced = synced
	return st
}

// Stop ends the worker in order: the task reloads and every engine (stops
// beating, deregisters nothing), the leases (released so a successor takes
// over at once), the registry clients and watchers, the event writer, HTTP,
// the retention job, the store. Idempotent; bounded by ctx.
func (w *Worker) Stop(ctx context.Context) {
	w.once.Do(func() {
		if w.mgrCancel != nil {
			w.mgrCancel() // the reload loop ends; a converge under way finishes first
		}
		if w.mgr != nil {
			w.mgr.stopEngines(ctx)
		}
		if w.lessor != nil {
			if err := w.lessor.Stop(ctx); err != nil {
				w.log.Warn("lessor stop", "err", err)
			}
		}
		if w.st != nil {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = w.st.DeleteTaskStatuses(dctx, w.cfg.WorkerID) // best effort: stale rows age out
			_ = w.st.DeleteCounts(dctx, w.cfg.WorkerID)       // likewise; the new owners write theirs
			cancel()
		}
		if w.mgr != nil {
			w.mgr.closeShares()
		}
		if w.cancel != nil {
			w.cancel() // the event writer flushes what the engines recorded
		}
		w.wg.Wait()
		if w.ret != nil {
			if err := w.ret.Stop(ctx); err != nil {
				w.log.Warn("retention stop", "err", err)
			}
		}
		if w.st != nil {
			_ = w.st.Close()
		}
	})
}

// Package worker assembles one sync worker (`ferry sync`, `ferry demo`):
// the store (leases, app modes, events), a ZooKeeper watcher, a registry
// client with merged beats, and the sync engine, plus the worker's HTTP
// endpoint (/metrics, /api/status).
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/zkwatch"
)

// Config is one worker. Flags of `ferry sync` map onto it.
type Config struct {
	// DB is the store's DSN (mysql://... or sqlite://...).
	DB string
	// ZK is the ZooKeeper connect string's servers; ZKRoot Dubbo's root.
	ZK     []string
	ZKRoot string
	// Registry is the target registry's servers ("host:port", HTTP port;
	// gRPC is port+1000).
	Registry  []string
	Namespace string
	Group     string
	// HTTP is the worker's listen address for /metrics and /api/status;
	// empty disables it.
	HTTP string
	// WorkerID names this worker in leases, markers and events; empty means
	// hostname-pid.
	WorkerID string
	Version  string
	// Lessor tunes shard leases (WorkerID, Logger, Registerer are set here).
	Lessor store.LessorConfig
	// Engine tunes the sync engine (Task, Cluster, Worker, Namespace, Group
	// and Filter are set here).
	Engine syncer.Config
	// AppPoll is how often app modes are re-read from the store.
	AppPoll time.Duration
}

// DefaultConfig is a worker on the embedded SQLite store against a local
// ZooKeeper and registry.
func DefaultConfig() Config {
	return Config{
		DB:        "sqlite://./data/ferry.db",
		ZK:        []string{"127.0.0.1:2181"},
		ZKRoot:    "dubbo",
		Registry:  []string{"127.0.0.1:8848"},
		Namespace: "public",
		Group:     "DEFAULT_GROUP",
		HTTP:      "127.0.0.1:8083",
		Lessor:    store.DefaultLessorConfig(""),
		Engine:    syncer.DefaultConfig(),
		AppPoll:   2 * time.Second,
		Version:   "dev",
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
	case c.AppPoll <= 0:
		return fmt.Errorf("%w: AppPoll %v must be > 0", ErrConfig, c.AppPoll)
	}
	return nil
}

// Worker is one running sync worker.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	prom *prometheus.Registry

	st      *store.Store
	lessor  *store.Lessor
	watcher *zkwatch.Watcher
	client  *registryclient.Client
	engine  *syncer.Engine
	events  *eventSink
	httpSrv *http.Server
	httpLis net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start opens the store (retrying, with one clear error per attempt, until
// ctx ends), records the task when the store has none, and starts every
// part. It returns once the worker runs; Stop ends it.
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
	w := &Worker{cfg: cfg, log: logger.With("subsystem", "worker", "worker", cfg.WorkerID), prom: prometheus.NewRegistry()}
	w.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := openStore(ctx, cfg.DB, logger, w.log)
	if err != nil {
		return nil, err
	}
	w.st = st
	task, err := ensureTask(ctx, st, cfg)
	if err != nil {
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
	if lcfg.Address == "" {
		lcfg.Address = cfg.HTTP
	}
	if w.lessor, err = store.NewLessor(st, lcfg); err != nil {
		return nil, err
	}

	zcfg := zkwatch.DefaultConfig()
	zcfg.Servers = cfg.ZK
	zcfg.Root = strings.Trim(cfg.ZKRoot, "/")
	if w.watcher, err = zkwatch.New(zcfg, logger, w.prom); err != nil {
		return nil, err
	}

	rcfg := registryclient.DefaultConfig()
	rcfg.Servers = cfg.Registry
	rcfg.Namespace = cfg.Namespace
	rcfg.AppName = "ferry-sync"
	rcfg.Logger, rcfg.Registerer = logger, w.prom
	if w.client, err = registryclient.New(rcfg); err != nil {
		return nil, err
	}

	apps := newAppModes(st, w.log)
	apps.refresh(ctx)
	w.events = newEventSink(st, w.log, 4096)

	ecfg := cfg.Engine
	ecfg.Task = fmt.Sprintf("task-%d", task.ID)
	ecfg.Cluster = "zk-" + fmt.Sprint(task.SourceClusterID)
	ecfg.Worker = cfg.WorkerID
	ecfg.Namespace, ecfg.Group = cfg.Namespace, cfg.Group
	ecfg.Filter = syncer.Filter{Include: task.Include, Exclude: task.Exclude}
	if task.Scope == store.ScopeService && task.Service != "" {
		ecfg.Filter.Include = []string{task.Service}
	}
	w.engine, err = syncer.New(ecfg, syncer.Deps{
		Source:    syncer.ZKSource{W: w.watcher},
		Registry:  newClientRegistry(w.client, cfg.Registry, w.log, w.prom),
		Ownership: w.lessor,
		ShardOf:   store.ShardOf,
		Apps:      apps,
		Events:    w.events,
		Logger:    logger,
		Metrics:   w.prom,
	})
	if err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(2)
	go func() { defer w.wg.Done(); apps.run(runCtx, cfg.AppPoll) }()
	go func() { defer w.wg.Done(); w.events.run(runCtx) }()

	if err := w.client.Start(); err != nil {
		return nil, fmt.Errorf("worker: registry %v: %w", cfg.Registry, err)
	}
	if err := w.watcher.Start(); err != nil {
		return nil, fmt.Errorf("worker: zookeeper %v: %w", cfg.ZK, err)
	}
	if err := w.lessor.Start(); err != nil {
		return nil, err
	}
	if err := w.engine.Start(); err != nil {
		return nil, err
	}
	if cfg.HTTP != "" {
		if err := w.serveHTTP(); err != nil {
			return nil, err
		}
	}
	ok = true
	w.log.Info("sync worker started", "task", ecfg.Task, "zk", cfg.ZK, "registry", cfg.Registry, "http", w.HTTPAddr())
	return w, nil
}

// openStore retries until the database answers or ctx ends.
func openStore(ctx context.Context, dsn string, logger, log *slog.Logger) (*store.Store, error) {
	backoff := 500 * time.Millisecond
	for {
		st, err := store.Open(ctx, dsn, logger)
		if err == nil {
			return st, nil
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

// ensureTask returns the first running task, creating the clusters and a
// full-catalog task from cfg when the store has none. Workers starting
// together race to create them: the loser's conflict makes it re-read.
func ensureTask(ctx context.Context, st *store.Store, cfg Config) (*store.SyncTask, error) {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var t *store.SyncTask
		if t, err = ensureTaskOnce(ctx, st, cfg); err == nil || !errors.Is(err, store.ErrConflict) {
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

func ensureTaskOnce(ctx context.Context, st *store.Store, cfg Config) (*store.SyncTask, error) {
	tasks, err := st.ListTasks(ctx, store.TaskFilter{})
	if err != nil {
		return nil, err
	}
	for i := range tasks {
		if tasks[i].State == store.TaskRunning {
			return &tasks[i], nil
		}
	}
	zc := &store.ZKCluster{Name: "zk-" + strings.Join(cfg.ZK, ","), ConnectString: strings.Join(cfg.ZK, ","),
		Root: "/" + strings.Trim(cfg.ZKRoot, "/"), SessionTimeoutMS: 30000}
	if err := st.CreateZKCluster(ctx, zc); err != nil {
		return nil, fmt.Errorf("worker: record ZooKeeper cluster: %w", err)
	}
	rc := &store.RegistryCluster{Name: "registry-" + strings.Join(cfg.Registry, ","), Kind: store.RegistryBundled,
		ServerList: cfg.Registry, Namespace: cfg.Namespace, GroupName: cfg.Group}
	if err := st.CreateRegistryCluster(ctx, rc); err != nil {
		return nil, fmt.Errorf("worker: record registry cluster: %w", err)
	}
	t := &store.SyncTask{SourceClusterID: zc.ID, DestClusterID: rc.ID, Scope: store.ScopeFull,
		State: store.TaskRunning, CreatedBy: "ferry sync", UpdatedBy: "ferry sync"}
	if err := st.CreateTask(ctx, t); err != nil {
		return nil, fmt.Errorf("worker: record task: %w", err)
	}
	return t, nil
}

func (w *Worker) serveHTTP() error {
	lis, err := net.Listen("tcp", w.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("worker: HTTP listen %s: %w", w.cfg.HTTP, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.prom, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/status", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(w.Status())
	})
	// An operator confirms removals held by the mass-removal guard.
	mux.HandleFunc("POST /api/confirm-removals", func(rw http.ResponseWriter, _ *http.Request) {
		w.engine.Confirm()
		w.log.Warn("held mass removal confirmed over HTTP")
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(w.Status())
	})
	w.httpLis = lis
	w.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("http serve", "err", err)
		}
	}()
	return nil
}

// HTTPAddr is the worker's HTTP address ("" when disabled).
func (w *Worker) HTTPAddr() string {
	if w.httpLis == nil {
		return ""
	}
	return w.httpLis.Addr().String()
}

// Status is what /api/status answers.
type Status struct {
	Worker    string
	ZKSynced  bool
	Registry  string
	Engine    syncer.Status
	OwnedKeys int
}

// Status reports the worker's state now.
func (w *Worker) Status() Status {
	return Status{Worker: w.cfg.WorkerID, ZKSynced: w.watcher.Synced() && w.watcher.Connected(),
		Registry: w.client.CurrentServer(), Engine: w.engine.Status(), OwnedKeys: len(w.lessor.Owned())}
}

// Stop ends the worker in order: the engine (stops beating, deregisters
// nothing), the leases (released so a successor takes over at once), the
// registry client, the watcher, the event writer, HTTP, the store.
// Idempotent; bounded by ctx.
func (w *Worker) Stop(ctx context.Context) {
	w.once.Do(func() {
		if w.engine != nil {
			if err := w.engine.Stop(ctx); err != nil {
				w.log.Warn("engine stop", "err", err)
			}
		}
		if w.lessor != nil {
			if err := w.lessor.Stop(ctx); err != nil {
				w.log.Warn("lessor stop", "err", err)
			}
		}
		if w.client != nil {
			_ = w.client.Close()
		}
		if w.watcher != nil {
			_ = w.watcher.Stop(ctx)
		}
		if w.httpSrv != nil {
			_ = w.httpSrv.Shutdown(ctx)
		}
		if w.cancel != nil {
			w.cancel()
		}
		w.wg.Wait()
		if w.st != nil {
			_ = w.st.Close()
		}
	})
}

package registryserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/distro"
	"github.com/ferrysync/ferry/registry-server/health"
	"github.com/ferrysync/ferry/registry-server/httpapi"
	"github.com/ferrysync/ferry/registry-server/lifecycle"
	"github.com/ferrysync/ferry/registry-server/loader"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// Open builds a whole registry node: New's naming core and gRPC API, plus
// the Raft store of persistent data (opened now, so its state is in the
// naming view before the ports open), the TCP prober of persistent
// instances (leader-only) and the HTTP open API under /nacos. Start it
// with Start; Stop closes the prober, then the Raft store, then the ports.
func Open(cfg Config, logger *slog.Logger, prom *prometheus.Registry) (*Server, error) {
	s, err := New(cfg, logger, prom) // validates cfg
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	prom = s.prom // New made one when nil
	rcfg := cfg.Raft
	if rcfg.Dir == "" {
		rcfg.Dir = filepath.Join(cfg.DataDir, "raft")
	}
	if cfg.Clustered() {
		rcfg = clusterRaftConfig(cfg, rcfg)
	}
	store, err := raftstore.Open(rcfg, logger, s.reg, prom)
	if err != nil {
		return nil, fmt.Errorf("registryserver: raft store: %w", err)
	}
	// The prober runs on the leader only. On one node its verdicts go to
	// the naming view; in a cluster through the Raft log, so that every
	// member serves them.
	var reporter health.Reporter = s.reg
	if cfg.Clustered() {
		reporter = raftReporter{store: store, log: s.log}
	}
	prober, err := health.New(cfg.Health, health.Deps{Targets: store, Reporter: reporter, Active: store.Leading},
		logger.With("subsystem", "health"), prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	var dist *distro.Runner
	var owners naming.Responsibility = naming.ThisNode{}
	s.loaded.Store(!cfg.Clustered()) // a member loads its peers' ephemeral data first
	if cfg.Clustered() {
		if dist, err = s.newDistro(cfg, logger); err != nil {
			_ = store.Stop()
			return nil, err
		}
		owners = dist.Mapper()
	}
	udp, err := s.openUDPPush(cfg, logger, prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	api, err := httpapi.New(httpapi.Deps{
		Naming:          s.reg,
		Beater:          beater{s.reg},
		Store:           store,
		Gatherer:        prom,
		Ready:           func() bool { return s.GRPCAddr() != nil && s.loaded.Load() },
		Responsibility:  owners,
		PushSubscribers: udp,
	}, cfg.HTTP, logger.With("subsystem", "http"), prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	cs, err := configsvc.New(cfg.ConfigService, store, logger.With("subsystem", "config"), prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	authz, err := openAuth(cfg, store, logger, prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	s.grpc.SetAuthorizer(s.limits.GRPC(authz)) // request rate, then auth
	cs.ServeGRPC(s.grpc)
	s.SetPersistentStore(persistentStore{store})
	s.auth = authz // before joinCluster, which mounts its routes behind it
	s.Mount("/", authz.Guard(linearizable(store, api.Handler()), cfg.HTTP.MaxBodyBytes))
	s.Mount("/nacos/v1/cs/", authz.Guard(linearizable(store, cs.Handler()), cfg.HTTP.MaxBodyBytes))
	s.Mount("/nacos/v2/cs/", authz.Guard(linearizable(store, cs.Handler()), cfg.HTTP.MaxBodyBytes))
	s.Mount("/nacos/v1/auth/", authz.Handler(cfg.HTTP.MaxBodyBytes))
	// The Raft store runs from Open (its state is in the naming view before
	// anything starts) and stops last; the config service hooks to its
	// changes before the ports open; the prober stops before the store.
	s.life.Add(lifecycle.Storage, "raft store", lifecycle.Funcs{StopFunc: func(ctx context.Context) error {
		return lifecycle.Bounded(ctx, store.Stop)
	}})
	s.life.Add(lifecycle.Service, "config service", cs)
	s.life.Add(lifecycle.Service, "auth", authComponent{authz})
	s.life.Add(lifecycle.Service, "udp push", udp) // stopped before the config service and the store: no push outlives them
	if cfg.Clustered() {
		if err := s.joinCluster(cfg, store, dist, logger, prom); err != nil {
			_ = store.Stop()
			return nil, err
		}
	} else {
		s.Mount("/nacos/v1/core/cluster/", authz.Guard(membership.Standalone(cfg.Self()).Handler(), cfg.HTTP.MaxBodyBytes))
		if s.balancer, err = loader.New(cfg.Balance, s.grpc, nil, nil, logger, prom); err != nil {
			_ = store.Stop()
			return nil, err
		}
	}
	s.Mount("/nacos/v2/core/loader/", authz.Guard(s.balancer.Handler(), cfg.HTTP.MaxBodyBytes)) // operator routes: loopback or admin
	s.life.Add(lifecycle.Service, "health prober", lifecycle.Funcs{
		StartFunc: func() error { prober.Start(); return nil },
		StopFunc: func(ctx context.Context) error {
			return lifecycle.Bounded(ctx, func() error { prober.Stop(); return nil })
		},
	})
	s.raft = store
	s.configs = cs
	return s, nil
}

// ConfigService is the node's Nacos config service (nil for a node built
// with New).
func (s *Server) ConfigService() *configsvc.Service { return s.configs }

// Raft is the node's Raft store (nil for a node built with New).
func (s *Server) Raft() *raftstore.Store { return s.raft }

// beater adapts the naming core's Beat to the HTTP API's yes/no answer.
type beater struct{ reg *naming.Registry }

func (b beater) Beat(key naming.ServiceKey, inst naming.Instance, registerIfUnknown bool) (bool, error) {
	res, err := b.reg.Beat(key, inst, registerIfUnknown)
	if err != nil {
		return false, err
	}
	return res.Status != naming.BeatUnknown, nil
}

func (b beater) RegisterBeatKept(key naming.ServiceKey, inst naming.Instance) error {
	return b.reg.RegisterBeatKept(key, inst)
}

// persistentStore serves PersistentInstanceRequest from the Raft store.
type persistentStore struct{ st *raftstore.Store }

func (p persistentStore) RegisterPersistent(_ context.Context, key naming.ServiceKey, inst naming.Instance) error {
	return p.st.PutInstance(key, inst)
}

func (p persistentStore) DeregisterPersistent(_ context.Context, key naming.ServiceKey, a naming.Addr) error {
	return p.st.RemoveInstance(key, a)
}

// linearizable makes a read with consistency=linearizable see every write
// acknowledged before it, on any member (raftstore.Linearize: the
// leader's read index, applied here first). It covers the Raft group's
// data — persistent instances, service metadata, overrides, configs;
// ephemeral instances are Distro's, available by design rather than
// linearizable. consistency=local (the default) reads this member's copy
// as it is. Without a leader the read answers 503 rather than stale data.
func linearizable(store *raftstore.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "consistency=") {
			switch c := r.URL.Query().Get("consistency"); c {
			case "", "local":
			case "linearizable":
				if err := store.Linearize(r.Context()); err != nil {
					http.Error(w, "caused: linearizable read: "+err.Error(), http.StatusServiceUnavailable)
					return
				}
			default:
				http.Error(w, fmt.Sprintf("caused: Parameter 'consistency' %q: want linearizable or local", c), http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

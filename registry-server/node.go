package registryserver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/health"
	"github.com/ferrysync/ferry/registry-server/httpapi"
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
	store, err := raftstore.Open(rcfg, logger, s.reg, prom)
	if err != nil {
		return nil, fmt.Errorf("registryserver: raft store: %w", err)
	}
	prober, err := health.New(cfg.Health, health.Deps{Targets: store, Reporter: s.reg, Active: store.Ready},
		logger.With("subsystem", "health"), prom)
	if err != nil {
		_ = store.Stop()
		return nil, err
	}
	api, err := httpapi.New(httpapi.Deps{
		Naming:   s.reg,
		Beater:   beater{s.reg},
		Store:    store,
		Gatherer: prom,
		Ready:    func() bool { return s.GRPCAddr() != nil },
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
	cs.ServeGRPC(s.grpc)
	_ = cs.Start() // hooked to the store's changes before any client can listen
	s.SetPersistentStore(persistentStore{store})
	s.Mount("/", api.Handler())
	s.Mount("/nacos/v1/cs/", cs.Handler())
	s.Mount("/nacos/v2/cs/", cs.Handler())
	// Components stop in reverse: the prober first, then the Raft store.
	s.AddComponent(stopOnly(func() error { return store.Stop() }))
	s.AddComponent(proberComponent{prober})
	s.AddComponent(configComponent{cs})
	s.raft = store
	s.configs = cs
	return s, nil
}

// ConfigService is the node's Nacos config service (nil for a node built
// with New).
func (s *Server) ConfigService() *configsvc.Service { return s.configs }

// configComponent stops the config service (started in Open) before the
// Raft store.
type configComponent struct{ s *configsvc.Service }

func (c configComponent) Start() error                   { return nil }
func (c configComponent) Stop(ctx context.Context) error { return c.s.Stop(ctx) }

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

// stopOnly is a component already running when added (the Raft store
// starts in Open).
type stopOnly func() error

func (f stopOnly) Start() error                   { return nil }
func (f stopOnly) Stop(ctx context.Context) error { return f() }

type proberComponent struct{ p *health.Prober }

func (c proberComponent) Start() error                   { c.p.Start(); return nil }
func (c proberComponent) Stop(ctx context.Context) error { c.p.Stop(); return nil }

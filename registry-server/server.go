// Package registryserver is Ferry's Nacos-compatible registry server on one
// node: it wires the naming core, the gRPC API (Port+1000), an HTTP server
// on Port whose mux the HTTP open API mounts into, /metrics, and the expiry
// ticker. The Raft store, the health prober and the HTTP API plug in
// through the hooks below (Mount, AddComponent, SetPersistentStore).
package registryserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/grpcapi"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Component is a part started after the listeners and stopped before them,
// in reverse order (the Raft store, the health prober).
type Component interface {
	Start() error
	Stop(ctx context.Context) error
}

// Server is one registry node.
type Server struct {
	cfg  Config
	log  *slog.Logger
	prom *prometheus.Registry
	reg  *naming.Registry
	grpc *grpcapi.Server
	mux  *http.ServeMux
	http *http.Server

	mu         sync.Mutex // guards components and state
	components []Component
	started    bool
	stopped    bool

	raft    *raftstore.Store   // set by Open; nil for a bare New
	configs *configsvc.Service // set by Open; nil for a bare New

	httpLis net.Listener
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New validates cfg and builds the node. prom receives every metric and is
// served on /metrics; nil makes a private one.
func New(cfg Config, logger *slog.Logger, prom *prometheus.Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if prom == nil {
		prom = prometheus.NewRegistry()
	}
	reg := naming.NewRegistry(cfg.Naming, time.Now)
	gcfg := cfg.GRPC
	gcfg.Addr = net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.EffectiveGRPCPort()))
	gcfg.MainPort = cfg.Port
	g, err := grpcapi.New(gcfg, reg, logger, prom)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: logger.With("subsystem", "registry"), prom: prom, reg: reg, grpc: g,
		mux: http.NewServeMux(), stop: make(chan struct{})}
	prom.MustRegister(newStatsCollector(reg))
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
	return s, nil
}

// Naming is the node's registry core (for the HTTP API, Raft FSM, prober).
func (s *Server) Naming() *naming.Registry { return s.reg }

// GRPC is the node's gRPC API (Handle for other modules' request types).
func (s *Server) GRPC() *grpcapi.Server { return s.grpc }

// Metrics is the Prometheus registry served on /metrics.
func (s *Server) Metrics() *prometheus.Registry { return s.prom }

// Config returns the node's configuration.
func (s *Server) Config() Config { return s.cfg }

// Mount adds an HTTP handler on the main port (net/http ServeMux patterns,
// e.g. "/nacos/"). Call before Start.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddComponent adds a part started (in order) after the listeners and
// stopped (in reverse) before them. Call before Start.
func (s *Server) AddComponent(c Component) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.components = append(s.components, c)
}

// SetPersistentStore gives PersistentInstanceRequest its Raft store.
func (s *Server) SetPersistentStore(ps grpcapi.PersistentStore) { s.grpc.SetPersistentStore(ps) }

// Start listens on both ports, starts the components and the expiry
// ticker, and returns.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("registryserver: already started")
	}
	s.started = true
	if _, pattern := s.mux.Handler(&http.Request{Method: http.MethodGet, URL: mustURL("/metrics"), Host: "x"}); pattern == "" {
		s.mux.Handle("/metrics", promhttp.HandlerFor(s.prom, promhttp.HandlerOpts{Registry: s.prom}))
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("registryserver: HTTP listen: %w", err)
	}
	gport := s.cfg.EffectiveGRPCPort()
	if s.cfg.Port == 0 && s.cfg.GRPCPort == 0 {
		// Both free: keep the Nacos offset when the OS allows it.
		gport = lis.Addr().(*net.TCPAddr).Port + 1000
		if gport > 65535 {
			gport = 0
		}
	}
	glis, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, strconv.Itoa(gport)))
	if err != nil && s.cfg.Port == 0 && s.cfg.GRPCPort == 0 {
		glis, err = net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, "0"))
	}
	if err != nil {
		lis.Close()
		return fmt.Errorf("registryserver: gRPC listen: %w", err)
	}
	s.httpLis = lis
	if err := s.grpc.Serve(glis); err != nil {
		lis.Close()
		glis.Close()
		return err
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.ExpireInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-t.C:
				s.reg.Expire(now)
			}
		}
	}()
	for i, c := range s.components {
		if err := c.Start(); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = s.components[j].Stop(context.Background())
			}
			s.shutdownLocked()
			return fmt.Errorf("registryserver: component %d: %w", i, err)
		}
	}
	s.log.Info("registry started", "http", lis.Addr().String(), "grpc", glis.Addr().String())
	return nil
}

// HTTPAddr is the main port's address (after Start).
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

// GRPCAddr is the gRPC port's address (after Start).
func (s *Server) GRPCAddr() net.Addr { return s.grpc.Addr() }

// Stop stops the components, then the listeners and connections, within
// ShutdownTimeout. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		s.stopped = true
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	for i := len(s.components) - 1; i >= 0; i-- {
		if err := s.components[i].Stop(ctx); err != nil {
			s.log.Warn("component stop", "index", i, "err", err)
		}
	}
	s.shutdownLocked()
}

func (s *Server) shutdownLocked() {
	if s.stopped {
		return
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	close(s.stop)
	_ = s.http.Shutdown(ctx)
	s.grpc.Stop(ctx)
	s.wg.Wait()
}

// Package registryserver is Ferry's Nacos-compatible registry node: it
// wires the naming core, the gRPC API (Port+1000), an HTTP server on Port
// whose mux the HTTP open API mounts into, /metrics, and the expiry ticker
// (New); Open adds the Raft store, the health prober, the config service
// and the HTTP open API. Every part runs under one lifecycle contract
// (package lifecycle): storage, then services, then listeners at Start,
// the reverse at Shutdown.
package registryserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/internal/diag"
	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/grpcapi"
	"github.com/ferrysync/ferry/registry-server/lifecycle"
	"github.com/ferrysync/ferry/registry-server/limit"
	"github.com/ferrysync/ferry/registry-server/loader"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
	"github.com/ferrysync/ferry/registry-server/udppush"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Component is a part of the node under lifecycle's contract (Start does
// not block, Stop(ctx) is idempotent and bounded by ctx).
type Component = lifecycle.Component

// Server is one registry node. Its parts run in a lifecycle.Group: the Raft
// store (storage), then the services (expiry, prober, config service,
// added components), then the listeners (HTTP, gRPC); they stop in the
// reverse order.
type Server struct {
	cfg  Config
	log  *slog.Logger
	prom *prometheus.Registry
	reg  *naming.Registry
	grpc *grpcapi.Server
	mux  *http.ServeMux
	http *http.Server

	life lifecycle.Group

	mu      sync.Mutex // guards started
	started bool
	auth    *auth.Authority // set by Open; nil for a bare New (auth.go)
	limits  *limit.Limiter  // per-IP limits of both ports (limit_config.go)
	tls     *tls.Config     // both ports, when configured (tls_config.go)

	raft      *raftstore.Store       // set by Open; nil for a bare New
	configs   *configsvc.Service     // set by Open; nil for a bare New
	udp       *udppush.Service       // set by Open; nil for a bare New
	members   *membership.Membership // set by Open in a cluster
	changer   *memberChanger         // set by Open in a cluster: run-time membership changes
	balancer  *loader.Balancer       // set by Open: loader routes, balancing, hand-over on stop
	loaded    atomic.Bool            // the ephemeral data is loaded (a cluster member loads it from a peer at start)
	leaveOnce sync.Once
	expiry    *expiry

	httpLis  net.Listener  // set by the HTTP listener's Start
	httpDone chan struct{} // closed when its Serve goroutine returns
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
	lim, err := limit.New(cfg.Limits, prom)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.loadTLS()
	if err != nil {
		return nil, err
	}
	g.SetAuthorizer(lim.GRPC(nil)) // Open puts auth behind it
	s := &Server{cfg: cfg, log: logger.With("subsystem", "registry"), prom: prom, reg: reg, grpc: g,
		mux: http.NewServeMux(), httpDone: make(chan struct{}),
		limits: lim, tls: tlsCfg}
	prom.MustRegister(newStatsCollector(reg))
	if err := diag.RegisterRuntime(prom); err != nil {
		return nil, err
	}
	diag.Mount(s.mux, nil) // /debug/pprof/: loopback callers only
	s.http = &http.Server{Handler: lim.HTTP(s.mux), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
	s.expiry = newExpiry(reg, cfg.ExpireInterval)
	s.life.Add(lifecycle.Service, "expiry", s.expiry)
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

// AddComponent adds a service part: started (in order) after the storage
// and before the listeners, stopped (in reverse) after the listeners and
// before the storage. Call before Start.
func (s *Server) AddComponent(c Component) {
	s.life.Add(lifecycle.Service, fmt.Sprintf("component %T", c), c)
}

// SetPersistentStore gives PersistentInstanceRequest its Raft store.
func (s *Server) SetPersistentStore(ps grpcapi.PersistentStore) { s.grpc.SetPersistentStore(ps) }

// Start starts the node's parts in order (storage, services, listeners:
// the ports open last) and returns; on a failure what started is stopped
// again.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("registryserver: already started")
	}
	s.started = true
	s.mu.Unlock()
	if _, pattern := s.mux.Handler(&http.Request{Method: http.MethodGet, URL: mustURL("/metrics"), Host: "x"}); pattern == "" {
		s.mux.Handle("/metrics", promhttp.HandlerFor(s.prom, promhttp.HandlerOpts{Registry: s.prom}))
	}
	s.life.Add(lifecycle.Listener, "http", httpListener{s})
	s.life.Add(lifecycle.Listener, "grpc", grpcListener{s})
	if s.balancer != nil {
		// Last added, first stopped: the clients are handed to the other
		// members while both ports still serve.
		s.life.Add(lifecycle.Listener, "connection balancer", s.balancer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.life.Start(ctx); err != nil {
		return fmt.Errorf("registryserver: %w", err)
	}
	s.log.Info("registry started", "http", s.HTTPAddr().String(), "grpc", s.GRPCAddr().String())
	return nil
}

// httpListener is the main port.
type httpListener struct{ s *Server }

func (l httpListener) Start() error {
	s := l.s
	lis, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("HTTP listen: %w", err)
	}
	lis = s.tlsListener(s.limits.Listener(lis, "http"))
	s.mu.Lock()
	s.httpLis = lis
	s.mu.Unlock()
	go func() { // ends with Shutdown (Stop)
		defer close(s.httpDone)
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http serve", "err", err)
		}
	}()
	return nil
}

func (l httpListener) Stop(ctx context.Context) error {
	err := l.s.http.Shutdown(ctx)
	if err != nil {
		_ = l.s.http.Close()
	}
	select {
	case <-l.s.httpDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// grpcListener is the SDK gRPC port (port+1000).
type grpcListener struct{ s *Server }

func (l grpcListener) Start() error {
	s := l.s
	gport := s.cfg.EffectiveGRPCPort()
	if s.cfg.Port == 0 && s.cfg.GRPCPort == 0 {
		// Both free: keep the Nacos offset when the OS allows it.
		gport = s.HTTPAddr().(*net.TCPAddr).Port + 1000
		if gport > 65535 {
			gport = 0
		}
	}
	glis, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, strconv.Itoa(gport)))
	if err != nil && s.cfg.Port == 0 && s.cfg.GRPCPort == 0 {
		glis, err = net.Listen("tcp", net.JoinHostPort(s.cfg.Bind, "0"))
	}
	if err != nil {
		return fmt.Errorf("gRPC listen: %w", err)
	}
	return s.grpc.Serve(s.tlsListener(s.limits.Listener(glis, "grpc")))
}

func (l grpcListener) Stop(ctx context.Context) error {
	l.s.grpc.Stop(ctx)
	return nil
}

// expiry applies time to beat-kept instances every interval (while gate,
// when set, allows: a cluster member that sees no majority removes
// nothing).
type expiry struct {
	reg      *naming.Registry
	gate     func() bool // set before Start
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	once     *sync.Once
}

func newExpiry(reg *naming.Registry, interval time.Duration) *expiry {
	return &expiry{reg: reg, interval: interval, stop: make(chan struct{}), done: make(chan struct{}), once: &sync.Once{}}
}

func (e *expiry) Start() error {
	go func() {
		defer close(e.done)
		t := time.NewTicker(e.interval)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case now := <-t.C:
				if e.gate == nil || e.gate() {
					e.reg.Expire(now)
				}
			}
		}
	}()
	return nil
}

func (e *expiry) Stop(ctx context.Context) error {
	e.once.Do(func() { close(e.stop) })
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HTTPAddr is the main port's address (after Start).
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

// GRPCAddr is the gRPC port's address (after Start).
func (s *Server) GRPCAddr() net.Addr { return s.grpc.Addr() }

// Shutdown stops the node's parts in reverse order — listeners (HTTP, then
// gRPC connections), then services, then storage — each bounded by ctx.
// Idempotent: later calls return the first one's result.
//
// A cluster member first tells the others it is leaving (they stop
// counting it at once); the Raft store, stopped last, hands leadership
// over when it leads.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if s.members != nil && started {
		s.leaveOnce.Do(func() { s.members.Leave(ctx) })
	}
	return s.life.Stop(ctx)
}

// Stop is Shutdown bounded by ShutdownTimeout, logging what failed.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.log.Warn("stop", "err", err)
	}
}

// Package web is Ferry's console: a JSON API under /api/v1 (and, later,
// server-rendered pages) served by every `ferry sync` worker on its -http
// port, behind a login. Everything it shows and changes goes through one
// service layer (Service) over the store, the only truth, so any replica
// behind a plain load balancer answers the same; workers follow the store.
//
// web depends on the store and on the small Worker interface the worker
// process offers (its own status, the held-removal release, its metrics);
// the worker never imports web. `ferry sync` wires the two.
//
// Routes: /metrics is open; /api/status, /api/confirm-removals and every
// /api/v1 route need a session cookie (POST /api/v1/login) or
// `Authorization: Bearer TOKEN` (`ferry user token`). Cross-origin writes
// are refused (http.CrossOriginProtection).
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/store"
)

// Worker is what the console needs from the worker process it runs in.
// Every method may be called from any goroutine, concurrently.
type Worker interface {
	// Status is this worker's own view (GET /api/status), JSON-encodable.
	Status() any
	// Confirm releases the mass removals held on this worker for task id
	// (0: every task) and returns how many engines it told.
	Confirm(taskID int64) int
	// Gatherer is the worker's metrics (GET /metrics).
	Gatherer() prometheus.Gatherer
}

// Config is the console's listener and service settings.
type Config struct {
	// Addr is the listen address (host:port; port 0 picks one).
	Addr string
	// Listener, when set, is served instead of listening on Addr (the
	// caller listened first, e.g. to record the real address).
	Listener net.Listener
	// TLSCertFile and TLSKeyFile, both set, serve HTTPS (session cookies
	// are then Secure).
	TLSCertFile, TLSKeyFile string
	Service                 ServiceConfig
	Logger                  *slog.Logger
	// Mount, when set, adds handlers of the caller's to the console's mux
	// (outside auth: e.g. /debug/pprof/ for loopback callers).
	Mount func(*http.ServeMux)
}

// DefaultConfig listens where `ferry sync -http` does by default.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8083", Service: DefaultServiceConfig()}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Addr == "" && c.Listener == nil:
		return errors.New("web: Addr is empty")
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return errors.New("web: TLSCertFile and TLSKeyFile go together")
	}
	return c.Service.Validate()
}

// Server serves the console on one listener.
type Server struct {
	cfg    Config
	svc    *Service
	worker Worker // may be nil: no /api/status, /metrics
	log    *slog.Logger
	tls    *tls.Config
	h      http.Handler
	tpl    *template.Template // pages.go

	mu   sync.Mutex // guards lis, srv
	lis  net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
	once sync.Once
}

// New validates cfg and builds the handler; Start listens.
func New(st *store.Store, w Worker, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("subsystem", "web")
	svc, err := NewService(st, cfg.Service, log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, svc: svc, worker: w, log: log}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: TLS key pair %s, %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.h, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// Service is the service layer the handlers use.
func (s *Server) Service() *Service { return s.svc }

// Handler is the console's handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.h }

// Start listens and serves in the background; it does not block.
func (s *Server) Start() error {
	lis := s.cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("web: listen %s: %w", s.cfg.Addr, err)
		}
	}
	if s.tls != nil {
		lis = tls.NewListener(lis, s.tls)
	}
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	s.lis, s.srv = lis, srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("console serve", "err", err)
		}
	}()
	s.log.Info("console listening", "url", s.URL())
	return nil
}

// Addr is the listen address ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// URL is the console's base URL ("" before Start).
func (s *Server) URL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	if s.tls != nil {
		return "https://" + a
	}
	return "http://" + a
}

// Stop shuts the listener down, waiting for requests in flight until ctx
// ends. Idempotent.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			if err = srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}
		s.wg.Wait()
	})
	return err
}

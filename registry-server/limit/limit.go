// Package limit keeps one client from hurting the rest: a per-IP
// connection limit on both ports (a listener wrapper) and a per-IP
// request rate (token bucket, internal/ratelimit) on HTTP requests and
// gRPC unary requests. Over the rate, HTTP answers 503 and gRPC the
// request's own response type with errorCode 503 (OVER_THRESHOLD), which
// is what Nacos' TPS control answers (NacosHttpTpsFilter,
// TpsControlRequestFilter); a connection over the limit is closed at once.
package limit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/ratelimit"
	"github.com/ferrysync/ferry/wire"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("limit: invalid config")

// Config sets the limits; 0 turns one off.
type Config struct {
	// MaxConnsPerIP bounds the open connections of one client IP on each
	// port (HTTP and gRPC counted apart).
	MaxConnsPerIP int
	// RequestRate and RequestBurst are the token bucket of one client IP:
	// requests per second across HTTP and gRPC unary calls.
	RequestRate  float64
	RequestBurst int
	// MaxTrackedIPs bounds the rate limiter's memory; when that many IPs
	// are tracked and none is idle, requests from new IPs are refused.
	MaxTrackedIPs int
}

// DefaultConfig has both limits off (as Nacos' TPS control by default):
// the load tools (ferry bench, ferry zkload) drive one node from one IP
// far beyond any client. README "registry limits" gives production values
// (e.g. 1000 connections, 5000 requests/s, burst 10000 per IP: far above
// one SDK client or one sync worker, which sends one merged beat per node
// per second).
func DefaultConfig() Config {
	return Config{RequestBurst: 10000, MaxTrackedIPs: 100000}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxConnsPerIP < 0:
		return fmt.Errorf("%w: MaxConnsPerIP %d must be >= 0", ErrConfig, c.MaxConnsPerIP)
	case c.RequestRate < 0:
		return fmt.Errorf("%w: RequestRate %v must be >= 0", ErrConfig, c.RequestRate)
	case c.RequestRate > 0 && c.RequestBurst < 1:
		return fmt.Errorf("%w: RequestBurst %d must be >= 1", ErrConfig, c.RequestBurst)
	case c.MaxTrackedIPs < 1:
		return fmt.Errorf("%w: MaxTrackedIPs %d must be >= 1", ErrConfig, c.MaxTrackedIPs)
	}
	return nil
}

// Limiter holds the limits' state. Safe for concurrent use.
type Limiter struct {
	cfg  Config
	rate *ratelimit.Keyed
	now  func() time.Time
	met  *metrics
}

// New validates cfg; reg may be nil.
func New(cfg Config, reg prometheus.Registerer) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, rate: ratelimit.NewKeyed(cfg.RequestRate, cfg.RequestBurst, cfg.MaxTrackedIPs), now: time.Now, met: newMetrics(reg)}, nil
}

// Allow takes one request token of ip; port labels the refusal metric.
func (l *Limiter) Allow(ip, port string) bool {
	if l.rate.Allow(ip, l.now()) {
		return true
	}
	l.met.rejected.WithLabelValues(port, "rate").Inc()
	return false
}

// TooManyMessage is the refusal's text (after Nacos' "Tps Flow restricted").
const TooManyMessage = "Tps Flow restricted: too many requests from this client"

// HTTP wraps h with the request rate: 503 over it.
func (l *Limiter) HTTP(h http.Handler) http.Handler {
	if l.cfg.RequestRate <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if !l.Allow(ip, "http") {
			w.Header().Set("Cache-Control", "no-cache,no-store")
			w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(TooManyMessage + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// GRPCAuthorizer is grpcapi's request check (the auth package's).
type GRPCAuthorizer interface {
	AuthorizeGRPC(req wire.Request, headers map[string]string, remoteIP string) (code int, msg string)
}

// GRPC puts the request rate in front of next (nil: no other check): a
// request over it is refused with errorCode 503 before auth runs.
func (l *Limiter) GRPC(next GRPCAuthorizer) GRPCAuthorizer {
	return grpcCheck{l: l, next: next}
}

type grpcCheck struct {
	l    *Limiter
	next GRPCAuthorizer
}

func (g grpcCheck) AuthorizeGRPC(req wire.Request, headers map[string]string, ip string) (int, string) {
	// Health checks are exempt: a client whose check failed would drop its
	// connection (and its registrations) instead of slowing down.
	_, health := req.(*wire.HealthCheckRequest)
	if g.l.cfg.RequestRate > 0 && !health && !g.l.Allow(ip, "grpc") {
		return wire.CodeOverThreshold, TooManyMessage
	}
	if g.next == nil {
		return 0, ""
	}
	return g.next.AuthorizeGRPC(req, headers, ip)
}

// Listener wraps lis with the per-IP connection limit; port labels the
// metrics ("http", "grpc").
func (l *Limiter) Listener(lis net.Listener, port string) net.Listener {
	if l.cfg.MaxConnsPerIP <= 0 {
		return lis
	}
	return &listener{Listener: lis, l: l, port: port, open: map[string]int{}}
}

type listener struct {
	net.Listener
	l    *Limiter
	port string

	mu   sync.Mutex // guards open
	open map[string]int
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, _, err := net.SplitHostPort(c.RemoteAddr().String())
		if err != nil {
			ip = c.RemoteAddr().String()
		}
		ln.mu.Lock()
		if ln.open[ip] >= ln.l.cfg.MaxConnsPerIP {
			ln.mu.Unlock()
			ln.l.met.rejected.WithLabelValues(ln.port, "connections").Inc()
			_ = c.Close()
			continue
		}
		ln.open[ip]++
		ln.mu.Unlock()
		return &conn{Conn: c, release: func() { ln.release(ip) }}, nil
	}
}

func (ln *listener) release(ip string) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.open[ip]--; ln.open[ip] <= 0 {
		delete(ln.open, ip)
	}
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

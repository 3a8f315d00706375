// Package registryclient is a Go client of the Nacos 2.x gRPC naming
// protocol with Ferry's extension, merged batch beats.
//
// A Client holds one main connection (ServerCheck, bi-stream,
// ConnectionSetup, health checks every HealthCheckInterval when idle) to one
// server of its list, and moves to the next server with exponential backoff
// and jitter when that connection fails, when a request sees a
// connection-level ErrorResponse (300, 301, 502) or a transport error, or
// when the server sends ConnectResetRequest. Requests retry on the next
// server until they succeed or their context ends. After every
// (re)connection the redo log re-sends every registration and subscription.
//
// Beat-kept instances (Keep, Release, Forget) are beaten by merged
// FerryBatchBeatRequests: every BeatInterval one request per registry node
// carries the beats due on that node. Redirect answers are cached per
// beat-kept client (the instance's ip:port, the unit a registry cluster
// assigns to one member), so one service's instances may be beaten on
// several nodes; nodes other than the main server get connections of their
// own.
//
// Every pushed service (and, with CacheDir, every queried one) is cached
// and written as JSON to CacheDir; the cache
// can serve reads before the first server answers (LoadCacheAtStart) and a
// failover/ directory can override server answers (Failover).
//
// Goroutines: connectLoop (owns the main connection), beatLoop, dispatch
// (calls subscription listeners, one at a time), an address-server refresher
// when configured, and one receive goroutine per open connection. All are
// tracked and end in Close.
package registryclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrysync/ferry/wire"
)

// Client is a Nacos 2.x naming client. Use New, then Start; Close once.
// All methods are safe for concurrent use.
type Client struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	codec *wire.Codec
	http  *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	state  atomic.Int32 // 0 new, 1 started, 2 closed

	mu       sync.Mutex // guards the fields below
	servers  []Server
	next     int
	cur      *session
	curCh    chan struct{} // closed and replaced whenever cur changes
	lastErr  error         // last connection failure
	curLabel string        // server label set in currentServer gauge
	// downSince is when the main connection was last lost (or the client
	// started); zero while connected.
	downSince time.Time

	kick   chan *session   // a request saw this session fail
	resets chan resetOrder // a server's ConnectResetRequest

	batchBeat atomic.Int32 // capability: 0 unknown, 1 supported, 2 unsupported
	// batchDereg is capUnsupported once a server offering batch beats
	// answered FerryBatchDeregisterRequest 302 (an older Ferry); reset on
	// every new main connection.
	batchDereg atomic.Int32

	naming   namingState
	beats    beatState
	nodes    nodePool
	failover failoverSwitch
	creds    *loginState // nil without Config.Username (auth.go)
}

const (
	capUnknown int32 = iota
	capSupported
	capUnsupported
)

// New validates cfg and builds a client; nothing runs until Start.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	if cfg.tls, err = loadTLS(&cfg); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		cfg:    cfg,
		log:    log.With("component", "registryclient"),
		m:      m,
		codec:  wire.NewCodec(cfg.MaxMessageBytes),
		http:   httpClient(&cfg),
		curCh:  make(chan struct{}),
		kick:   make(chan *session, 1),
		resets: make(chan resetOrder, 1),
	}
	for _, s := range cfg.Servers {
		srv, _ := ParseServer(s) // validated
		c.servers = append(c.servers, srv)
	}
	// Start at a random server of the list: a fleet of clients given the
	// same list spreads over the cluster instead of all landing on its
	// first member (the registry's balancer evens out the rest).
	if len(c.servers) > 1 {
		c.next = rand.IntN(len(c.servers))
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.naming.init()
	c.beats.init(cfg)
	c.nodes.init()
	c.failover.on.Store(cfg.Failover)
	c.creds = newLoginState(cfg)
	return c, nil
}

// Start loads the snapshot when asked and starts connecting; it does not
// block.
func (c *Client) Start() error {
	if !c.state.CompareAndSwap(0, 1) {
		return ErrClosed
	}
	c.mu.Lock()
	c.downSince = time.Now()
	c.mu.Unlock()
	if c.cfg.LoadCacheAtStart {
		if err := c.loadCache(); err != nil {
			c.log.Warn("cache load failed", "dir", c.cfg.CacheDir, "err", err)
		}
	}
	if c.cfg.AddressServerURL != "" {
		c.goTracked(c.addressLoop)
	}
	c.goTracked(c.connectLoop)
	c.goTracked(c.beatLoop)
	c.goTracked(c.dispatchLoop)
	return nil
}

// Close stops everything and closes every connection. The server drops
// this client's connection-bound instances; beat-kept ones expire unless
// another client keeps them. Idempotent; bounded by 10 s.
func (c *Client) Close() error {
	if c.state.Swap(2) == 2 {
		return nil
	}
	c.cancel()
	c.nodes.closeAll()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		c.http.CloseIdleConnections()
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("registryclient: close: goroutines still running after 10s")
	}
}

func (c *Client) goTracked(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// CurrentServer is the main "host:port" of the connected server, or "".
func (c *Client) CurrentServer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.srv.Addr()
}

// DisconnectedSince is when the client last lost its main connection (or
// started without one); the zero time while connected.
func (c *Client) DisconnectedSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downSince
}

// ConnectionID is the server-assigned id of the main connection, or "".
func (c *Client) ConnectionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.connID
}

// BatchBeatSupported reports whether the server offers merged beats; known
// is false until a server answered.
func (c *Client) BatchBeatSupported() (supported, known bool) {
	switch c.batchBeat.Load() {
	case capSupported:
		return true, true
	case capUnsupported:
		return false, true
	}
	return false, false
}

// Servers returns the current server list.
func (c *Client) Servers() []Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Server(nil), c.servers...)
}

// ---- main connection ----

func (c *Client) connectLoop() {
	bo := newBackoff(c.cfg.ReconnectMin, c.cfg.ReconnectMax, nil)
	first := true
	target := ""
	for c.ctx.Err() == nil {
		srv, ok := c.pickServer(target)
		target = ""
		if !ok {
			c.setErr(fmt.Errorf("%w: server list is empty", ErrNoServer))
			if !c.sleep(bo.next()) {
				return
			}
			continue
		}
		s, err := dialSession(c.ctx, srv, &c.cfg, c.codec, c, c.log, &c.wg)
		if err != nil {
			c.setErr(err)
			c.log.Warn("connect failed", "server", srv.Addr(), "err", err)
			if !c.sleep(bo.next()) {
				return
			}
			continue
		}
		bo.reset()
		if !first {
			c.m.reconnects.Inc()
		}
		first = false
		c.log.Info("connected", "server", srv.Addr(), "connectionId", s.connID, "batchBeat", s.batchBeat)
		c.batchDereg.Store(capUnknown)
		if s.batchBeat {
			c.batchBeat.Store(capSupported)
		} else {
			c.batchBeat.Store(capUnsupported)
		}
		c.setCurrent(s)
		if c.redo(s) {
			target = c.watch(s)
		} else if !c.sleep(bo.next()) {
			c.clearCurrent(s)
			s.close(ErrClosed)
			return
		}
		c.clearCurrent(s)
		s.close(ErrClosed)
		if r := s.reason(); r != nil && !errors.Is(r, ErrClosed) {
			c.setErr(r)
		}
	}
}

// watch holds the session until it ends; it returns the server a
// ConnectResetRequest named ("" for the next one).
func (c *Client) watch(s *session) string {
	step := c.cfg.HealthCheckInterval / 2
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return ""
		case <-s.done:
			c.log.Warn("connection lost", "server", s.srv.Addr(), "err", s.reason())
			return ""
		case k := <-c.kick:
			if k == s {
				c.log.Warn("connection failed a request; reconnecting", "server", s.srv.Addr())
				return ""
			}
		case r := <-c.resets:
			if r.s == s {
				c.log.Info("server asked to reconnect", "server", s.srv.Addr(), "to", r.to)
				return r.to
			}
		case <-t.C:
			if s.idleFor() < c.cfg.HealthCheckInterval {
				continue
			}
			if _, err := c.callOn(c.ctx, s, &wire.HealthCheckRequest{}); err != nil {
				c.log.Warn("health check failed; reconnecting", "server", s.srv.Addr(), "err", err)
				return ""
			}
		}
	}
}

// pickServer returns the server named by target when it is in the list,
// else the next one round robin.
func (c *Client) pickServer(target string) (Server, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.servers) == 0 {
		return Server{}, false
	}
	if target != "" {
		for i, s := range c.servers {
			if s.Addr() == target {
				c.next = i + 1
				return s, true
			}
		}
	}
	s := c.servers[c.next%len(c.servers)]
	c.next = (c.next + 1) % len(c.servers)
	return s, true
}

func (c *Client) setCurrent(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = s
	c.downSince = time.Time{}
	close(c.curCh)
	c.curCh = make(chan struct{})
	if c.curLabel != "" {
		c.m.currentServer.WithLabelValues(c.curLabel).Set(0)
	}
	c.curLabel = s.srv.Addr()
	c.m.currentServer.WithLabelValues(c.curLabel).Set(1)
	c.lastErr = nil
}

func (c *Client) clearCurrent(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == s {
		c.cur = nil
		c.downSince = time.Now()
		close(c.curCh)
		c.curCh = make(chan struct{})
		c.m.currentServer.WithLabelValues(c.curLabel).Set(0)
	}
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// LastError is the last connection failure (nil while connected).
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitSession returns the current session, other than avoid, waiting for
// one until ctx ends.
func (c *Client) waitSession(ctx context.Context, avoid *session) (*session, error) {
	for {
		c.mu.Lock()
		cur, ch := c.cur, c.curCh
		c.mu.Unlock()
		if cur != nil && cur != avoid && !cur.closed() {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			last := c.LastError()
			if last == nil {
				return nil, fmt.Errorf("%w: %w", ErrNoServer, ctx.Err())
			}
			return nil, fmt.Errorf("%w: %w (last: %w)", ErrNoServer, ctx.Err(), last)
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// kickSession asks connectLoop to drop s (stale kicks are ignored there).
func (c *Client) kickSession(s *session) {
	select {
	case c.kick <- s:
	default:
		select { // replace a stale kick
		case <-c.kick:
		default:
		}
		select {
		case c.kick <- s:
		default:
		}
	}
}

// request sends req on the main connection, retrying on the next server
// after connection-level failures until ctx ends.
func (c *Client) request(ctx context.Context, req wire.Request) (wire.Response, error) {
	if c.state.Load() != 1 {
		return nil, ErrClosed
	}
	var avoid *session
	var lastErr error
	for {
		s, err := c.waitSession(ctx, avoid)
		if err != nil {
			if lastErr != nil && !errors.Is(err, ErrClosed) {
				return nil, fmt.Errorf("%w: %s: %w", ErrNoServer, req.TypeName(), lastErr)
			}
			return nil, err
		}
		resp, err := c.callOn(ctx, s, req)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, errConnectionLost) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
		avoid = s
		c.kickSession(s)
	}
}

// callOnce is one attempt on one session, judged: a nil error means
// resultCode 200. Errors wrap errConnectionLost when another server should
// be tried, a *ServerError for typed failures, ErrProtocol for nonsense.
func (c *Client) callOnce(ctx context.Context, s *session, req wire.Request) (wire.Response, error) {
	typ := req.TypeName()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.call(cctx, req)
	c.m.latency.WithLabelValues(typ).Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.requests.WithLabelValues(typ, "error").Inc()
		if errors.Is(err, ErrProtocol) || errors.Is(err, ErrInvalidInput) {
			return nil, err
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.ResourceExhausted {
			return nil, fmt.Errorf("%w: %s at %s: response too large: %s", ErrProtocol, typ, s.srv.Addr(), st.Message())
		}
		return nil, fmt.Errorf("%w: %s at %s: %w", errConnectionLost, typ, s.srv.Addr(), err)
	}
	h := resp.Result()
	if _, isErr := resp.(*wire.ErrorResponse); isErr && connectionLevel(h.ErrorCode) {
		c.m.requests.WithLabelValues(typ, "error").Inc()
		return nil, fmt.Errorf("%w: %s at %s: ErrorResponse %d: %s", errConnectionLost, typ, s.srv.Addr(), h.ErrorCode, h.Message)
	}
	if !h.OK() {
		c.m.requests.WithLabelValues(typ, "fail").Inc()
		code := h.ErrorCode
		if code == 0 {
			code = h.ResultCode
		}
		return nil, &ServerError{Type: typ, Addr: s.srv.Addr(), Code: code, Message: h.Message}
	}
	c.m.requests.WithLabelValues(typ, "ok").Inc()
	return resp, nil
}

// onReset implements serverRequests.
func (c *Client) onReset(s *session, req *wire.ConnectResetRequest) {
	c.mu.Lock()
	main := c.cur == s
	c.mu.Unlock()
	if !main {
		s.close(fmt.Errorf("%w: %s: reset by server", errConnectionLost, s.srv.Addr()))
		return
	}
	to := ""
	if req.ServerIP != "" && req.ServerPort != "" {
		to = joinHostPort(req.ServerIP, req.ServerPort)
	}
	select {
	case <-c.resets:
	default:
	}
	select {
	case c.resets <- resetOrder{s: s, to: to}:
	default:
	}
}

// resetOrder is a ConnectResetRequest received on s: move to "to" (main
// "host:port"; "" = the next server).
type resetOrder struct {
	s  *session
	to string
}

// ---- address server ----

func (c *Client) addressLoop() {
	for {
		if err := c.refreshServers(); err != nil {
			c.log.Warn("address server", "url", c.cfg.AddressServerURL, "err", err)
		}
		if !c.sleep(c.cfg.AddressServerRefresh) {
			return
		}
	}
}

// refreshServers reads the address server: one "host:port" per line.
func (c *Client) refreshServers() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.AddressServerURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: address server %s: HTTP %d", ErrBadAddress, c.cfg.AddressServerURL, resp.StatusCode)
	}
	var list []Server
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		srv, err := ParseServer(line)
		if err != nil {
			return err
		}
		list = append(list, srv)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("%w: address server %s returned no servers", ErrBadAddress, c.cfg.AddressServerURL)
	}
	c.mu.Lock()
	c.servers = list
	c.mu.Unlock()
	return nil
}

// Package grpcapi is the registry's Nacos 2.x gRPC API on main port + 1000:
// the unary Request service, the bi-stream, connection identity and
// lifetime, idle detection, merged pushes, and the request handlers of the
// naming module and of Ferry's batch beat. Other modules (config) plug their
// handlers in with Handle.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// HandlerFunc answers one request on a registered connection. It returns
// the request's own response type. On a business error it returns that
// (possibly empty) typed response together with the error: the server sets
// resultCode 500 and the errorCode of ErrorCode(err) on it. It must not
// return an ErrorResponse: the Go SDK takes that for a dead server.
type HandlerFunc func(ctx context.Context, c *Conn, req wire.Request) (wire.Response, error)

// PersistentStore is the Raft store's write side, used by
// PersistentInstanceRequest. Without one those requests fail with a typed
// 500 (and the server does not advertise supportPersistentInstanceByGrpc,
// so Java clients use HTTP).
type PersistentStore interface {
	RegisterPersistent(ctx context.Context, key naming.ServiceKey, inst naming.Instance) error
	DeregisterPersistent(ctx context.Context, key naming.ServiceKey, a naming.Addr) error
}

// Errors of the server.
var (
	ErrStopped         = errors.New("grpcapi: server stopped")
	ErrNotConnected    = errors.New("grpcapi: connection not registered")
	ErrTimeout         = errors.New("grpcapi: client did not answer in time")
	ErrBusy            = errors.New("grpcapi: connection send queue full")
	ErrTooManyConns    = errors.New("grpcapi: too many connections")
	ErrPersistentNoHub = errors.New("grpcapi: persistent instances are not served by this node")
)

// Server is the gRPC API. New validates, Start listens and returns, Stop
// closes everything (idempotent).
type Server struct {
	cfg      Config
	reg      *naming.Registry
	log      *slog.Logger
	met      *metrics
	codec    *wire.Codec
	handlers map[string]HandlerFunc // written before Start only
	store    PersistentStore
	owners   naming.Responsibility // who takes merged beats (written before Start only)
	now      func() time.Time
	onClose  []func(connID string)                // written before Start only (plug.go)
	onPush   []func(naming.ServiceKey, time.Time) // written before Start only (plug.go)
	authz    Authorizer                           // written before Start only (auth.go)
	starting func() bool                          // written before Start only (SetStarting)

	grpc *grpc.Server
	lis  net.Listener
	raws *rawListener // lis, making each connection's Conn (rawconn.go)

	mu    sync.Mutex // guards conns
	conns map[string]*Conn

	pendMu  sync.Mutex              // guards pending
	pending map[string]pendingReply // "connID/requestId" → who waits for the answer
	nextID  atomic.Uint64

	push *pusher

	started  atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{}
	wg       sync.WaitGroup
}

// connKey carries a Conn in a context (tests that call handlers directly).
type connKey struct{}

// New builds a server over reg. logger and registerer may be nil.
func New(cfg Config, reg *naming.Registry, logger *slog.Logger, registerer prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: nil registry", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		reg:      reg,
		log:      logger.With("subsystem", "grpcapi"),
		met:      newMetrics(registerer),
		codec:    wire.NewCodec(cfg.MaxMessageBytes),
		handlers: map[string]HandlerFunc{},
		owners:   naming.ThisNode{},
		now:      time.Now,
		conns:    map[string]*Conn{},
		pending:  map[string]pendingReply{},
		stopped:  make(chan struct{}),
	}
	s.push = newPusher(s)
	s.registerNamingHandlers()
	return s, nil
}

// Handle plugs a handler for a request type in (replacing any). Call
// before Start. factory builds an empty request of that type for decoding
// when the type is not one of wire's own.
func (s *Server) Handle(typeName string, factory func() wire.Message, h HandlerFunc) {
	if s.started.Load() {
		panic("grpcapi: Handle after Start")
	}
	if factory != nil && !s.codec.Known(typeName) {
		s.codec.Register(typeName, factory)
	}
	s.handlers[typeName] = h
}

// SetStarting makes ServerCheckRequest fail with UNAVAILABLE while
// starting returns true, so clients connect elsewhere until the node
// serves. Call before Start.
func (s *Server) SetStarting(starting func() bool) { s.starting = starting }

// SetPersistentStore sets the Raft store's write side. Call before Start.
func (s *Server) SetPersistentStore(ps PersistentStore) { s.store = ps }

// SetResponsibility sets who is responsible for beat-kept clients (default
// naming.ThisNode): merged beats and bulk deregisters of an address another
// member is responsible for are answered "redirect" with its address. Call
// before Start.
func (s *Server) SetResponsibility(r naming.Responsibility) {
	if s.started.Load() {
		panic("grpcapi: SetResponsibility after Start")
	}
	s.owners = r
}

// Start listens on cfg.Addr and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("grpcapi: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(lis)
}

// Serve serves on lis in the background (tests hand in their own listener).
func (s *Server) Serve(lis net.Listener) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("grpcapi: already started")
	}
	s.lis = lis
	s.raws = newRawListener(lis, s)
	s.grpc = grpc.NewServer(
		// The proto codec, plus the pre-encoded query answers of RequestReply.
		grpc.ForceServerCodecV2(wire.ServerCodec()),
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes),
		grpc.InitialWindowSize(int32(s.cfg.WindowBytes)),
		grpc.InitialConnWindowSize(int32(s.cfg.WindowBytes)),
		// Memory per connection (issue 16): a write buffer is taken from
		// a pool for each batch of frames and given back after the flush,
		// so an idle transport holds none; the read buffer is small (see
		// ReadBufferBytes).
		grpc.SharedWriteBuffer(true),
		grpc.ReadBufferSize(s.cfg.ReadBufferBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.KeepaliveTime, Timeout: s.cfg.KeepaliveTimeout}),
	)
	wire.RegisterRequestServer(s.grpc, (*requestService)(s))
	wire.RegisterBiRequestStreamServer(s.grpc, (*biStreamService)(s))
	s.reg.OnChange(s.push.serviceChanged)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.raws); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("grpc serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.ejectLoop()
	}()
	s.log.Info("gRPC API listening", "addr", lis.Addr().String())
	return nil
}

// Addr is the listen address (after Start).
func (s *Server) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Stop closes the listener and every connection, waiting at most until ctx
// ends for in-flight calls (then it cuts them). Idempotent.
func (s *Server) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		close(s.stopped)
		s.push.stop()
		if s.grpc != nil {
			done := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(done) }()
			// Bi-streams never end by themselves: close the connections
			// first.
			s.mu.Lock()
			for _, c := range s.conns {
				s.closeConnLocked(c)
			}
			s.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				s.grpc.Stop()
				<-done
			}
		}
		s.wg.Wait()
	})
}

// Connections lists live connections.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnInfo, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.info())
	}
	return out
}

func (s *Server) conn(id string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// closeConn unregisters a connection: its instances and subscriptions are
// dropped and its transport is closed, which ends its bi-stream (the client
// reconnects), as Nacos closes the channel of a connection it unregisters.
func (s *Server) closeConn(c *Conn) {
	s.mu.Lock()
	s.closeConnLocked(c)
	s.mu.Unlock()
}

func (s *Server) closeConnLocked(c *Conn) {
	if c.closed.Swap(true) {
		return
	}
	if c.raw != nil {
		c.raw.closeNet()
	}
	s.reg.DropClient(c.ID)
	for _, f := range s.onClose {
		f(c.ID)
	}
}

// ResetConnection asks a client to reconnect with ConnectResetRequest, to
// serverIP:serverPort (main port) when given. It waits for the answer.
func (s *Server) ResetConnection(ctx context.Context, connID, serverIP string, serverPort int) error {
	c := s.conn(connID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, connID)
	}
	req := &wire.ConnectResetRequest{ServerIP: serverIP, ConnectionID: connID}
	if serverPort > 0 {
		req.ServerPort = strconv.Itoa(serverPort)
	}
	_, err := s.call(ctx, c, req, 3*time.Second)
	return err
}

// call sends a server→client request on c's bi-stream and waits for the
// response with the same requestId. Responses are judged by resultCode.
func (s *Server) call(ctx context.Context, c *Conn, req wire.Request, timeout time.Duration) (wire.Response, error) {
	id := s.newRequestID()
	req.Header().RequestID = id
	p, err := s.codec.Encode(req)
	if err != nil {
		return nil, err
	}
	return s.callPayload(ctx, c, id, p, timeout)
}

func (s *Server) newRequestID() string { return strconv.FormatUint(s.nextID.Add(1), 10) }

// callPayload is call for a payload already encoded with request id id.
func (s *Server) callPayload(ctx context.Context, c *Conn, id string, p *wire.Payload, timeout time.Duration) (wire.Response, error) {
	ch := make(chan wire.Response, 1)
	key := c.ID + "/" + id
	s.pendMu.Lock()
	s.pending[key] = pendingReply{ch: ch}
	s.pendMu.Unlock()
	defer func() {
		s.pendMu.Lock()
		delete(s.pending, key)
		s.pendMu.Unlock()
	}()
	if !c.enqueue(p) {
		if c.closed.Load() {
			return nil, ErrNotConnected
		}
		return nil, ErrBusy
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case resp := <-ch:
		return resp, answerErr(resp)
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		return nil, ErrStopped
	}
}

func (s *Server) deliver(c *Conn, resp wire.Response) {
	key := c.ID + "/" + resp.Result().RequestID
	s.pendMu.Lock()
	p, ok := s.pending[key]
	delete(s.pending, key) // one answer per request: a repeat is dropped
	s.pendMu.Unlock()
	switch {
	case !ok:
	case p.batch != nil:
		p.batch.settle(p.i, answerErr(resp), s.now())
	default:
		select {
		case p.ch <- resp:
		default:
		}
	}
}

// answerErr is nil for a client's answer with resultCode 200, else an
// error describing it.
func answerErr(resp wire.Response) error {
	r := resp.Result()
	if r.OK() {
		return nil
	}
	return fmt.Errorf("grpcapi: client answered %s %d/%d: %s", resp.TypeName(), r.ResultCode, r.ErrorCode, r.Message)
}

// pendingReply is where the answer to a server→client request goes: a
// single call's channel, or entry i of a PushAll batch.
type pendingReply struct {
	ch    chan wire.Response
	batch *pushBatch
	i     int
}

// ejectLoop probes idle connections with ClientDetectionRequest and closes
// those that do not answer (Nacos' NacosRuntimeConnectionEjector), and
// closes transports not set up within SetupTimeout.
func (s *Server) ejectLoop() {
	t := time.NewTicker(s.cfg.EjectInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-t.C:
		}
		now := s.now()
		s.mu.Lock()
		var idle []*Conn
		for _, c := range s.conns {
			switch {
			case c.Registered():
				if now.Sub(time.Unix(0, c.lastActive.Load())) >= s.cfg.IdleTimeout && !c.detecting.Load() {
					idle = append(idle, c)
				}
			case !c.closed.Load() && !c.setUp() && now.Sub(c.createdAt) >= s.cfg.SetupTimeout:
				s.log.Info("closing connection never set up", "conn", c.ID, "age", now.Sub(c.createdAt))
				s.met.notSetUp.Inc()
				s.closeConnLocked(c)
			}
		}
		s.mu.Unlock()
		for _, c := range idle {
			c.detecting.Store(true)
			s.wg.Add(1)
			go func(c *Conn) {
				defer s.wg.Done()
				defer c.detecting.Store(false)
				_, err := s.call(context.Background(), c, &wire.ClientDetectionRequest{}, s.cfg.DetectTimeout)
				if err == nil {
					c.touch(s.now())
					s.met.detections.WithLabelValues("ok").Inc()
					return
				}
				if errors.Is(err, ErrStopped) {
					return
				}
				s.met.detections.WithLabelValues("dropped").Inc()
				s.log.Info("closing unresponsive connection", "conn", c.ID, "err", err)
				s.closeConn(c)
			}(c)
		}
	}
}

// connFrom is the Conn a request came on: set in ctx by a test, else the
// connection of its peer address.
func (s *Server) connFrom(ctx context.Context) *Conn {
	if c, ok := ctx.Value(connKey{}).(*Conn); ok {
		return c
	}
	if s.raws == nil {
		return nil
	}
	return s.raws.conn(ctx)
}

// requestService serves /Request/request.
type requestService Server

func (rs *requestService) Request(ctx context.Context, p *wire.Payload) (*wire.Payload, error) {
	out, err := rs.reply(ctx, p, func(c *wire.Codec, m wire.Message) (any, error) { return c.Encode(m) })
	if err != nil {
		return nil, err
	}
	return out.(*wire.Payload), nil
}

// RequestReply is Request for wire's handler: a query answered from a
// pre-encoded ServiceInfo goes out as an EncodedReply (the server uses
// wire.ServerCodec), written once into gRPC's buffer.
func (rs *requestService) RequestReply(ctx context.Context, p *wire.Payload) (any, error) {
	return rs.reply(ctx, p, (*wire.Codec).EncodeReply)
}

func (rs *requestService) reply(ctx context.Context, p *wire.Payload, encode func(*wire.Codec, wire.Message) (any, error)) (any, error) {
	s := (*Server)(rs)
	start := time.Now()
	typ := p.GetMetadata().GetType()
	if typ == wire.TypeServerCheckRequest && s.starting != nil && s.starting() {
		// Not serving yet (a cluster member still loading its peers'
		// data): the SDK's server check fails at once and it tries
		// another server.
		s.met.requests.WithLabelValues(wire.TypeServerCheckRequest, "starting").Inc()
		return nil, status.Error(codes.Unavailable, "grpcapi: server starting: loading the cluster's data from a peer")
	}
	resp := s.handleUnary(ctx, p)
	if resp == nil {
		s.met.requests.WithLabelValues(wire.TypeServerCheckRequest, "exhausted").Inc()
		return nil, status.Errorf(codes.ResourceExhausted, "%v: max %d", ErrTooManyConns, s.cfg.MaxConnections)
	}
	out, err := encode(s.codec, resp)
	if err != nil {
		s.log.Error("encode response", "type", resp.TypeName(), "err", err)
		out, _ = s.codec.Encode(wire.NewErrorResponse(wire.CodeServerError, "response too large"))
	}
	s.met.observe(typ, s.codec.Known, resp.Result().ErrorCode, time.Since(start))
	return out, nil
}

func (s *Server) handleUnary(ctx context.Context, p *wire.Payload) wire.Response {
	c := s.connFrom(ctx)
	typ := p.GetMetadata().GetType()
	if c == nil {
		return wire.NewErrorResponse(wire.CodeServerError, "no connection")
	}
	if typ == wire.TypeServerCheckRequest {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n > s.cfg.MaxConnections {
			// nil → a gRPC RESOURCE_EXHAUSTED error, not an ErrorResponse: the
			// SDK's server check fails at once and it tries another server.
			return nil
		}
		c.touch(s.now())
		r := &wire.ServerCheckResponse{ResponseHeader: wire.Okay(), ConnectionID: c.ID, FerryBatchBeat: s.cfg.FerryBatchBeat}
		return r
	}
	h := s.handlers[typ]
	if h == nil {
		return wire.NewErrorResponse(wire.CodeNoHandler, "RequestHandler Not Found")
	}
	if !c.Registered() {
		return wire.NewErrorResponse(wire.CodeUnregister, "Connection is unregistered.")
	}
	if hs := p.GetMetadata().GetHeaders(); len(hs) > 0 {
		n := 0
		for k, v := range hs {
			n += len(k) + len(v)
		}
		if n > s.cfg.MaxHeaderBytes {
			return wire.NewErrorResponse(wire.CodeBadGateway, fmt.Sprintf("headers are %d bytes (max %d)", n, s.cfg.MaxHeaderBytes))
		}
	}
	m, err := s.codec.Decode(p)
	if err != nil {
		return wire.NewErrorResponse(wire.CodeBadGateway, err.Error())
	}
	req, ok := m.(wire.Request)
	if !ok {
		return wire.NewErrorResponse(wire.CodeBadGateway, typ+" is not a request")
	}
	c.touch(s.now())
	if deny := s.authorize(c, req, p.GetMetadata().GetHeaders()); deny != nil {
		return deny
	}
	resp, herr := safeCall(ctx, h, c, req)
	if resp == nil {
		resp = wire.NewErrorResponse(wire.CodeServerError, "handler returned no response")
		if herr != nil {
			resp.Result().Message = herr.Error()
		}
		return resp
	}
	if herr != nil {
		resp.Result().SetError(ErrorCode(herr), herr.Error())
	} else if resp.Result().ResultCode == 0 {
		*resp.Result() = wire.Okay()
	}
	resp.Result().RequestID = req.Header().RequestID
	return resp
}

func safeCall(ctx context.Context, h HandlerFunc, c *Conn, req wire.Request) (resp wire.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("grpcapi: handler panic: %v", r)
		}
	}()
	return h(ctx, c, req)
}

// biStreamService serves /BiRequestStream/requestBiStream.
type biStreamService Server

func (bs *biStreamService) RequestBiStream(stream wire.BiRequestStream_RequestBiStreamServer) error {
	s := (*Server)(bs)
	c := s.connFrom(stream.Context())
	if c == nil {
		return status.Error(codes.Internal, "no connection")
	}
	// The response headers go out now, with the stream, rather than with
	// the first push: that push is then one DATA frame like the others.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	// Nacos unregisters the connection when its bi-stream ends. The stream
	// ends when the client ends it or its transport closes (closeConn
	// closes it), so this goroutine is the stream's reader too; pushes are
	// written by the connection's writer, which runs only while some are
	// queued (Conn.enqueue).
	defer s.closeConn(c)
	defer c.endStream()
	for {
		p, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.onStreamMessage(c, p, stream)
	}
}

func (s *Server) onStreamMessage(c *Conn, p *wire.Payload, stream wire.BiRequestStream_RequestBiStreamServer) {
	m, err := s.codec.Decode(p)
	if err != nil {
		s.log.Debug("bad bi-stream message", "conn", c.ID, "err", err)
		return
	}
	switch msg := m.(type) {
	case *wire.ConnectionSetupRequest:
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		c.mu.Lock()
		c.clientIP = p.GetMetadata().GetClientIp()
		c.clientVersion = msg.ClientVersion
		c.labels = msg.Labels
		if !c.closed.Load() {
			c.stream = stream
		}
		c.setupDone = true
		c.registered = n <= s.cfg.MaxConnections && !c.closed.Load()
		ok := c.registered
		c.mu.Unlock()
		c.touch(s.now())
		if !ok {
			// Over the limit: tell the client to go elsewhere, then end the stream.
			if rp, err := s.codec.Encode(&wire.ConnectResetRequest{}); err == nil {
				c.enqueue(rp)
			}
			s.log.Warn("connection refused at setup", "conn", c.ID, "err", ErrTooManyConns)
			time.AfterFunc(100*time.Millisecond, func() { s.closeConn(c) })
		}
	case wire.Response:
		c.touch(s.now())
		s.deliver(c, msg)
	default:
		s.log.Debug("unexpected bi-stream message", "conn", c.ID, "type", m.TypeName())
	}
}

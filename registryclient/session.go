package registryclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ferrysync/ferry/wire"
)

// serverRequests receives what a server asks on the bi-stream. Called from
// the session's receive goroutine; must not block for long.
type serverRequests interface {
	onPush(s *session, req *wire.NotifySubscriberRequest)
	onReset(s *session, req *wire.ConnectResetRequest)
}

// session is one connection to one server: a gRPC channel, the unary
// Request client and the bi-stream with its receive goroutine. It is
// immutable after dial except for the fields noted.
type session struct {
	srv       Server
	connID    string
	batchBeat bool // the server said ferryBatchBeat
	cc        *grpc.ClientConn
	rpc       wire.RequestClient
	stream    wire.BiRequestStream_RequestBiStreamClient
	codec     *wire.Codec
	log       *slog.Logger
	cancel    context.CancelFunc

	sendMu   sync.Mutex   // serialises stream.Send
	lastUsed atomic.Int64 // unix nanos of the last successful exchange
	done     chan struct{}
	once     sync.Once
	errMu    sync.Mutex
	err      error // why the session ended; guarded by errMu
}

// dialSession connects to srv: ServerCheck, bi-stream, ConnectionSetup, and
// starts the receive goroutine on wg. Errors wrap ErrConnect and name the
// address.
func dialSession(ctx context.Context, srv Server, cfg *Config, codec *wire.Codec, h serverRequests, log *slog.Logger, wg *sync.WaitGroup) (*session, error) {
	fail := func(step string, err error) error {
		return fmt.Errorf("%w: %s (gRPC %s): %s: %w", ErrConnect, srv.Addr(), srv.GRPCAddr(), step, err)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(cfg.transportCredentials()), // tls.go
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(cfg.MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}),
	}
	if cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(cfg.Dialer))
	}
	cc, err := grpc.NewClient(srv.GRPCAddr(), opts...)
	if err != nil {
		return nil, fail("dial", err)
	}
	s := &session{srv: srv, cc: cc, rpc: wire.NewRequestClient(cc), codec: codec, done: make(chan struct{}),
		log: log.With("server", srv.Addr())}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	// Server check; a starting server answers ErrorResponse 300: retry
	// within the dial timeout.
	var check *wire.ServerCheckResponse
	for {
		resp, err := s.call(dctx, &wire.ServerCheckRequest{})
		if err == nil {
			h := resp.Result()
			c, ok := resp.(*wire.ServerCheckResponse)
			switch {
			case !h.OK():
				err = &ServerError{Type: wire.TypeServerCheckRequest, Addr: srv.Addr(), Code: h.ErrorCode, Message: h.Message}
			case !ok:
				err = fmt.Errorf("%w: answer to ServerCheckRequest is %s", ErrProtocol, resp.TypeName())
			default:
				check = c
			}
			if check != nil {
				break
			}
		}
		var se *ServerError
		retry := errors.As(err, &se) && se.Code >= 300 && se.Code < 400
		if !retry {
			cc.Close()
			return nil, fail("server check", err)
		}
		select {
		case <-dctx.Done():
			cc.Close()
			return nil, fail("server check", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.connID, s.batchBeat = check.ConnectionID, check.FerryBatchBeat

	sctx, scancel := context.WithCancel(context.Background())
	s.cancel = scancel
	// NewStream honours sctx only: bound the open by dctx as well.
	detach := context.AfterFunc(dctx, scancel)
	st, err := wire.NewBiRequestStreamClient(cc).RequestBiStream(sctx)
	if !detach() && err == nil {
		err = dctx.Err()
	}
	if err != nil {
		scancel()
		cc.Close()
		return nil, fail("open bi-stream", err)
	}
	s.stream = st
	labels := map[string]string{"module": "naming", "source": "sdk"}
	if cfg.AppName != "" {
		labels["AppName"] = cfg.AppName
	}
	setup := &wire.ConnectionSetupRequest{ClientVersion: cfg.ClientVersion, Tenant: "", Labels: labels,
		ClientAbilities: []byte("{}")}
	if err := s.send(setup); err != nil {
		scancel()
		cc.Close()
		return nil, fail("connection setup", err)
	}
	s.touch()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.recvLoop(h)
	}()
	// The setup is fire-and-forget and travels on another HTTP/2 stream than
	// unary requests: until the server has registered the connection it
	// answers ErrorResponse 301. Probe with HealthCheckRequest instead of
	// sleeping (the Go SDK sleeps 100 ms).
	for {
		resp, err := s.call(dctx, &wire.HealthCheckRequest{})
		if err == nil && resp.Result().OK() {
			break
		}
		if err == nil {
			err = fmt.Errorf("%s %d: %s", resp.TypeName(), resp.Result().ErrorCode, resp.Result().Message)
			if resp.Result().ErrorCode == wire.CodeUnregister {
				select {
				case <-dctx.Done():
				case <-s.done:
				case <-time.After(5 * time.Millisecond):
					continue
				}
			}
		}
		s.close(fail("setup check", err))
		return nil, s.reason()
	}
	return s, nil
}

func (s *session) touch() { s.lastUsed.Store(time.Now().UnixNano()) }

func (s *session) idleFor() time.Duration { return time.Since(time.Unix(0, s.lastUsed.Load())) }

// send writes one message on the bi-stream.
func (s *session) send(m wire.Message) error {
	p, err := s.codec.Encode(m)
	if err != nil {
		return err
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(p)
}

// call is one unary exchange. Errors: transport errors as they come from
// gRPC, ErrProtocol for an undecodable or non-response answer. The answer's
// resultCode is not judged here.
func (s *session) call(ctx context.Context, req wire.Request) (wire.Response, error) {
	p, err := s.codec.Encode(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	out, err := s.rpc.Request(ctx, p)
	if err != nil {
		return nil, err
	}
	m, err := s.codec.Decode(out)
	if err != nil {
		return nil, fmt.Errorf("%w: from %s: %w", ErrProtocol, s.srv.Addr(), err)
	}
	resp, ok := m.(wire.Response)
	if !ok {
		return nil, fmt.Errorf("%w: from %s: %s is not a response", ErrProtocol, s.srv.Addr(), m.TypeName())
	}
	s.touch()
	return resp, nil
}

// recvLoop answers server requests until the stream ends.
func (s *session) recvLoop(h serverRequests) {
	for {
		p, err := s.stream.Recv()
		if err != nil {
			s.close(fmt.Errorf("%w: %s: bi-stream: %w", errConnectionLost, s.srv.Addr(), err))
			return
		}
		s.touch()
		m, err := s.codec.Decode(p)
		if err != nil {
			s.log.Debug("undecodable server request ignored", "err", err)
			continue
		}
		var reply wire.Response
		switch r := m.(type) {
		case *wire.NotifySubscriberRequest:
			h.onPush(s, r)
			reply = &wire.NotifySubscriberResponse{ResponseHeader: okReply(r.RequestID)}
		case *wire.ClientDetectionRequest:
			reply = &wire.ClientDetectionResponse{ResponseHeader: okReply(r.RequestID)}
		case *wire.ConnectResetRequest:
			_ = s.send(&wire.ConnectResetResponse{ResponseHeader: okReply(r.RequestID)})
			h.onReset(s, r)
			continue
		case *wire.SetupAckRequest:
			reply = &wire.SetupAckResponse{ResponseHeader: okReply(r.RequestID)}
		default:
			s.log.Debug("server message ignored", "type", m.TypeName())
			continue
		}
		if err := s.send(reply); err != nil {
			s.close(fmt.Errorf("%w: %s: bi-stream send: %w", errConnectionLost, s.srv.Addr(), err))
			return
		}
	}
}

func okReply(id string) wire.ResponseHeader {
	h := wire.Okay()
	h.RequestID = id
	return h
}

// close ends the session (idempotent); err says why.
func (s *session) close(err error) {
	s.once.Do(func() {
		s.errMu.Lock()
		s.err = err
		s.errMu.Unlock()
		if s.cancel != nil {
			s.cancel()
		}
		s.cc.Close()
		close(s.done)
	})
}

// closed reports whether the session has ended.
func (s *session) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) reason() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

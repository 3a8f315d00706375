package grpcapi

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the gRPC server. Start from DefaultConfig.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:9848" (main port + 1000).
	Addr string
	// MaxConnections bounds live transports; ServerCheck on one more is
	// refused with gRPC status RESOURCE_EXHAUSTED.
	MaxConnections int
	// MaxMessageBytes bounds one inbound gRPC message (Nacos: 10 MiB).
	MaxMessageBytes int
	// WindowBytes is the HTTP/2 flow-control window the server grants each
	// stream and each connection (1 MiB, grpc-java's default; the Go SDK
	// sets 10 MiB on its side). A static window turns gRPC-Go's BDP
	// estimation off: with it, every small message received (each push's
	// ack) made the server send a PING and the client answer it, doubling
	// the packets of a push.
	WindowBytes int
	// MaxHeaderBytes bounds a request's Metadata.headers (keys plus values);
	// over it the request is answered ErrorResponse 502.
	MaxHeaderBytes int
	// IdleTimeout: a connection silent for longer is probed with
	// ClientDetectionRequest (Nacos KEEP_ALIVE_TIME, 20 s).
	IdleTimeout time.Duration
	// DetectTimeout: a probed connection that does not answer within it is
	// closed and its instances dropped (Nacos: 5 s).
	DetectTimeout time.Duration
	// SetupTimeout: a transport whose client has not set its bi-stream up
	// (ConnectionSetupRequest) this long after it opened is closed. SDKs
	// set up right after their server check; a client that opens
	// connections and never sends a request holds no memory past it.
	SetupTimeout time.Duration
	// EjectInterval is how often idle connections are looked for (Nacos: 3 s).
	EjectInterval time.Duration
	// PushDelay merges the changes of a service before pushing (Nacos
	// pushTaskDelay, 500 ms).
	PushDelay time.Duration
	// PushTimeout is how long a push waits for its ack (Nacos: 5 s).
	PushTimeout time.Duration
	// PushRetryDelay is the wait before retrying a failed push (Nacos: 1 s).
	PushRetryDelay time.Duration
	// SendQueue bounds the server→client messages queued per connection;
	// a push finding it full fails (and is retried), as Nacos' ConnectionBusy.
	SendQueue int
	// SendQueueBytes bounds the bytes of those messages (a message is
	// always taken into an empty queue): a client that stops reading its
	// bi-stream holds at most this much of the server's memory in its
	// queue, plus gRPC's own per-stream write quota (64 KiB).
	SendQueueBytes int
	// ReadBufferBytes is each transport's read buffer (gRPC-Go's default is
	// 32 KiB, held by every connection, idle or not). A request from a
	// client with one in flight (headers and body) fits in the default
	// 4 KiB and is read with one system call; larger frames are read
	// straight into their own buffer.
	ReadBufferBytes int
	// KeepaliveMinTime is the least interval between client pings the server
	// permits (the Go SDK pings every 60 s, Java every 6 min).
	KeepaliveMinTime time.Duration
	// KeepaliveTime / KeepaliveTimeout: the server pings a silent transport
	// after KeepaliveTime and closes it after KeepaliveTimeout more.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// MainPort is this node's main (HTTP) port, for redirects.
	MainPort int
	// FerryBatchBeat offers Ferry's merged-beat extension (default true):
	// ServerCheckResponse carries ferryBatchBeat:true and
	// FerryBatchBeatRequest is served. Off, the server behaves like a real
	// Nacos 2.x: no capability flag, and FerryBatchBeatRequest is answered
	// as any unknown request type (ErrorResponse 302 "RequestHandler Not
	// Found"), so Ferry's sync falls back to BatchInstanceRequest (tests of
	// that fallback, or a cluster that must not carry the extension).
	FerryBatchBeat bool
}

// DefaultConfig returns Nacos' timings and Ferry's limits.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:9848",
		MaxConnections:   20000,
		MaxMessageBytes:  10 << 20,
		MaxHeaderBytes:   16 << 10,
		WindowBytes:      1 << 20,
		IdleTimeout:      20 * time.Second,
		DetectTimeout:    5 * time.Second,
		EjectInterval:    3 * time.Second,
		SetupTimeout:     20 * time.Second,
		PushDelay:        500 * time.Millisecond,
		PushTimeout:      5 * time.Second,
		PushRetryDelay:   time.Second,
		SendQueue:        1024,
		SendQueueBytes:   4 << 20,
		ReadBufferBytes:  4 << 10,
		KeepaliveMinTime: 5 * time.Second,
		KeepaliveTime:    30 * time.Second,
		KeepaliveTimeout: 10 * time.Second,
		MainPort:         8848,
		FerryBatchBeat:   true,
	}
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("grpcapi: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	pos := func(name string, d time.Duration) error {
		if d <= 0 {
			return fmt.Errorf("%w: %s %v must be > 0", ErrConfig, name, d)
		}
		return nil
	}
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: Addr is empty", ErrConfig)
	case c.MaxConnections <= 0:
		return fmt.Errorf("%w: MaxConnections %d must be > 0", ErrConfig, c.MaxConnections)
	case c.MaxMessageBytes < 4096:
		return fmt.Errorf("%w: MaxMessageBytes %d must be ≥ 4096", ErrConfig, c.MaxMessageBytes)
	case c.WindowBytes < 64<<10 || c.WindowBytes > 1<<30:
		return fmt.Errorf("%w: WindowBytes %d must be in [64 KiB, 1 GiB]", ErrConfig, c.WindowBytes)
	case c.MaxHeaderBytes <= 0:
		return fmt.Errorf("%w: MaxHeaderBytes %d must be > 0", ErrConfig, c.MaxHeaderBytes)
	case c.SendQueue <= 0:
		return fmt.Errorf("%w: SendQueue %d must be > 0", ErrConfig, c.SendQueue)
	case c.SendQueueBytes <= 0:
		return fmt.Errorf("%w: SendQueueBytes %d must be > 0", ErrConfig, c.SendQueueBytes)
	case c.ReadBufferBytes < 0:
		return fmt.Errorf("%w: ReadBufferBytes %d must be ≥ 0", ErrConfig, c.ReadBufferBytes)
	case c.KeepaliveMinTime > 10*time.Second:
		return fmt.Errorf("%w: KeepaliveMinTime %v must be ≤ 10s (clients ping every 60 s)", ErrConfig, c.KeepaliveMinTime)
	case c.MainPort < 0 || c.MainPort > 65535:
		return fmt.Errorf("%w: MainPort %d", ErrConfig, c.MainPort)
	}
	for _, f := range []struct {
		n string
		d time.Duration
	}{{"IdleTimeout", c.IdleTimeout}, {"DetectTimeout", c.DetectTimeout}, {"EjectInterval", c.EjectInterval}, {"SetupTimeout", c.SetupTimeout},
		{"PushDelay", c.PushDelay}, {"PushTimeout", c.PushTimeout}, {"PushRetryDelay", c.PushRetryDelay},
		{"KeepaliveMinTime", c.KeepaliveMinTime}, {"KeepaliveTime", c.KeepaliveTime}, {"KeepaliveTimeout", c.KeepaliveTimeout}} {
		if err := pos(f.n, f.d); err != nil {
			return err
		}
	}
	return nil
}

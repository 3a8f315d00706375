package registryclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GRPCPortOffset is the distance between a Nacos server's main HTTP port and
// its SDK gRPC port.
const GRPCPortOffset = 1000

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// Servers is the static server list: main HTTP "host:port" (the gRPC
	// port is port+1000), or "host:port/grpcPort" to give the gRPC port.
	// Either Servers or AddressServerURL must be set.
	Servers []string
	// AddressServerURL is an address server (Nacos "endpoint") answering a
	// GET with one "host:port" per line. Read at Start and every
	// AddressServerRefresh.
	AddressServerURL string
	// AddressServerRefresh is how often the address server is re-read.
	AddressServerRefresh time.Duration

	// Namespace is the default namespace ("public").
	Namespace string
	// ClientVersion goes into ConnectionSetupRequest.
	ClientVersion string
	// AppName is sent as the "app" header and the AppName label.
	AppName string

	// DialTimeout bounds one connection attempt (server check, stream
	// open, setup).
	DialTimeout time.Duration
	// Dialer, when set, opens the gRPC connections' TCP streams (address
	// "host:port") instead of a plain dial: fault-injection tests put a
	// cuttable proxy in the way. nil dials directly.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// RequestTimeout bounds one attempt of one request; a request is retried
	// on the next server until it succeeds or its context ends.
	RequestTimeout time.Duration
	// HealthCheckInterval: a HealthCheckRequest is sent when the connection
	// has been idle this long (Nacos: 5 s).
	HealthCheckInterval time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between failed connection attempts.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// MaxMessageBytes bounds a received message (Nacos: 10 MiB).
	MaxMessageBytes int

	// BeatInterval is how often merged beats are sent (one batch per node).
	BeatInterval time.Duration
	// BeatPeriod is how often each beat-kept instance is beaten; instances
	// are spread evenly over BeatPeriod/BeatInterval intervals.
	BeatPeriod time.Duration
	// BeatBuffer bounds the beats waiting to be sent; when full the oldest
	// are dropped (counted, logged at most once a minute).
	BeatBuffer int
	// MaxBatchBeats bounds the items of one FerryBatchBeatRequest; a node's
	// due beats beyond it go in further requests of the same interval.
	MaxBatchBeats int

	// CacheDir, when set, holds one JSON file per pushed or queried service
	// (the snapshot), and the failover/ directory.
	CacheDir string
	// LoadCacheAtStart serves the snapshot until a server answers.
	LoadCacheAtStart bool
	// Failover makes files in CacheDir/failover override server answers
	// (switchable at run time with SetFailover).
	Failover bool

	// TLSCAFile, when set, makes gRPC and HTTP toward the registry use TLS,
	// trusting the PEM certificates in this file (tls.go); TLSServerName
	// overrides the name checked in the server's certificate.
	TLSCAFile     string
	TLSServerName string
	tls           *tls.Config // loaded from TLSCAFile by New
	// Username and Password log in to a registry with auth on (auth.go);
	// empty Username: no login. The password is never logged.
	Username string
	Password string
	// Logger receives the client's logs (slog.Default() when nil).
	Logger *slog.Logger
	// Registerer receives the metrics (none when nil).
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults; Servers or AddressServerURL must
// still be filled in.
func DefaultConfig() Config {
	return Config{
		AddressServerRefresh: 30 * time.Second,
		Namespace:            "public",
		ClientVersion:        "Ferry-Go-Client:v1",
		DialTimeout:          3 * time.Second,
		RequestTimeout:       3 * time.Second,
		HealthCheckInterval:  5 * time.Second,
		ReconnectMin:         100 * time.Millisecond,
		ReconnectMax:         5 * time.Second,
		MaxMessageBytes:      10 << 20,
		BeatInterval:         time.Second,
		BeatPeriod:           5 * time.Second,
		BeatBuffer:           200_000,
		MaxBatchBeats:        50_000,
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	if len(c.Servers) == 0 && c.AddressServerURL == "" {
		return bad("Servers", "empty and no AddressServerURL")
	}
	for _, s := range c.Servers {
		if _, err := ParseServer(s); err != nil {
			return fmt.Errorf("%w: Servers: %w", ErrInvalidConfig, err)
		}
	}
	if c.AddressServerURL != "" && !strings.HasPrefix(c.AddressServerURL, "http://") && !strings.HasPrefix(c.AddressServerURL, "https://") {
		return bad("AddressServerURL", "must be an http(s) URL")
	}
	if c.AddressServerURL != "" && c.AddressServerRefresh <= 0 {
		return bad("AddressServerRefresh", "must be > 0")
	}
	switch {
	case c.Namespace == "":
		return bad("Namespace", "empty")
	case c.DialTimeout <= 0:
		return bad("DialTimeout", "must be > 0")
	case c.RequestTimeout <= 0:
		return bad("RequestTimeout", "must be > 0")
	case c.HealthCheckInterval <= 0:
		return bad("HealthCheckInterval", "must be > 0")
	case c.ReconnectMin <= 0:
		return bad("ReconnectMin", "must be > 0")
	case c.ReconnectMax < c.ReconnectMin:
		return bad("ReconnectMax", "must be ≥ ReconnectMin")
	case c.MaxMessageBytes < 1024:
		return bad("MaxMessageBytes", "must be ≥ 1024")
	case c.BeatInterval <= 0:
		return bad("BeatInterval", "must be > 0")
	case c.BeatPeriod < c.BeatInterval:
		return bad("BeatPeriod", "must be ≥ BeatInterval")
	case c.BeatBuffer <= 0:
		return bad("BeatBuffer", "must be > 0")
	case c.MaxBatchBeats <= 0:
		return bad("MaxBatchBeats", "must be > 0")
	case c.LoadCacheAtStart && c.CacheDir == "":
		return bad("LoadCacheAtStart", "needs CacheDir")
	case c.Failover && c.CacheDir == "":
		return bad("Failover", "needs CacheDir")
	case c.Password != "" && c.Username == "":
		return bad("Password", "set without Username")
	}
	return nil
}

// Server is one registry node.
type Server struct {
	Host     string
	Port     int // main HTTP port
	GRPCPort int
}

// Addr is the main "host:port", the node's name (what redirects and
// ConnectResetRequest carry).
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// GRPCAddr is the SDK gRPC "host:port".
func (s Server) GRPCAddr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.GRPCPort)) }

// ParseServer parses "host:port" (gRPC port+1000) or "host:port/grpcPort".
func ParseServer(s string) (Server, error) {
	main, grpcPart, explicit := strings.Cut(strings.TrimSpace(s), "/")
	host, portStr, err := net.SplitHostPort(main)
	if err != nil {
		return Server{}, fmt.Errorf("%w: %q: %v", ErrBadAddress, s, err)
	}
	if host == "" {
		return Server{}, fmt.Errorf("%w: %q: empty host", ErrBadAddress, s)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return Server{}, fmt.Errorf("%w: %q: bad port", ErrBadAddress, s)
	}
	srv := Server{Host: host, Port: port, GRPCPort: port + GRPCPortOffset}
	if explicit {
		g, err := strconv.Atoi(grpcPart)
		if err != nil || g <= 0 || g > 65535 {
			return Server{}, fmt.Errorf("%w: %q: bad gRPC port", ErrBadAddress, s)
		}
		srv.GRPCPort = g
	} else if srv.GRPCPort > 65535 {
		return Server{}, fmt.Errorf("%w: %q: port+%d out of range", ErrBadAddress, s, GRPCPortOffset)
	}
	return srv, nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/benchchild"
	"github.com/ferrysync/ferry/registryclient"
)

// ferryServer is `ferry registry` as a child process, reached through the
// project's registryclient: Nacos 2.x gRPC as nacos-sdk-go speaks it (one
// connection per client, InstanceRequest registrations kept by the
// connection, HealthCheckRequest after 5 s idle, gRPC keepalive 60 s).
type ferryServer struct {
	child  *benchchild.Child
	dir    string
	server string // "host:httpPort/grpcPort" for registryclient
}

func startFerry(ctx context.Context, exe string) (*ferryServer, error) {
	if exe == "" {
		return nil, fmt.Errorf("peers: -ferry (the ferry binary) is required for the ferry system")
	}
	dir, err := os.MkdirTemp("", "ferry-bench-peers-registry-")
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "FERRY_LOG_LEVEL=warn")
	c, err := benchchild.StartEnv(ctx, env, exe, "registry", "-port", "0", "-bind", "127.0.0.1", "-data", dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// "registry: HTTP 127.0.0.1:P, gRPC 127.0.0.1:G"
	var httpAddr, grpcAddr string
	if _, err := fmt.Sscanf(c.Hello, "registry: HTTP %s gRPC %s", &httpAddr, &grpcAddr); err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: ferry registry said %q", c.Hello)
	}
	_, gport, err := net.SplitHostPort(grpcAddr)
	if err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: ferry registry said %q: %w", c.Hello, err)
	}
	return &ferryServer{child: c, dir: dir, server: strings.TrimSuffix(httpAddr, ",") + "/" + gport}, nil
}

func (f *ferryServer) Pid() int                                 { return f.child.Pid() }
func (f *ferryServer) Prepare(ctx context.Context, _ int) error { return nil }
func (f *ferryServer) Stop()                                    { f.child.Stop(); os.RemoveAll(f.dir) }

func (f *ferryServer) Dial(ctx context.Context) (conn, error) {
	cfg := registryclient.DefaultConfig()
	cfg.Servers = []string{f.server}
	cfg.AppName = "peers-bench"
	cfg.Logger = slog.New(slog.DiscardHandler)
	// nacos-sdk-go's naming requests wait up to ClientConfig.TimeoutMs,
	// 10 s by default (registryclient's own default is 3 s).
	cfg.RequestTimeout = 10 * time.Second
	c, err := registryclient.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	// Start does not block: a first request waits for the connection.
	// ServiceQuery of a service nobody has is what a client's first
	// lookup does.
	if _, err := c.Query(ctx, registryclient.ServiceRef{Name: "peers.warmup"}, "", false); err != nil {
		c.Close()
		return nil, err
	}
	return &ferryConn{c: c}, nil
}

type ferryConn struct{ c *registryclient.Client }

func (c *ferryConn) Register(ctx context.Context, in instance) error {
	return c.c.Register(ctx, registryclient.ServiceRef{Name: "providers:" + serviceName(in.svc) + ":1.0.0:"},
		registryclient.Instance{IP: in.ip(), Port: providerPort, Weight: 1, Metadata: in.metadata()})
}

func (c *ferryConn) Query(ctx context.Context, svc int) (int, error) {
	info, err := c.c.Query(ctx, registryclient.ServiceRef{Name: "providers:" + serviceName(svc) + ":1.0.0:"}, "", false)
	return len(info.Hosts), err
}

func (c *ferryConn) Close() { c.c.Close() }

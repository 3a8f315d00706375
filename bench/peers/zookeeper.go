package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/zkserver"
)

// zkSessionTimeout is Dubbo's default ZooKeeper session timeout (60 s);
// go-zookeeper pings every third of it when idle.
const zkSessionTimeout = 60 * time.Second

// zkServer is Debian's ZooKeeper through internal/zkserver, reached with
// go-zookeeper sessions; instances are ephemeral provider znodes.
type zkServer struct {
	srv *zkserver.Server
	dir string
}

func startZooKeeper(ctx context.Context) (*zkServer, error) {
	if err := zkserver.Available(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-peers-zk-")
	if err != nil {
		return nil, err
	}
	cfg := zkserver.DefaultConfig()
	cfg.Dir = dir
	cfg.TickTime = 2 * time.Second // ZooKeeper's sample-config default
	cfg.MaxSessionTimeout = zkSessionTimeout
	srv, err := zkserver.Start(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &zkServer{srv: srv, dir: dir}, nil
}

func (z *zkServer) Pid() int { return z.srv.Pid() }
func (z *zkServer) Stop()    { z.srv.Close(); os.RemoveAll(z.dir) }

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

func (z *zkServer) Dial(ctx context.Context) (conn, error) {
	c, events, err := zk.Connect([]string{z.srv.Addr()}, zkSessionTimeout, zk.WithLogInfo(false), zk.WithLogger(zkQuiet{}))
	if err != nil {
		return nil, err
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return &zkConn{c: c}, nil
			}
		case <-deadline.C:
			c.Close()
			return nil, errors.New("peers: zookeeper session not established in 30s")
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
}

// Prepare creates /dubbo/SERVICE/providers, the persistent parents.
func (z *zkServer) Prepare(ctx context.Context, services int) error {
	cn, err := z.Dial(ctx)
	if err != nil {
		return err
	}
	defer cn.Close()
	c := cn.(*zkConn).c
	mk := func(p string) error {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
		return nil
	}
	if err := mk("/dubbo"); err != nil {
		return err
	}
	return forEach(ctx, services, 16, func(s int) error {
		if err := mk("/dubbo/" + serviceName(s)); err != nil {
			return err
		}
		return mk("/dubbo/" + serviceName(s) + "/providers")
	})
}

type zkConn struct{ c *zk.Conn }

func (c *zkConn) Register(ctx context.Context, in instance) error {
	_, err := c.c.Create("/dubbo/"+serviceName(in.svc)+"/providers/"+in.dubboURL(), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	return err
}

func (c *zkConn) Query(ctx context.Context, svc int) (int, error) {
	kids, _, err := c.c.Children("/dubbo/" + serviceName(svc) + "/providers")
	return len(kids), err
}

func (c *zkConn) Close() { c.c.Close() }

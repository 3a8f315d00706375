package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/ferrysync/ferry/internal/benchchild"
)

// etcdLeaseTTL is the TTL of clientv3 concurrency.Session's leases (its
// default, 60 s); clientv3 renews a lease every third of its TTL.
const etcdLeaseTTL = 60

// etcdServer is an embedded etcd 3.5 in a child process (this program run
// with -serve-etcd), reached with clientv3: one client per connection, one
// lease per client kept alive by KeepAlive, one key per instance on it.
type etcdServer struct {
	child *benchchild.Child
	addr  string
}

func startEtcd(ctx context.Context) (*etcdServer, error) {
	c, err := benchchild.Self(ctx, "-serve-etcd")
	if err != nil {
		return nil, err
	}
	addr, ok := strings.CutPrefix(c.Hello, "etcd ")
	if !ok {
		c.Stop()
		return nil, fmt.Errorf("peers: etcd child said %q", c.Hello)
	}
	return &etcdServer{child: c, addr: addr}, nil
}

func (e *etcdServer) Pid() int                                 { return e.child.Pid() }
func (e *etcdServer) Prepare(ctx context.Context, _ int) error { return nil }
func (e *etcdServer) Stop()                                    { e.child.Stop() }

func (e *etcdServer) Dial(ctx context.Context) (conn, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.addr}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	g, err := c.Grant(ctx, etcdLeaseTTL)
	if err != nil {
		c.Close()
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	ka, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		cancel()
		c.Close()
		return nil, err
	}
	go func() {
		for range ka { // drain the keepalive answers, as a session does
		}
	}()
	return &etcdConn{c: c, lease: g.ID, cancel: cancel}, nil
}

type etcdConn struct {
	c      *clientv3.Client
	lease  clientv3.LeaseID
	cancel context.CancelFunc
}

func etcdPrefix(svc int) string { return "/dubbo/" + serviceName(svc) + "/providers/" }

func (c *etcdConn) Register(ctx context.Context, in instance) error {
	_, err := c.c.Put(ctx, etcdPrefix(in.svc)+in.dubboURL(), "", clientv3.WithLease(c.lease))
	return err
}

func (c *etcdConn) Query(ctx context.Context, svc int) (int, error) {
	r, err := c.c.Get(ctx, etcdPrefix(svc), clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	return len(r.Kvs), nil
}

func (c *etcdConn) Close() { c.cancel(); c.c.Close() }

// serveEtcd is the child: an embedded single-member etcd on loopback, on
// etcd's defaults otherwise; it prints "etcd HOST:PORT" and runs until its
// stdin closes.
func serveEtcd(stdin io.Reader, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "ferry-bench-peers-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cport, err := freePort()
	if err != nil {
		return err
	}
	pport, err := freePort()
	if err != nil {
		return err
	}
	cu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", cport)}
	pu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", pport)}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	// No fsync, like the peers: ZooKeeper runs with forceSync=no
	// (internal/zkserver's default) and Nacos-style ephemeral instances
	// live in memory only. With fsync, every lease grant and Put waits on
	// the (shared, slow) disk and etcd measures the disk.
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return fmt.Errorf("peers: etcd not ready in 60s")
	}
	fmt.Fprintln(stdout, "etcd "+cu.Host)
	benchchild.Serve(stdin, stdout, func(string) string { return "ok" })
	return nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, p, err := net.SplitHostPort(l.Addr().String())
	return p, err
}

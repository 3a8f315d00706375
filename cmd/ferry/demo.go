package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/syncer/worker"
)

// runDemo starts the whole thing on embedded defaults: a private ZooKeeper
// seeded with sample Dubbo providers, an in-process registry, and one sync
// worker on an SQLite store. Everything lives in a temporary directory that
// is removed on exit; Ctrl-C stops it all.
//
//	ferry demo [-zk-port 2181] [-registry-port 8848] [-registry-nodes 1] [-http 127.0.0.1:8083] [-services 40] [-instances 3]
func runDemo(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	zkPort := fs.Int("zk-port", 2181, "ZooKeeper port (a free one when busy)")
	regPort := fs.Int("registry-port", 8848, "registry HTTP port, gRPC on port+1000 (free ones when busy)")
	regNodes := fs.Int("registry-nodes", 1, "registry members: 1, or a cluster of N (up to 9) on loopback, ports 10 apart from -registry-port")
	httpAddr := fs.String("http", "127.0.0.1:8083", "sync worker's /metrics and /api/status (a free port when busy)")
	services := fs.Int("services", 40, "Dubbo services to seed")
	instances := fs.Int("instances", 3, "providers per service")
	ready := fs.Duration("ready-timeout", 60*time.Second, "how long to wait for the first full sync")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *regNodes < 1 || *regNodes > 9 {
		return fmt.Errorf("demo: -registry-nodes %d must be in 1-9", *regNodes)
	}
	return demo(ctx, env, demoConfig{zkPort: *zkPort, regPort: *regPort, regNodes: *regNodes, http: *httpAddr,
		services: *services, instances: *instances, ready: *ready})
}

type demoConfig struct {
	zkPort, regPort     int
	regNodes            int // registry members (0 or 1: one node)
	http                string
	services, instances int
	ready               time.Duration
	// started, when set, is called with the registry's HTTP address once
	// everything runs (tests).
	started func(registryHTTP string)
}

func demo(ctx context.Context, env *cmdEnv, dc demoConfig) error {
	log := env.logger
	if err := zkserver.Available(); err != nil {
		return fmt.Errorf("%w\nZooKeeper comes from Debian's package: sudo apt-get install -y zookeeper (make demo does this)", err)
	}
	dir, err := os.MkdirTemp("", "ferry-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	zcfg := zkserver.DefaultConfig()
	zcfg.Dir = filepath.Join(dir, "zookeeper")
	zcfg.Port = portOrFree(dc.zkPort)
	zcfg.Logger = log
	zk, err := zkserver.Start(ctx, zcfg)
	if err != nil {
		return fmt.Errorf("demo: ZooKeeper: %w", err)
	}
	defer zk.Stop()

	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances, lcfg.ServicesPerApp = dc.services, dc.instances, 4
	lcfg.Prefix = "org.apache.dubbo.demo"
	loader, err := zkload.Connect(ctx, lcfg, log)
	if err != nil {
		return fmt.Errorf("demo: seeding ZooKeeper: %w", err)
	}
	// The seeded providers are ephemeral nodes of this session: it stays
	// open until the demo ends.
	defer loader.Close()
	stats, err := loader.Seed(ctx)
	if err != nil {
		return fmt.Errorf("demo: seeding ZooKeeper: %w", err)
	}

	regs, err := demoRegistry(dc, dir, log)
	for _, r := range regs {
		defer r.Stop()
	}
	if err != nil {
		return err
	}
	reg := regs[0]
	regAddr := reg.HTTPAddr().String()
	var regAddrs []string
	for _, r := range regs {
		regAddrs = append(regAddrs, r.HTTPAddr().String())
	}

	wcfg := worker.DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(dir, "ferry.db")
	wcfg.ZK = []string{zk.Addr()}
	wcfg.Registry = regAddrs
	wcfg.HTTP = dc.http
	if _, p, err := net.SplitHostPort(dc.http); err == nil {
		if n, _ := strconv.Atoi(p); n != 0 && !portFree(n) {
			wcfg.HTTP = "127.0.0.1:0"
		}
	}
	wcfg.WorkerID = "demo-worker"
	wc, err := startWorkerWithConsole(ctx, wcfg, consoleOptions{}, log)
	if err != nil {
		return fmt.Errorf("demo: sync worker: %w", err)
	}
	defer wc.Stop(context.Background())
	w := wc.w
	loginLine := "log in as admin, password " + wc.adminPassword
	if wc.adminPassword == "" {
		loginLine = "log in with the users of " + wcfg.DB
	}

	fmt.Fprintf(env.stdout, `
Ferry demo is running (Ctrl-C stops everything).
  ZooKeeper      %s   seeded with %d Dubbo services, %d providers (some withNacos=true: not synced)
  registry       http://%s (Nacos HTTP API), gRPC %s; members: %s
  sync worker    %s/api/status  and /metrics
  console        %s  (%s)

Try:
  curl 'http://%s/nacos/v1/ns/service/list?pageNo=1&pageSize=100'
  curl 'http://%s/nacos/v1/ns/instance/list?serviceName=providers:%s::'
  ferry user token -db %s -name admin     (then: FERRY_TOKEN=... ferry ctl -server %s apps)
  ferry zkload -zk %s -services 5 -instances 2 -prefix com.example.more   (new services are picked up)
`, zk.Addr(), stats.Services, stats.Providers, regAddr, reg.GRPCAddr(), strings.Join(regAddrs, ","), wc.URL(),
		wc.URL(), loginLine, regAddr, regAddr, loader.Interface(0), wcfg.DB, wc.URL(), zk.Addr())

	if _, err := waitSynced(ctx, w, dc.ready, 200*time.Millisecond); err != nil {
		fmt.Fprintf(env.stdout, "  (not fully synced yet: %v)\n", err)
	} else {
		st := w.Status()
		fmt.Fprintf(env.stdout, "  synced: %d instances registered for %d services\n", st.Engine.Registered, st.Engine.Services)
	}
	if dc.started != nil {
		dc.started(regAddr)
	}
	<-ctx.Done()
	fmt.Fprintln(env.stdout, "stopping…")
	return nil
}

// demoRegistry starts the demo's registry: one node, or a cluster of
// dc.regNodes members on loopback (each with its own data directory),
// ready when it returns. The servers started are returned even on error,
// for the caller to stop.
func demoRegistry(dc demoConfig, dir string, log *slog.Logger) ([]*registryserver.Server, error) {
	if dc.regNodes <= 1 {
		rcfg := registryserver.DefaultConfig()
		rcfg.Port = portOrFree(dc.regPort)
		if rcfg.Port != 0 && !portFree(rcfg.Port+1000) {
			rcfg.Port = 0
		}
		rcfg.DataDir = filepath.Join(dir, "registry")
		reg, err := registryserver.Open(rcfg, log, nil)
		if err != nil {
			return nil, fmt.Errorf("demo: registry: %w", err)
		}
		if err := reg.Start(); err != nil {
			return []*registryserver.Server{reg}, fmt.Errorf("demo: registry: %w", err)
		}
		return []*registryserver.Server{reg}, nil
	}
	ports, err := membership.FreePorts("127.0.0.1", dc.regNodes, dc.regPort)
	if err != nil {
		return nil, fmt.Errorf("demo: registry: %w", err)
	}
	var members []string
	for _, p := range ports {
		members = append(members, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	var regs []*registryserver.Server
	for i, p := range ports {
		rcfg := registryserver.DefaultConfig()
		rcfg.Port = p
		rcfg.DataDir = filepath.Join(dir, fmt.Sprintf("registry-%d", i))
		rcfg.Members, rcfg.Advertise = members, members[i]
		reg, err := registryserver.Open(rcfg, log.With("node", members[i]), nil)
		if err != nil {
			return regs, fmt.Errorf("demo: registry member %s: %w", members[i], err)
		}
		regs = append(regs, reg)
		if err := reg.Start(); err != nil {
			return regs, fmt.Errorf("demo: registry member %s: %w", members[i], err)
		}
	}
	for _, r := range regs {
		if err := r.Raft().WaitReady(60 * time.Second); err != nil {
			return regs, fmt.Errorf("demo: registry member %s: %w", r.Config().Self(), err)
		}
	}
	return regs, nil
}

// waitSynced polls the worker every poll until it has registered every
// instance it wants, and returns its status then.
func waitSynced(ctx context.Context, w *worker.Worker, timeout, poll time.Duration) (worker.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st := w.Status()
		e := st.Engine
		if st.ZKSynced && e.Desired+e.AppDesired > 0 && e.Registered >= e.Desired && e.AppRegistered >= e.AppDesired && e.Pending == 0 && e.InFlight == 0 {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%d of %d instances registered after %v", st.Engine.Registered, st.Engine.Desired, timeout)
		}
		select {
		case <-ctx.Done():
			return st, errors.New("interrupted")
		case <-time.After(poll):
		}
	}
}

// portOrFree returns p when it can be bound on loopback, else 0 (a free
// port chosen by whoever binds it).
func portOrFree(p int) int {
	if p != 0 && portFree(p) {
		return p
	}
	return 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/syncer/worker"
)

// benchSync measures the sync's cold start: a private ZooKeeper seeded with
// -services × -instances providers, a whole registry node and one worker on
// SQLite, all in this process; it reports the time from worker start until
// every desired instance is registered, and the registry's view of it.
//
//	ferry bench sync [-services 3000] [-instances 10] [-timeout 120s]
func benchSync(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench sync", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	services := fs.Int("services", 3000, "services to seed")
	instances := fs.Int("instances", 10, "providers per service")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := zkserver.Available(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-sync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	zcfg := zkserver.DefaultConfig()
	zcfg.Dir = filepath.Join(dir, "zk")
	zk, err := zkserver.Start(ctx, zcfg)
	if err != nil {
		return err
	}
	defer zk.Stop()
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = *services, *instances
	loader, err := zkload.Connect(ctx, lcfg, env.logger)
	if err != nil {
		return err
	}
	defer loader.Close()
	stats, err := loader.Seed(ctx)
	if err != nil {
		return err
	}
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = filepath.Join(dir, "registry")
	reg, err := registryserver.Open(rcfg, env.logger, nil)
	if err != nil {
		return err
	}
	if err := reg.Start(); err != nil {
		return err
	}
	defer reg.Stop()

	wcfg := worker.DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(dir, "ferry.db")
	wcfg.ZK = []string{zk.Addr()}
	wcfg.Registry = []string{reg.HTTPAddr().String()}
	wcfg.HTTP = ""
	wcfg.WorkerID = "bench"
	start := time.Now()
	w, err := worker.Start(ctx, wcfg, env.logger)
	if err != nil {
		return err
	}
	defer w.Stop(context.Background())
	var st worker.Status
	for {
		st = w.Status()
		if st.ZKSynced && st.Engine.Desired > 0 && st.Engine.Registered >= st.Engine.Desired && st.Engine.Pending == 0 {
			break
		}
		if time.Since(start) > *timeout {
			return fmt.Errorf("not synced after %v: %d of %d registered", *timeout, st.Engine.Registered, st.Engine.Desired)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	n := 0
	for _, k := range reg.Naming().Services() {
		info, err := reg.Naming().Select(k, nil, false)
		if err == nil {
			n += len(info.Hosts)
		}
	}
	fmt.Fprintf(env.stdout, "seeded %d services / %d providers in %v (GOMAXPROCS %d)\n",
		stats.Services, stats.Providers, stats.Duration.Round(time.Millisecond), runtime.GOMAXPROCS(0))
	fmt.Fprintf(env.stdout, "worker start → all %d desired instances registered: %v (skipped %v)\n",
		st.Engine.Desired, took.Round(time.Millisecond), st.Engine.Skipped)
	fmt.Fprintf(env.stdout, "registry holds %d instances in %d services\n", n, len(reg.Naming().Services()))
	return nil
}

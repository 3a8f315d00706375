package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"github.com/ferrysync/ferry/syncer/worker"
)

// runSync runs one sync worker until SIGINT/SIGTERM.
//
//	ferry sync -zk 127.0.0.1:2181 -registry 127.0.0.1:8848 [-db sqlite://./data/ferry.db] [-http 127.0.0.1:8083]
//
// On a store without a task it records the clusters and a full-catalog task
// from the flags; then it runs every running task of the store and follows
// the store's tasks and clusters every -reload.
func runSync(ctx context.Context, env *cmdEnv, args []string) error {
	cfg := worker.DefaultConfig()
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	zk := fs.String("zk", strings.Join(cfg.ZK, ","), "ZooKeeper servers, comma separated (seeds the store when it has no task)")
	root := fs.String("zk-root", cfg.ZKRoot, "Dubbo's root node in ZooKeeper")
	fs.DurationVar(&cfg.ZKSessionTimeout, "zk-session", cfg.ZKSessionTimeout, "ZooKeeper session timeout (seeds the store when it has no task)")
	reg := fs.String("registry", strings.Join(cfg.Registry, ","), "registry servers (HTTP host:port; gRPC is port+1000), comma separated")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "store DSN: sqlite://PATH or mysql://user:pass@tcp(host:port)/db")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "listen address of /metrics and /api/status (empty: off)")
	fs.StringVar(&cfg.WorkerID, "worker-id", "", "this worker's id (default hostname-pid)")
	fs.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "registry namespace")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "registry group")
	fs.DurationVar(&cfg.TaskPoll, "reload", cfg.TaskPoll, "how often tasks and clusters are re-read from the store")
	stopTimeout := fs.Duration("stop-timeout", 10*time.Second, "bound on a graceful stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.ZK = splitList(*zk)
	cfg.ZKRoot = *root
	cfg.Registry = splitList(*reg)
	cfg.Version = version
	w, err := worker.Start(ctx, cfg, env.logger)
	if err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), *stopTimeout)
	defer cancel()
	w.Stop(sctx)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

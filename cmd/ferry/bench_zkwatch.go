package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/internal/zkwatchbench"
)

// benchZKWatch measures zkwatch on a seeded catalog: cold start to Synced,
// heap per provider, and write→notification latency under churn. Without
// -zk it starts a private ZooKeeper (Debian's package) in a temp dir.
func benchZKWatch(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench zkwatch", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	servers := fs.String("zk", "", "ZooKeeper servers, comma-separated (default: start a private one)")
	root := fs.String("zk-root", "ferrybench", "root to seed under (a fresh name per run is best)")
	services := fs.Int("services", 3000, "services to seed")
	instances := fs.Int("instances", 10, "provider instances per service")
	rate := fs.Float64("churn", 50, "provider replacements per second during the latency phase (2 writes each)")
	churnFor := fs.Duration("churn-for", 10*time.Second, "length of the latency phase")
	removeAfter := fs.Duration("churn-remove-after", 200*time.Millisecond, "how long an old node outlives its replacement")
	listConc := fs.Int("list-concurrency", 0, "watcher listings in flight (0: zkwatch default 32; 1 = sequential, for comparison)")
	skipChurn := fs.Bool("no-churn", false, "skip the latency phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := strings.Split(*servers, ",")
	if *servers == "" {
		dir, err := os.MkdirTemp("", "ferry-bench-zk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := zkserver.Start(ctx, zkserver.Config{Dir: dir, Logger: env.logger})
		if err != nil {
			return err
		}
		defer srv.Close()
		addrs = []string{srv.Addr()}
	}
	fmt.Fprintf(env.stdout, "zkwatch: %d services × %d instances", *services, *instances)
	if !*skipChurn {
		fmt.Fprintf(env.stdout, ", churn %.0f replacements/s (%.0f writes/s) for %v", *rate, 2**rate, *churnFor)
	}
	fmt.Fprintln(env.stdout)
	res, err := zkwatchbench.Run(ctx, zkwatchbench.Options{
		Servers: addrs, Root: *root, Services: *services, Instances: *instances,
		ChurnRate: *rate, ChurnFor: *churnFor, RemoveAfter: *removeAfter,
		ListConcurrency: *listConc, SkipChurn: *skipChurn,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, res)
	return nil
}

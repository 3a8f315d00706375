package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
)

// runZKLoad seeds a ZooKeeper with a Dubbo catalog and optionally churns it.
// Ephemeral nodes live as long as this process's session, so it keeps
// running (holding them) until interrupted or -duration ends; with
// -persistent and no -churn it exits once the catalog is written.
func runZKLoad(ctx context.Context, env *cmdEnv, args []string) error {
	d := zkload.DefaultConfig()
	fs := flag.NewFlagSet("zkload", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	servers := fs.String("zk", "127.0.0.1:2181", "ZooKeeper servers, comma-separated")
	root := fs.String("zk-root", d.Root, "Dubbo registry root (registry group)")
	services := fs.Int("services", d.Services, "number of services (interfaces)")
	instances := fs.Int("instances", d.Instances, "provider instances per service")
	perApp := fs.Int("services-per-app", d.ServicesPerApp, "interfaces exported by one application")
	persistent := fs.Bool("persistent", false, "write persistent nodes with dynamic=false (default: ephemeral)")
	withNacos := fs.Float64("with-nacos", d.WithNacosShare, "share of instances whose URL has withNacos=true")
	versionShare := fs.Float64("version-share", d.VersionShare, "share of services with a version")
	groupShare := fs.Float64("group-share", d.GroupShare, "share of services with a group")
	prefix := fs.String("prefix", d.Prefix, "interface name prefix")
	conc := fs.Int("concurrency", d.Concurrency, "zk Multi batches in flight while seeding")
	batch := fs.Int("batch", d.Batch, "creates per zk Multi")
	seed := fs.Uint64("seed", 0, "random seed (choice of versions, groups, withNacos, churn targets)")
	churn := fs.Float64("churn", 0, "after seeding, replace this many providers per second (kill-restart pattern); 0: none")
	removeAfter := fs.Duration("churn-remove-after", time.Second, "how long an old node outlives its replacement")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted; with -persistent and no -churn: exit after seeding)")
	clean := fs.Bool("clean", false, "on exit, delete the provider nodes written (useful with -persistent)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := d
	cfg.Servers = strings.Split(*servers, ",")
	cfg.Root, cfg.Services, cfg.Instances, cfg.ServicesPerApp = *root, *services, *instances, *perApp
	cfg.Persistent, cfg.WithNacosShare, cfg.VersionShare, cfg.GroupShare = *persistent, *withNacos, *versionShare, *groupShare
	cfg.Prefix, cfg.Concurrency, cfg.Batch, cfg.Seed = *prefix, *conc, *batch, *seed
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	l, err := zkload.Connect(cctx, cfg, env.logger)
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()
	st, err := l.Seed(ctx)
	if err != nil {
		return err
	}
	kind := "ephemeral"
	if cfg.Persistent {
		kind = "persistent"
	}
	fmt.Fprintf(env.stdout, "seeded %d services, %d %s providers under /%s in %v (%.0f nodes/s)\n",
		st.Services, st.Providers, kind, strings.Trim(cfg.Root, "/"), st.Duration.Round(time.Millisecond),
		float64(st.Providers)/st.Duration.Seconds())
	if *clean {
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := l.Clean(cctx); err != nil {
				fmt.Fprintf(env.stderr, "ferry zkload: clean: %v\n", err)
			}
		}()
	}
	switch {
	case *churn > 0:
		fmt.Fprintf(env.stdout, "churning %.1f replacements/s (old node removed %v after the new one); Ctrl-C to stop\n", *churn, *removeAfter)
		var writes int
		err := l.Churn(ctx, zkload.ChurnConfig{Rate: *churn, RemoveAfter: *removeAfter, OnWrite: func(w zkload.Write) {
			if w.Created {
				writes++
			}
		}})
		fmt.Fprintf(env.stdout, "churned %d replacements\n", writes)
		return err
	case cfg.Persistent && *duration == 0:
		return nil
	default:
		fmt.Fprintln(env.stdout, "holding the session (ephemeral nodes live while it does); Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
}

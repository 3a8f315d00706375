package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/diag"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer/worker"
)

// registryPasswordEnv holds the registry password of -registry-user
// (never a flag: flags show in ps).
const registryPasswordEnv = "FERRY_REGISTRY_PASSWORD"

// runSync runs one sync worker until SIGINT/SIGTERM.
//
//	ferry sync -zk 127.0.0.1:2181 -registry 127.0.0.1:8848 [-db sqlite://./data/ferry.db] [-http 127.0.0.1:8083] [-registry-user U] [-tls-cert F -tls-key F]
//
// The console (package web) is served on -http; on an empty users table the
// first worker creates user admin and prints its password once.
//
// The registry password is FERRY_REGISTRY_PASSWORD; the store encrypts it
// with FERRY_STORE_KEY (or the key file FERRY_STORE_KEY_FILE).
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
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "listen address of the console, /api/v1, /api/status and /metrics (empty: off)")
	var copts consoleOptions
	fs.StringVar(&copts.tlsCert, "tls-cert", "", "PEM certificate: serve the console over HTTPS (with -tls-key)")
	fs.StringVar(&copts.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&cfg.WorkerID, "worker-id", "", "this worker's id (default hostname-pid)")
	fs.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "registry namespace")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "registry group")
	fs.DurationVar(&cfg.TaskPoll, "reload", cfg.TaskPoll, "how often tasks and clusters are re-read from the store")
	fs.DurationVar(&cfg.SettingsPoll, "settings-poll", cfg.SettingsPoll,
		"how often the store's settings generation is read; when it moved, app modes and tasks are reloaded at once")
	fs.DurationVar(&cfg.CommandPoll, "command-poll", cfg.CommandPoll, "how often cluster-wide commands (confirm removals, resync a service) are polled")
	fs.DurationVar(&cfg.Lessor.TTL, "lease-ttl", cfg.Lessor.TTL, "shard lease TTL: a crashed worker's shards move this long after its last renewal")
	fs.DurationVar(&cfg.Lessor.RenewInterval, "lease-renew", cfg.Lessor.RenewInterval, "how often shard leases are renewed and rebalanced")
	fs.DurationVar(&cfg.Lessor.OutageKeep, "store-outage-keep", cfg.Lessor.OutageKeep,
		"while the store is unreachable, keep beating the last owned instances (light beats only) for at most this long (0: for the whole outage)")
	fs.DurationVar(&cfg.RegistryGiveUp, "registry-give-up", cfg.RegistryGiveUp,
		"give the shards up to another live worker after the registry is unreachable this long (0: never)")
	fs.StringVar(&cfg.Retention.Schedule, "retention-schedule", cfg.Retention.Schedule,
		"cron spec of the store's pruning job (every worker runs it; the deletes are idempotent; empty: off)")
	fs.DurationVar(&cfg.Retention.EventMaxAge, "event-max-age", cfg.Retention.EventMaxAge, "events older than this are pruned")
	fs.DurationVar(&cfg.Retention.WorkerDeadFor, "worker-dead-for", cfg.Retention.WorkerDeadFor,
		"worker rows silent this long are pruned, with their task status and count rows")
	fs.DurationVar(&cfg.Retention.MetricsMaxAge, "metrics-max-age", cfg.Retention.MetricsMaxAge, "per-minute metric history older than this is pruned")
	fs.DurationVar(&cfg.Retention.CommandsExpiredFor, "commands-expired-for", cfg.Retention.CommandsExpiredFor,
		"commands expired this long are pruned with their acks")
	stopTimeout := fs.Duration("stop-timeout", 10*time.Second, "bound on a graceful stop")
	fs.StringVar(&cfg.RegistryUser, "registry-user", "", "registry user to log in as (seeds the store's registry cluster); the password comes from $"+registryPasswordEnv)
	fs.StringVar(&cfg.RegistryCAFile, "registry-ca", "", "PEM CA file: talk TLS to the registry (gRPC and https), trusting it")
	pwFlag := fs.String("registry-password", "", "refused: give the password in $"+registryPasswordEnv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pwFlag != "" {
		return fmt.Errorf("ferry sync: -registry-password is refused (flags show in ps and shell history); set %s instead", registryPasswordEnv)
	}
	cfg.RegistryPassword = os.Getenv(registryPasswordEnv)
	if cfg.RegistryPassword != "" && cfg.RegistryUser == "" {
		return fmt.Errorf("ferry sync: %s is set but -registry-user is not", registryPasswordEnv)
	}
	secrets, err := store.SecretsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.Secrets = secrets
	cfg.ZK = splitList(*zk)
	cfg.ZKRoot = *root
	cfg.Registry = splitList(*reg)
	cfg.Version = version
	if (copts.tlsCert == "") != (copts.tlsKey == "") {
		return fmt.Errorf("ferry sync: -tls-cert and -tls-key go together")
	}
	diag.LogLimits(env.logger) // GOMEMLIMIT, GOGC, GOMAXPROCS in force
	w, err := startWorkerWithConsole(ctx, cfg, copts, env.logger)
	if err != nil {
		return err
	}
	if w.adminPassword != "" {
		fmt.Fprintf(env.stdout, "console: created user admin with password %s (shown once; add users with `ferry user add`)\n", w.adminPassword)
	}
	if u := w.URL(); u != "" {
		fmt.Fprintf(env.stdout, "console: %s\n", u)
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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	systems  []string
	conns    []int
	services int
	replicas int
	readers  int
	hold     time.Duration
	queries  time.Duration
	ferry    string
	out      string
	svg      string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve-etcd" {
		// The child ends when its stdin closes (benchchild.Stop closes it
		// before its SIGTERM): the signals are ignored so that the deferred
		// clean-up runs.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		if err := serveEtcd(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "peers -serve-etcd:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry bench peers:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("subsystem", "bench-peers")
	results, err := runAll(ctx, log, cfg)
	md := markdown(results, cfg)
	fmt.Fprint(stdout, md)
	if werr := writeOutputs(cfg, results, md); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry bench peers:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("ferry bench peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	systems := fs.String("systems", "ferry,zookeeper,etcd", "systems to run, one server at a time, in this order")
	conns := fs.String("conns", "300,3000", "application connections, one run per value (comma-separated)")
	services := fs.Int("services", 3000, "services")
	replicas := fs.Int("replicas", 10, "instances per service, each registered by another application connection")
	readers := fs.Int("readers", 64, "query connections, one request in flight each")
	hold := fs.Duration("hold", 30*time.Second, "keepalive-only window (server CPU while holding the instances)")
	dur := fs.Duration("duration", 5*time.Second, "query window")
	ferry := fs.String("ferry", "", "path of the ferry binary to run as the registry (ferry bench peers sets it)")
	out := fs.String("out", "", "write the Markdown table to this file too")
	svg := fs.String("svg", "", "write the SVG chart to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ferry bench peers [flags]\n\nThe same real-client-shaped workload against Ferry's registry, ZooKeeper and etcd, one server at a time.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := config{services: *services, replicas: *replicas, readers: *readers, hold: *hold, queries: *dur, ferry: *ferry, out: *out, svg: *svg}
	for _, s := range strings.Split(*systems, ",") {
		switch s = strings.TrimSpace(s); s {
		case "ferry", "zookeeper", "etcd":
			cfg.systems = append(cfg.systems, s)
		default:
			return cfg, fmt.Errorf("-systems: unknown system %q (ferry, zookeeper, etcd)", s)
		}
	}
	for _, c := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			return cfg, fmt.Errorf("-conns: %q is not a number", c)
		}
		cfg.conns = append(cfg.conns, n)
	}
	for _, n := range cfg.conns {
		if err := cfg.shape(n).validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func (c config) shape(conns int) shape {
	return shape{conns: conns, services: c.services, replicas: c.replicas, readers: c.readers, hold: c.hold, queries: c.queries}
}

// legTimeout bounds one system at one shape (a server that stops
// answering must not hang the run).
const legTimeout = 15 * time.Minute

// runAll runs every system at every connection count, one server at a
// time, each on a fresh server. A system that fails at one shape is logged
// and left out of the results; the others still run. It returns the
// results and every failure.
func runAll(ctx context.Context, log *slog.Logger, cfg config) ([]result, error) {
	log.Info("start", "systems", cfg.systems, "conns", cfg.conns, "instances", cfg.services*cfg.replicas,
		"readers", cfg.readers, "GOMAXPROCS", runtime.GOMAXPROCS(0))
	var out []result
	var errs []error
	for _, n := range cfg.conns {
		for _, sys := range cfg.systems {
			if ctx.Err() != nil {
				return out, errors.Join(append(errs, ctx.Err())...)
			}
			srv, err := startServer(ctx, sys, cfg.ferry)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s at %d conns: start: %w", sys, n, err))
				log.Error("start failed", "system", sys, "conns", n, "err", err)
				continue
			}
			lctx, cancel := context.WithTimeout(ctx, legTimeout)
			r, err := run(lctx, log, sys, srv, cfg.shape(n))
			cancel()
			srv.Stop()
			if err != nil {
				errs = append(errs, fmt.Errorf("at %d conns: %w", n, err))
				log.Error("run failed", "system", sys, "conns", n, "err", err)
				continue
			}
			log.Info("done", "system", sys, "conns", n, "register/s", int(r.registerPerSec), "queries/s", int(r.queriesPerSec))
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

func startServer(ctx context.Context, sys, ferry string) (server, error) {
	switch sys {
	case "ferry":
		return startFerry(ctx, ferry)
	case "zookeeper":
		return startZooKeeper(ctx)
	default:
		return startEtcd(ctx)
	}
}

func writeOutputs(cfg config, results []result, md string) error {
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if cfg.svg != "" && len(results) > 0 {
		if err := os.WriteFile(cfg.svg, []byte(chart(results)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

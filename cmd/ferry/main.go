// Command ferry moves a Dubbo estate from ZooKeeper to a Nacos-compatible
// registry. Each subcommand lives in its own file; main only dispatches,
// wires signals and builds the root logger.
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
	"sort"
	"strings"
	"syscall"
)

// command is one ferry subcommand. run parses args itself (a flag.FlagSet of
// its own) and returns when ctx is cancelled or the work is done.
type command struct {
	summary string
	run     func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv is what main hands every subcommand: no globals.
type cmdEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	logger *slog.Logger
}

func commands() map[string]command {
	return map[string]command{
		"registry": {"run the Nacos-compatible registry server", runRegistry},
		"sync":     {"run a ZooKeeper → registry sync worker", runSync},
		"demo":     {"start ZooKeeper, a registry and a sync worker on embedded defaults", runDemo},
		"migrate":  {"apply or report the store's SQL migrations (up|status)", runMigrate},
		"zkload":   {"seed a ZooKeeper with Dubbo providers, or churn them", runZKLoad},
		"bench":    {"run a benchmark (ferry bench -h lists them)", runBench},
		"user":     {"manage console users and API tokens in the store (add|token|list)", runUser},
		"ctl":      {"drive a worker's console API from the shell (apps|app set|events)", runCtl},
		"version":  {"print the version", runVersion},
	}
}

// version is set at link time: -ldflags "-X main.version=...".
var version = "dev"

func runVersion(_ context.Context, env *cmdEnv, _ []string) error {
	fmt.Fprintln(env.stdout, "ferry", version)
	return nil
}

// errNotBuilt marks a subcommand whose issue has not landed yet.
var errNotBuilt = errors.New("ferry: this subcommand is not built yet")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ferry <command> [flags]   (ferry <command> -h for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nenvironment: FERRY_LOG_LEVEL=debug|info|warn|error (default info)")
}

func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if s := os.Getenv("FERRY_LOG_LEVEL"); s != "" {
		if err := level.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
			fmt.Fprintf(w, "ferry: FERRY_LOG_LEVEL=%q is not a level, using info\n", s)
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runIO(args, os.Stdin, stdout, stderr)
}

// runIO is run with stdin given (tests feed `ferry user add` its password).
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ferry: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cmdEnv{stdin: stdin, stdout: stdout, stderr: stderr, logger: newLogger(stderr)}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ferry %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// benchmarks maps `ferry bench NAME` to its runner; each lives in bench_NAME.go.
func benchmarks() map[string]func(ctx context.Context, env *cmdEnv, args []string) error {
	return map[string]func(ctx context.Context, env *cmdEnv, args []string) error{
		"registry": benchRegistry,
		"zkwatch":  benchZKWatch,
		"client":   benchClient,
		"sync":     benchSync,
		"config":   benchConfig,
		"peers":    benchPeers,
		"soak":     benchSoak,
	}
}

func benchUsage(w io.Writer, names []string) {
	fmt.Fprintln(w, "usage: ferry bench NAME [flags]   (ferry bench NAME -h for its flags)")
	fmt.Fprintln(w, "       ferry bench all            (every benchmark, one after another, on its defaults)")
	fmt.Fprintf(w, "\nbenchmarks: %s\n", strings.Join(names, ", "))
}

func runBench(ctx context.Context, env *cmdEnv, args []string) error {
	all := benchmarks()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 {
		benchUsage(env.stderr, names)
		return fmt.Errorf("which benchmark? one of %v, or all", names)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		benchUsage(env.stderr, names)
		return flag.ErrHelp
	case "all":
		// `all` takes no flags of its own: each benchmark runs on its
		// defaults. -h prints the help; anything else is refused rather
		// than silently starting every benchmark.
		fs := flag.NewFlagSet("bench all", flag.ContinueOnError)
		fs.SetOutput(env.stderr)
		fs.Usage = func() { benchUsage(env.stderr, names) }
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("bench all takes no arguments (got %q); run one benchmark to set its flags", fs.Args())
		}
		for _, n := range names {
			fmt.Fprintf(env.stdout, "== ferry bench %s\n", n)
			if err := all[n](ctx, env, nil); err != nil {
				fmt.Fprintf(env.stdout, "   %v\n", err)
			}
		}
		return nil
	}
	b, ok := all[args[0]]
	if !ok {
		return fmt.Errorf("unknown benchmark %q: one of %v, or all", args[0], names)
	}
	return b(ctx, env, args[1:])
}

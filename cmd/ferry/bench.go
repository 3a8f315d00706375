package main

import (
	"context"
	"fmt"
	"sort"
)

// benchmarks maps `ferry bench NAME` to its runner; each lives in bench_NAME.go.
func benchmarks() map[string]func(ctx context.Context, env *cmdEnv, args []string) error {
	return map[string]func(ctx context.Context, env *cmdEnv, args []string) error{
		"registry": benchRegistry,
		"zkwatch":  benchZKWatch,
		"client":   benchClient,
		"sync":     benchSync,
		"config":   benchConfig,
	}
}

func runBench(ctx context.Context, env *cmdEnv, args []string) error {
	all := benchmarks()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 {
		return fmt.Errorf("which benchmark? one of %v, or all", names)
	}
	if args[0] == "all" {
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

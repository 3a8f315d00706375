package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// errNoPeersModule: `ferry bench peers` runs the bench/peers module from
// Ferry's source tree, which is not here.
var errNoPeersModule = errors.New("ferry: bench peers needs Ferry's source tree (bench/peers, a module of its own so that etcd stays out of ferry's go.mod) and the go toolchain: run it inside a checkout or set FERRY_SRC to one")

// benchPeers runs the peer benchmark (Ferry's registry, ZooKeeper and etcd
// under one real-client-shaped workload) with `go run` of the bench/peers
// module, passing this binary as the registry to run:
//
//	ferry bench peers [-conns 300,3000] [-hold 30s] [-duration 5s] [-out peers.md] [-svg peers.svg] ...
func benchPeers(ctx context.Context, env *cmdEnv, args []string) error {
	dir, err := peersModule()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: %v", errNoPeersModule, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"run", ".", "-ferry", exe}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
	// On ^C the bench stops its server first: interrupt, then kill.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 0 {
			return nil
		}
		return fmt.Errorf("bench peers: %w", err)
	}
	return nil
}

// peersModule finds bench/peers: under $FERRY_SRC, else in the working
// directory or one of its parents, else next to this binary's directory
// (bin/ferry in a checkout).
func peersModule() (string, error) {
	var starts []string
	if src := os.Getenv("FERRY_SRC"); src != "" {
		if isPeersModule(filepath.Join(src, "bench", "peers")) {
			return filepath.Join(src, "bench", "peers"), nil
		}
		return "", fmt.Errorf("%w (FERRY_SRC=%s has no bench/peers/go.mod)", errNoPeersModule, src)
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, d := range starts {
		for {
			if p := filepath.Join(d, "bench", "peers"); isPeersModule(p) {
				return p, nil
			}
			up := filepath.Dir(d)
			if up == d {
				break
			}
			d = up
		}
	}
	return "", errNoPeersModule
}

func isPeersModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && strings.HasPrefix(string(b), "module github.com/ferrysync/ferry/bench/peers\n")
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/syncer/worker"
)

// benchAppLag is the lag phase for Dubbo 3 application-level instances:
// n instance nodes of random seeded applications added and removed at
// rate/s, timed until the registry's service {app} shows the change.
func benchAppLag(ctx context.Context, env *cmdEnv, loader *zkload.Loader, regHTTP string, apps, per, rate, n int) error {
	rnd := rand.New(rand.NewPCG(13, 17))
	next := per
	change := func() (string, []byte, lagProbe, error) {
		a := rnd.IntN(apps)
		j := next
		next++
		p := lagProbe{service: loader.AppName(a), addr: net.JoinHostPort(loader.AppHost(a, j), "20880")}
		return loader.AppPath(a, j), loader.AppData(a, j, time.Now().UnixMilli(), "r1"), p, nil
	}
	return benchLag(ctx, env, loader.Conn(), regHTTP, "ZooKeeper app-level change", rate, n, change)
}

// waitAppsSynced waits until the worker desires and keeps want
// application-level instances (the seeded total): the watcher is synced
// before the engine has taken every application's change from its queue,
// so the counts are still growing when waitSynced first holds.
func waitAppsSynced(ctx context.Context, w *worker.Worker, want int, timeout, poll time.Duration) (worker.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := waitSynced(ctx, w, time.Until(deadline), poll)
		if err != nil {
			return st, err
		}
		if e := st.Engine; e.AppDesired >= want && e.AppRegistered >= e.AppDesired {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%d of %d application-level instances registered after %v", st.Engine.AppRegistered, want, timeout)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(poll):
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
)

// TestSyncIntoClusterMemberKill9, all real processes: three `ferry
// registry` members, real ZooKeeper seeded with 20 services × 3 providers,
// two `ferry sync` workers on MariaDB registering into the cluster (their
// client given every member). kill -9 of the member holding the most of
// the workers' connections: a consumer asking the two survivors for
// healthy instances only, every 100 ms, finds every synced instance in
// every sample through the registry's 15 s unhealthy mark and beyond (the
// workers reconnect to a survivor, their merged beats go to the members
// now responsible, which adopted the instances).
func TestSyncIntoClusterMemberKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three registry and two sync processes")
	}
	const services, instances = 20, 3
	members, procs := startCluster(t, 3)
	db := mysqlserver.ForTest(t)
	zks := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := db.CreateDatabase(ctx, "clustersync")
	if err != nil {
		t.Fatal(err)
	}
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zks.Addr()}
	lcfg.Services, lcfg.Instances = services, instances
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loader.Close)
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"w1", "w2"} {
		startFerry(t, id, "sync", "-zk", zks.Addr(), "-registry", strings.Join(members, ","), "-db", dsn,
			"-http", freeAddr(t), "-worker-id", id)
	}
	names := make([]string, services)
	must := map[string]bool{}
	for i := range services {
		names[i] = "providers:" + loader.Interface(i) + "::"
		for j := range instances {
			must[names[i]+"/"+loader.Host(i, j)+":20880"] = true
		}
	}
	healthyOn := func(addr string) (map[string]bool, error) {
		out := map[string]bool{}
		for _, svc := range names {
			hs, err := healthyHosts(addr, svc)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				out[svc+"/"+h] = true
			}
		}
		return out, nil
	}
	missing := func(h map[string]bool) []string {
		var out []string
		for k := range must {
			if !h[k] {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	poll.Every(t, 90*time.Second, httpPoll, "every synced instance healthy on every member", func() bool {
		for _, m := range members {
			h, err := healthyOn(m)
			if err != nil || len(missing(h)) > 0 {
				return false
			}
		}
		return true
	})

	// The member holding the most of the workers' connections.
	victim, most := "", -1
	for _, m := range members {
		_, body, err := httpDo("GET", "http://"+m+"/nacos/v2/core/loader/current")
		var conns map[string]json.RawMessage
		if err != nil || json.Unmarshal([]byte(body), &conns) != nil {
			t.Fatalf("loader/current on %s: %v %s", m, err, body)
		}
		if len(conns) > most {
			victim, most = m, len(conns)
		}
	}
	var survivors []string
	for _, m := range members {
		if m != victim {
			survivors = append(survivors, m)
		}
	}
	var samplers []*sampler
	for _, m := range survivors {
		samplers = append(samplers, sampleView(must, func() (map[string]string, error) {
			h, err := healthyOn(m)
			out := make(map[string]string, len(h))
			for k := range h {
				out[k] = m
			}
			return out, err
		}))
	}
	if err := procs[victim].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("killed %s (%d connections)", victim, most)
	for time.Since(killed) < 25*time.Second {
		time.Sleep(200 * time.Millisecond) // observation window for the samplers, not synchronisation
	}
	for _, sm := range samplers {
		sm.done(t)
	}
}

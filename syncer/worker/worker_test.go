package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/zkwatch"
)

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelWarn)
}

// hosts lists a service's instances through the registry's HTTP API.
func hosts(t *testing.T, regAddr, service string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + regAddr + "/nacos/v1/ns/instance/list?" + url.Values{"serviceName": {service}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Hosts []map[string]any `json:"hosts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a.Hosts
}

// stack is a private ZooKeeper seeded with plain providers (no version,
// group or withNacos) and a whole registry node, stopped at cleanup.
type stack struct {
	zk      *zkserver.Server
	loader  *zkload.Loader
	regAddr string
}

// seedZK writes lcfg's catalog into ZooKeeper through a loader whose
// session lives until the test ends.
func seedZK(ctx context.Context, t *testing.T, lcfg zkload.Config) *zkload.Loader {
	t.Helper()
	loader, err := zkload.Connect(ctx, lcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loader.Close)
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return loader
}

// newStack seeds services × instances providers; a non-zero session is the
// seeding session's timeout (its nodes are ephemeral).
// tweak, when given, adjusts the seeding config further.
func newStack(ctx context.Context, t *testing.T, services, instances int, session time.Duration, tweak ...func(*zkload.Config)) (zkload.Config, *stack) {
	t.Helper()
	zk := zkserver.ForTest(t)
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = services, instances
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	if session != 0 {
		lcfg.SessionTimeout = session
	}
	for _, f := range tweak {
		f(&lcfg)
	}
	loader := seedZK(ctx, t, lcfg)
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	return lcfg, &stack{zk: zk, loader: loader, regAddr: reg.HTTPAddr().String()}
}

// workerConfig is worker "w1" on a fresh SQLite store against the stack.
func (s *stack) workerConfig(t *testing.T, http string) Config {
	cfg := DefaultConfig()
	cfg.DB = "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	cfg.ZK = []string{s.zk.Addr()}
	cfg.Registry = []string{s.regAddr}
	cfg.HTTP = http
	cfg.WorkerID = "w1"
	// One worker that never hands over: a long lease keeps its statements'
	// deadlines (TTL/2, TTL/4) above what SQLite takes under -race on a
	// loaded two-core machine (a 2.5 s renew deadline was missed there and
	// the worker, rightly, stopped applying changes as in a store outage).
	cfg.Lessor.TTL = 15 * time.Second
	return cfg
}

// waitFor waits for cond and returns how long that took.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return poll.Until(t, d, what, cond)
}

// TestWorkerSyncsZooKeeperIntoRegistry runs the assembled worker against a
// private ZooKeeper, a whole registry node and an SQLite store.
func TestWorkerSyncsZooKeeperIntoRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lcfg, stk := newStack(ctx, t, 6, 3, 0)
	loader, regAddr := stk.loader, stk.regAddr
	wcfg := stk.workerConfig(t, "127.0.0.1:0")
	w, err := Start(ctx, wcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop(context.Background())
		}
	}()

	svc0 := "providers:" + loader.Interface(0) + "::"
	waitFor(t, "every seeded provider in the registry", 60*time.Second, func() bool {
		for i := 0; i < lcfg.Services; i++ {
			if len(hosts(t, regAddr, "providers:"+loader.Interface(i)+"::")) != lcfg.Instances {
				return false
			}
		}
		return true
	})
	h := hosts(t, regAddr, svc0)[0]
	md, _ := h["metadata"].(map[string]any)
	if md["ferry.source"] == nil || md["interface"] != loader.Interface(0) || md["category"] != "providers" || md["protocol"] != "dubbo" {
		t.Fatalf("synced metadata = %v, want the source marker, interface, category and protocol", md)
	}

	// A provider removed from ZooKeeper leaves the registry.
	provPath := loader.ServicePath(0) + "/providers"
	kids, _, err := loader.Conn().Children(provPath)
	if err != nil || len(kids) != lcfg.Instances {
		t.Fatalf("children of %s = %v, %v", provPath, kids, err)
	}
	if err := loader.Conn().Delete(provPath+"/"+kids[0], -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed provider to leave the registry", 30*time.Second, func() bool {
		return len(hosts(t, regAddr, svc0)) == lcfg.Instances-1
	})

	// A provider restarted on the same address (a newer node, then the old
	// one deleted) is updated in place through the client's upsert.
	ip := hosts(t, regAddr, svc0)[0]["ip"].(string)
	j := 0
	for j < lcfg.Instances && loader.Host(0, j) != ip {
		j++
	}
	kids, _, err = loader.Conn().Children(provPath)
	if err != nil {
		t.Fatal(err)
	}
	newTS := time.Now().UnixMilli()
	if _, err := loader.Conn().Create(loader.ProviderPath(0, loader.ProviderURL(0, j, newTS)), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		if u, err := zkwatch.ParseProviderNode(k); err == nil && u.Host == ip {
			if err := loader.Conn().Delete(provPath+"/"+k, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "the restarted provider's new timestamp in the registry", 30*time.Second, func() bool {
		for _, h := range hosts(t, regAddr, svc0) {
			if md, _ := h["metadata"].(map[string]any); h["ip"] == ip && md["timestamp"] == fmt.Sprint(newTS) {
				return true
			}
		}
		return false
	})
	if n := len(hosts(t, regAddr, svc0)); n != lcfg.Instances-1 {
		t.Fatalf("after the restart %s has %d instances, want %d", svc0, n, lcfg.Instances-1)
	}

	// A provider node that does not parse is skipped with an event; the
	// service's other providers stay.
	if _, err := loader.Conn().Create(provPath+"/not-a-provider-url", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an event for the node that does not parse", 30*time.Second, func() bool {
		evs, err := w.st.ListEvents(ctx, store.EventFilter{Kind: string(EventNodeSkipped)})
		return err == nil && len(evs) == 1 && strings.Contains(evs[0].Detail, "not-a-provider-url") &&
			strings.Contains(evs[0].Detail, "reason=unparsable")
	})
	if n := len(hosts(t, regAddr, svc0)); n != lcfg.Instances-1 {
		t.Fatalf("after a bad node %s has %d instances, want %d", svc0, n, lcfg.Instances-1)
	}

	// The worker's status (the console's /api/status) says what it does.
	if st := w.Status(); st.Worker != "w1" || st.Engine.Registered != lcfg.Services*lcfg.Instances-1 {
		t.Fatalf("status = %+v, want w1 with %d registered", st, lcfg.Services*lcfg.Instances-1)
	}
	// Confirming held removals of every task reaches the running engine.
	if n := w.Confirm(0); n != 1 {
		t.Fatalf("Confirm(0) told %d engines, want 1", n)
	}

	// A graceful stop deregisters nothing: a successor keeps beating them.
	w.Stop(context.Background())
	stopped = true
	if n := len(hosts(t, regAddr, svc0)); n != lcfg.Instances-1 {
		t.Fatalf("after a graceful stop %s has %d instances, want %d (nothing deregistered)", svc0, n, lcfg.Instances-1)
	}
}

// TestWorkerSyncsServiceCreatedAfterStart: a Dubbo service that appears in
// ZooKeeper after the worker started (its service, providers and provider
// nodes created then) is synced like the seeded ones.
func TestWorkerSyncsServiceCreatedAfterStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lcfg, stk := newStack(ctx, t, 2, 2, 0)
	loader, regAddr := stk.loader, stk.regAddr
	w, err := Start(ctx, stk.workerConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	waitFor(t, "the seeded providers in the registry", 60*time.Second, func() bool {
		return len(hosts(t, regAddr, nacosName(loader.Interface(1)))) == lcfg.Instances
	})
	i := lcfg.Services // a service index beyond the seeded catalog
	for _, p := range []string{loader.ServicePath(i), loader.ServicePath(i) + "/providers"} {
		if _, err := loader.Conn().Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	for j := 0; j < 3; j++ {
		p := loader.ProviderPath(i, loader.ProviderURL(i, j, time.Now().UnixMilli()))
		if _, err := loader.Conn().Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the new service's providers in the registry", 30*time.Second, func() bool {
		return len(hosts(t, regAddr, nacosName(loader.Interface(i)))) == 3
	})
}

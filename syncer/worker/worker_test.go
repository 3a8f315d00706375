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

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
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

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestWorkerSyncsZooKeeperIntoRegistry runs the assembled worker against a
// private ZooKeeper, a whole registry node and an SQLite store.
func TestWorkerSyncsZooKeeperIntoRegistry(t *testing.T) {
	zk := zkserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zk.Addr()}
	lcfg.Services, lcfg.Instances = 6, 3
	lcfg.WithNacosShare, lcfg.VersionShare, lcfg.GroupShare = 0, 0, 0
	loader, err := zkload.Connect(ctx, lcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	if _, err := loader.Seed(ctx); err != nil {
		t.Fatal(err)
	}

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
	defer reg.Stop()
	regAddr := reg.HTTPAddr().String()

	wcfg := DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	wcfg.ZK = []string{zk.Addr()}
	wcfg.Registry = []string{regAddr}
	wcfg.HTTP = "127.0.0.1:0"
	wcfg.WorkerID = "w1"
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

	// The worker's status endpoint answers.
	resp, err := http.Get(fmt.Sprintf("http://%s/api/status", w.HTTPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.Worker != "w1" || st.Engine.Registered != lcfg.Services*lcfg.Instances-1 {
		t.Fatalf("status = %+v, want w1 with %d registered", st, lcfg.Services*lcfg.Instances-1)
	}

	// Confirming held removals answers with the status (nothing is held).
	resp, err = http.Post(fmt.Sprintf("http://%s/api/confirm-removals", w.HTTPAddr()), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm-removals = %d", resp.StatusCode)
	}

	// A graceful stop deregisters nothing: a successor keeps beating them.
	w.Stop(context.Background())
	stopped = true
	if n := len(hosts(t, regAddr, svc0)); n != lcfg.Instances-1 {
		t.Fatalf("after a graceful stop %s has %d instances, want %d (nothing deregistered)", svc0, n, lcfg.Instances-1)
	}
}

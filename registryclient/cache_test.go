package registryclient

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/wire"
)

func TestFailoverCacheServesWhileServersDown(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	dir := t.TempDir()
	cfg := testConfig(t, a.addr, b.addr)
	cfg.CacheDir = dir
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	if err := c.Subscribe(ctx, demo, nil); err != nil {
		t.Fatal(err)
	}
	// Another client registers: the subscriber gets the push.
	p := startClient(t, testConfig(t, c.CurrentServer()))
	if err := p.Register(ctx, demo, Instance{IP: "10.0.0.7", Port: 20880}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push", func() bool { si, _ := c.Service(demo); return len(si.Hosts) == 1 })

	// The snapshot is readable JSON on disk.
	var snap snapshotFile
	eventually(t, "snapshot written", func() bool {
		raw, err := os.ReadFile(filepath.Join(dir, cacheFileName(demo)))
		if err != nil {
			return false
		}
		if err := json.Unmarshal(raw, &snap); err != nil {
			t.Fatalf("snapshot %s: %v", raw, err)
		}
		return len(snap.Service.Hosts) == 1
	})
	if snap.Namespace != "public" || snap.Service.Hosts[0].IP != "10.0.0.7" {
		t.Fatalf("snapshot %+v", snap)
	}

	// Every server down: reads still answer. (The provider stays connected
	// until then: its leaving would be pushed as an empty service.)
	a.stop()
	b.stop()
	eventually(t, "disconnected", func() bool { return c.CurrentServer() == "" })
	si, err := c.Service(demo)
	if err != nil || len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.7" {
		t.Fatalf("while down: %+v %v", si, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// A restarted client with LoadCacheAtStart sees it before any server
	// answers (there is none).
	cfg2 := testConfig(t, a.addr, b.addr)
	cfg2.CacheDir, cfg2.LoadCacheAtStart = dir, true
	c2 := startClient(t, cfg2)
	si, err = c2.Service(demo)
	if err != nil || len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.7" {
		t.Fatalf("from snapshot: %+v %v", si, err)
	}
	if c2.CurrentServer() != "" {
		t.Fatal("a server answered?")
	}
	if _, err := c2.Service(ServiceRef{Name: "unknown"}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestFailoverDirOverrides(t *testing.T) {
	f := startFake(t, true)
	dir := t.TempDir()
	cfg := testConfig(t, f.addr)
	cfg.CacheDir = dir
	c := startClient(t, cfg)
	ctx := ctxT(t, 5*time.Second)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, demo, "", false); err != nil {
		t.Fatal(err)
	}
	// An operator pins the service by hand.
	pinned := ServiceInfo{Name: demo.Name, GroupName: demo.Group, Hosts: []wire.Instance{{IP: "192.168.9.9", Port: 80, Enabled: true, Healthy: true}}}
	if err := writeSnapshot(filepath.Join(dir, FailoverDir), demo, pinned); err != nil {
		t.Fatal(err)
	}
	q, _ := c.Query(ctx, demo, "", false)
	if q.Hosts[0].IP != "10.0.0.1" {
		t.Fatal("failover applied while off")
	}
	if err := c.SetFailover(true); err != nil {
		t.Fatal(err)
	}
	q, err := c.Query(ctx, demo, "", false)
	if err != nil || len(q.Hosts) != 1 || q.Hosts[0].IP != "192.168.9.9" {
		t.Fatalf("query with failover: %+v %v", q, err)
	}
	if si, _ := c.Service(demo); si.Hosts[0].IP != "192.168.9.9" {
		t.Fatal("Service ignores failover")
	}
	c.SetFailover(false)
	if si, _ := c.Service(demo); si.Hosts[0].IP != "10.0.0.1" {
		t.Fatal("failover stuck on")
	}
	// A broken failover file is ignored, not fatal.
	os.WriteFile(filepath.Join(dir, FailoverDir, cacheFileName(demo)), []byte("{not json"), 0o644)
	c.SetFailover(true)
	if si, err := c.Service(demo); err != nil || si.Hosts[0].IP != "10.0.0.1" {
		t.Fatalf("broken failover file: %+v %v", si, err)
	}
}

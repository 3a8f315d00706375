package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
)

// TestDemoSyncsAndStopsEverything runs `ferry demo` in-process on free
// ports: the seeded services reach the registry, and cancelling leaves no
// ZooKeeper behind.
func TestDemoSyncsAndStopsEverything(t *testing.T) {
	zkserver.ForTest(t) // skips (or fails with CI=true) without ZooKeeper
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The demo prints and its components log from their own goroutines
	// while the test reads: one locked buffer for both.
	var out lockedBuffer
	env := &cmdEnv{stdout: &out, stderr: &out, logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	regAddr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo(ctx, env, demoConfig{http: "127.0.0.1:0", services: 8, instances: 2, ready: 60 * time.Second,
			started: func(a string) { regAddr <- a }})
	}()
	var addr string
	select {
	case addr = <-regAddr:
	case err := <-done:
		t.Fatalf("demo ended early: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo did not start\n%s", out.String())
	}
	resp, err := http.Get("http://" + addr + "/nacos/v1/ns/service/list?pageNo=1&pageSize=100")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Count int      `json:"count"`
		Doms  []string `json:"doms"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || list.Count == 0 {
		t.Fatalf("service list = %+v, %v; want the synced services", list, err)
	}
	zkAddr := regexp.MustCompile(`ZooKeeper\s+(\S+)`).FindStringSubmatch(out.String())
	if zkAddr == nil {
		t.Fatalf("demo did not print ZooKeeper's address:\n%s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop")
	}
	if c, err := net.DialTimeout("tcp", zkAddr[1], time.Second); err == nil {
		c.Close()
		t.Fatalf("ZooKeeper still answers on %s after the demo stopped", zkAddr[1])
	}
}

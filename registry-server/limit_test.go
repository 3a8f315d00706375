package registryserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registryclient"
)

// TestPerIPLimits: a client IP over its connection limit has the extra
// connection closed at once, on both ports; over its request rate it gets
// HTTP 503 and, on gRPC, a typed refusal with errorCode 503 (the
// registryclient's ErrOverThreshold); other requests are unaffected.
func TestPerIPLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	cfg.Limits.MaxConnsPerIP = 2
	cfg.Limits.RequestRate, cfg.Limits.RequestBurst = 0.001, 5 // 5 requests, then (practically) none
	s, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	for _, addr := range []string{s.HTTPAddr().String(), s.GRPCAddr().String()} {
		var held []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !strings.Contains(fmt.Sprint(err), "reset") {
			t.Fatalf("%s: third connection not closed: %v", addr, err)
		}
		extra.Close()
		for _, c := range held {
			c.Close()
		}
	}

	// HTTP: 5 requests in the burst, then 503 (the closed connections
	// above are released; one keep-alive connection is used).
	codes := map[int]int{}
	var body string
	for i := 0; i < 7; i++ {
		resp, err := http.Get("http://" + s.HTTPAddr().String() + "/nacos/v1/ns/service/list?pageNo=1&pageSize=10")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 503 {
			body = string(b)
		}
	}
	if codes[200] != 5 || codes[503] != 2 || !strings.Contains(body, "Tps Flow restricted") {
		t.Fatalf("HTTP answers %v, body %q", codes, body)
	}
	// gRPC: the same IP's bucket is empty now.
	ccfg := registryclient.DefaultConfig()
	ccfg.Servers = []string{fmt.Sprintf("%s/%d", s.HTTPAddr().String(), s.GRPCAddr().(*net.TCPAddr).Port)}
	ccfg.Logger = testlog.New(t, slog.LevelWarn)
	c, err := registryclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Query(ctx, registryclient.ServiceRef{Name: "x"}, "", false)
	if !errors.Is(err, registryclient.ErrOverThreshold) {
		t.Fatalf("gRPC query over the rate: %v", err)
	}
	mfs, _ := s.Metrics().Gather()
	var rejected float64
	for _, mf := range mfs {
		if mf.GetName() == "ferry_registry_limit_rejected_total" {
			for _, m := range mf.GetMetric() {
				rejected += m.GetCounter().GetValue()
			}
		}
	}
	if rejected < 5 { // 2 connections, 2 HTTP, ≥1 gRPC
		t.Fatalf("rejections counted: %v", rejected)
	}
}

package httpapi

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/health"
)

// TestPersistentHealthProbe wires the Raft store, the TCP prober and the
// API: a persistent instance whose port closes turns unhealthy after three
// rounds and healthy again after three; it is never removed.
func TestPersistentHealthProbe(t *testing.T) {
	e := newEnv(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := l.Addr().(*net.TCPAddr)
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "127.0.0.1", "port", strconv.Itoa(addr.Port), "ephemeral", "false"))
	p, err := health.New(health.DefaultConfig(), health.Deps{Targets: e.store, Reporter: e.naming, Active: e.store.Ready}, testlog.New(t, slog.LevelDebug), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	healthy := func() []string { return hostsOf(e.list(vals("serviceName", "p"))) }
	p.Round(ctx)
	l.Close()
	for i := 0; i < 2; i++ {
		p.Round(ctx)
	}
	if h := healthy(); len(h) != 1 || h[0] != "127.0.0.1:"+strconv.Itoa(addr.Port)+" w=1 h=true" {
		t.Fatalf("after 2 failures: %v", h)
	}
	p.Round(ctx)
	if h := healthy(); len(h) != 1 || h[0] != "127.0.0.1:"+strconv.Itoa(addr.Port)+" w=1 h=false" {
		t.Fatalf("after 3 failures: %v", h)
	}
	if si := e.list(vals("serviceName", "p", "healthyOnly", "true")); len(si.Hosts) != 0 {
		t.Fatalf("healthyOnly lists the unhealthy instance: %v", hostsOf(si))
	}
	l2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go func() {
		for {
			c, err := l2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		p.Round(ctx)
	}
	if h := healthy(); len(h) != 1 || h[0] != "127.0.0.1:"+strconv.Itoa(addr.Port)+" w=1 h=true" {
		t.Fatalf("after 3 successes: %v", h)
	}
}

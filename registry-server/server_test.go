package registryserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
)

type fakeComponent struct{ started, stopped int }

func (f *fakeComponent) Start() error                   { f.started++; return nil }
func (f *fakeComponent) Stop(ctx context.Context) error { f.stopped++; return nil }

func TestStartStopMetricsMount(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	s, err := New(cfg, testlog.New(t, slog.LevelInfo), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Mount("/nacos/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mounted") }))
	comp := &fakeComponent{}
	s.AddComponent(comp)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.HTTPAddr().String()
	for path, want := range map[string]string{"/metrics": "ferry_registry_services", "/nacos/v1/x": "mounted"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: %.200s", path, b)
		}
	}
	if s.GRPCAddr() == nil {
		t.Fatal("no gRPC addr")
	}
	done := make(chan struct{})
	go func() { s.Stop(); s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop hangs")
	}
	if comp.started != 1 || comp.stopped != 1 {
		t.Errorf("component %+v", comp)
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.EffectiveGRPCPort() != 9848 {
		t.Fatal(c.EffectiveGRPCPort())
	}
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"port":18848,"beatTimeout":"20s","maxConnections":5,"pushDelay":"100ms"}`), 0o600)
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if c.Port != 18848 || c.EffectiveGRPCPort() != 19848 || c.Naming.BeatTimeout != 20*time.Second || c.GRPC.MaxConnections != 5 || c.GRPC.PushDelay != 100*time.Millisecond {
		t.Fatalf("%+v", c)
	}
	if !c.GRPC.FerryBatchBeat {
		t.Fatal("FerryBatchBeat is off by default")
	}
	if err := c.LoadJSON([]byte(`{"ferryBatchBeat":false}`)); err != nil || c.GRPC.FerryBatchBeat || c.Port != 18848 {
		t.Fatalf("ferryBatchBeat false: %v %+v", err, c.GRPC)
	}
	for _, bad := range []string{`{"prot":1}`, `{"beatTimeout":"soon"}`, `{`} {
		c := DefaultConfig()
		if err := c.LoadJSON([]byte(bad)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	c = DefaultConfig()
	c.Naming.DeleteTimeout = time.Second
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DeleteTimeout") {
		t.Errorf("%v", err)
	}
}

// portProbe is a component that, when stopped, records whether the node's
// HTTP port still accepts connections.
type portProbe struct {
	s          *Server
	acceptedAt bool
	stopped    int
}

func (p *portProbe) Start() error { return nil }
func (p *portProbe) Stop(context.Context) error {
	p.stopped++
	if c, err := net.DialTimeout("tcp", p.s.HTTPAddr().String(), time.Second); err == nil {
		c.Close()
		p.acceptedAt = true
	}
	return nil
}

// TestShutdownOrder: the node stops its listeners before its components
// (a component stopping sees the port closed), Shutdown is idempotent, and
// a node opened but never started releases its Raft store (the directory
// opens again at once).
func TestShutdownOrder(t *testing.T) {
	dir := t.TempDir()
	s := openNode(t, dir)
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	bare, err := New(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &portProbe{s: bare}
	bare.AddComponent(p)
	if err := bare.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bare.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bare.Shutdown(ctx); err != nil || p.stopped != 1 {
		t.Fatalf("second shutdown: %v, component stopped %d times", err, p.stopped)
	}
	if p.acceptedAt {
		t.Fatal("the HTTP port still accepted connections when a component stopped")
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Opened, never started: Stop releases the Raft store's files.
	cfg.DataDir = dir
	n, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
	n, err = Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatalf("reopen after a stop without start: %v", err)
	}
	n.Stop()
}

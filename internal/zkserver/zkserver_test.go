package zkserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/ferrysync/ferry/internal/poll"
)

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Fatalf("Validate without Dir = %v, want error naming Dir", err)
	}
	c.Dir = t.TempDir()
	c.Port = 70000
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Port") {
		t.Fatalf("Validate bad port = %v", err)
	}
}

func TestAvailableNamesWhatIsMissing(t *testing.T) {
	c := DefaultConfig()
	c.Jar = "/nonexistent/zookeeper.jar"
	c.Java = "no-such-java-binary"
	err := available(c)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent/zookeeper.jar") || !strings.Contains(err.Error(), "no-such-java-binary") {
		t.Fatalf("available = %v", err)
	}
}

func connect(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, 2*time.Second, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ev {
		}
	}()
	t.Cleanup(c.Close)
	return c
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, f)
}

func TestStartRestartStop(t *testing.T) {
	s := ForTest(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr = %q", s.Addr())
	}
	c := connect(t, s.Addr())
	if _, err := c.Create("/ferry", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}
	port := s.Port()
	ctx := context.Background()
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.Port() != port {
		t.Fatalf("port changed %d -> %d", port, s.Port())
	}
	// The client reconnects to the same address and sees the same data.
	waitFor(t, "node after restart", func() bool {
		ok, _, err := c.Exists("/ferry")
		return err == nil && ok
	})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal("second Stop:", err)
	}
	if s.Running() {
		t.Fatal("running after Stop")
	}
	if _, err := FourLetter(ctx, s.Addr(), "srvr"); err == nil {
		t.Fatal("srvr answered after Stop")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := FourLetter(ctx, s.Addr(), "srvr")
	if err != nil || !strings.Contains(out, "Mode: standalone") {
		t.Fatalf("srvr = %q, %v", out, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("Restart after Close = %v, want ErrStopped", err)
	}
}

func TestProxyCutAndHeal(t *testing.T) {
	s := ForTest(t)
	p, err := NewProxy(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := connect(t, p.Addr())
	waitFor(t, "session", func() bool { return c.State() == zk.StateHasSession })
	p.Cut()
	waitFor(t, "disconnect", func() bool { return c.State() != zk.StateHasSession })
	p.Heal()
	waitFor(t, "reconnect", func() bool { return c.State() == zk.StateHasSession })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

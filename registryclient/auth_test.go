package registryclient

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	registryserver "github.com/ferrysync/ferry/registry-server"
)

const (
	keyA = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=" // "a"*32
	keyB = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=" // "b"*32
)

// openAuthServer runs a whole node with auth on (admin nacos/"pw") on the
// given ports (0: free ones) and dir, signing tokens with key and ttl.
func openAuthServer(t *testing.T, dir string, port, grpcPort int, key string, ttl time.Duration) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port, cfg.GRPCPort, cfg.DataDir = port, grpcPort, dir
	cfg.Auth.Enabled, cfg.Auth.TokenKey, cfg.Auth.TokenTTL, cfg.Auth.BcryptCost = true, key, ttl, 4
	cfg.AdminPassword = "pw"
	s, err := registryserver.Open(cfg, testLogger(t).With("side", "server"), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "admin user", func() bool { return s.Raft().AuthState().HasGlobalAdmin() })
	return s
}

func serversOf(s *registryserver.Server) string {
	return fmt.Sprintf("127.0.0.1:%d/%d", s.HTTPAddr().(*net.TCPAddr).Port, s.GRPCAddr().(*net.TCPAddr).Port)
}

// TestAuthLoginAndRefresh: without credentials a write is refused with
// ErrNoRight; with them the client logs in, and with 2 s tokens (Nacos:
// 18000 s; shortened so that the 80% renewal happens at 1.6 s) it renews
// before expiry while querying every 100 ms without one failure.
func TestAuthLoginAndRefresh(t *testing.T) {
	s := openAuthServer(t, t.TempDir(), 0, 0, keyA, 2*time.Second)
	defer s.Stop()
	ctx := ctxT(t, 30*time.Second)

	anon := startClient(t, testConfig(t, serversOf(s)))
	if err := anon.Register(ctx, demo, Instance{IP: "10.0.0.9", Port: 1}); !errors.Is(err, ErrNoRight) {
		t.Fatalf("anonymous register: %v", err)
	}

	cfg := testConfig(t, serversOf(s))
	cfg.Username, cfg.Password = "nacos", "pw"
	c := startClient(t, cfg)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3500 * time.Millisecond) // past the first token's expiry
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		q, err := c.Query(ctx, demo, "", true)
		if err != nil || len(q.Hosts) != 1 {
			t.Fatalf("query with a renewed token: %+v %v", q, err)
		}
	}
	if n := testutil.ToFloat64(c.m.logins.WithLabelValues("ok")); n < 2 {
		t.Fatalf("logins: %v, want a renewal", n)
	}
	if n := testutil.ToFloat64(c.m.requests.WithLabelValues("ServiceQueryRequest", "fail")); n != 0 {
		t.Fatalf("%v refused queries", n)
	}
}

// TestAuthReloginOn403: the registry restarts with another signing key,
// so the client's unexpired token is refused (403 "Invalid signature");
// the client logs in again and the same call succeeds.
func TestAuthReloginOn403(t *testing.T) {
	dir := t.TempDir()
	s := openAuthServer(t, dir, 0, 0, keyA, time.Hour)
	port, gport := s.HTTPAddr().(*net.TCPAddr).Port, s.GRPCAddr().(*net.TCPAddr).Port
	cfg := testConfig(t, serversOf(s))
	cfg.Username, cfg.Password = "nacos", "pw"
	c := startClient(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.Query(ctx, demo, "", false); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s2 := openAuthServer(t, dir, port, gport, keyB, time.Hour)
	defer s2.Stop()
	eventually(t, "a query after the key change", func() bool {
		_, err := c.Query(ctx, demo, "", false)
		return err == nil
	})
	if n := testutil.ToFloat64(c.m.logins.WithLabelValues("ok")); n != 2 {
		t.Fatalf("logins: %v, want 2 (the first and one after the 403)", n)
	}
	if n := testutil.ToFloat64(c.m.requests.WithLabelValues("ServiceQueryRequest", "fail")); n != 1 {
		t.Fatalf("refused queries: %v, want exactly the one retried", n)
	}
}

package zkwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelInfo)
}

type nopZKLogger struct{}

func (nopZKLogger) Printf(string, ...any) {}

// client is a plain ZooKeeper connection for the test's own writes.
func client(t testing.TB, addr string, timeout time.Duration) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithDialer(Dialer(timeout)), zk.WithLogInfo(false), zk.WithLogger(nopZKLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ev {
		}
	}()
	t.Cleanup(c.Close)
	waitFor(t, "client session", func() bool { return c.State() == zk.StateHasSession })
	return c
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, cond)
}

func mkdirs(t testing.TB, c *zk.Conn, p string) {
	t.Helper()
	parts := strings.Split(strings.Trim(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		_, err := c.Create(cur, nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatalf("create %s: %v", cur, err)
		}
	}
}

// provURL is a realistic Java Dubbo provider URL.
func provURL(iface, host string, port int, ts int64, extra string) string {
	u := fmt.Sprintf("dubbo://%s:%d/%s?anyhost=true&application=app-%s&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=%s&methods=a,b,c&release=3.2.0&side=provider&timestamp=%d",
		host, port, iface, host, iface, ts)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// addProvider creates a provider node (persistent unless ephemeral) and
// returns its full path.
func addProvider(t testing.TB, c *zk.Conn, root, iface, rawURL string, ephemeral bool) string {
	t.Helper()
	dir := "/" + root + "/" + url.QueryEscape(iface) + "/providers"
	mkdirs(t, c, dir)
	p := dir + "/" + url.QueryEscape(rawURL)
	var flags int32
	if ephemeral {
		flags = zk.FlagEphemeral
	}
	if _, err := c.Create(p, nil, flags, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	return p
}

func del(t testing.TB, c *zk.Conn, p string) {
	t.Helper()
	if err := c.Delete(p, -1); err != nil {
		t.Fatalf("delete %s: %v", p, err)
	}
}

type env struct {
	srv *zkserver.Server
	c   *zk.Conn // the test's writer
	reg *prometheus.Registry
}

func newEnv(t testing.TB) *env {
	srv := zkserver.ForTest(t)
	return &env{srv: srv, c: client(t, srv.Addr(), 10*time.Second), reg: prometheus.NewRegistry()}
}

func (e *env) watcher(t testing.TB, mod func(*Config)) *Watcher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Servers = []string{e.srv.Addr()}
	cfg.SessionTimeout = 10 * time.Second
	cfg.RetryBackoff = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	w, err := New(cfg, testLogger(t), e.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return w
}

// recorder reads Changes in the background and keeps what it saw.
type recorder struct {
	mu    sync.Mutex
	names []string
	check func(name string) // called for each notification (optional)
	stop  chan struct{}
	done  chan struct{}
}

func record(t testing.TB, w *Watcher, check func(string)) *recorder {
	r := &recorder{check: check, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case n := <-w.Changes():
				if r.check != nil {
					r.check(n)
				}
				r.mu.Lock()
				r.names = append(r.names, n)
				r.mu.Unlock()
			case <-r.stop:
				return
			}
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.names {
		if x == name {
			n++
		}
	}
	return n
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.names)
}

func counter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func providerAddrs(s ServiceSnapshot) []string {
	var out []string
	for a := range s.Providers {
		out = append(out, a)
	}
	return out
}

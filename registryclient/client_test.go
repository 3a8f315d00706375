package registryclient

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/ferrysync/ferry/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var demo = ServiceRef{Namespace: "public", Group: DefaultGroup, Name: "demo.svc"}

func TestRegisterSubscribePushRoundTrip(t *testing.T) {
	f := startFake(t, true)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, f.addr)
	cfg.Registerer = reg
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)

	var mu sync.Mutex
	var seen []int
	if err := c.Subscribe(ctx, demo, func(si ServiceInfo) {
		mu.Lock()
		seen = append(seen, len(si.Hosts))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 8080, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push with one host", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1] == 1
	})
	si, err := c.Service(demo)
	if err != nil || len(si.Hosts) != 1 || si.Hosts[0].Metadata["k"] != "v" {
		t.Fatalf("cached service = %+v, %v", si, err)
	}
	q, err := c.Query(ctx, demo, "", false)
	if err != nil || len(q.Hosts) != 1 {
		t.Fatalf("query = %+v, %v", q, err)
	}
	n, names, err := c.ListServices(ctx, "", "", 1, 10)
	if err != nil || n != 1 || names[0] != "demo.svc" {
		t.Fatalf("list = %d %v %v", n, names, err)
	}
	if err := c.BatchRegister(ctx, demo, []Instance{{IP: "10.0.0.2", Port: 1}, {IP: "10.0.0.3", Port: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push with the batch", func() bool {
		si, _ := c.Service(demo)
		return len(si.Hosts) == 2
	})
	if err := c.Deregister(ctx, demo, Instance{IP: "10.0.0.2", Port: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push with no host", func() bool {
		si, _ := c.Service(demo)
		return len(si.Hosts) == 0
	})
	if err := c.RegisterPersistent(ctx, demo, Instance{IP: "10.0.0.9", Port: 9}); err != nil {
		t.Fatal(err)
	}
	// A typed failure is a business error, not a reconnect.
	err = c.RegisterPersistent(ctx, demo, Instance{IP: "bad", Port: 9})
	var se *ServerError
	if !errors.Is(err, ErrInvalidParam) || !errors.As(err, &se) || se.Addr != f.addr {
		t.Fatalf("bad persistent register: %v", err)
	}
	if err := c.Unsubscribe(ctx, demo); err != nil {
		t.Fatal(err)
	}
	if f.subscribed(demo) {
		t.Fatal("still subscribed")
	}
	if got := testutil.ToFloat64(c.m.requests.WithLabelValues(wire.TypeInstanceRequest, "ok")); got < 2 {
		t.Fatalf("InstanceRequest ok = %v", got)
	}
	if got := testutil.ToFloat64(c.m.currentServer.WithLabelValues(f.addr)); got != 1 {
		t.Fatalf("current_server = %v", got)
	}
	if got := testutil.ToFloat64(c.m.reconnects); got != 0 {
		t.Fatalf("reconnects = %v", got)
	}
}

func TestStalePushIgnored(t *testing.T) {
	f := startFake(t, true)
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 5*time.Second)
	if err := c.Subscribe(ctx, demo, nil); err != nil {
		t.Fatal(err)
	}
	cur, _ := c.Service(demo)
	old := cur
	old.LastRefTime = cur.LastRefTime - 1
	old.Hosts = []wire.Instance{{IP: "1.1.1.1", Port: 1}}
	c.processService(demo, old)
	if got, _ := c.Service(demo); len(got.Hosts) != 0 {
		t.Fatalf("stale push applied: %+v", got)
	}
	newer := old
	newer.LastRefTime = cur.LastRefTime + 1
	c.processService(demo, newer)
	if got, _ := c.Service(demo); len(got.Hosts) != 1 {
		t.Fatalf("newer push not applied: %+v", got)
	}
}

// serverOf returns the fake the client is connected to, and the other one.
func serverOf(t *testing.T, c *Client, a, b *fakeServer) (on, other *fakeServer) {
	t.Helper()
	eventually(t, "connected", func() bool { return c.CurrentServer() != "" })
	if c.CurrentServer() == a.addr {
		return a, b
	}
	return b, a
}

func TestReconnectRedoAfterServerDeath(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, a.addr, b.addr)
	cfg.Registerer = reg
	c := startClient(t, cfg)
	ctx := ctxT(t, 10*time.Second)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, demo, nil); err != nil {
		t.Fatal(err)
	}
	on, other := serverOf(t, c, a, b)
	if !on.hasReg(demo, "10.0.0.1") {
		t.Fatal("not registered")
	}
	on.stop()
	// A request issued at once retries on the next server.
	other2 := ServiceRef{Name: "second"}
	if err := c.Register(ctx, other2, Instance{IP: "10.0.0.2", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if !other.hasReg(other2.withDefaults(), "10.0.0.2") {
		t.Fatal("retried request not on the other server")
	}
	eventually(t, "moved to the other server", func() bool { return c.CurrentServer() == other.addr })
	eventually(t, "re-registered (redo)", func() bool { return other.hasReg(demo, "10.0.0.1") && other.subscribed(demo) })
	if got := testutil.ToFloat64(c.m.reconnects); got < 1 {
		t.Fatalf("reconnects = %v", got)
	}
	// Requests still work.
	if _, err := c.Query(ctx, demo, "", false); err != nil {
		t.Fatal(err)
	}
}

func TestConnectResetMovesClient(t *testing.T) {
	a, b := startFake(t, true), startFake(t, true)
	c := startClient(t, testConfig(t, a.addr, b.addr))
	ctx := ctxT(t, 10*time.Second)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	on, other := serverOf(t, c, a, b)
	host, port, _ := net.SplitHostPort(other.addr)
	on.resetAll(host, port)
	eventually(t, "moved to the named server", func() bool { return c.CurrentServer() == other.addr })
	eventually(t, "registration kept", func() bool { return other.hasReg(demo, "10.0.0.1") })
	eventually(t, "old connection closed", func() bool { return !on.hasReg(demo, "10.0.0.1") })
	// Without a target: the next server.
	other.resetAll("", "")
	eventually(t, "moved to the next server", func() bool { return c.CurrentServer() == on.addr })
	eventually(t, "registration kept again", func() bool { return on.hasReg(demo, "10.0.0.1") })
}

func TestStartingServerRetried(t *testing.T) {
	f := startFake(t, true)
	f.mu.Lock()
	f.starting = 2
	f.mu.Unlock()
	c := startClient(t, testConfig(t, f.addr))
	if err := c.Register(ctxT(t, 5*time.Second), demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if got := f.count(wire.TypeServerCheckRequest); got != 3 {
		t.Fatalf("%d server checks, want 3", got)
	}
	if got := c.m.reconnects; testutilValue(got) != 0 {
		t.Fatal("a starting server is retried within one connection attempt")
	}
}

func TestHealthCheckWhenIdle(t *testing.T) {
	f := startFake(t, true)
	cfg := testConfig(t, f.addr)
	cfg.HealthCheckInterval = 50 * time.Millisecond
	startClient(t, cfg)
	eventually(t, "health checks", func() bool { return f.count(wire.TypeHealthCheckRequest) >= 2 })
}

func TestServerRequestsAnswered(t *testing.T) {
	f := startFake(t, true)
	c := startClient(t, testConfig(t, f.addr))
	eventually(t, "connected", func() bool { return c.CurrentServer() != "" })
	cd := &wire.ClientDetectionRequest{}
	cd.RequestID = "cd-1"
	f.sendAll(cd)
	ack := &wire.SetupAckRequest{AbilityTable: map[string]bool{"supportPersistentInstanceByGrpc": true}}
	ack.RequestID = "sa-1"
	f.sendAll(ack)
	for id, typ := range map[string]string{"cd-1": wire.TypeClientDetectionResponse, "sa-1": wire.TypeSetupAckResponse} {
		eventually(t, "answer "+id, func() bool {
			r, ok := f.answer(id)
			return ok && r.TypeName() == typ && r.Result().ResultCode == wire.ResultSuccess
		})
	}
	// A push is acked with its requestId (the fake numbers them by lastRefTime).
	ctx := ctxT(t, 5*time.Second)
	if err := c.Subscribe(ctx, demo, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push acked", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range f.answers {
			if r.TypeName() == wire.TypeNotifySubscriberResponse && r.Result().RequestID != "" && r.Result().OK() {
				return true
			}
		}
		return false
	})
	// An unknown server request is ignored, the connection stays.
	f.sendAll(&wire.HealthCheckRequest{})
	if _, err := c.Query(ctx, demo, "", false); err != nil {
		t.Fatal(err)
	}
}

func TestRealNacosHasNoBatchBeat(t *testing.T) {
	f := startFake(t, false) // like a real Nacos: no ferryBatchBeat, 302 on the type
	c := startClient(t, testConfig(t, f.addr))
	ctx := ctxT(t, 5*time.Second)
	eventually(t, "connected", func() bool { _, known := c.BatchBeatSupported(); return known })
	if ok, _ := c.BatchBeatSupported(); ok {
		t.Fatal("capability claimed")
	}
	err := c.Keep(ctx, demo, []Instance{{IP: "10.0.0.1", Port: 1}})
	if !errors.Is(err, ErrNoBatchBeat) {
		t.Fatalf("Keep = %v", err)
	}
	// Even when the client believed otherwise, a 302 answer turns it off.
	c.batchBeat.Store(capSupported)
	err = c.Keep(ctx, ServiceRef{Name: "other"}, []Instance{{IP: "10.0.0.1", Port: 1}})
	if !errors.Is(err, ErrNoBatchBeat) {
		t.Fatalf("Keep after 302 = %v", err)
	}
	if ok, known := c.BatchBeatSupported(); ok || !known {
		t.Fatal("302 did not switch merged beats off")
	}
	// The fallback works.
	if err := c.BatchRegister(ctx, demo, []Instance{{IP: "10.0.0.1", Port: 1}}); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	t.Run("bad address", func(t *testing.T) {
		for _, s := range []string{"nonsense", "host:", ":80", "h:0", "h:70000", "h:1/x", "h:65000"} {
			cfg := testConfig(t, s)
			_, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), s) {
				t.Errorf("%q: %v", s, err)
			}
		}
		cfg := testConfig(t)
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Servers") {
			t.Errorf("empty: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		hl, gl := freePortPair(t)
		addr := hl.Addr().String()
		hl.Close()
		gl.Close()
		c := startClient(t, testConfig(t, addr))
		err := c.Register(ctxT(t, 500*time.Millisecond), demo, Instance{IP: "10.0.0.1", Port: 1})
		if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("garbage speaker", func(t *testing.T) {
		hl, gl := freePortPair(t)
		addr := hl.Addr().String()
		hl.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := gl.Accept()
				if err != nil {
					return
				}
				conn.Write([]byte("HTTP/1.0 400 garbage\r\n\r\nnot a grpc server\n"))
				conn.Close()
			}
		}()
		t.Cleanup(func() { gl.Close(); wg.Wait() })
		c := startClient(t, testConfig(t, addr))
		err := c.Register(ctxT(t, 500*time.Millisecond), demo, Instance{IP: "10.0.0.1", Port: 1})
		if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
	})
	t.Run("oversized response", func(t *testing.T) {
		f := startFake(t, true)
		f.hugeQuery = true
		cfg := testConfig(t, f.addr)
		cfg.MaxMessageBytes = 64 << 10
		c := startClient(t, cfg)
		_, err := c.Query(ctxT(t, 5*time.Second), demo, "", false)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), f.addr) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
	})
	t.Run("bad call arguments", func(t *testing.T) {
		f := startFake(t, true)
		c := startClient(t, testConfig(t, f.addr))
		ctx := ctxT(t, 2*time.Second)
		if err := c.Register(ctx, ServiceRef{}, Instance{IP: "1.1.1.1", Port: 1}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("no name: %v", err)
		}
		if err := c.Register(ctx, demo, Instance{IP: "1.1.1.1", Port: 0}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("port 0: %v", err)
		}
		if err := c.Keep(ctx, demo, []Instance{{Port: 1}}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("keep no ip: %v", err)
		}
	})
	t.Run("closed client", func(t *testing.T) {
		c, err := New(testConfig(t, "127.0.0.1:1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Register(ctxT(t, time.Second), demo, Instance{IP: "1.1.1.1", Port: 1}); !errors.Is(err, ErrClosed) {
			t.Errorf("not started: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); !errors.Is(err, ErrClosed) {
			t.Errorf("start after close: %v", err)
		}
	})
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		in         string
		host       string
		port, grpc int
	}{
		{"127.0.0.1:8848", "127.0.0.1", 8848, 9848},
		{"[::1]:8848", "::1", 8848, 9848},
		{"nacos:8848/19848", "nacos", 8848, 19848},
	} {
		s, err := ParseServer(tc.in)
		if err != nil || s.Host != tc.host || s.Port != tc.port || s.GRPCPort != tc.grpc {
			t.Errorf("%q: %+v %v", tc.in, s, err)
		}
	}
	s, _ := ParseServer("[::1]:8848")
	if s.Addr() != "[::1]:8848" || s.GRPCAddr() != "[::1]:9848" {
		t.Errorf("addr %s %s", s.Addr(), s.GRPCAddr())
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second, func() float64 { return 0.999999 })
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.next(); got < w*time.Millisecond*99/100 || got > w*time.Millisecond {
			t.Fatalf("step %d: %v, want ≈%vms", i, got, w)
		}
	}
	b.reset()
	lo := newBackoff(100*time.Millisecond, time.Second, func() float64 { return 0 })
	if got := lo.next(); got != 50*time.Millisecond {
		t.Fatalf("jitter floor %v", got)
	}
	if b.next() > 100*time.Millisecond {
		t.Fatal("reset")
	}
}

func TestAddressServer(t *testing.T) {
	f := startFake(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newTextServer(l, "# registry nodes\n"+f.addr+"\n")
	t.Cleanup(srv.close)
	cfg := testConfig(t)
	cfg.AddressServerURL = "http://" + l.Addr().String() + "/nacos/serverlist"
	c := startClient(t, cfg)
	if err := c.Register(ctxT(t, 5*time.Second), demo, Instance{IP: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if got := c.Servers(); len(got) != 1 || got[0].Addr() != f.addr {
		t.Fatalf("servers %v", got)
	}
	_ = strconv.Itoa
}

func testutilValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

package registryclient

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrysync/ferry/internal/poll"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/wire"
)

// The in-repo registry server, started in-process on free loopback ports.
type realServer struct {
	s    *registryserver.Server
	prom *prometheus.Registry
	addr string // "127.0.0.1:http/grpc" for Config.Servers
	main string // "127.0.0.1:http"
}

func startReal(t testing.TB) *realServer { return startRealWith(t, nil) }

func startRealWith(t testing.TB, tune func(*registryserver.Config)) *realServer {
	t.Helper()
	return startRealBy(t, registryserver.New, tune)
}

// startRealBy starts a server built by build: registryserver.New (naming
// core and gRPC) or registryserver.Open (the whole node, HTTP API too).
func startRealBy(t testing.TB, build func(registryserver.Config, *slog.Logger, *prometheus.Registry) (*registryserver.Server, error),
	tune func(*registryserver.Config)) *realServer {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	cfg.GRPC.PushDelay = 20 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	prom := prometheus.NewRegistry()
	s, err := build(cfg, testLogger(t).With("side", "server"), prom)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	hp := s.HTTPAddr().(*net.TCPAddr).Port
	gp := s.GRPCAddr().(*net.TCPAddr).Port
	return &realServer{s: s, prom: prom, addr: fmt.Sprintf("127.0.0.1:%d/%d", hp, gp), main: fmt.Sprintf("127.0.0.1:%d", hp)}
}

// batchRPCs is the server's count of FerryBatchBeatRequests.
func (r *realServer) batchRPCs(t testing.TB) int {
	mfs, err := r.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "ferry_registry_grpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == wire.TypeFerryBatchBeatRequest {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

func (r *realServer) hosts(t testing.TB, svc ServiceRef) int { return r.hostsOf(t, svc, false) }

func (r *realServer) hostsOf(t testing.TB, svc ServiceRef, healthyOnly bool) int {
	t.Helper()
	c := startClient(t, testConfig(t, r.addr))
	q, err := c.Query(ctxT(t, 5*time.Second), svc, "", healthyOnly)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return len(q.Hosts)
}

func TestRealServerRoundTrip(t *testing.T) {
	r := startReal(t)
	c := startClient(t, testConfig(t, r.addr))
	ctx := ctxT(t, 10*time.Second)
	var mu sync.Mutex
	last := -1
	if err := c.Subscribe(ctx, demo, func(si ServiceInfo) {
		mu.Lock()
		last = len(si.Hosts)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 8080, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push with one host", func() bool { mu.Lock(); defer mu.Unlock(); return last == 1 })
	if err := c.BatchRegister(ctx, demo, []Instance{{IP: "10.0.0.2", Port: 1}, {IP: "10.0.0.3", Port: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "push with the batch", func() bool { mu.Lock(); defer mu.Unlock(); return last == 2 })
	n, names, err := c.ListServices(ctx, "", "", 1, 10)
	if err != nil || n != 1 || len(names) != 1 || names[0] != demo.Name {
		t.Fatalf("list %d %v %v", n, names, err)
	}
	if err := c.Deregister(ctx, demo, Instance{IP: "10.0.0.2", Port: 1}); err != nil {
		t.Fatal(err)
	}
	q, err := c.Query(ctx, demo, "", false)
	if err != nil || len(q.Hosts) != 0 {
		t.Fatalf("query after deregister: %+v %v", q, err)
	}
	// Merged beats on the real server: register-if-unknown, then beats.
	svc := ServiceRef{Name: "kept"}
	if ok, known := c.BatchBeatSupported(); !ok || !known {
		t.Fatal("the registry should offer merged beats")
	}
	if err := c.Keep(ctx, svc, instances(20, "10.9")); err != nil {
		t.Fatal(err)
	}
	if got := r.hosts(t, svc); got != 20 {
		t.Fatalf("kept instances on the server: %d", got)
	}
	for i := 0; i < 5; i++ {
		c.beatOnce(ctx)
	}
	if got := testutil.ToFloat64(c.m.beatResults.WithLabelValues(wire.BeatOK)); got < 40 {
		t.Fatalf("ok beats %v", got)
	}
}

func TestRealServerReconnectAndReset(t *testing.T) {
	a, b := startReal(t), startReal(t)
	c := startClient(t, testConfig(t, a.addr, b.addr))
	ctx := ctxT(t, 20*time.Second)
	if err := c.Register(ctx, demo, Instance{IP: "10.0.0.1", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, demo, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "connected", func() bool { return c.CurrentServer() != "" })
	on, other := a, b
	if c.CurrentServer() == b.main {
		on, other = b, a
	}
	// ConnectResetRequest from the server, naming the other node.
	host, port, _ := net.SplitHostPort(other.main)
	p, _ := strconv.Atoi(port)
	if err := on.s.GRPC().ResetConnection(ctx, c.ConnectionID(), host, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "moved by ConnectReset", func() bool { return c.CurrentServer() == other.main })
	eventually(t, "registration kept on the new node", func() bool { return other.hosts(t, demo) == 1 })
	// Kill the node the client is on: it moves back and re-registers.
	other.s.Stop()
	eventually(t, "reconnected", func() bool { return c.CurrentServer() == on.main })
	eventually(t, "redo on the surviving node", func() bool { return on.hosts(t, demo) == 1 })
}

func TestRealServerMergedBeatsTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := startReal(t)
	c := startClient(t, testConfig(t, r.addr))
	ctx := ctxT(t, 60*time.Second)
	for s := 0; s < 50; s++ {
		if err := c.Keep(ctx, ServiceRef{Name: fmt.Sprintf("providers:com.example.S%d::", s)}, instances(200, fmt.Sprintf("10.%d", s))); err != nil {
			t.Fatal(err)
		}
	}
	before := r.batchRPCs(t)
	sentBefore := testutil.ToFloat64(c.m.beatsSent)
	for i := 0; i < 10; i++ { // two beat periods
		c.beatOnce(ctx)
	}
	if got := r.batchRPCs(t) - before; got > 10 {
		t.Fatalf("%d batch RPCs in 10 intervals on one node", got)
	}
	if got := testutil.ToFloat64(c.m.beatsSent) - sentBefore; got != 20000 {
		t.Fatalf("beats sent %v, want every instance twice", got)
	}
	if got := testutil.ToFloat64(c.m.beatResults.WithLabelValues(wire.BeatOK)); got < 30000 {
		t.Fatalf("ok beats %v", got)
	}
	if got := r.hosts(t, ServiceRef{Name: "providers:com.example.S7::"}); got != 200 {
		t.Fatalf("hosts %d", got)
	}
	_ = context.Background
}

// The real beat loop (ticker) keeps 10,000 instances healthy on a registry
// whose beat timeouts are short, with at most one batch RPC per interval;
// released ones expire.
func TestRealServerBeatLoopKeepsAlive(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := startRealWith(t, func(c *registryserver.Config) {
		c.ExpireInterval = 100 * time.Millisecond
		// Timeouts 25× and 30× the beat period: a loaded 2-core machine
		// under -race stalls for seconds (1 s was seen to fail, and 3 s
		// and 4 s at a load average of 20: "service 17: 0 healthy
		// instances of 200").
		c.Naming.BeatInterval, c.Naming.BeatTimeout, c.Naming.DeleteTimeout = 100*time.Millisecond, 10*time.Second, 12*time.Second
	})
	cfg := testConfig(t, r.addr)
	cfg.BeatInterval, cfg.BeatPeriod = 100*time.Millisecond, 400*time.Millisecond
	// 10,000 instances in batches of 200 under -race: the fake-server
	// tests' 1 s request timeout failed a batch at a load average of 18
	// (DeadlineExceeded from Keep), which is the machine, not the client.
	cfg.RequestTimeout = 10 * time.Second
	c := startClient(t, cfg)
	ctx := ctxT(t, 60*time.Second)
	svcs := make([]ServiceRef, 50)
	for s := range svcs {
		svcs[s] = ServiceRef{Name: fmt.Sprintf("providers:com.example.L%d::", s)}
		if err := c.Keep(ctx, svcs[s], instances(200, fmt.Sprintf("10.%d", s))); err != nil {
			t.Fatal(err)
		}
	}
	c.Release(svcs[0])
	before, start := r.batchRPCs(t), time.Now()
	// Expiry comes DeleteTimeout after the last beat; the budget only
	// bounds a failure (10 s is little on a loaded machine).
	poll.Every(t, 60*time.Second, 50*time.Millisecond, "the released service expires", func() bool {
		return r.hostsOf(t, svcs[0], false) == 0
	})
	// Let wall time pass beyond DeleteTimeout (this is what is tested, not
	// a synchronisation): everything kept is still there and healthy.
	time.Sleep(time.Until(start.Add(13 * time.Second)))
	elapsed := time.Since(start)
	rpcs := r.batchRPCs(t) - before
	for _, s := range []int{1, 17, 49} {
		if got := r.hostsOf(t, svcs[s], true); got != 200 {
			t.Fatalf("service %d: %d healthy instances of 200", s, got)
		}
	}
	if max := int(elapsed/cfg.BeatInterval) + 2; rpcs > max {
		t.Fatalf("%d batch RPCs in %v (at most %d)", rpcs, elapsed, max)
	}
	t.Logf("%d batch RPCs in %v", rpcs, elapsed)
}

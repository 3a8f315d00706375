package grpcapi

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/ferrysync/ferry/internal/benchchild"
	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// Memory per idle SDK connection, measured in the server's process with the
// clients in a child process (this test binary re-run as
// TestConnMemClients), so that only the server's side is counted.

// Client modes of the child.
const (
	clientIdle      = "idle"      // server check, bi-stream, setup; then a HealthCheckRequest every 5 s, as nacos-sdk-go
	clientNoRequest = "norequest" // the HTTP/2 connection only: never sends a request
	clientNoRead    = "noread"    // as idle, but never reads its bi-stream
	clientFlood     = "flood"     // as idle, plus a HealthCheckRequest every millisecond
	clientQuery     = "query"     // as idle; on "start", ServiceQueryRequests one at a time over FERRY_CONNMEM_SERVICES services
)

// serverMem is the server process' memory at one moment, after a GC.
type serverMem struct {
	heap       uint64 // Go heap objects, bytes
	stacks     uint64 // goroutine stacks, bytes
	rss        uint64 // VmRSS, bytes
	goroutines uint64
}

func readServerMem() serverMem {
	// Idle goroutines' stacks shrink by half at each GC while they use less
	// than a quarter: an idle server sees several (at least one every two
	// minutes), so the steady state is measured after a few.
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory() // a GC, and the free pages returned: RSS ≈ in use
	samples := []rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	rtmetrics.Read(samples)
	return serverMem{heap: samples[0].Value.Uint64(), stacks: samples[1].Value.Uint64(),
		goroutines: samples[2].Value.Uint64(), rss: vmRSS()}
}

// vmRSS is this process' resident set size from /proc (0 when unknown).
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// connMem is the server's memory per connection: (with − without) / n.
type connMem struct {
	n                       int
	heap, stacks, rss       float64 // bytes per connection
	goroutines              float64 // per connection
	before, with            serverMem
	registered, connections int
}

func (m connMem) inUse() float64 { return m.heap + m.stacks }

func (m connMem) String() string {
	return fmt.Sprintf("%d conns: %.0f B heap + %.0f B stacks = %.0f B/conn in use, %.0f B/conn RSS, %.1f goroutines/conn",
		m.n, m.heap, m.stacks, m.inUse(), m.rss, m.goroutines)
}

func (m connMem) report(b *testing.B) {
	b.ReportMetric(m.heap, "heap-B/conn")
	b.ReportMetric(m.stacks, "stack-B/conn")
	b.ReportMetric(m.inUse(), "inuse-B/conn")
	b.ReportMetric(m.rss, "rss-B/conn")
	b.ReportMetric(m.goroutines, "goroutines/conn")
}

// openClients starts the child with n clients of mode against s and waits
// until the server sees them (registered ones for the modes that set up).
func openClients(t testing.TB, s *Server, n int, mode string) *benchchild.Child {
	t.Helper()
	return openClientsEnv(t, s, n, mode)
}

// openClientsEnv is openClients with more of the child's environment.
func openClientsEnv(t testing.TB, s *Server, n int, mode string, env ...string) *benchchild.Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append(append(os.Environ(), env...), "FERRY_CONNMEM_ADDR="+s.Addr().String(),
		"FERRY_CONNMEM_N="+strconv.Itoa(n), "FERRY_CONNMEM_MODE="+mode)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := benchchild.StartEnv(ctx, env, exe, "-test.run=^TestConnMemClients$")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if c.Hello != "ready" {
		t.Fatalf("client child said %q", c.Hello)
	}
	poll.Until(t, 2*time.Minute, fmt.Sprintf("%d %s connections at the server", n, mode), func() bool {
		all, reg := countConns(s)
		if mode == clientNoRequest {
			return all >= n
		}
		return reg >= n
	})
	return c
}

func countConns(s *Server) (all, registered int) {
	for _, c := range s.Connections() {
		all++
		if c.Registered {
			registered++
		}
	}
	return all, registered
}

// measureConnMem opens n clients of mode against a fresh server and returns
// the server's memory per connection.
func measureConnMem(t testing.TB, n int, mode string, mod func(*Config)) connMem {
	s, _ := startServer(t, mod)
	// A first connection warms gRPC's and the server's lazily built state up.
	dialRaw(t, s.Addr().String(), true).cc.Close()
	poll.Until(t, 30*time.Second, "warm-up connection gone", func() bool { all, _ := countConns(s); return all == 0 })
	before := readServerMem()
	openClients(t, s, n, mode)
	with := readServerMem()
	if path := os.Getenv("FERRY_CONNMEM_HEAPPROFILE"); path != "" {
		// The heap with the connections held (the benchmark's -memprofile
		// is written after they are gone).
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	all, reg := countConns(s)
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return connMem{n: n, before: before, with: with, registered: reg, connections: all,
		heap: per(with.heap, before.heap), stacks: per(with.stacks, before.stacks),
		rss: per(with.rss, before.rss), goroutines: per(with.goroutines, before.goroutines)}
}

// BenchmarkKeepaliveCPU: the server's CPU for 3,000 idle SDK connections
// (each a HealthCheckRequest every 5 s and gRPC keepalive), over 30 s.
//
//	go test -run '^$' -bench KeepaliveCPU -benchtime 1x ./registry-server/grpcapi/
func BenchmarkKeepaliveCPU(b *testing.B) {
	const n, window = 3000, 30 * time.Second
	for i := 0; i < b.N; i++ {
		s, _ := startServer(b, nil)
		openClients(b, s, n, clientIdle)
		start, t0 := cpuTime(), time.Now()
		// Measuring a window of idle time is what this benchmark does: the
		// wait is the measurement, not a synchronisation.
		time.Sleep(window)
		cpu, d := cpuTime()-start, time.Since(t0)
		b.ReportMetric(cpu.Seconds()/d.Minutes(), "cpu-s/min")
	}
}

// cpuTime is this process' user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQueryRealShape: the server's CPU per ServiceQueryRequest at the
// shape of real clients (issue 16): 3,000 services of 10 Dubbo providers,
// registered before the clients come; 64 reader connections in a child
// process, each with one request in flight, asking for one service after
// another (each service is asked a few times in the window, so many
// answers come from a snapshot's first encoding). Server CPU is the
// process' getrusage over a 5 s window.
//
//	go test -run '^$' -bench QueryRealShape -benchtime 1x ./registry-server/grpcapi/
func BenchmarkQueryRealShape(b *testing.B) {
	const services, readers, window = 3000, 64, 5 * time.Second
	for i := 0; i < b.N; i++ {
		s, reg := startServer(b, nil)
		for svc := range services {
			k := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: queryService(svc)}
			for r := range 10 {
				in := dubboInstance(svc, r)
				if err := reg.Register("app"+strconv.Itoa((svc*10+r)%300), k, in); err != nil {
					b.Fatal(err)
				}
			}
		}
		child := openClientsEnv(b, s, readers, clientQuery, "FERRY_CONNMEM_SERVICES="+strconv.Itoa(services))
		runtime.GC()
		if _, err := child.Ask("start"); err != nil {
			b.Fatal(err)
		}
		cpu0, t0 := cpuTime(), time.Now()
		q0 := askCount(b, child)
		time.Sleep(window) // the measurement window, not a synchronisation
		q1 := askCount(b, child)
		cpu, d := cpuTime()-cpu0, time.Since(t0)
		b.ReportMetric(float64(q1-q0)/d.Seconds(), "queries/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(q1-q0), "server-cpu-µs/query")
	}
}

func askCount(b *testing.B, c *benchchild.Child) int64 {
	s, err := c.Ask("count")
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// dubboInstance is provider r of service svc as a Java Dubbo 3 provider
// registers it (about 25 metadata keys).
func dubboInstance(svc, r int) naming.Instance {
	md := map[string]string{"anyhost": "true", "application": "app" + strconv.Itoa(svc%300), "release": "3.2.10", "dubbo": "2.0.2",
		"interface": "com.example.S" + strconv.Itoa(svc), "version": "1.0.0", "side": "provider", "timestamp": "1700000000000",
		"methods": "sayHello,sayHelloAsync,greet,list,get,put,delete", "pid": strconv.Itoa(1000 + r), "generic": "false",
		"deprecated": "false", "dynamic": "true", "category": "providers", "path": "com.example.S" + strconv.Itoa(svc),
		"protocol": "dubbo", "port": "20880", "background": "false", "service-name-mapping": "true",
		"executor-management-mode": "isolation", "file-cache": "true", "prefer.serialization": "fastjson2,hessian2",
		"serialization": "hessian2", "threads": "200", "weight": "100"}
	return naming.Instance{IP: "10." + strconv.Itoa(svc>>8&255) + "." + strconv.Itoa(svc&255) + "." + strconv.Itoa(r+1), Port: 20880,
		Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Metadata: md}
}

// BenchmarkIdleConnMemory: the server's memory per idle SDK connection.
//
//	go test -run '^$' -bench IdleConnMemory -benchtime 1x ./registry-server/grpcapi/
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, n := range []int{300, 3000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var m connMem
			for i := 0; i < b.N; i++ {
				m = measureConnMem(b, n, clientIdle, nil)
			}
			b.Log(m)
			m.report(b)
		})
	}
}

// TestConnMemClients is the child of the connection memory tests: it opens
// FERRY_CONNMEM_N connections of FERRY_CONNMEM_MODE to FERRY_CONNMEM_ADDR,
// says "ready" and holds them until its stdin closes.
func TestConnMemClients(t *testing.T) {
	addr := os.Getenv("FERRY_CONNMEM_ADDR")
	if addr == "" {
		t.Skip("the child of the connection memory tests")
	}
	n, _ := strconv.Atoi(os.Getenv("FERRY_CONNMEM_N"))
	mode := os.Getenv("FERRY_CONNMEM_MODE")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make([]*grpc.ClientConn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			cc, err := sdkClient(ctx, addr, mode)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = cc
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready") // the greeting: the connections are up
	var queries atomic.Int64
	benchchild.Serve(os.Stdin, os.Stdout, func(line string) string {
		switch line {
		case "start":
			if mode == clientQuery {
				services, _ := strconv.Atoi(os.Getenv("FERRY_CONNMEM_SERVICES"))
				startQueries(ctx, conns, services, &queries)
			}
		case "count":
			return strconv.FormatInt(queries.Load(), 10)
		}
		return ""
	})
	for _, cc := range conns {
		cc.Close()
	}
}

// startQueries makes each connection ask for one service after another
// (spread over services), one request in flight, as an application's
// lookups do; n counts the answers.
func startQueries(ctx context.Context, conns []*grpc.ClientConn, services int, n *atomic.Int64) {
	reqs := make([]*wire.Payload, services)
	for i := range reqs {
		reqs[i], _ = wire.Encode(&wire.ServiceQueryRequest{NamingHeader: nh(queryService(i))})
	}
	for i, cc := range conns {
		go func() {
			rc := wire.NewRequestClient(cc)
			for j := i * 7919; ctx.Err() == nil; j++ {
				out, err := rc.Request(ctx, reqs[j%services])
				if err != nil {
					continue
				}
				if out.GetMetadata().GetType() != wire.TypeQueryServiceResponse {
					fmt.Fprintln(os.Stderr, "answered", out.GetMetadata().GetType())
				}
				n.Add(1)
			}
		}()
	}
}

func queryService(i int) string { return "providers:com.example.S" + strconv.Itoa(i) + ":1.0.0:" }

// sdkClient opens one connection as nacos-sdk-go does (its keepalive and
// windows), in mode.
func sdkClient(ctx context.Context, addr, mode string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(10<<20), grpc.WithInitialConnWindowSize(10<<20),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, err
	}
	if mode == clientNoRequest {
		cc.Connect()
		for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				return nil, ctx.Err()
			}
		}
		return cc, nil
	}
	req := wire.NewRequestClient(cc)
	call := func(m wire.Message) (wire.Response, error) {
		p, err := wire.Encode(m)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := req.Request(cctx, p)
		if err != nil {
			return nil, err
		}
		r, err := wire.Decode(out)
		if err != nil {
			return nil, err
		}
		return r.(wire.Response), nil
	}
	if _, err := call(&wire.ServerCheckRequest{}); err != nil {
		return nil, err
	}
	stream, err := wire.NewBiRequestStreamClient(cc).RequestBiStream(ctx)
	if err != nil {
		return nil, err
	}
	p, _ := wire.Encode(&wire.ConnectionSetupRequest{ClientVersion: "Nacos-Go-Client:v2.3.0", Labels: map[string]string{"module": "naming", "source": "sdk"}})
	if err := stream.Send(p); err != nil {
		return nil, err
	}
	if mode != clientNoRead {
		go func() { // answer the server's requests, as the SDK does
			for {
				p, err := stream.Recv()
				if err != nil {
					return
				}
				m, err := wire.Decode(p)
				if err != nil {
					continue
				}
				if r, ok := m.(wire.Request); ok {
					var resp wire.Response
					switch r.(type) {
					case *wire.NotifySubscriberRequest:
						resp = &wire.NotifySubscriberResponse{}
					case *wire.ClientDetectionRequest:
						resp = &wire.ClientDetectionResponse{}
					default:
						continue
					}
					*resp.Result() = wire.ResponseHeader{ResultCode: 200, RequestID: r.Header().RequestID}
					if ap, err := wire.Encode(resp); err == nil {
						_ = stream.Send(ap)
					}
				}
			}
		}()
	}
	// Setup is fire-and-forget: the connection is registered once a
	// request is accepted.
	for {
		r, err := call(&wire.HealthCheckRequest{})
		if err != nil {
			return nil, err
		}
		if r.Result().OK() {
			break
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if every := map[string]time.Duration{clientFlood: time.Millisecond, clientIdle: 5 * time.Second}[mode]; every > 0 {
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if _, err := call(&wire.HealthCheckRequest{}); err != nil && ctx.Err() != nil {
					return
				}
			}
		}()
	}
	return cc, nil
}

func BenchmarkIdleConnMemoryReadBuffer(b *testing.B) {
	for _, rb := range []int{0, 1024, 2048, 32 << 10} {
		b.Run(strconv.Itoa(rb), func(b *testing.B) {
			var m connMem
			for i := 0; i < b.N; i++ {
				m = measureConnMem(b, 2000, clientIdle, func(c *Config) { c.ReadBufferBytes = rb })
			}
			b.Log(m)
			m.report(b)
		})
	}
}

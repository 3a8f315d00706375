package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc"

	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/wire"
)

// benchRegistry measures one in-process registry node through loopback
// gRPC clients (wire, no SDK), and the same register/query workload against
// a private ZooKeeper (ephemeral znodes) in the same run.
//
//	ferry bench registry [-instances 100000] [-duration 3s] [-subscribers 1000] [-zk=true]
func benchRegistry(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench registry", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	instances := fs.Int("instances", 100000, "instances registered by the batch workload (memory is measured at this size)")
	singles := fs.Int("singles", 20000, "instances registered by single InstanceRequests")
	dur := fs.Duration("duration", 3*time.Second, "duration of the query and beat workloads")
	subscribers := fs.Int("subscribers", 1000, "subscriber connections of the push workload")
	rounds := fs.Int("push-rounds", 5, "changes pushed in the push workload")
	withZK := fs.Bool("zk", true, "run the ZooKeeper comparison (needs Debian's zookeeper package)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the query workload to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b := &regBench{out: env.stdout, log: env.logger, cpuProfile: *cpuProfile}
	return b.run(ctx, *instances, *singles, *dur, *subscribers, *rounds, *withZK)
}

type regBench struct {
	out        io.Writer
	log        *slog.Logger
	addr       string
	cpuProfile string // CPU profile of the query workload, when set
}

func (b *regBench) printf(format string, a ...any) { fmt.Fprintf(b.out, format, a...) }

func (b *regBench) run(ctx context.Context, instances, singles int, dur time.Duration, subscribers, rounds int, withZK bool) error {
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	dir, err := os.MkdirTemp("", "ferry-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir
	cfg.GRPC.MaxConnections = subscribers + 1000
	s, err := registryserver.New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Stop()
	b.addr = s.GRPCAddr().String()
	b.printf("registry: one in-process node, loopback gRPC clients, GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))

	// 1. Batch registrations (and memory per instance at that size).
	conns, err := dialN(4, func() (*benchConn, error) { return b.dial(ctx, nil) })
	if err != nil {
		return err
	}
	heapBefore := heapNow()
	n, el, err := b.batchRegister(ctx, conns, instances, 100)
	if err != nil {
		return err
	}
	regBatch := float64(n) / el.Seconds()
	b.printf("  batch register   %8d instances in %v: %10.0f instances/s (BatchInstanceRequest of 100, 4 connections)\n", n, el.Round(time.Millisecond), regBatch)
	perInst := float64(heapNow()-heapBefore) / float64(n)
	b.printf("  memory           %8.0f B/instance at %d instances (server heap growth, Dubbo-like metadata)\n", perInst, n)

	// 2. Single InstanceRequests.
	sconns, err := dialN(8, func() (*benchConn, error) { return b.dial(ctx, nil) })
	if err != nil {
		return err
	}
	n, el, err = b.singleRegister(ctx, sconns, singles, 8)
	if err != nil {
		return err
	}
	regSingle := float64(n) / el.Seconds()
	b.printf("  single register  %8d instances in %v: %10.0f instances/s (InstanceRequest, 8 connections × 8 in flight)\n", n, el.Round(time.Millisecond), regSingle)

	// 3. Queries.
	q, el, qcpu, err := b.queries(ctx, conns, dur)
	if err != nil {
		return err
	}
	qps := float64(q) / el.Seconds()
	b.printf("  queries          %8d in %v: %10.0f queries/s (ServiceQueryRequest, 10 instances/service, 4 connections × 4 in flight); %.0f per CPU-second of the whole process (server+client)\n",
		q, el.Round(time.Millisecond), qps, float64(q)/qcpu.Seconds())

	// 4. Merged beats.
	beats, el, cpu, err := b.beats(ctx, conns[:2], dur)
	if err != nil {
		return err
	}
	b.printf("  merged beats     %8d in %v: %10.0f instance-beats/s end to end (light items of 1,000); %.0f per CPU-second of the whole process (server+client)\n",
		beats, el.Round(time.Millisecond), float64(beats)/el.Seconds(), float64(beats)/cpu.Seconds())
	for _, c := range append(conns, sconns...) {
		c.close()
	}

	// 5. Push latency.
	p50, p99, max, err := b.pushLatency(ctx, subscribers, rounds)
	if err != nil {
		return err
	}
	b.printf("  push latency     %d subscribers × %d changes: p50 %v, p99 %v, max %v (change → NotifySubscriberRequest received; includes the 500 ms merge)\n",
		subscribers, rounds, p50.Round(time.Millisecond), p99.Round(time.Millisecond), max.Round(time.Millisecond))

	if !withZK {
		return nil
	}
	// 6. ZooKeeper: the same register/query workload with ephemeral znodes.
	zkBatch, zkSingle, zkQPS, err := b.zookeeper(ctx, instances, singles, dur)
	if err != nil {
		b.printf("  zookeeper        skipped: %v\n", err)
		return nil
	}
	b.printf("  zookeeper        batch (multi of 100 creates) %.0f znodes/s, single creates %.0f znodes/s, getChildren %.0f/s\n", zkBatch, zkSingle, zkQPS)
	b.printf("  ratio registry/zookeeper: batch register %.1fx, single register %.1fx, queries %.1fx\n", regBatch/zkBatch, regSingle/zkSingle, qps/zkQPS)
	return nil
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// dial opens a naming-module connection; onPush sees each subscriber push.
func (b *regBench) dial(ctx context.Context, onPush func(*wire.NotifySubscriberRequest, time.Time)) (*benchConn, error) {
	var hook func(wire.Request, time.Time)
	if onPush != nil {
		hook = func(r wire.Request, at time.Time) {
			if n, ok := r.(*wire.NotifySubscriberRequest); ok {
				onPush(n, at)
			}
		}
	}
	return benchDial(ctx, b.addr, "naming", hook)
}

func (c *benchConn) lightCall(ctx context.Context, m wire.Message, want string) error {
	p, err := wire.Encode(m)
	if err != nil {
		return err
	}
	out, err := c.req.Request(ctx, p)
	if err != nil {
		return err
	}
	if out.GetMetadata().GetType() != want || !bytes.HasPrefix(out.GetBody().GetValue(), []byte(`{"resultCode":200,`)) {
		return fmt.Errorf("unexpected answer %s %.200s", out.GetMetadata().GetType(), out.GetBody().GetValue())
	}
	return nil
}

// queryHead is how a successful answer for svc starts (no requestId sent).
func queryHead(svc string) []byte {
	return []byte(`{"resultCode":200,"errorCode":0,"success":true,"serviceInfo":{"name":"` + svc + `",`)
}

// queryCall sends an encoded ServiceQueryRequest for svc, decodes the
// answer in full and checks the service and its hosts. It returns the
// answer's size.
func (c *benchConn) queryCall(ctx context.Context, p *wire.Payload, svc string, head []byte) (int, error) {
	out, err := c.req.Request(ctx, p)
	if err != nil {
		return 0, err
	}
	body := out.GetBody().GetValue()
	m, err := wire.Decode(out)
	if err != nil {
		return 0, err
	}
	r, ok := m.(*wire.QueryServiceResponse)
	if !ok || !r.OK() || r.ServiceInfo.Name != svc || len(r.ServiceInfo.Hosts) != queryInstances || !bytes.HasPrefix(body, head) {
		return 0, fmt.Errorf("unexpected answer %s %.300s", out.GetMetadata().GetType(), body)
	}
	return len(body), nil
}

func benchInstance(idx int) wire.Instance {
	return wire.Instance{
		IP: "10." + strconv.Itoa(idx>>16&255) + "." + strconv.Itoa(idx>>8&255) + "." + strconv.Itoa(idx&255), Port: 20880,
		Weight: 1, Healthy: true, Enabled: true, Ephemeral: true,
		Metadata: map[string]string{"side": "provider", "dubbo": "2.0.2", "release": "2.7.23", "application": "app-" + strconv.Itoa(idx%50),
			"interface": "com.example.Service" + strconv.Itoa(idx/100), "version": "1.0.0", "methods": "get,put,list", "timestamp": "1700000000000"},
	}
}

func benchService(i int) string { return "providers:com.example.Service" + strconv.Itoa(i) + ":1.0.0:" }

func naming(svc string) wire.NamingHeader {
	return wire.NamingHeader{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: svc}
}

// batchRegister registers total instances as batches of size, the
// services spread over the connections (one batch per service per connection).
func (b *regBench) batchRegister(ctx context.Context, conns []*benchConn, total, size int) (int, time.Duration, error) {
	nsvc := total / size
	reqs := make([]*wire.BatchInstanceRequest, nsvc)
	for s := range reqs {
		insts := make([]wire.Instance, size)
		for i := range insts {
			insts[i] = benchInstance(s*size + i)
		}
		reqs[s] = &wire.BatchInstanceRequest{NamingHeader: naming(benchService(s)), Type: wire.BatchRegisterInstance, Instances: insts}
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(c *benchConn) {
				defer wg.Done()
				for {
					s := int(next.Add(1)) - 1
					if s >= nsvc {
						return
					}
					if err := c.lightCall(ctx, reqs[s], wire.TypeBatchInstanceResponse); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
				}
			}(c)
		}
	}
	wg.Wait()
	return nsvc * size, time.Since(start), firstErr
}

// singleRegister registers total instances one InstanceRequest each, into
// distinct services (a connection holds one instance per service).
func (b *regBench) singleRegister(ctx context.Context, conns []*benchConn, total, inflight int) (int, time.Duration, error) {
	reqs := make([]*wire.InstanceRequest, total)
	for i := range reqs {
		reqs[i] = &wire.InstanceRequest{NamingHeader: naming("single." + strconv.Itoa(i)), Type: wire.RegisterInstance, Instance: benchInstance(i)}
	}
	var next atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		for g := 0; g < inflight; g++ {
			wg.Add(1)
			go func(c *benchConn) {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					if err := c.lightCall(ctx, reqs[i], wire.TypeInstanceResponse); err != nil {
						firstErr.Store(err)
						return
					}
				}
			}(c)
		}
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, e
	}
	return total, time.Since(start), nil
}

// Query workload: 100 services of 10 instances (a common Dubbo size).
const (
	queryServices  = 100
	queryInstances = 10
)

func queryService(i int) string { return "query." + strconv.Itoa(i) }

// queries runs ServiceQueryRequests over the query services.
func (b *regBench) queries(ctx context.Context, conns []*benchConn, dur time.Duration) (int64, time.Duration, time.Duration, error) {
	for s := 0; s < queryServices; s++ {
		insts := make([]wire.Instance, queryInstances)
		for i := range insts {
			insts[i] = benchInstance(700000 + s*queryInstances + i)
		}
		if _, err := conns[0].call(ctx, &wire.BatchInstanceRequest{NamingHeader: naming(queryService(s)), Type: wire.BatchRegisterInstance, Instances: insts}); err != nil {
			return 0, 0, 0, err
		}
	}
	// Each service's answer is decoded in full once, untimed, and must hold
	// its hosts; the timed answers must then have the same success header,
	// service and length (only lastRefTime varies, always 13 digits).
	sizes := make(map[string]int, queryServices)
	for s := 0; s < queryServices; s++ {
		svc := queryService(s)
		p, err := wire.Encode(&wire.ServiceQueryRequest{NamingHeader: naming(svc)})
		if err != nil {
			return 0, 0, 0, err
		}
		if sizes[svc], err = conns[0].queryCall(ctx, p, svc, queryHead(svc)); err != nil {
			return 0, 0, 0, err
		}
	}
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return 0, 0, 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, 0, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	var count atomic.Int64
	var firstErr atomic.Value
	var stopped atomic.Bool // set when dur is over: no clock read per query
	start, cpu0 := time.Now(), cpuTime()
	timer := time.AfterFunc(dur, func() { stopped.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for ci, c := range conns {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(c *benchConn, seed int) {
				defer wg.Done()
				// Requests are encoded once: the bytes the SDK would send.
				type query struct {
					svc  string
					p    *wire.Payload
					head []byte
					size int
				}
				qs := make([]query, 100)
				for i := range qs {
					svc := queryService((seed*37 + i*11) % queryServices)
					p, err := wire.Encode(&wire.ServiceQueryRequest{NamingHeader: naming(svc)})
					if err != nil {
						firstErr.Store(err)
						return
					}
					qs[i] = query{svc: svc, p: p, head: queryHead(svc), size: sizes[svc]}
				}
				reply, codec := &queryReply{}, grpc.ForceCodecV2(newReplyCodec())
				for i := 0; !stopped.Load(); i++ {
					q := &qs[i%len(qs)]
					if err := c.queryCheck(ctx, q.p, q.head, q.size, reply, codec); err != nil {
						firstErr.Store(err)
						return
					}
					count.Add(1)
				}
			}(c, ci*4+g)
		}
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	return count.Load(), time.Since(start), cpuTime() - cpu0, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// beats sends FerryBatchBeatRequests of 1,000 known beat-kept instances.
func (b *regBench) beats(ctx context.Context, conns []*benchConn, dur time.Duration) (int64, time.Duration, time.Duration, error) {
	const size = 1000
	var reqs []*wire.FerryBatchBeatRequest
	for r := 0; r < 10; r++ {
		items := make([]wire.BeatItem, size)
		for i := range items {
			idx := 500000 + r*size + i
			items[i] = wire.BeatItem{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "beat." + strconv.Itoa(idx%500), Instance: benchInstance(idx)}
		}
		req := &wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: items}
		if err := conns[0].lightCall(ctx, req, wire.TypeFerryBatchBeatResponse); err != nil {
			return 0, 0, 0, err
		}
		// Known instances are then beaten with light items (address only).
		light := make([]wire.BeatItem, size)
		for i, it := range items {
			light[i] = wire.BeatItem{Namespace: it.Namespace, GroupName: it.GroupName, ServiceName: it.ServiceName, IP: it.Instance.IP, Port: it.Instance.Port}
		}
		reqs = append(reqs, &wire.FerryBatchBeatRequest{Beats: light})
	}
	// Encode fills a request's module on first use: do it here, once, so
	// the goroutines below only read the shared requests.
	for _, r := range reqs {
		if _, err := wire.Encode(r); err != nil {
			return 0, 0, 0, err
		}
	}
	var count atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(dur)
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for ci, c := range conns {
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func(c *benchConn, seed int) {
				defer wg.Done()
				for i := seed; time.Now().Before(stop); i++ {
					if err := c.lightCall(ctx, reqs[i%len(reqs)], wire.TypeFerryBatchBeatResponse); err != nil {
						firstErr.Store(err)
						return
					}
					count.Add(size)
				}
			}(c, ci*2+g)
		}
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, 0, e
	}
	return count.Load(), time.Since(start), cpuTime() - cpu0, nil
}

// pushLatency subscribes n connections to one service, then changes it
// rounds times (one new instance each) and measures, per subscriber, the
// time from the change to the push that carries it.
func (b *regBench) pushLatency(ctx context.Context, n, rounds int) (p50, p99, max time.Duration, err error) {
	const svc = "push.bench"
	var mu sync.Mutex
	var changeAt time.Time
	var want int
	var lat []time.Duration
	got := make(map[*benchConn]int)
	var done atomic.Int64
	subs := make([]*benchConn, 0, n)
	defer func() {
		for _, c := range subs {
			c.close()
		}
	}()
	for i := 0; i < n; i++ {
		var self *benchConn
		c, err := b.dial(ctx, func(r *wire.NotifySubscriberRequest, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if want > 0 && len(r.ServiceInfo.Hosts) == want && got[self] < want {
				got[self] = want
				lat = append(lat, at.Sub(changeAt))
				done.Add(1)
			}
		})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("subscriber %d: %w", i, err)
		}
		self = c
		subs = append(subs, c)
		if _, err := c.call(ctx, &wire.SubscribeServiceRequest{NamingHeader: naming(svc), Subscribe: true}); err != nil {
			return 0, 0, 0, err
		}
	}
	pub, err := b.dial(ctx, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	defer pub.close()
	time.Sleep(time.Second) // let the subscribe-time pushes settle
	// Collect the setup's garbage (1,000 dials, and the earlier workloads')
	// before the measured rounds, as testing.B does before timing.
	runtime.GC()
	insts := []wire.Instance{}
	for r := 1; r <= rounds; r++ {
		insts = append(insts, benchInstance(900000+r))
		mu.Lock()
		want, changeAt = r, time.Now()
		mu.Unlock()
		done.Store(0)
		if _, err := pub.call(ctx, &wire.BatchInstanceRequest{NamingHeader: naming(svc), Type: wire.BatchRegisterInstance, Instances: insts}); err != nil {
			return 0, 0, 0, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for done.Load() < int64(n) {
			if time.Now().After(deadline) {
				return 0, 0, 0, fmt.Errorf("round %d: only %d of %d subscribers got the push", r, done.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return 0, 0, 0, errors.New("no pushes measured")
	}
	return lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1], nil
}

// zookeeper runs the register/query workload against a private ZooKeeper:
// ephemeral provider znodes as Dubbo writes them, batches as multi-ops,
// queries as getChildren of a providers node.
func (b *regBench) zookeeper(ctx context.Context, instances, singles int, dur time.Duration) (batch, single, qps float64, err error) {
	if err := zkserver.Available(); err != nil {
		return 0, 0, 0, err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-zk-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := zkserver.Start(sctx, zkserver.Config{Dir: dir})
	if err != nil {
		return 0, 0, 0, err
	}
	defer srv.Stop()
	sessions := make([]*zk.Conn, 4)
	for i := range sessions {
		c, _, err := zk.Connect([]string{srv.Addr()}, 30*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkQuiet{}))
		if err != nil {
			return 0, 0, 0, err
		}
		defer c.Close()
		sessions[i] = c
	}
	z := sessions[0]
	mk := func(p string) error {
		if _, err := z.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
		return nil
	}
	// Parents (persistent) are created untimed, as a Dubbo estate has them.
	if err := mk("/dubbo"); err != nil {
		return 0, 0, 0, err
	}
	nsvc := instances / 100
	for s := 0; s < nsvc; s++ {
		if err := mk("/dubbo/" + benchService(s)); err != nil {
			return 0, 0, 0, err
		}
		if err := mk("/dubbo/" + benchService(s) + "/providers"); err != nil {
			return 0, 0, 0, err
		}
	}
	for i := 0; i < singles; i++ {
		if err := mk("/dubbo/single." + strconv.Itoa(i)); err != nil {
			return 0, 0, 0, err
		}
	}
	for s := 0; s < queryServices; s++ {
		if err := mk("/dubbo/" + queryService(s)); err != nil {
			return 0, 0, 0, err
		}
		if err := mk("/dubbo/" + queryService(s) + "/providers"); err != nil {
			return 0, 0, 0, err
		}
	}
	znode := func(parent string, idx int) string {
		in := benchInstance(idx)
		u := "dubbo://" + in.IP + ":20880/" + in.Metadata["interface"] + "?application=" + in.Metadata["application"] +
			"&dubbo=2.0.2&release=2.7.23&side=provider&version=1.0.0&methods=get,put,list&timestamp=1700000000000"
		return parent + "/" + url.QueryEscape(u)
	}
	run := func(n, workers int, job func(z *zk.Conn, i int) error) (time.Duration, error) {
		var next atomic.Int64
		var firstErr atomic.Value
		start := time.Now()
		var wg sync.WaitGroup
		for _, s := range sessions {
			for g := 0; g < workers; g++ {
				wg.Add(1)
				go func(z *zk.Conn) {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= n {
							return
						}
						if err := job(z, i); err != nil {
							firstErr.Store(err)
							return
						}
					}
				}(s)
			}
		}
		wg.Wait()
		if e, ok := firstErr.Load().(error); ok {
			return 0, e
		}
		return time.Since(start), nil
	}
	el, err := run(nsvc, 4, func(z *zk.Conn, s int) error {
		ops := make([]any, 100)
		for i := range ops {
			ops[i] = &zk.CreateRequest{Path: znode("/dubbo/"+benchService(s)+"/providers", s*100+i), Flags: zk.FlagEphemeral, Acl: zk.WorldACL(zk.PermAll)}
		}
		_, err := z.Multi(ops...)
		return err
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("zookeeper multi: %w", err)
	}
	batch = float64(nsvc*100) / el.Seconds()
	el, err = run(singles, 8, func(z *zk.Conn, i int) error {
		_, err := z.Create(znode("/dubbo/single."+strconv.Itoa(i), i), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		return err
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("zookeeper create: %w", err)
	}
	single = float64(singles) / el.Seconds()
	if _, err := run(queryServices*queryInstances, 4, func(z *zk.Conn, i int) error {
		_, err := z.Create(znode("/dubbo/"+queryService(i/queryInstances)+"/providers", 700000+i), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		return err
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("zookeeper query set-up: %w", err)
	}
	var count atomic.Int64
	stop := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for si, s := range sessions {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(z *zk.Conn, seed int) {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					kids, _, err := z.Children("/dubbo/" + queryService((seed*37+i*11)%queryServices) + "/providers")
					if err != nil || len(kids) != queryInstances {
						return
					}
					count.Add(1)
				}
			}(s, si*4+g)
		}
	}
	wg.Wait()
	qps = float64(count.Load()) / time.Since(start).Seconds()
	return batch, single, qps, nil
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/syncer/worker"
	"github.com/ferrysync/ferry/zkwatch"
)

// benchSync measures the sync end to end, on a private ZooKeeper seeded with
// -services × -instances providers, a whole registry node in a child process
// (so its CPU is measured apart) and one worker on SQLite in this process:
//
//  1. cold start: worker start until every desired instance is registered;
//
//  2. lag: -changes provider additions and removals at -rate per second,
//     each timed from the ZooKeeper write until the registry's instance
//     list shows it (polled over HTTP);
//
//  3. steady state for -steady: CPU of the worker and of the registry while
//     the worker keeps every instance alive with merged batch beats, then
//     CPU of the registry and of a beater that keeps the same instances
//     alive the Nacos 1.x way, one HTTP beat per instance per -period, then
//     the registry's CPU with the same instances and no beats (its
//     background), for figures net of it.
//
//     ferry bench sync [-services 3000] [-instances 10] [-rate 100] [-changes 1000] [-steady 10s]
func benchSync(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench sync", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	services := fs.Int("services", 3000, "services to seed")
	instances := fs.Int("instances", 10, "providers per service")
	apps := fs.Int("apps", 0, "Dubbo 3 applications to seed under /services (application-level instances; 0: none)")
	appInstances := fs.Int("app-instances", 100, "instances per application (with -apps)")
	timeout := fs.Duration("timeout", 120*time.Second, "give up on the cold start after")
	rate := fs.Int("rate", 100, "ZooKeeper changes per second in the lag phase")
	changes := fs.Int("changes", 1000, "changes in the lag phase (0 skips it)")
	steady := fs.Duration("steady", 10*time.Second, "measured time of each steady-state phase (0 skips them)")
	period := fs.Duration("period", 5*time.Second, "per-instance beat period of the HTTP beater (the Nacos client's default)")
	serve := fs.Bool("serve", false, "internal: run the registry child on stdin/stdout")
	profile := fs.String("registry-cpuprofile", "", "write the registry's CPU profile of the merged steady state to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve {
		return runSyncRegistryChild(os.Stdin, env.stdout)
	}
	if *rate <= 0 || *changes < 0 || *period <= 0 {
		return errors.New("bench sync: need -rate > 0, -changes ≥ 0, -period > 0")
	}
	if err := zkserver.Available(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-sync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	zcfg := zkserver.DefaultConfig()
	zcfg.Dir = filepath.Join(dir, "zk")
	zks, err := zkserver.Start(ctx, zcfg)
	if err != nil {
		return err
	}
	defer zks.Stop()
	lcfg := zkload.DefaultConfig()
	lcfg.Servers = []string{zks.Addr()}
	lcfg.Services, lcfg.Instances = *services, *instances
	loader, err := zkload.Connect(ctx, lcfg, env.logger)
	if err != nil {
		return err
	}
	defer loader.Close()
	stats, err := loader.Seed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "seeded %d services / %d providers in %v (GOMAXPROCS %d)\n",
		stats.Services, stats.Providers, stats.Duration.Round(time.Millisecond), runtime.GOMAXPROCS(0))
	if *apps > 0 {
		as, err := loader.SeedApps(ctx, *apps, *appInstances)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "seeded %d applications / %d application-level instances in %v\n",
			as.Services, as.Providers, as.Duration.Round(time.Millisecond))
	}

	reg, err := startSyncRegistry(ctx)
	if err != nil {
		return err
	}
	defer reg.stop()

	wcfg := worker.DefaultConfig()
	wcfg.DB = "sqlite://" + filepath.Join(dir, "ferry.db")
	wcfg.ZK = []string{zks.Addr()}
	wcfg.Registry = []string{reg.server}
	wcfg.HTTP = ""
	wcfg.WorkerID = "bench"
	quiet := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	w, err := worker.Start(ctx, wcfg, quiet)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop(context.Background())
		}
	}()
	st, err := waitAppsSynced(ctx, w, *apps**appInstances, *timeout, 20*time.Millisecond)
	if err != nil {
		return err
	}
	took := time.Since(start)
	rs, err := reg.stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "worker start → all %d desired instances registered: %v (skipped %v)\n",
		st.Engine.Desired+st.Engine.AppDesired, took.Round(time.Millisecond), st.Engine.Skipped)
	if st.Engine.AppDesired > 0 {
		fmt.Fprintf(env.stdout, "  of them interface level %d, application level %d\n", st.Engine.Desired, st.Engine.AppDesired)
	}
	fmt.Fprintf(env.stdout, "registry holds %d instances\n", rs.instances)
	if want := int64(st.Engine.Desired + st.Engine.AppDesired); rs.instances != want {
		return fmt.Errorf("bench sync: registry holds %d instances, the worker desires %d", rs.instances, want)
	}

	if *changes > 0 {
		if err := benchSyncLag(ctx, env, loader, reg.http, *services, *instances, *rate, *changes); err != nil {
			return err
		}
		if *apps > 0 {
			if _, err := waitSynced(ctx, w, *timeout, 20*time.Millisecond); err != nil {
				return err
			}
			if err := benchAppLag(ctx, env, loader, reg.http, *apps, *appInstances, *rate, *changes); err != nil {
				return err
			}
		}
		if _, err := waitSynced(ctx, w, *timeout, 20*time.Millisecond); err != nil {
			return err
		}
	}
	if *steady <= 0 {
		return nil
	}

	// Steady state, merged: the worker beats every instance once per
	// BeatPeriod in one batch RPC per BeatInterval.
	if *profile != "" {
		if err := reg.command("profile " + *profile); err != nil {
			return err
		}
	}
	r0, c0, err := reg.statsCPU()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*steady):
	}
	r1, c1, err := reg.statsCPU()
	if err != nil {
		return err
	}
	if *profile != "" {
		if err := reg.command("profile"); err != nil {
			return err
		}
	}
	held := r1.instances
	mReg := (r1.cpu - r0.cpu) / steady.Seconds()
	mWorker := (c1 - c0).Seconds() / steady.Seconds()
	mBeats := float64(r1.batchBeats-r0.batchBeats) / steady.Seconds()
	fmt.Fprintf(env.stdout, "steady, merged beats:       %d instances, %.0f instance-beats/s in %.1f RPC/s; registry CPU %.1f ms/s, worker CPU %.1f ms/s\n",
		held, mBeats, float64(r1.batchRPCs-r0.batchRPCs)/steady.Seconds(), mReg*1000, mWorker*1000)

	// Steady state, one beat per instance: stop the worker (its instances
	// stay until their beat timeout) and keep the same instances alive with
	// light HTTP beats, as a Nacos 1.x client (or NacosSync) does.
	targets, err := listInstances(ctx, reg.http)
	if err != nil {
		return err
	}
	w.Stop(context.Background())
	stopped = true
	b := &httpBeater{addr: reg.http, targets: targets, period: *period}
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.run(bctx) }()
	// Let one period pass so that every instance is beaten at the steady rate.
	select {
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	case <-time.After(*period):
	}
	n2 := b.sent.Load()
	r2, c2, err2 := reg.statsCPU()
	select {
	case <-ctx.Done():
	case <-time.After(*steady):
	}
	n3 := b.sent.Load()
	r3, c3, err3 := reg.statsCPU()
	cancel()
	<-done
	if err := errors.Join(ctx.Err(), err2, err3); err != nil {
		return err
	}
	// Idle: the same instances, no beats (they stay healthy for the
	// registry's 15 s beat timeout): the registry's own background cost
	// (expiry scans, GC of its heap, timers), for the net figures.
	idle := min(*steady, 8*time.Second)
	r4, _, err4 := reg.statsCPU()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idle):
	}
	r5, _, err5 := reg.statsCPU()
	if err := errors.Join(err4, err5); err != nil {
		return err
	}
	iReg := (r5.cpu - r4.cpu) / idle.Seconds()
	sReg := (r3.cpu - r2.cpu) / steady.Seconds()
	sBeater := (c3 - c2).Seconds() / steady.Seconds()
	sBeats := float64(n3-n2) / steady.Seconds()
	fmt.Fprintf(env.stdout, "steady, one HTTP beat each: %d instances, %.0f instance-beats/s (unknown %d, errors %d); registry CPU %.1f ms/s, beater CPU %.1f ms/s\n",
		r3.instances, sBeats, b.unknown.Load(), b.errors.Load(), sReg*1000, sBeater*1000)
	if mReg > 0 && mBeats > 0 && sBeats > 0 {
		m, s := mReg/mBeats*1e6, sReg/sBeats*1e6
		fmt.Fprintf(env.stdout, "registry CPU per 1,000 instance-beats: merged %.2f ms, one HTTP beat each %.2f ms: merged = 1/%.1f (per second: 1/%.1f)\n",
			m, s, s/m, sReg/mReg)
		fmt.Fprintf(env.stdout, "registry idle (same instances, no beats): %.1f ms/s; net of it per 1,000 instance-beats: merged %.2f ms, one HTTP beat each %.2f ms: merged = 1/%.1f\n",
			iReg*1000, (mReg-iReg)/mBeats*1e6, (sReg-iReg)/sBeats*1e6, ((sReg-iReg)/sBeats)/((mReg-iReg)/mBeats))
	}
	return nil
}

// lagProbe is one change waiting to show in the registry.
type lagProbe struct {
	service string // Nacos service name
	addr    string // ip:port
	present bool   // what the registry should come to show
	t0      time.Time
}

// benchSyncLag writes -changes provider changes at rate/s: each second of
// them adds new providers to random services, and removes them again in the
// next second. A single poller asks the registry about every change still
// pending, round after round, and records the time from before the
// ZooKeeper write until the registry showed it.
func benchSyncLag(ctx context.Context, env *cmdEnv, loader *zkload.Loader, regHTTP string, services, instances, rate, n int) error {
	rnd := rand.New(rand.NewPCG(7, 11))
	next := instances
	change := func() (string, []byte, lagProbe, error) {
		var raw string
		var svc int
		for {
			svc = rnd.IntN(services)
			raw = loader.ProviderURL(svc, next, time.Now().UnixMilli())
			next++
			if !strings.Contains(raw, "withNacos=true") {
				break
			}
		}
		u, err := zkwatch.ParseURL(raw)
		if err != nil {
			return "", nil, lagProbe{}, err
		}
		p := lagProbe{service: syncer.ServiceName(syncer.URL{Protocol: u.Protocol, Host: u.Host, Port: u.Port, Path: u.Path, Params: u.Params}), addr: net.JoinHostPort(u.Host, strconv.Itoa(u.Port))}
		return loader.ProviderPath(svc, raw), nil, p, nil
	}
	return benchLag(ctx, env, loader.Conn(), regHTTP, "ZooKeeper change", rate, n, change)
}

// benchLag writes n changes at rate/s, each a node change() returns
// (path, data and the registry instance it should make appear), added in
// the first half of every second and removed again in the second; a single
// poller asks the registry about every change still pending, round after
// round, and records the time from before the ZooKeeper write until the
// registry showed it. label starts the report line.
func benchLag(ctx context.Context, env *cmdEnv, conn *zk.Conn, regHTTP, label string, rate, n int,
	change func() (path string, data []byte, p lagProbe, err error)) error {
	var (
		mu        sync.Mutex
		pending   []*lagProbe
		overtaken int // adds removed before the poller saw them
		addLag    []time.Duration
		delLag    []time.Duration
	)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			mu.Lock()
			batch := slices.Clone(pending)
			mu.Unlock()
			for _, p := range batch {
				if has, err := registryHas(pollCtx, hc, regHTTP, p.service, p.addr); err == nil && has == p.present {
					d := time.Since(p.t0)
					mu.Lock()
					if p.present {
						addLag = append(addLag, d)
					} else {
						delLag = append(delLag, d)
					}
					pending = slices.DeleteFunc(pending, func(q *lagProbe) bool { return q == p })
					mu.Unlock()
				}
			}
			if len(batch) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	type added struct {
		path  string
		probe lagProbe
	}
	var live []added
	failed := 0
	tk := time.NewTicker(time.Second / time.Duration(rate))
	defer tk.Stop()
	for k := 0; k < n; k++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
		}
		// Adds for the first half of every second, removes of the same
		// providers in the second half: the catalog is level over time.
		if (k/(max(rate/2, 1)))%2 == 1 && len(live) > 0 {
			a := live[0]
			live = live[1:]
			p := a.probe
			p.present, p.t0 = false, time.Now()
			mu.Lock()
			// An add not yet seen is overtaken by its removal: the poller
			// can no longer see it, so it is counted apart, not as lost.
			n0 := len(pending)
			pending = slices.DeleteFunc(pending, func(q *lagProbe) bool { return q.present && q.service == p.service && q.addr == p.addr })
			overtaken += n0 - len(pending)
			pending = append(pending, &p)
			mu.Unlock()
			if err := conn.Delete(a.path, -1); err != nil {
				failed++
				mu.Lock()
				pending = slices.DeleteFunc(pending, func(q *lagProbe) bool { return q == &p })
				mu.Unlock()
			}
			continue
		}
		path, data, p, err := change()
		if err != nil {
			return err
		}
		p.present, p.t0 = true, time.Now()
		mu.Lock()
		pending = append(pending, &p)
		mu.Unlock()
		if _, err := conn.Create(path, data, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			failed++
			mu.Lock()
			pending = slices.DeleteFunc(pending, func(q *lagProbe) bool { return q == &p })
			mu.Unlock()
			continue
		}
		live = append(live, added{path: path, probe: p})
	}
	// Remove what is left so the catalog ends as it began (these are not timed).
	for _, a := range live {
		_ = conn.Delete(a.path, -1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopPoll()
	<-polled
	all := append(slices.Clone(addLag), delLag...)
	if len(all) == 0 {
		return errors.New("bench sync: no change reached the registry")
	}
	q := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond)
	}
	fmt.Fprintf(env.stdout, "%s → registry at %d changes/s: n=%d p50=%v p99=%v max=%v (adds p50=%v p99=%v, removals p50=%v p99=%v; adds overtaken by their removal before seen %d, unseen after 30 s %d, ZooKeeper errors %d)\n",
		label, rate, len(all), q(all, 0.5), q(all, 0.99), q(all, 1), q(addLag, 0.5), q(addLag, 0.99), q(delLag, 0.5), q(delLag, 0.99),
		overtaken, len(pending), failed)
	return nil
}

// registryHas asks the registry's v1 instance list whether svc has addr.
func registryHas(ctx context.Context, hc *http.Client, regHTTP, svc, addr string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://"+regHTTP+"/nacos/v1/ns/instance/list?serviceName="+url.QueryEscape(svc), nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Hosts []struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		} `json:"hosts"`
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false, fmt.Errorf("instance list: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, err
	}
	for _, h := range body.Hosts {
		if net.JoinHostPort(h.IP, strconv.Itoa(h.Port)) == addr {
			return true, nil
		}
	}
	return false, nil
}

// beatTarget is one instance for the HTTP beater.
type beatTarget struct {
	service string
	ip      string
	port    int
}

// listInstances reads every instance the registry holds (public namespace,
// DEFAULT_GROUP) over the v1 HTTP API.
func listInstances(ctx context.Context, regHTTP string) ([]beatTarget, error) {
	get := func(path string, out any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+regHTTP+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var list struct {
		Doms []string `json:"doms"`
	}
	if err := get("/nacos/v1/ns/service/list?pageNo=1&pageSize=1000000", &list); err != nil {
		return nil, err
	}
	var out []beatTarget
	for _, svc := range list.Doms {
		var body struct {
			Hosts []struct {
				IP   string `json:"ip"`
				Port int    `json:"port"`
			} `json:"hosts"`
		}
		if err := get("/nacos/v1/ns/instance/list?serviceName="+url.QueryEscape(svc), &body); err != nil {
			return nil, err
		}
		for _, h := range body.Hosts {
			out = append(out, beatTarget{service: svc, ip: h.IP, port: h.Port})
		}
	}
	return out, nil
}

// httpBeater sends each target one light beat (PUT /nacos/v1/ns/instance/beat)
// per period, spread evenly, from a bounded pool: the Nacos 1.x client's way.
type httpBeater struct {
	addr    string
	targets []beatTarget
	period  time.Duration

	sent, unknown, errors atomic.Int64
}

func (b *httpBeater) run(ctx context.Context) {
	const senders = 32
	work := make(chan beatTarget, senders*4)
	var wg sync.WaitGroup
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}, Timeout: 5 * time.Second}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				b.beat(ctx, hc, t)
			}
		}()
	}
	defer func() { close(work); wg.Wait() }()
	// Paced by the clock, not by ticks: each tick sends what is due by now,
	// so missed ticks on a busy machine do not lower the rate.
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		due := int(float64(len(b.targets)) * float64(time.Since(start)) / float64(b.period))
		for ; sent < due; sent++ {
			select {
			case work <- b.targets[sent%len(b.targets)]:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (b *httpBeater) beat(ctx context.Context, hc *http.Client, t beatTarget) {
	q := url.Values{"serviceName": {t.service}, "ip": {t.ip}, "port": {strconv.Itoa(t.port)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+b.addr+"/nacos/v1/ns/instance/beat?"+q.Encode(), nil)
	if err != nil {
		b.errors.Add(1)
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			b.errors.Add(1)
		}
		return
	}
	var ans struct {
		Code int `json:"code"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	switch {
	case err != nil || resp.StatusCode != http.StatusOK:
		b.errors.Add(1)
	case ans.Code != 10200:
		b.unknown.Add(1)
	default:
		b.sent.Add(1)
	}
}

// syncRegistry is the registry node in a child process.
type syncRegistry struct {
	*benchChild
	http   string // HTTP address
	server string // registryclient server "host:http/grpc"
}

type syncRegistryStats struct {
	cpu                   float64
	batchBeats, batchRPCs int64
	instances             int64
}

func startSyncRegistry(ctx context.Context) (*syncRegistry, error) {
	c, err := startBenchChild(ctx, "bench", "sync", "-serve")
	if err != nil {
		return nil, err
	}
	r := &syncRegistry{benchChild: c}
	var grpcAddr string
	if _, err := fmt.Sscanf(c.hello, "registry %s %s", &r.http, &grpcAddr); err != nil {
		c.stop()
		return nil, fmt.Errorf("bench sync: registry child said %q", c.hello)
	}
	_, gport, _ := net.SplitHostPort(grpcAddr)
	r.server = r.http + "/" + gport
	return r, nil
}

// command sends one line and expects the child's "ok".
func (r *syncRegistry) command(line string) error {
	ans, err := r.ask(line)
	if err == nil && ans != "ok" {
		err = fmt.Errorf("bench sync: registry child: %s", ans)
	}
	return err
}

func (r *syncRegistry) stats() (syncRegistryStats, error) {
	line, err := r.ask("stats")
	if err != nil {
		return syncRegistryStats{}, err
	}
	var s syncRegistryStats
	if _, err := fmt.Sscanf(line, "stats %f %d %d %d", &s.cpu, &s.batchBeats, &s.batchRPCs, &s.instances); err != nil {
		return s, fmt.Errorf("bench sync: registry child said %q: %w", line, err)
	}
	return s, nil
}

// statsCPU is stats and this process's CPU time, read together.
func (r *syncRegistry) statsCPU() (syncRegistryStats, time.Duration, error) {
	s, err := r.stats()
	return s, selfCPU(), err
}

// runSyncRegistryChild runs a whole registry node (registryserver.Open) on
// free loopback ports, prints "registry <http> <grpc>", then answers each
// "stats" line with "stats <cpuSeconds> <batchBeats> <batchRPCs>
// <instances>" until in closes; "profile FILE" starts a CPU profile,
// "profile" stops it.
func runSyncRegistryChild(in io.Reader, out io.Writer) error {
	dir, err := os.MkdirTemp("", "ferry-bench-sync-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := registryserver.DefaultConfig()
	cfg.Port, cfg.DataDir = 0, dir
	prom := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := registryserver.Open(cfg, logger, prom)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Stop()
	fmt.Fprintf(out, "registry %s %s\n", s.HTTPAddr(), s.GRPCAddr())
	var prof *os.File
	defer func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}()
	serveBenchLines(in, out, func(line string) string {
		if file, ok := strings.CutPrefix(line, "profile"); ok {
			var err error
			if prof != nil {
				pprof.StopCPUProfile()
				err = prof.Close()
				prof = nil
			} else if prof, err = os.Create(strings.TrimSpace(file)); err == nil {
				err = pprof.StartCPUProfile(prof)
			}
			if err != nil {
				return "error " + err.Error()
			}
			return "ok"
		}
		beats, rpcs := beatCounts(prom)
		n := 0
		for _, k := range s.Naming().Services() {
			if info, err := s.Naming().Select(k, nil, false); err == nil {
				n += len(info.Hosts)
			}
		}
		return fmt.Sprintf("stats %.6f %d %d %d", selfCPU().Seconds(), beats, rpcs, n)
	})
	return nil
}

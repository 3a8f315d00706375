package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrysync/ferry/internal/procstat"
	"github.com/ferrysync/ferry/internal/svgchart"
	"github.com/ferrysync/ferry/internal/zkload"
	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/store"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/syncer/worker"
	"github.com/ferrysync/ferry/zkwatch"
)

// benchSoak runs an operator's soak of one sync worker: a private ZooKeeper
// seeded with -services × -instances providers, the bundled registry node
// in a child process (`ferry bench sync -serve`), and one `ferry sync`
// worker child on SQLite. After the first full sync it restarts -rate
// providers per second the Dubbo way (a new node with a newer timestamp
// first, the old node removed -remove-after later) for -duration, and every
// -interval prints the worker's and the registry's RSS and CPU (read from
// /proc) and the worker's Go heap (its /metrics). At the end it lets the
// last deletes land and checks that the registry holds exactly the
// expected instances, as a consumer sees them (healthy only, over HTTP).
//
//	ferry bench soak [-services 3000] [-instances 10] [-rate 100] [-duration 10m] [-interval 30s] [-idle 30s]
//	                 [-remove-after 1s] [-svg soak.svg] [-out soak.md] [-gomemlimit 100MiB]
//	                 [-worker-heapprofile PREFIX] [-worker-cpuprofile FILE]
func benchSoak(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	services := fs.Int("services", 3000, "services to seed")
	instances := fs.Int("instances", 10, "providers per service")
	rate := fs.Float64("rate", 100, "provider restarts per second (each is two ZooKeeper writes: a create, a delete later)")
	duration := fs.Duration("duration", 10*time.Minute, "how long to churn")
	interval := fs.Duration("interval", 30*time.Second, "sampling interval")
	idle := fs.Duration("idle", 30*time.Second, "after the first sync, measure both processes' CPU this long without churn (their background: beats, probes, expiry), for figures net of it (0: skip)")
	removeAfter := fs.Duration("remove-after", time.Second, "how long a restarted provider's old node outlives the new one")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on the first sync (and on the final check) after")
	svgOut := fs.String("svg", "", "write the chart (RSS and CPU over time) to this SVG file")
	mdOut := fs.String("out", "", "write the samples and the summary as Markdown to this file")
	memLimit := fs.String("gomemlimit", "", "GOMEMLIMIT of the worker child (e.g. 100MiB; empty: none)")
	cpuProf := fs.String("worker-cpuprofile", "", "write a CPU profile of the worker during the churn (30 s from its start, or half the duration) to this file")
	heapProf := fs.String("worker-heapprofile", "", "write the worker's heap profile (its /debug/pprof/heap) after the first sync to PREFIX-start.pb.gz and at the end to PREFIX-end.pb.gz")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *services <= 0 || *instances <= 0:
		return errors.New("bench soak: need -services > 0 and -instances > 0")
	case *rate <= 0 || *duration <= 0 || *interval <= 0 || *removeAfter <= 0:
		return errors.New("bench soak: need -rate, -duration, -interval and -remove-after > 0")
	}
	if err := zkserver.Available(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-soak-")
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
	lcfg.WithNacosShare = 0 // every provider is synced
	loader, err := zkload.Connect(ctx, lcfg, env.logger)
	if err != nil {
		return err
	}
	defer loader.Close()
	seeded, err := loader.Seed(ctx)
	if err != nil {
		return err
	}
	expected, err := soakExpected(loader, *services, *instances)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "seeded %d services / %d providers in %v (GOMAXPROCS %d)\n",
		seeded.Services, seeded.Providers, seeded.Duration.Round(time.Millisecond), runtime.GOMAXPROCS(0))

	reg, err := startSyncRegistry(ctx)
	if err != nil {
		return err
	}
	defer reg.stop()
	wk, err := startSoakWorker(ctx, env, dir, zks.Addr(), reg.server, *memLimit)
	if err != nil {
		return err
	}
	defer wk.stop()
	start := time.Now()
	st, err := wk.waitSynced(ctx, *timeout, expected.instances)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "worker start → all %d desired instances registered: %v\n", st.Engine.Desired, time.Since(start).Round(time.Millisecond))
	wRSS, _, err1 := procstat.Mem(wk.pid())
	rRSS, _, err2 := procstat.Mem(reg.Pid())
	wHeap, _, err3 := wk.heap()
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "after the first sync: worker RSS %.1f MiB (Go heap in use %.1f MiB, %.0f B per instance), registry RSS %.1f MiB\n",
		float64(wRSS)/(1<<20), wHeap/(1<<20), wHeap/float64(st.Engine.Desired), float64(rRSS)/(1<<20))

	if *heapProf != "" {
		if err := wk.heapProfile(*heapProf + "-start.pb.gz"); err != nil {
			return err
		}
	}
	var bg soakIdle
	if *idle > 0 {
		if bg, err = measureIdle(ctx, wk.pid(), reg.Pid(), *idle); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "idle for %v (no churn): worker CPU %.1f ms/s, registry CPU %.1f ms/s\n", *idle, bg.worker, bg.registry)
	}
	var writes atomic.Int64
	cctx, stopChurn := context.WithCancel(ctx)
	churned := make(chan error, 1)
	go func() {
		churned <- loader.Churn(cctx, zkload.ChurnConfig{Rate: *rate, RemoveAfter: *removeAfter,
			OnWrite: func(zkload.Write) { writes.Add(1) }})
	}()
	profiled := make(chan error, 1)
	if *cpuProf != "" {
		secs := int(min(30*time.Second, *duration/2) / time.Second)
		go func() { profiled <- wk.profile(*cpuProf, max(secs, 1)) }()
	} else {
		profiled <- nil
	}
	s := &soakSampler{worker: wk, registryPid: reg.Pid(), writes: &writes, t0: time.Now()}
	if err := s.sample(); err != nil { // minute 0: after the first sync, churn starting
		stopChurn()
		<-churned
		return err
	}
	fmt.Fprintf(env.stdout, "churn: %.0f restarts/s (%.0f ZooKeeper writes/s) for %v; a sample every %v\n", *rate, 2**rate, *duration, *interval)
	fmt.Fprintln(env.stdout, soakHeader)
	fmt.Fprintln(env.stdout, s.samples[0].line())
	tk := time.NewTicker(*interval)
	end := time.After(*duration)
	var churnErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case churnErr = <-churned:
			churned <- churnErr
			break loop
		case <-end:
			break loop
		case <-tk.C:
		}
		if err := s.sample(); err != nil {
			churnErr = err
			break
		}
		fmt.Fprintln(env.stdout, s.samples[len(s.samples)-1].line())
	}
	tk.Stop()
	if *heapProf != "" {
		if err := wk.heapProfile(*heapProf + "-end.pb.gz"); err != nil {
			churnErr = errors.Join(churnErr, err)
		}
	}
	if len(s.samples) == 1 || time.Since(s.samples[len(s.samples)-1].at) > *interval/2 {
		if err := s.sample(); err == nil { // the end of the churn
			fmt.Fprintln(env.stdout, s.samples[len(s.samples)-1].line())
		}
	}
	stopChurn()
	if err := errors.Join(churnErr, <-churned, <-profiled, ctx.Err()); err != nil {
		return err
	}

	// The last deletes have landed (Churn returns after them): the registry
	// must come to hold exactly the catalog, as consumers see it.
	checkStart := time.Now()
	missing, extra, err := soakCheck(ctx, reg.http, expected, *timeout)
	summary := s.summary(bg)
	if err != nil {
		summary += fmt.Sprintf("final check: FAILED after %v: %v (missing %d, extra %d)\n", time.Since(checkStart).Round(time.Second), err, missing, extra)
	} else {
		summary += fmt.Sprintf("final check: the registry holds exactly the %d expected instances of %d services (healthy, over HTTP), %v after the churn stopped\n",
			expected.instances, len(expected.bySvc), time.Since(checkStart).Round(time.Millisecond))
	}
	fmt.Fprint(env.stdout, summary)
	if *svgOut != "" {
		title := fmt.Sprintf("ferry bench soak: %d services × %d providers, %.0f restarts/s for %v (worker on SQLite, bundled registry)",
			*services, *instances, *rate, duration.Round(time.Second))
		if err := os.WriteFile(*svgOut, []byte(s.chart(title)), 0o644); err != nil {
			return err
		}
	}
	if *mdOut != "" {
		md := fmt.Sprintf("`ferry bench soak -services %d -instances %d -rate %g -duration %v -interval %v`\n\n%s\n%s",
			*services, *instances, *rate, *duration, *interval, s.markdown(), summary)
		if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil {
			return err
		}
	}
	return err
}

// soakCatalog is what the registry must hold at the end: per Nacos service
// name, the ip:port of every provider.
type soakCatalog struct {
	bySvc     map[string][]string // sorted
	instances int
}

func soakExpected(loader *zkload.Loader, services, instances int) (soakCatalog, error) {
	c := soakCatalog{bySvc: map[string][]string{}}
	for i := range services {
		for j := range instances {
			u, err := zkwatch.ParseURL(loader.ProviderURL(i, j, 0))
			if err != nil {
				return c, err
			}
			name := syncer.ServiceName(syncer.URL{Protocol: u.Protocol, Host: u.Host, Port: u.Port, Path: u.Path, Params: u.Params})
			c.bySvc[name] = append(c.bySvc[name], net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
			c.instances++
		}
	}
	for _, a := range c.bySvc {
		slices.Sort(a)
	}
	return c, nil
}

// soakCheck compares the registry with want until they agree or timeout:
// every service's healthy instances (v1 instance list, healthyOnly) and no
// other service. It returns the last round's missing and extra counts.
func soakCheck(ctx context.Context, regHTTP string, want soakCatalog, timeout time.Duration) (missing, extra int, err error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, out any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+regHTTP+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	deadline := time.Now().Add(timeout)
	for {
		missing, extra, err = 0, 0, nil
		var list struct {
			Doms []string `json:"doms"`
		}
		if err = get("/nacos/v1/ns/service/list?pageNo=1&pageSize=1000000", &list); err == nil {
			for _, d := range list.Doms {
				if _, ok := want.bySvc[d]; !ok {
					extra++ // a service that should not exist (its instances unknown; counted once)
				}
			}
			for svc, addrs := range want.bySvc {
				var body struct {
					Hosts []struct {
						IP   string `json:"ip"`
						Port int    `json:"port"`
					} `json:"hosts"`
				}
				if err = get("/nacos/v1/ns/instance/list?healthyOnly=true&serviceName="+url.QueryEscape(svc), &body); err != nil {
					break
				}
				have := make([]string, 0, len(body.Hosts))
				for _, h := range body.Hosts {
					have = append(have, net.JoinHostPort(h.IP, strconv.Itoa(h.Port)))
				}
				slices.Sort(have)
				for _, a := range addrs {
					if _, ok := slices.BinarySearch(have, a); !ok {
						missing++
					}
				}
				for _, a := range have {
					if _, ok := slices.BinarySearch(addrs, a); !ok {
						extra++
					}
				}
			}
		}
		if err == nil && missing == 0 && extra == 0 {
			return 0, 0, nil
		}
		if err == nil {
			err = fmt.Errorf("registry differs from ZooKeeper")
		}
		if time.Now().After(deadline) {
			return missing, extra, err
		}
		select {
		case <-ctx.Done():
			return missing, extra, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// soakWorker is a `ferry sync` child.
type soakWorker struct {
	cmd   *exec.Cmd
	http  string
	token string // a viewer's API token for /api/status
	done  chan struct{}
}

func startSoakWorker(ctx context.Context, env *cmdEnv, dir, zkAddr, registry, memLimit string) (*soakWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The worker's -http port: a free one, chosen here so that we know it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	// The status API is behind the console's auth: a viewer token, made in
	// the store before the worker opens it (one SQLite writer at a time).
	dsn := "sqlite://" + filepath.Join(dir, "ferry.db")
	token, err := soakToken(ctx, dsn)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "sync", "-zk", zkAddr, "-registry", registry,
		"-db", dsn, "-http", addr, "-worker-id", "soak")
	cmd.Env = append(os.Environ(), "FERRY_LOG_LEVEL=warn")
	if memLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+memLimit)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, env.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // it dies with us
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &soakWorker{cmd: cmd, http: addr, token: token, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.done) }()
	return w, nil
}

func (w *soakWorker) pid() int { return w.cmd.Process.Pid }

func (w *soakWorker) stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *soakWorker) status(ctx context.Context) (worker.Status, error) {
	var st worker.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.http+"/api/status", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitSynced waits until the worker desires the want seeded instances and
// has registered them all.
func (w *soakWorker) waitSynced(ctx context.Context, timeout time.Duration, want int) (worker.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := w.status(ctx)
		// Desired grows as services are reconciled: one still in flight is
		// neither pending nor counted yet, so wait for every seeded
		// instance and an idle engine.
		e := st.Engine
		if err == nil && st.ZKSynced && e.Desired >= want && e.Registered >= e.Desired && e.Pending == 0 && e.InFlight == 0 {
			return st, nil
		}
		select {
		case <-w.done:
			return st, errors.New("bench soak: the worker child exited")
		default:
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("bench soak: %d of %d instances registered after %v (%v)", st.Engine.Registered, st.Engine.Desired, timeout, err)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// heapProfile saves the worker's heap profile (after a GC) to file.
func (w *soakWorker) heapProfile(file string) error {
	return w.save("/debug/pprof/heap?gc=1", file)
}

// profile saves a CPU profile of the worker over secs seconds to file.
func (w *soakWorker) profile(file string, secs int) error {
	return w.save("/debug/pprof/profile?seconds="+strconv.Itoa(secs), file)
}

// save writes what the worker answers on path to file.
func (w *soakWorker) save(path, file string) error {
	resp, err := http.Get("http://" + w.http + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench soak: worker %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// heap reads the worker's Go heap in use and goroutines from its /metrics.
func (w *soakWorker) heap() (heapInuse, goroutines float64, err error) {
	resp, err := http.Get("http://" + w.http + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heapInuse, _ = strconv.ParseFloat(v, 64)
		case "go_goroutines":
			goroutines, _ = strconv.ParseFloat(v, 64)
		}
	}
	return heapInuse, goroutines, sc.Err()
}

// soakIdle is both processes' CPU without churn, ms per second.
type soakIdle struct{ worker, registry float64 }

func measureIdle(ctx context.Context, workerPid, registryPid int, d time.Duration) (soakIdle, error) {
	read := func() (w, r time.Duration, err error) {
		var err1, err2 error
		w, err1 = procstat.CPU(workerPid)
		r, err2 = procstat.CPU(registryPid)
		return w, r, errors.Join(err1, err2)
	}
	w0, r0, err := read()
	if err != nil {
		return soakIdle{}, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return soakIdle{}, ctx.Err()
	case <-time.After(d):
	}
	w1, r1, err := read()
	secs := time.Since(t0).Seconds()
	return soakIdle{worker: float64(w1-w0) / float64(time.Millisecond) / secs, registry: float64(r1-r0) / float64(time.Millisecond) / secs}, err
}

// soakSample is one reading of both processes.
type soakSample struct {
	at                   time.Time
	min                  float64 // minutes since the churn started
	wRSS, rRSS           int64
	wCPU, rCPU           time.Duration // so far
	wCPURate, rCPURate   float64       // ms of CPU per second since the previous sample
	wHeap, wGoroutines   float64
	writes               int64   // ZooKeeper writes so far
	writeRate            float64 // per second since the previous sample
	wPerWrite, rPerWrite float64 // ms of CPU per ZooKeeper write since the previous sample
}

type soakSampler struct {
	worker      *soakWorker
	registryPid int
	writes      *atomic.Int64
	t0          time.Time
	samples     []soakSample
}

const soakHeader = "   min | worker RSS MiB | worker heap MiB | goroutines | worker CPU ms/s | ms/ZK write | registry RSS MiB | registry CPU ms/s | ZK writes/s"

func (s *soakSampler) sample() error {
	var x soakSample
	var err1, err2, err3, err4, err5 error
	x.at = time.Now()
	x.writes = s.writes.Load()
	x.wCPU, err1 = procstat.CPU(s.worker.pid())
	x.rCPU, err2 = procstat.CPU(s.registryPid)
	x.wRSS, _, err3 = procstat.Mem(s.worker.pid())
	x.rRSS, _, err4 = procstat.Mem(s.registryPid)
	x.wHeap, x.wGoroutines, err5 = s.worker.heap()
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return fmt.Errorf("bench soak: sample: %w", err)
	}
	x.min = x.at.Sub(s.t0).Minutes()
	if n := len(s.samples); n > 0 {
		p := s.samples[n-1]
		secs := x.at.Sub(p.at).Seconds()
		x.wCPURate = float64(x.wCPU-p.wCPU) / float64(time.Millisecond) / secs
		x.rCPURate = float64(x.rCPU-p.rCPU) / float64(time.Millisecond) / secs
		x.writeRate = float64(x.writes-p.writes) / secs
		if dw := x.writes - p.writes; dw > 0 {
			x.wPerWrite = float64(x.wCPU-p.wCPU) / float64(time.Millisecond) / float64(dw)
			x.rPerWrite = float64(x.rCPU-p.rCPU) / float64(time.Millisecond) / float64(dw)
		}
	}
	s.samples = append(s.samples, x)
	return nil
}

func (x soakSample) line() string {
	return fmt.Sprintf("%6.1f | %13.1f | %15.1f | %10.0f | %15.1f | %11.3f | %16.1f | %17.1f | %11.1f",
		x.min, float64(x.wRSS)/(1<<20), x.wHeap/(1<<20), x.wGoroutines, x.wCPURate, x.wPerWrite,
		float64(x.rRSS)/(1<<20), x.rCPURate, x.writeRate)
}

func (s *soakSampler) markdown() string {
	var b strings.Builder
	b.WriteString("| min | worker RSS MiB | worker heap MiB | goroutines | worker CPU ms/s | worker CPU ms / ZK write | registry RSS MiB | registry CPU ms/s | ZK writes/s |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range s.samples {
		fmt.Fprintf(&b, "| %.1f | %.1f | %.1f | %.0f | %.1f | %.3f | %.1f | %.1f | %.1f |\n",
			x.min, float64(x.wRSS)/(1<<20), x.wHeap/(1<<20), x.wGoroutines, x.wCPURate, x.wPerWrite,
			float64(x.rRSS)/(1<<20), x.rCPURate, x.writeRate)
	}
	return b.String()
}

// summary compares the end with minute 2 (the reference point; the
// first sample at or after it) and gives the CPU per ZooKeeper write over
// the whole churn.
func (s *soakSampler) summary(bg soakIdle) string {
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	ref := first
	for _, x := range s.samples {
		if x.min >= 2 {
			ref = x
			break
		}
	}
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	pct := func(a, b int64) float64 { return (float64(b) - float64(a)) / float64(a) * 100 }
	var b strings.Builder
	fmt.Fprintf(&b, "worker RSS: %.1f MiB at the start of the churn, %.1f MiB at minute %.1f, %.1f MiB at the end (minute %.1f): %+.1f%% from minute %.1f, peak of the samples %.1f MiB\n",
		mib(first.wRSS), mib(ref.wRSS), ref.min, mib(last.wRSS), last.min, pct(ref.wRSS, last.wRSS), ref.min, mib(s.peak(func(x soakSample) int64 { return x.wRSS })))
	fmt.Fprintf(&b, "registry RSS: %.1f MiB at the start of the churn, %.1f MiB at minute %.1f, %.1f MiB at the end: %+.1f%% from minute %.1f\n",
		mib(first.rRSS), mib(ref.rRSS), ref.min, mib(last.rRSS), pct(ref.rRSS, last.rRSS), ref.min)
	if dw := last.writes - first.writes; dw > 0 {
		secs := last.at.Sub(first.at).Seconds()
		wc, rc := last.wCPU-first.wCPU, last.rCPU-first.rCPU
		wRate, rRate, wps := float64(wc)/float64(time.Millisecond)/secs, float64(rc)/float64(time.Millisecond)/secs, float64(dw)/secs
		fmt.Fprintf(&b, "churn: %d ZooKeeper writes in %.0f s (%.1f/s); worker CPU %.1f ms/s = %.3f ms per ZooKeeper write (%.3f ms per restart); registry CPU %.1f ms/s = %.3f ms per write\n",
			dw, secs, wps, wRate, wRate/wps, 2*wRate/wps, rRate, rRate/wps)
		if bg != (soakIdle{}) {
			fmt.Fprintf(&b, "net of the idle background (worker %.1f ms/s, registry %.1f ms/s): worker %.3f ms per ZooKeeper write (%.3f ms per restart), registry %.3f ms per write\n",
				bg.worker, bg.registry, (wRate-bg.worker)/wps, 2*(wRate-bg.worker)/wps, (rRate-bg.registry)/wps)
		}
	}
	return b.String()
}

func (s *soakSampler) peak(v func(soakSample) int64) int64 {
	var m int64
	for _, x := range s.samples {
		m = max(m, v(x))
	}
	return m
}

// chart draws RSS, CPU and the worker's heap over the churn's minutes.
func (s *soakSampler) chart(title string) string {
	pts := func(v func(soakSample) float64, from int) []svgchart.Point {
		var out []svgchart.Point
		for _, x := range s.samples[from:] {
			out = append(out, svgchart.Point{X: x.min, Y: v(x)})
		}
		return out
	}
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	c := svgchart.Chart{Title: title, Series: []svgchart.Series{{Name: "worker", Colour: "#2b7bb9"}, {Name: "registry", Colour: "#d9822b"}}}
	c.Panels = []svgchart.Panel{
		{Title: "RSS, MiB", XTitle: "min", Lines: [][]svgchart.Point{
			pts(func(x soakSample) float64 { return mib(x.wRSS) }, 0), pts(func(x soakSample) float64 { return mib(x.rRSS) }, 0)}},
		{Title: "CPU, ms per second", XTitle: "min", Lines: [][]svgchart.Point{
			pts(func(x soakSample) float64 { return x.wCPURate }, 1), pts(func(x soakSample) float64 { return x.rCPURate }, 1)}},
		{Title: "worker Go heap in use, MiB", XTitle: "min", Lines: [][]svgchart.Point{
			pts(func(x soakSample) float64 { return x.wHeap / (1 << 20) }, 0), nil}},
		{Title: "CPU ms per ZooKeeper write", XTitle: "min", Lines: [][]svgchart.Point{
			pts(func(x soakSample) float64 { return x.wPerWrite }, 1), pts(func(x soakSample) float64 { return x.rPerWrite }, 1)}},
	}
	return svgchart.SVG(c)
}

// soakToken creates a viewer and an API token for it in the store at dsn.
func soakToken(ctx context.Context, dsn string) (string, error) {
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	defer st.Close()
	if _, err := st.CreateUser(ctx, "soak-viewer", store.RoleViewer, "soak-viewer-password", "bench soak"); err != nil && !errors.Is(err, store.ErrConflict) {
		return "", err
	}
	return st.CreateToken(ctx, "soak-viewer", "bench soak")
}

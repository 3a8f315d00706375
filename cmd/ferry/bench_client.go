package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/wire"
)

// benchClient measures merged beats: instance-beats per client CPU-second
// with the real beat loop, and the registry-side CPU per 1,000
// instance-beats merged vs one request per beat. The registry runs in a
// child process (`ferry bench client -serve registry|sink`) so that its CPU
// is measured apart from the client's: "registry" is the in-repo registry
// node, "sink" a stand-in that only decodes, refreshes a map and answers.
func benchClient(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench client", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	instances := fs.Int("instances", 30000, "beat-kept instances")
	services := fs.Int("services", 300, "services they are spread over")
	duration := fs.Duration("duration", 6*time.Second, "measured time of the merged phase")
	interval := fs.Duration("interval", time.Second, "BeatInterval")
	period := fs.Duration("period", 5*time.Second, "BeatPeriod")
	single := fs.Int("single", 20000, "beats sent one request each in the comparison phase")
	conc := fs.Int("conc", 8, "concurrent senders in the one-request-per-beat phase")
	target := fs.String("target", "registry", "what answers the beats: registry (the in-repo node) or sink")
	serve := fs.String("serve", "", "internal: run the child (registry|sink) on stdin/stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *serve {
	case "":
	case "sink":
		return runBeatSink(os.Stdin, env.stdout)
	case "registry":
		return runRegistrySink(os.Stdin, env.stdout)
	default:
		return fmt.Errorf("-serve %q: registry or sink", *serve)
	}
	if *target != "registry" && *target != "sink" {
		return fmt.Errorf("-target %q: registry or sink", *target)
	}
	if *instances <= 0 || *services <= 0 || *services > *instances {
		return errors.New("need 0 < services ≤ instances")
	}
	per := *instances / *services
	*instances = per * *services
	fmt.Fprintf(env.stdout, "bench client: %d instances in %d services, interval %v, period %v, target %s\n",
		*instances, *services, *interval, *period, *target)

	// Phase 1: merged beats through registryclient.
	sink, err := startSink(ctx, *target)
	if err != nil {
		return err
	}
	defer sink.stop()
	host, port, _ := net.SplitHostPort(sink.addr)
	gport, _ := strconv.Atoi(port)
	cfg := registryclient.DefaultConfig()
	cfg.Servers = []string{fmt.Sprintf("%s:%d/%d", host, max(gport-registryclient.GRPCPortOffset, 1), gport)}
	cfg.BeatInterval, cfg.BeatPeriod = *interval, *period
	cfg.Logger = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := registryclient.New(cfg)
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Close()
	for s := 0; s < *services; s++ {
		insts := make([]registryclient.Instance, per)
		for i := range insts {
			ip, port := clientBenchAddr(s, i)
			insts[i] = registryclient.Instance{IP: ip, Port: port,
				Metadata: map[string]string{"side": "provider", "application": "bench", "interface": fmt.Sprintf("com.example.Svc%d", s)}}
		}
		kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Keep(kctx, registryclient.ServiceRef{Name: clientBenchService(s)}, insts)
		cancel()
		if err != nil {
			return fmt.Errorf("keep: %w", err)
		}
	}
	s0, err := sink.stats()
	if err != nil {
		return err
	}
	c0 := selfCPU()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*duration):
	}
	c1 := selfCPU()
	s1, err := sink.stats()
	if err != nil {
		return err
	}
	c.Close()
	mBeats := s1.beats - s0.beats
	mRPCs := s1.rpcs - s0.rpcs
	if mBeats <= 0 {
		return errors.New("no beats reached the registry")
	}
	clientCPU := (c1 - c0).Seconds()
	mServer := (s1.cpu - s0.cpu) / float64(mBeats) * 1000
	fmt.Fprintf(env.stdout, "merged:  %d beats in %d batch RPCs over %v (%.1f RPC/interval)\n", mBeats, mRPCs, *duration,
		float64(mRPCs)/(duration.Seconds()/interval.Seconds()))
	fmt.Fprintf(env.stdout, "merged:  client CPU %.3fs → %.0f instance-beats per client CPU-second\n", clientCPU, float64(mBeats)/clientCPU)
	fmt.Fprintf(env.stdout, "merged:  registry-side CPU %.3f ms per 1,000 instance-beats\n", mServer*1000)

	// Phase 2: one request per beat, same registry, same (now known)
	// instances, same light item shape.
	u0, err := sink.stats()
	if err != nil {
		return err
	}
	cs0, w0 := selfCPU(), time.Now()
	if err := singleBeats(ctx, sink.addr, *single, *conc, *services, per); err != nil {
		return err
	}
	cs1, sWall := selfCPU(), time.Since(w0)
	u1, err := sink.stats()
	if err != nil {
		return err
	}
	// Background: the registry's CPU with no traffic (expiry scans of the
	// same instances), subtracted from both phases in the net figures.
	idle := 2 * time.Second
	b0, err := sink.stats()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idle):
	}
	b1, err := sink.stats()
	if err != nil {
		return err
	}
	sink.stop()
	bgRate := (b1.cpu - b0.cpu) / idle.Seconds() // CPU-s per s
	sBeats := u1.beats - u0.beats
	if sBeats <= 0 {
		return errors.New("no single beats counted")
	}
	sServer := (u1.cpu - u0.cpu) / float64(sBeats) * 1000
	fmt.Fprintf(env.stdout, "single:  %d beats, one RPC each; client CPU %.3fs → %.0f beats per client CPU-second\n", sBeats,
		(cs1 - cs0).Seconds(), float64(sBeats)/(cs1-cs0).Seconds())
	fmt.Fprintf(env.stdout, "single:  registry-side CPU %.3f ms per 1,000 instance-beats\n", sServer*1000)
	fmt.Fprintf(env.stdout, "ratio:   registry-side cost single/merged = %.1f×\n", sServer/mServer)
	mNet := (s1.cpu - s0.cpu - bgRate*duration.Seconds()) / float64(mBeats) * 1000
	sNet := (u1.cpu - u0.cpu - bgRate*sWall.Seconds()) / float64(sBeats) * 1000
	fmt.Fprintf(env.stdout, "net:     registry idle CPU %.1f ms/s subtracted: merged %.3f ms, single %.3f ms per 1,000 beats (%.1f×)\n",
		bgRate*1000, mNet*1000, sNet*1000, sNet/mNet)
	return nil
}

func clientBenchService(s int) string { return fmt.Sprintf("providers:com.example.Svc%d::", s) }

func clientBenchAddr(s, i int) (string, int) {
	return fmt.Sprintf("10.%d.%d.%d", s/250, s%250, i%250), 20880 + i/250
}

type sinkStats struct {
	cpu         float64
	beats, rpcs int64
}

// sinkProc is the beat sink or registry child of `ferry bench client`.
type sinkProc struct {
	*benchChild
	addr string
}

func startSink(ctx context.Context, kind string) (*sinkProc, error) {
	c, err := startBenchChild(ctx, "bench", "client", "-serve", kind)
	if err != nil {
		return nil, err
	}
	addr, ok := strings.CutPrefix(c.hello, "grpc ")
	if !ok {
		c.stop()
		return nil, fmt.Errorf("beat sink did not start: %q", c.hello)
	}
	return &sinkProc{benchChild: c, addr: addr}, nil
}

func (p *sinkProc) stats() (sinkStats, error) {
	line, err := p.ask("stats")
	if err != nil {
		return sinkStats{}, err
	}
	var s sinkStats
	if _, err := fmt.Sscanf(line, "stats %f %d %d", &s.cpu, &s.beats, &s.rpcs); err != nil {
		return sinkStats{}, fmt.Errorf("beat sink said %q: %w", line, err)
	}
	return s, nil
}

// singleBeats sends n light beats of the kept instances as n one-item
// FerryBatchBeatRequests from conc goroutines over one gRPC connection.
func singleBeats(ctx context.Context, addr string, n, conc, services, per int) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	rc := wire.NewRequestClient(cc)
	codec := wire.NewCodec(0)
	// A Nacos connection is usable after ServerCheck and ConnectionSetup on
	// the bi-stream; until the server has registered it, requests get 301.
	call := func(ctx context.Context, req wire.Request) (wire.Response, error) {
		p, err := codec.Encode(req)
		if err != nil {
			return nil, err
		}
		out, err := rc.Request(ctx, p)
		if err != nil {
			return nil, err
		}
		m, err := codec.Decode(out)
		if err != nil {
			return nil, err
		}
		r, ok := m.(wire.Response)
		if !ok {
			return nil, fmt.Errorf("answer %s is not a response", m.TypeName())
		}
		if !r.Result().OK() {
			return nil, fmt.Errorf("%s: %d %s", m.TypeName(), r.Result().ErrorCode, r.Result().Message)
		}
		return r, nil
	}
	if _, err := call(ctx, &wire.ServerCheckRequest{}); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := wire.NewBiRequestStreamClient(cc).RequestBiStream(sctx)
	if err != nil {
		return err
	}
	setup, _ := codec.Encode(&wire.ConnectionSetupRequest{ClientVersion: "ferry-bench", Labels: map[string]string{"module": "naming", "source": "sdk"}})
	if err := st.Send(setup); err != nil {
		return err
	}
	go func() { // drain server requests (none expected)
		for {
			if _, err := st.Recv(); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := call(ctx, &wire.HealthCheckRequest{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				s, i := (k/per)%services, k%per
				ip, port := clientBenchAddr(s, i)
				req := &wire.FerryBatchBeatRequest{Beats: []wire.BeatItem{{Namespace: "public", GroupName: "DEFAULT_GROUP",
					ServiceName: clientBenchService(s),
					IP:          ip, Port: port}}}
				if _, err := call(ctx, req); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

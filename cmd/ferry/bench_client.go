package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
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
// instance-beats merged vs one request per beat, against a beat sink in a
// child process (`ferry bench client -serve`).
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
	serve := fs.Bool("serve", false, "internal: run the beat sink on stdin/stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve {
		return runBeatSink(os.Stdin, env.stdout)
	}
	if *instances <= 0 || *services <= 0 || *services > *instances {
		return errors.New("need 0 < services ≤ instances")
	}
	fmt.Fprintf(env.stdout, "bench client: %d instances in %d services, interval %v, period %v\n", *instances, *services, *interval, *period)

	// Phase 1: merged beats through registryclient.
	sink, err := startSink(ctx)
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
	per := *instances / *services
	for s := 0; s < *services; s++ {
		n := per
		if s == *services-1 {
			n = *instances - per*(*services-1)
		}
		insts := make([]registryclient.Instance, n)
		for i := range insts {
			insts[i] = registryclient.Instance{IP: fmt.Sprintf("10.%d.%d.%d", s/250, s%250, i%250), Port: 20880 + i/250,
				Metadata: map[string]string{"side": "provider", "application": "bench", "interface": fmt.Sprintf("com.example.Svc%d", s)}}
		}
		kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Keep(kctx, registryclient.ServiceRef{Name: fmt.Sprintf("providers:com.example.Svc%d::", s)}, insts)
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
	sink.stop()
	mBeats := s1.beats - s0.beats
	mRPCs := s1.rpcs - s0.rpcs
	if mBeats <= 0 {
		return errors.New("no beats reached the sink")
	}
	clientCPU := (c1 - c0).Seconds()
	mServer := (s1.cpu - s0.cpu) / float64(mBeats) * 1000
	fmt.Fprintf(env.stdout, "merged:  %d beats in %d batch RPCs over %v (%.1f RPC/interval)\n", mBeats, mRPCs, *duration,
		float64(mRPCs)/(duration.Seconds()/interval.Seconds()))
	fmt.Fprintf(env.stdout, "merged:  client CPU %.3fs → %.0f instance-beats per client CPU-second\n", clientCPU, float64(mBeats)/clientCPU)
	fmt.Fprintf(env.stdout, "merged:  registry-side CPU %.3f ms per 1,000 instance-beats\n", mServer*1000)

	// Phase 2: one request per beat, same sink, same item shape.
	sink2, err := startSink(ctx)
	if err != nil {
		return err
	}
	defer sink2.stop()
	u0, err := sink2.stats()
	if err != nil {
		return err
	}
	cs0 := selfCPU()
	if err := singleBeats(ctx, sink2.addr, *single, *conc); err != nil {
		return err
	}
	cs1 := selfCPU()
	u1, err := sink2.stats()
	if err != nil {
		return err
	}
	sink2.stop()
	sBeats := u1.beats - u0.beats
	sServer := (u1.cpu - u0.cpu) / float64(sBeats) * 1000
	fmt.Fprintf(env.stdout, "single:  %d beats, one RPC each; client CPU %.3fs → %.0f beats per client CPU-second\n", sBeats,
		(cs1 - cs0).Seconds(), float64(sBeats)/(cs1-cs0).Seconds())
	fmt.Fprintf(env.stdout, "single:  registry-side CPU %.3f ms per 1,000 instance-beats\n", sServer*1000)
	fmt.Fprintf(env.stdout, "ratio:   registry-side cost single/merged = %.1f×\n", sServer/mServer)
	return nil
}

type sinkStats struct {
	cpu         float64
	beats, rpcs int64
}

type sinkProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
	once sync.Once
}

func startSink(ctx context.Context) (*sinkProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "client", "-serve")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &sinkProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !p.out.Scan() || !strings.HasPrefix(p.out.Text(), "grpc ") {
		p.stop()
		return nil, fmt.Errorf("beat sink did not start: %q", p.out.Text())
	}
	p.addr = strings.TrimPrefix(p.out.Text(), "grpc ")
	return p, nil
}

func (p *sinkProc) stats() (sinkStats, error) {
	if _, err := io.WriteString(p.in, "stats\n"); err != nil {
		return sinkStats{}, err
	}
	if !p.out.Scan() {
		return sinkStats{}, errors.New("beat sink gone")
	}
	var s sinkStats
	if _, err := fmt.Sscanf(p.out.Text(), "stats %f %d %d", &s.cpu, &s.beats, &s.rpcs); err != nil {
		return sinkStats{}, fmt.Errorf("beat sink said %q: %w", p.out.Text(), err)
	}
	return s, nil
}

func (p *sinkProc) stop() {
	p.once.Do(func() {
		p.in.Close()
		_ = p.cmd.Wait()
	})
}

// singleBeats sends n beats as n one-item FerryBatchBeatRequests from conc
// goroutines over one gRPC connection.
func singleBeats(ctx context.Context, addr string, n, conc int) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	rc := wire.NewRequestClient(cc)
	codec := wire.NewCodec(0)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				s := i % 300
				req := &wire.FerryBatchBeatRequest{Beats: []wire.BeatItem{{Namespace: "public", GroupName: "DEFAULT_GROUP",
					ServiceName: fmt.Sprintf("providers:com.example.Svc%d::", s),
					Instance: wire.Instance{IP: fmt.Sprintf("10.%d.%d.%d", s/250, s%250, i%250), Port: 20880, Weight: 1,
						Healthy: true, Enabled: true, Ephemeral: true}}}}
				p, err := codec.Encode(req)
				if err != nil {
					errs <- err
					return
				}
				out, err := rc.Request(ctx, p)
				if err == nil {
					_, err = codec.Decode(out)
				}
				if err != nil {
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

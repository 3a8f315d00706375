package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/wire"
)

// benchConfig measures the config service of one in-process node (Raft
// store on a temporary directory) through loopback gRPC clients speaking
// the wire protocol as the SDK does: ConfigQueryRequest throughput, and
// publish-to-listener push latency (ConfigPublishRequest sent → the
// ConfigChangeNotifyRequest received by each of N listening connections).
// Each publish is sent once the server has every ack of the previous one
// (its ferry_config_pushes_total), so a round measures one change pushed
// by an idle server, not the tail of the previous fan-out; the garbage of
// the setup is collected before the first round.
//
//	ferry bench config [-duration 3s] [-configs 100] [-query-conns 8] [-inflight 64] [-listeners 1000] [-push-rounds 10]
func benchConfig(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("bench config", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dur := fs.Duration("duration", 3*time.Second, "duration of the query workload")
	configs := fs.Int("configs", 100, "configs published before the query workload")
	qconns := fs.Int("query-conns", 8, "connections of the query workload")
	inflight := fs.Int("inflight", 64, "queries in flight")
	listeners := fs.Int("listeners", 1000, "listening connections of the push workload")
	rounds := fs.Int("push-rounds", 10, "publishes pushed to every listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := env.stdout
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	dir, err := os.MkdirTemp("", "ferry-bench-config-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir
	cfg.GRPC.MaxConnections = *listeners + *qconns + 100
	prom := prometheus.NewRegistry()
	s, err := registryserver.Open(cfg, slog.New(slog.DiscardHandler), prom)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Stop()
	if err := s.Raft().WaitReady(10 * time.Second); err != nil {
		return err
	}
	addr := s.GRPCAddr().String()
	fmt.Fprintf(out, "config: one in-process node (Raft store), loopback gRPC clients, GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))

	qc, err := dialN(*qconns, func() (*benchConn, error) { return cfgDial(ctx, addr, nil) })
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range qc {
			c.close()
		}
	}()
	content := bytes.Repeat([]byte("k=v\n"), 256) // 1 KiB
	for i := 0; i < *configs; i++ {
		if _, err := qc[0].call(ctx, cfgPublish("bench."+strconv.Itoa(i), string(content))); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	n, el, err := cfgQueries(ctx, qc, *configs, *inflight, *dur)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  queries: %d ConfigQueryRequest (1 KiB content, %d configs) in %v over %d conns, %d in flight: %.0f/s\n",
		n, *configs, el.Round(time.Millisecond), *qconns, *inflight, float64(n)/el.Seconds())

	p50, p99, max, err := cfgPushLatency(ctx, addr, qc[0], *listeners, *rounds, func() float64 { return cfgPushesOK(prom) })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  push: %d listening connections × %d publishes: publish→notify p50 %v, p99 %v, max %v\n",
		*listeners, *rounds, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), max.Round(10*time.Microsecond))
	return nil
}

func cfgPublish(dataID, content string) *wire.ConfigPublishRequest {
	r := &wire.ConfigPublishRequest{Content: content, AdditionMap: map[string]string{"type": "properties"}}
	r.Group, r.DataID = "bench", dataID
	return r
}

// cfgDial opens a config-module connection; onPush sees each change push.
func cfgDial(ctx context.Context, addr string, onPush func(*wire.ConfigChangeNotifyRequest, time.Time)) (*benchConn, error) {
	var hook func(wire.Request, time.Time)
	if onPush != nil {
		hook = func(r wire.Request, at time.Time) {
			if n, ok := r.(*wire.ConfigChangeNotifyRequest); ok {
				onPush(n, at)
			}
		}
	}
	return benchDial(ctx, addr, "config", hook)
}

func cfgQueries(ctx context.Context, conns []*benchConn, configs, inflight int, dur time.Duration) (int64, time.Duration, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := conns[w%len(conns)]
			for i := w; time.Now().Before(stop); i++ {
				r := &wire.ConfigQueryRequest{}
				r.Group, r.DataID = "bench", "bench."+strconv.Itoa(i%configs)
				p, err := wire.Encode(r)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				out, err := c.req.Request(ctx, p)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if out.GetMetadata().GetType() != wire.TypeConfigQueryResponse || !bytes.HasPrefix(out.GetBody().GetValue(), []byte(`{"resultCode":200,`)) {
					firstErr.CompareAndSwap(nil, fmt.Errorf("unexpected answer %.200s", out.GetBody().GetValue()))
					return
				}
				n.Add(1)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	if e, _ := firstErr.Load().(error); e != nil {
		return 0, 0, e
	}
	return n.Load(), el, nil
}

// cfgPushesOK reads the server's count of acked config pushes.
func cfgPushesOK(g prometheus.Gatherer) float64 {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "ferry_config_pushes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// cfgPushLatency opens n connections listening to one config, then
// publishes it rounds times, each time waiting until every listener got
// its ConfigChangeNotifyRequest and the server counted (acked()) every ack;
// latency is from sending the publish to a listener's receipt.
func cfgPushLatency(ctx context.Context, addr string, pub *benchConn, n, rounds int, acked func() float64) (p50, p99, max time.Duration, err error) {
	const dataID = "bench.push"
	if _, err := pub.call(ctx, cfgPublish(dataID, "round=-1")); err != nil {
		return 0, 0, 0, err
	}
	var (
		mu    sync.Mutex
		sent  time.Time
		lat   []time.Duration
		got   int
		round = make(chan struct{}, 1)
	)
	onPush := func(r *wire.ConfigChangeNotifyRequest, at time.Time) {
		if r.DataID != dataID {
			return
		}
		mu.Lock()
		lat = append(lat, at.Sub(sent))
		got++
		if got == n {
			round <- struct{}{}
		}
		mu.Unlock()
	}
	conns, err := dialN(n, func() (*benchConn, error) { return cfgDial(ctx, addr, onPush) })
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	md5 := configsvc.MD5("round=-1")
	for _, c := range conns {
		l := &wire.ConfigBatchListenRequest{Listen: true, ConfigListenContexts: []wire.ConfigListenContext{{Group: "bench", DataID: dataID, MD5: md5}}}
		if _, err := c.call(ctx, l); err != nil {
			return 0, 0, 0, err
		}
	}
	// As testing.B does before a benchmark: collect the garbage of the
	// setup (1,000 connections dialled) so that a collection it made due
	// does not land in the measured rounds.
	runtime.GC()
	base := acked()
	for r := 0; r < rounds; r++ {
		// The server has taken every ack of the previous round (polled).
		for deadline := time.Now().Add(30 * time.Second); acked() < base+float64(r*n); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return 0, 0, 0, fmt.Errorf("round %d: %v of %d acks of the previous round counted in 30s", r, acked()-base-float64((r-1)*n), n)
			}
		}
		mu.Lock()
		got, sent = 0, time.Now()
		mu.Unlock()
		if _, err := pub.call(ctx, cfgPublish(dataID, "round="+strconv.Itoa(r))); err != nil {
			return 0, 0, 0, err
		}
		select {
		case <-round:
		case <-time.After(30 * time.Second):
			mu.Lock()
			g := got
			mu.Unlock()
			return 0, 0, 0, fmt.Errorf("round %d: %d of %d listeners notified in 30s", r, g, n)
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.5), at(0.99), lat[len(lat)-1], nil
}

package registryclient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrysync/ferry/wire"
)

// benchSink answers batch beats as a registry must at least: decode,
// refresh a last-beat map, encode the answer.
type benchSink struct {
	codec *wire.Codec
	mu    sync.Mutex
	last  map[string]int64
}

func (s *benchSink) Request(_ context.Context, p *wire.Payload) (*wire.Payload, error) {
	m, err := s.codec.Decode(p)
	if err != nil {
		return nil, err
	}
	switch r := m.(type) {
	case *wire.ServerCheckRequest:
		return s.codec.Encode(&wire.ServerCheckResponse{ResponseHeader: wire.Okay(), FerryBatchBeat: true})
	case *wire.FerryBatchBeatRequest:
		items := r.Items()
		all := make([]wire.BeatResult, len(items))
		now := time.Now().UnixNano()
		s.mu.Lock()
		for i, b := range items {
			ip, port, _ := b.Addr()
			s.last[b.ServiceName+"|"+ip+":"+strconv.Itoa(port)] = now
			all[i].Status = wire.BeatOK
		}
		s.mu.Unlock()
		out := &wire.FerryBatchBeatResponse{ResponseHeader: wire.Okay()}
		out.Answer(r, all)
		return s.codec.Encode(out)
	}
	return s.codec.Encode(&wire.HealthCheckResponse{ResponseHeader: wire.Okay()})
}

func (s *benchSink) RequestBiStream(st wire.BiRequestStream_RequestBiStreamServer) error {
	for {
		if _, err := st.Recv(); err != nil {
			return nil
		}
	}
}

func startBenchSink(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	s := &benchSink{codec: wire.NewCodec(0), last: map[string]int64{}}
	wire.RegisterRequestServer(gs, s)
	wire.RegisterBiRequestStreamServer(gs, s)
	go gs.Serve(l)
	b.Cleanup(gs.Stop)
	_, p, _ := net.SplitHostPort(l.Addr().String())
	gp, _ := strconv.Atoi(p)
	return fmt.Sprintf("127.0.0.1:%d/%d", max(gp-GRPCPortOffset, 1), gp)
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMergedBeats: one op is one beat interval of 30,000 beat-kept
// instances (6,000 beats in one batch) against an in-process sink. The
// reported beats/cpu-s counts the whole process (client and sink); the
// client alone is measured by `ferry bench client`.
func BenchmarkMergedBeats(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Servers = []string{startBenchSink(b)}
	cfg.BeatInterval, cfg.BeatPeriod = time.Hour, 5*time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for s := 0; s < 300; s++ {
		if err := c.Keep(ctx, ServiceRef{Name: fmt.Sprintf("svc%d", s)}, instances(100, fmt.Sprintf("10.%d", s))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuNow()
	for i := 0; i < b.N; i++ {
		c.beatOnce(ctx)
	}
	cpu := (cpuNow() - c0).Seconds()
	b.ReportMetric(float64(b.N*6000)/cpu, "beats/cpu-s")
}

// BenchmarkRegistryCost compares 1,000 instance-beats as one merged request
// and as 1,000 requests (one op = 1,000 beats; cpu-ms/1k-beats is the whole
// process: both ends of the loopback).
func BenchmarkRegistryCost(b *testing.B) {
	addr := startBenchSink(b)
	srv, _ := ParseServer(addr)
	cc, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	rc := wire.NewRequestClient(cc)
	codec := wire.NewCodec(0)
	items := make([]wire.BeatItem, 1000)
	for i := range items {
		items[i] = wire.BeatItem{Namespace: "public", GroupName: DefaultGroup, ServiceName: "svc" + strconv.Itoa(i%10),
			IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250), Port: 20880}
	}
	send := func(its []wire.BeatItem) {
		p, _ := codec.Encode(&wire.FerryBatchBeatRequest{Beats: its})
		out, err := rc.Request(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := codec.Decode(out); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("merged", func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			send(items)
		}
		b.ReportMetric((cpuNow()-c0).Seconds()*1000/float64(b.N), "cpu-ms/1k-beats")
	})
	b.Run("single", func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := w; j < len(items); j += 8 {
						send(items[j : j+1])
					}
				}()
			}
			wg.Wait()
		}
		b.ReportMetric((cpuNow()-c0).Seconds()*1000/float64(b.N), "cpu-ms/1k-beats")
	})
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

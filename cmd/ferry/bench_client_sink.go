package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/wire"
)

// beatSink is the registry stand-in of `ferry bench client`: a Nacos 2.x
// gRPC endpoint that accepts connections and answers FerryBatchBeatRequest
// doing what a registry must do per beat: decode the JSON, refresh the
// instance's last-beat time in a map, encode the per-item answer. It runs
// in a child process so that its CPU is measured apart from the client's.
type beatSink struct {
	codec *wire.Codec
	beats atomic.Int64
	rpcs  atomic.Int64
	mu    sync.Mutex
	last  map[string]int64 // "ns|group|svc|ip:port" → unix nanos
}

func (s *beatSink) Request(ctx context.Context, p *wire.Payload) (*wire.Payload, error) {
	m, err := s.codec.Decode(p)
	if err != nil {
		return s.codec.Encode(wire.NewErrorResponse(wire.CodeBadGateway, err.Error()))
	}
	var resp wire.Message
	switch r := m.(type) {
	case *wire.ServerCheckRequest:
		id := ""
		if pr, ok := peer.FromContext(ctx); ok {
			id = pr.Addr.String()
		}
		resp = &wire.ServerCheckResponse{ResponseHeader: wire.Okay(), ConnectionID: id, FerryBatchBeat: true}
	case *wire.HealthCheckRequest:
		resp = &wire.HealthCheckResponse{ResponseHeader: wire.Okay()}
	case *wire.FerryBatchBeatRequest:
		now := time.Now().UnixNano()
		items := r.Items()
		all := make([]wire.BeatResult, len(items))
		s.mu.Lock()
		for i, b := range items {
			ip, port, _ := b.Addr()
			k := b.Namespace + "|" + b.GroupName + "|" + b.ServiceName + "|" + ip + ":" + strconv.Itoa(port)
			s.last[k] = now
			all[i].Status = wire.BeatOK
		}
		s.mu.Unlock()
		out := &wire.FerryBatchBeatResponse{ResponseHeader: wire.Okay(), ClientBeatInterval: 5000}
		out.Answer(r, all)
		s.beats.Add(int64(len(items)))
		s.rpcs.Add(1)
		resp = out
	default:
		resp = wire.NewErrorResponse(wire.CodeNoHandler, "no handler for "+m.TypeName())
	}
	return s.codec.Encode(resp)
}

func (s *beatSink) RequestBiStream(st wire.BiRequestStream_RequestBiStreamServer) error {
	for {
		if _, err := st.Recv(); err != nil {
			return nil
		}
	}
}

// runBeatSink serves on a free loopback port, prints "grpc <addr>", then
// answers "stats" lines on in with "stats <cpuSeconds> <beats> <rpcs>"
// until in closes.
func runBeatSink(in io.Reader, out io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := &beatSink{codec: wire.NewCodec(0), last: map[string]int64{}}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
	wire.RegisterRequestServer(gs, s)
	wire.RegisterBiRequestStreamServer(gs, s)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(l) }()
	fmt.Fprintf(out, "grpc %s\n", l.Addr())
	serveBenchLines(in, out, func(string) string {
		return fmt.Sprintf("stats %.6f %d %d", selfCPU().Seconds(), s.beats.Load(), s.rpcs.Load())
	})
	gs.Stop()
	<-done
	return nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runRegistrySink is runBeatSink with the real registry node (in this child
// process) instead of the sink: beats and batch RPCs are read from its
// metrics.
func runRegistrySink(in io.Reader, out io.Writer) error {
	dir, err := os.MkdirTemp("", "ferry-bench-client-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := registryserver.DefaultConfig()
	cfg.Port, cfg.DataDir = 0, dir
	prom := prometheus.NewRegistry()
	s, err := registryserver.New(cfg, nil, prom)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Stop()
	fmt.Fprintf(out, "grpc %s\n", s.GRPCAddr())
	serveBenchLines(in, out, func(string) string {
		beats, rpcs := beatCounts(prom)
		return fmt.Sprintf("stats %.6f %d %d", selfCPU().Seconds(), beats, rpcs)
	})
	return nil
}

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/ferrysync/ferry/wire"
)

// benchConn is a minimal Nacos 2.x client connection, dialled and set up
// as the Go SDK does it, for the registry and config benchmarks: unary
// calls, and a bi-stream that acks pushes and answers client detection.
type benchConn struct {
	cc     *grpc.ClientConn
	req    wire.RequestClient
	stream wire.BiRequestStream_RequestBiStreamClient
	cancel context.CancelFunc
	// onPush, when set, sees every push (NotifySubscriberRequest or
	// ConfigChangeNotifyRequest) with the time it arrived, before the ack.
	onPush func(wire.Request, time.Time)
	sendMu sync.Mutex // guards stream.Send
}

// benchDial connects to addr (the gRPC port) as a client of module
// ("naming" or "config") and returns once the server has taken the setup.
func benchDial(ctx context.Context, addr, module string, onPush func(wire.Request, time.Time)) (*benchConn, error) {
	// The dial options of nacos-sdk-go v2.3.5 (grpc_client.go
	// createNewConnection): 10 MiB static windows (no BDP pings), 10 MiB
	// inbound messages, a keepalive ping every 60 s.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(10<<20), grpc.WithInitialConnWindowSize(10<<20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(10<<20)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Minute, Timeout: 20 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, err
	}
	c := &benchConn{cc: cc, req: wire.NewRequestClient(cc), onPush: onPush}
	if _, err := c.call(ctx, &wire.ServerCheckRequest{}); err != nil {
		cc.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if c.stream, err = wire.NewBiRequestStreamClient(cc).RequestBiStream(sctx); err != nil {
		cancel()
		cc.Close()
		return nil, err
	}
	c.send(&wire.ConnectionSetupRequest{ClientVersion: "ferry-bench", Labels: map[string]string{"module": module}})
	go c.readLoop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.call(ctx, &wire.HealthCheckRequest{})
		if err == nil && r.Result().OK() {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("connection setup not taken: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // setup is fire-and-forget: poll until taken
	}
}

func (c *benchConn) close() { c.cancel(); c.cc.Close() }

func (c *benchConn) send(m wire.Message) {
	p, err := wire.Encode(m)
	if err != nil {
		return
	}
	c.sendMu.Lock()
	_ = c.stream.Send(p)
	c.sendMu.Unlock()
}

func (c *benchConn) readLoop() {
	for {
		p, err := c.stream.Recv()
		if err != nil {
			return
		}
		now := time.Now()
		m, err := wire.Decode(p)
		if err != nil {
			continue
		}
		switch r := m.(type) {
		case *wire.NotifySubscriberRequest:
			if c.onPush != nil {
				c.onPush(r, now)
			}
			c.send(&wire.NotifySubscriberResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
		case *wire.ConfigChangeNotifyRequest:
			if c.onPush != nil {
				c.onPush(r, now)
			}
			c.send(&wire.ConfigChangeNotifyResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
		case *wire.ClientDetectionRequest:
			c.send(&wire.ClientDetectionResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
		}
	}
}

func (c *benchConn) call(ctx context.Context, m wire.Message) (wire.Response, error) {
	p, err := wire.Encode(m)
	if err != nil {
		return nil, err
	}
	out, err := c.req.Request(ctx, p)
	if err != nil {
		return nil, err
	}
	r, err := wire.Decode(out)
	if err != nil {
		return nil, err
	}
	resp := r.(wire.Response)
	if !resp.Result().OK() {
		return resp, fmt.Errorf("%s: %d %s", resp.TypeName(), resp.Result().ErrorCode, resp.Result().Message)
	}
	return resp, nil
}

// dialN opens n connections with dial; on an error it closes those opened.
func dialN(n int, dial func() (*benchConn, error)) ([]*benchConn, error) {
	out := make([]*benchConn, 0, n)
	for i := 0; i < n; i++ {
		c, err := dial()
		if err != nil {
			for _, c := range out {
				c.close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

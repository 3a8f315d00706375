package grpcapi

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// Bad input from clients (issue 16): each is bounded, counted, and leaves
// the other clients alone.

// TestClientNotReadingItsStream: a client that sets its bi-stream up,
// subscribes, keeps its connection busy with requests and never reads the
// pushes. Its send queue stops at SendQueueBytes (refusals counted), a
// well-behaved subscriber still gets its pushes, and once the bad client
// goes quiet the detection closes its transport and its queue is freed.
func TestClientNotReadingItsStream(t *testing.T) {
	const queueBytes = 256 << 10
	s, reg := startServer(t, func(c *Config) {
		c.SendQueueBytes = queueBytes
		c.PushTimeout = 200 * time.Millisecond
		c.PushRetryDelay = 50 * time.Millisecond
		c.IdleTimeout = time.Second
		c.DetectTimeout = 500 * time.Millisecond
		c.EjectInterval = 100 * time.Millisecond
	})
	// 20 services of 40 instances with long metadata: ~16 KB per push.
	meta := map[string]string{"methods": strings.Repeat("method,", 40)}
	var svcs []naming.ServiceKey
	for i := range 20 {
		k := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "big" + strconv.Itoa(i)}
		svcs = append(svcs, k)
		for j := range 40 {
			if err := reg.Register("seed"+strconv.Itoa(j), k, naming.Instance{IP: "10.0.0." + strconv.Itoa(j), Port: 20880,
				Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Metadata: meta}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bad := dialNoRead(t, s.Addr().String())
	for _, k := range svcs {
		bad.mustCall(&wire.SubscribeServiceRequest{NamingHeader: nh(k.Name), Subscribe: true})
	}
	good := dialRaw(t, s.Addr().String(), true)
	good.mustCall(&wire.SubscribeServiceRequest{NamingHeader: nh("big0"), Subscribe: true})
	<-good.pushes // the push after subscribing

	// Every change pushes all of the services again to the bad client: its
	// transport's window fills, then its queue.
	round := 0
	poll.Until(t, 30*time.Second, "the bad client's send queue full", func() bool {
		round++
		for _, k := range svcs {
			_ = reg.Register("churn", k, naming.Instance{IP: "10.1.0.1", Port: round, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true})
		}
		bad.mustCall(&wire.HealthCheckRequest{}) // not idle
		if q := testutil.ToFloat64(s.met.sendQueueBytes); q > queueBytes+64<<10 {
			t.Fatalf("%.0f bytes queued, bound %d (+ one message)", q, queueBytes)
		}
		return testutil.ToFloat64(s.met.sendQueueFull) > 0
	})
	if q := testutil.ToFloat64(s.met.sendQueueBytes); q > queueBytes+64<<10 {
		t.Fatalf("%.0f bytes queued, bound %d (+ one message)", q, queueBytes)
	}
	if n := testutil.ToFloat64(s.met.pushes.WithLabelValues("busy")); n == 0 {
		t.Error("no push counted busy")
	}
	// The other client is unaffected: a change reaches it.
	for len(good.pushes) > 0 {
		<-good.pushes
	}
	if err := reg.Register("good-check", svcs[0], naming.Instance{IP: "10.2.0.1", Port: 1, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the good client's push with the new instance", func() bool {
		select {
		case p := <-good.pushes:
			for _, h := range p.ServiceInfo.Hosts {
				if h.IP == "10.2.0.1" {
					return true
				}
			}
		default:
		}
		return false
	})
	good.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("big1")})

	// Quiet now: detected, closed, its transport gone and its queue freed.
	poll.Until(t, 30*time.Second, "the bad client's transport closed", func() bool {
		for _, c := range s.Connections() {
			if c.ID == bad.connID {
				return false
			}
		}
		return true
	})
	poll.Until(t, 30*time.Second, "the send queues empty", func() bool { return testutil.ToFloat64(s.met.sendQueueBytes) == 0 })
	if n := testutil.ToFloat64(s.met.detections.WithLabelValues("dropped")); n == 0 {
		t.Error("the bad client's drop is not counted")
	}
}

// dialNoRead is dialRaw whose client never reads its bi-stream.
func dialNoRead(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr, false)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	c.stream, err = wire.NewBiRequestStreamClient(c.cc).RequestBiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wire.ConnectionSetupRequest{ClientVersion: "test", Labels: map[string]string{"module": "naming"}})
	poll.Until(t, 30*time.Second, "setup registered", func() bool {
		r, err := c.call(&wire.HealthCheckRequest{})
		return err == nil && r.Result().OK()
	})
	return c
}

// TestConnectionNeverSetUp: transports that never send a request (or only
// the server check) are closed after SetupTimeout and counted; a client
// that sets up in time is kept.
func TestConnectionNeverSetUp(t *testing.T) {
	s, _ := startServer(t, func(c *Config) {
		c.SetupTimeout = 300 * time.Millisecond
		c.EjectInterval = 50 * time.Millisecond
	})
	var silent []*grpc.ClientConn
	for range 5 {
		cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		cc.Connect()
		silent = append(silent, cc)
	}
	checked := dialRaw(t, s.Addr().String(), false) // a server check, no setup
	ok := dialRaw(t, s.Addr().String(), true)
	poll.Until(t, 30*time.Second, "6 transports closed for no setup", func() bool {
		return testutil.ToFloat64(s.met.notSetUp) >= 6
	})
	poll.Until(t, 30*time.Second, "only the set-up connection left", func() bool {
		all, reg := countConns(s)
		return all == 1 && reg == 1
	})
	for _, cc := range silent {
		poll.Until(t, 30*time.Second, "a silent client's transport closed", func() bool { return cc.GetState() != connectivity.Ready })
	}
	_ = checked
	ok.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("x")})
}

// TestClientRequestingEveryMillisecond: clients sending a HealthCheck every
// millisecond (in a child process) cost the server bounded memory per
// connection, their requests are counted, and another client's queries
// are answered meanwhile.
func TestClientRequestingEveryMillisecond(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	s, _ := startServer(t, nil)
	other := dialRaw(t, s.Addr().String(), true)
	hc := func() float64 {
		return testutil.ToFloat64(s.met.requests.WithLabelValues(wire.TypeHealthCheckRequest, "0"))
	}
	openClients(t, s, 4, clientFlood)
	flood := func(n float64) {
		start := hc()
		poll.Until(t, 30*time.Second, "more health checks counted", func() bool {
			other.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("x")})
			return hc()-start >= n
		})
	}
	flood(2000)
	before := readServerMem()
	flood(4000)
	after := readServerMem()
	// What the server holds does not grow with the requests: each is
	// answered and gone.
	if grew := int64(after.heap) - int64(before.heap); grew > 1<<20 {
		t.Errorf("server heap grew by %d bytes over 4,000 more requests (%d → %d)", grew, before.heap, after.heap)
	}
}

// TestStreamEndClosesTransport: a client that ends its bi-stream and keeps
// its transport (one that reconnects without closing the old channel) does
// not leave the transport behind: unregistering closes it, as Nacos closes
// the channel.
func TestStreamEndClosesTransport(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	c.mustCall(&wire.InstanceRequest{NamingHeader: nh("leak"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", 1)})
	c.cancel() // the stream ends; the grpc.ClientConn stays open
	poll.Until(t, 30*time.Second, "the transport gone at the server", func() bool {
		for _, ci := range s.Connections() {
			if ci.ID == c.connID {
				return false
			}
		}
		return true
	})
	if info, _ := reg.Select(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "leak"}, nil, false); len(info.Hosts) != 0 {
		t.Fatalf("the connection's instance is still there: %+v", info.Hosts)
	}
	poll.Until(t, 30*time.Second, "the client sees its transport closed", func() bool { return c.cc.GetState() != connectivity.Ready })
}

package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelDebug)
}

func startServer(t testing.TB, mod func(*Config)) (*Server, *naming.Registry) {
	t.Helper()
	reg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PushDelay = 50 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, reg, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s, reg
}

// rawClient speaks the protocol with wire directly, like the SDK does.
type rawClient struct {
	t      testing.TB
	cc     *grpc.ClientConn
	req    wire.RequestClient
	stream wire.BiRequestStream_RequestBiStreamClient
	connID string
	// batchBeat is the server check's ferryBatchBeat capability flag.
	batchBeat bool
	pushes    chan *wire.NotifySubscriberRequest
	ack       atomic.Bool // answer pushes and detections
	nack      atomic.Bool // answer pushes with resultCode 500
	detect    atomic.Int32
	resets    chan *wire.ConnectResetRequest
	cancel    context.CancelFunc
}

func dialRaw(t testing.TB, addr string, setup bool) *rawClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := &rawClient{t: t, cc: cc, req: wire.NewRequestClient(cc), pushes: make(chan *wire.NotifySubscriberRequest, 100),
		resets: make(chan *wire.ConnectResetRequest, 10)}
	c.ack.Store(true)
	resp, err := c.call(&wire.ServerCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sc := resp.(*wire.ServerCheckResponse)
	if !sc.OK() || sc.ConnectionID == "" || sc.SupportAbilityNegotiation {
		t.Fatalf("server check: %+v", sc)
	}
	c.connID, c.batchBeat = sc.ConnectionID, sc.FerryBatchBeat
	if !setup {
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	t.Cleanup(cancel)
	c.stream, err = wire.NewBiRequestStreamClient(cc).RequestBiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.send(&wire.ConnectionSetupRequest{ClientVersion: "test", Labels: map[string]string{"module": "naming"}})
	go c.readLoop()
	// Setup is fire-and-forget: wait until the server took it (the
	// deadline only bounds a failure; 5 s is little at a load of 15).
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.call(&wire.HealthCheckRequest{})
		if err == nil && r.Result().OK() {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup never registered: %v %+v", err, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *rawClient) send(m wire.Message) {
	p, err := wire.Encode(m)
	if err != nil {
		c.t.Error(err)
		return
	}
	_ = c.stream.Send(p)
}

func (c *rawClient) readLoop() {
	for {
		p, err := c.stream.Recv()
		if err != nil {
			return
		}
		m, err := wire.Decode(p)
		if err != nil {
			c.t.Errorf("server sent undecodable %s: %v", p.GetMetadata().GetType(), err)
			continue
		}
		switch r := m.(type) {
		case *wire.NotifySubscriberRequest:
			ack := c.ack.Load() // decided before the test sees the push
			c.pushes <- r
			switch {
			case ack && c.nack.Load():
				c.send(&wire.NotifySubscriberResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 500, ErrorCode: 500, Message: "no", RequestID: r.RequestID}})
			case ack:
				c.send(&wire.NotifySubscriberResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
			}
		case *wire.ClientDetectionRequest:
			c.detect.Add(1)
			if c.ack.Load() {
				// The Go SDK answers success:false, resultCode 200.
				c.send(&wire.ClientDetectionResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
			}
		case *wire.ConnectResetRequest:
			c.resets <- r
			c.send(&wire.ConnectResetResponse{ResponseHeader: wire.ResponseHeader{ResultCode: 200, RequestID: r.RequestID}})
		}
	}
}

func (c *rawClient) call(m wire.Message) (wire.Response, error) {
	p, err := wire.Encode(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := c.req.Request(ctx, p)
	if err != nil {
		return nil, err
	}
	r, err := wire.Decode(out)
	if err != nil {
		return nil, err
	}
	return r.(wire.Response), nil
}

func (c *rawClient) mustCall(m wire.Message) wire.Response {
	c.t.Helper()
	r, err := c.call(m)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func nh(svc string) wire.NamingHeader {
	return wire.NamingHeader{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: svc}
}

func winst(ip string, port int) wire.Instance {
	return wire.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

func TestConnectionLevelErrors(t *testing.T) {
	s, _ := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), false)
	// Unknown type → ErrorResponse 302, before the registration check.
	p := &wire.Payload{Metadata: &wire.Metadata{Type: "NoSuchRequest"}}
	out, err := c.req.Request(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(out)
	if e, ok := m.(*wire.ErrorResponse); !ok || e.ErrorCode != wire.CodeNoHandler || e.Success {
		t.Fatalf("unknown type: %+v", m)
	}
	// Known type on an unregistered connection → 301.
	r := c.mustCall(&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("1.1.1.1", 1)})
	if e, ok := r.(*wire.ErrorResponse); !ok || e.ErrorCode != wire.CodeUnregister {
		t.Fatalf("unregistered: %+v", r)
	}
}

func TestRegisterQueryAndTypedErrors(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	r := c.mustCall(&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", 8080)})
	if ir, ok := r.(*wire.InstanceResponse); !ok || !ir.OK() || !ir.Success || ir.Type != wire.RegisterInstance {
		t.Fatalf("register: %+v", r)
	}
	r = c.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("batch"), Type: wire.BatchRegisterInstance,
		Instances: []wire.Instance{winst("10.0.0.1", 1), winst("10.0.0.2", 1)}})
	if !r.Result().OK() {
		t.Fatalf("batch: %+v", r)
	}
	r = c.mustCall(&wire.ServiceQueryRequest{NamingHeader: nh("batch")})
	q := r.(*wire.QueryServiceResponse)
	if len(q.ServiceInfo.Hosts) != 2 || q.ServiceInfo.Name != "batch" || q.ServiceInfo.GroupName != "DEFAULT_GROUP" ||
		q.ServiceInfo.Hosts[0].ServiceName != "DEFAULT_GROUP@@batch" || q.ServiceInfo.Hosts[0].ClusterName != "DEFAULT" ||
		q.ServiceInfo.Hosts[0].InstanceHeartBeatTimeOut != 15000 || q.ServiceInfo.CacheMillis != 10000 || !q.ServiceInfo.Valid {
		t.Fatalf("query: %+v", q.ServiceInfo)
	}
	r = c.mustCall(&wire.ServiceListRequest{NamingHeader: nh(""), PageNo: 1, PageSize: 10})
	if l := r.(*wire.ServiceListResponse); l.Count != 2 || len(l.ServiceNames) != 2 || l.ServiceNames[0] != "batch" {
		t.Fatalf("list: %+v", l)
	}
	// Business errors: the typed response with resultCode 500, never ErrorResponse.
	for _, bad := range []wire.Message{
		&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("", 1)},
		&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("1.1.1.1", -1)},
		&wire.InstanceRequest{NamingHeader: nh(""), Type: wire.RegisterInstance, Instance: winst("1.1.1.1", 1)},
		&wire.InstanceRequest{NamingHeader: nh("demo"), Type: "bogus", Instance: winst("1.1.1.1", 1)},
		&wire.BatchInstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance},
		&wire.ServiceQueryRequest{NamingHeader: nh("")},
		&wire.PersistentInstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("1.1.1.1", 1)},
	} {
		r := c.mustCall(bad)
		if _, isErr := r.(*wire.ErrorResponse); isErr || r.Result().ResultCode != 500 || r.Result().Success || r.Result().Message == "" {
			t.Errorf("%s: %T %+v", bad.TypeName(), r, r.Result())
		}
	}
	// Malformed JSON → ErrorResponse 502; nothing registered is lost.
	out, err := c.req.Request(context.Background(), &wire.Payload{Metadata: &wire.Metadata{Type: wire.TypeInstanceRequest},
		Body: nil})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(out)
	if m.(wire.Response).Result().ResultCode != 500 {
		t.Fatalf("empty instance: %+v", m)
	}
	p, _ := wire.Encode(&wire.HealthCheckRequest{})
	p.Body.Value = []byte(`{"module":`)
	p.Metadata.Type = wire.TypeInstanceRequest
	out, _ = c.req.Request(context.Background(), p)
	m, _ = wire.Decode(out)
	if e, ok := m.(*wire.ErrorResponse); !ok || e.ErrorCode != wire.CodeBadGateway {
		t.Fatalf("malformed: %+v", m)
	}
	// Oversized headers.
	p, _ = wire.Encode(&wire.HealthCheckRequest{})
	p.Metadata.Headers = map[string]string{"x": strings.Repeat("y", 20<<10)}
	out, _ = c.req.Request(context.Background(), p)
	m, _ = wire.Decode(out)
	if e, ok := m.(*wire.ErrorResponse); !ok || e.ErrorCode != wire.CodeBadGateway {
		t.Fatalf("big headers: %+v", m)
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "batch"}, nil, false); len(si.Hosts) != 2 {
		t.Fatalf("lost instances: %+v", si.Hosts)
	}
	// A closed client's instances vanish.
	c.cc.Close()
	waitFor(t, "instances dropped", func() bool {
		si, _ := reg.Select(naming.ServiceKey{Name: "batch"}, nil, false)
		return len(si.Hosts) == 0
	})
}

func TestSubscribePushAndRetry(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.PushRetryDelay = 50 * time.Millisecond; c.PushTimeout = 200 * time.Millisecond })
	sub := dialRaw(t, s.Addr().String(), true)
	pub := dialRaw(t, s.Addr().String(), true)
	r := sub.mustCall(&wire.SubscribeServiceRequest{NamingHeader: nh("demo"), Subscribe: true})
	sr := r.(*wire.SubscribeServiceResponse)
	if !sr.OK() || sr.Message != "success" || len(sr.ServiceInfo.Hosts) != 0 {
		t.Fatalf("subscribe: %+v", sr)
	}
	// The new subscriber gets its own push after the delay.
	first := <-sub.pushes
	if first.ServiceInfo.Name != "demo" || first.RequestID == "" {
		t.Fatalf("first push: %+v", first)
	}
	last := first.ServiceInfo.LastRefTime
	// A burst of changes is merged into one push.
	for i := 1; i <= 5; i++ {
		pub.mustCall(&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", i)})
	}
	var got *wire.NotifySubscriberRequest
	waitFor(t, "push with port 5", func() bool {
		select {
		case got = <-sub.pushes:
			if got.ServiceInfo.LastRefTime <= last {
				t.Fatalf("lastRefTime went %d → %d", last, got.ServiceInfo.LastRefTime)
			}
			last = got.ServiceInfo.LastRefTime
			return len(got.ServiceInfo.Hosts) == 1 && got.ServiceInfo.Hosts[0].Port == 5
		default:
			return false
		}
	})
	// Unacked pushes are retried.
	sub.ack.Store(false)
	pub.mustCall(&wire.InstanceRequest{NamingHeader: nh("demo"), Type: wire.DeregisterInstance, Instance: winst("10.0.0.1", 5)})
	<-sub.pushes
	sub.ack.Store(true)
	waitFor(t, "retried push", func() bool {
		select {
		case p := <-sub.pushes:
			return len(p.ServiceInfo.Hosts) == 0
		default:
			return false
		}
	})
	// Unsubscribe stops pushes.
	sub.mustCall(&wire.SubscribeServiceRequest{NamingHeader: nh("demo"), Subscribe: false})
	if len(s.reg.Subscribers(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"})) != 0 {
		t.Fatal("still subscribed")
	}
}

func TestIdleDetection(t *testing.T) {
	s, reg := startServer(t, func(c *Config) {
		c.IdleTimeout = 100 * time.Millisecond
		c.DetectTimeout = 100 * time.Millisecond
		c.EjectInterval = 20 * time.Millisecond
	})
	alive := dialRaw(t, s.Addr().String(), true)
	dead := dialRaw(t, s.Addr().String(), true)
	dead.ack.Store(false)
	alive.mustCall(&wire.InstanceRequest{NamingHeader: nh("a"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", 1)})
	dead.mustCall(&wire.InstanceRequest{NamingHeader: nh("b"), Type: wire.RegisterInstance, Instance: winst("10.0.0.2", 1)})
	waitFor(t, "dead client dropped", func() bool {
		si, _ := reg.Select(naming.ServiceKey{Name: "b"}, nil, false)
		return len(si.Hosts) == 0
	})
	waitFor(t, "alive client probed twice", func() bool { return alive.detect.Load() >= 2 })
	if si, _ := reg.Select(naming.ServiceKey{Name: "a"}, nil, false); len(si.Hosts) != 1 {
		t.Fatal("answering client dropped")
	}
	// The dropped connection is unregistered: 301 makes the SDK reconnect.
	if r, err := dead.call(&wire.HealthCheckRequest{}); err == nil {
		if e, ok := r.(*wire.ErrorResponse); !ok || e.ErrorCode != wire.CodeUnregister {
			t.Fatalf("dead conn answered %+v", r)
		}
	}
}

func TestBatchBeat(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	if !c.batchBeat {
		t.Fatal("server check without the ferryBatchBeat capability on a default server")
	}
	beat := func(register bool, items ...wire.BeatItem) *wire.FerryBatchBeatResponse {
		r := c.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: register, Beats: items})
		br, ok := r.(*wire.FerryBatchBeatResponse)
		if !ok || !br.OK() || len(br.Results) != len(items) || br.ClientBeatInterval != 5000 {
			t.Fatalf("batch beat: %+v", r)
		}
		return br
	}
	a := wire.BeatItem{ServiceName: "providers:a", Instance: winst("10.0.0.1", 20880)}
	b := wire.BeatItem{ServiceName: "providers:b", Instance: winst("10.0.0.2", 20880)}
	bad := wire.BeatItem{ServiceName: "providers:c", Instance: winst("", 20880)}
	if r := beat(false, a); r.Results[0].Status != wire.BeatUnknown {
		t.Fatalf("%+v", r.Results)
	}
	r := beat(true, a, b, bad)
	if r.Results[0].Status != wire.BeatOK || r.Results[1].Status != wire.BeatOK || r.Results[2].Status != wire.BeatInvalid || r.Results[2].Message == "" {
		t.Fatalf("%+v", r.Results)
	}
	if r := beat(false, a, b); r.Results[0].Status != wire.BeatOK || r.Results[1].Status != wire.BeatOK {
		t.Fatalf("%+v", r.Results)
	}
	// Light items name known instances by address only.
	light := []wire.BeatItem{{ServiceName: "providers:a", IP: "10.0.0.1", Port: 20880}, {ServiceName: "providers:z", IP: "10.0.0.9", Port: 1},
		{ServiceName: "providers:a", Port: 1}}
	if r := beat(true, light...); r.Results[0].Status != wire.BeatOK || r.Results[1].Status != wire.BeatUnknown || r.Results[2].Status != wire.BeatInvalid {
		t.Fatalf("light: %+v", r.Results)
	}
	// Groups: the compact form of light items. Only what is not ok comes
	// back, indexed over all group addresses; mixed with a full item.
	kept := wire.BeatItem{ServiceName: "providers:b", Instance: winst("10.0.0.2", 20880)}
	gr := c.mustCall(&wire.FerryBatchBeatRequest{Beats: []wire.BeatItem{kept}, Groups: []wire.BeatGroup{
		{ServiceName: "providers:a", Addrs: []string{"10.0.0.1:20880", "10.0.0.7:20880", "not-an-address"}},
		{ServiceName: "providers:b", Addrs: []string{"10.0.0.2:20880"}},
	}}).(*wire.FerryBatchBeatResponse)
	if len(gr.Results) != 1 || gr.Results[0].Status != wire.BeatOK || len(gr.Exceptions) != 2 ||
		gr.Exceptions[0].Index != 1 || gr.Exceptions[0].Status != wire.BeatUnknown ||
		gr.Exceptions[1].Index != 2 || gr.Exceptions[1].Status != wire.BeatInvalid || gr.Exceptions[1].Message == "" {
		t.Fatalf("groups: %+v", gr)
	}
	// A group beat turns an unhealthy instance healthy, as a light item does.
	reg.Expire(time.Now().Add(20 * time.Second))
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 1 || si.Hosts[0].Healthy {
		t.Fatalf("not unhealthy after 20 s without beats: %+v", si.Hosts)
	}
	c.mustCall(&wire.FerryBatchBeatRequest{Groups: []wire.BeatGroup{{ServiceName: "providers:a", Addrs: []string{"10.0.0.1:20880"}}}})
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 1 || !si.Hosts[0].Healthy {
		t.Fatalf("group beat did not revive: %+v", si.Hosts)
	}
	// Beat-kept instances survive their connection.
	c.cc.Close()
	waitFor(t, "connection gone", func() bool { return len(s.Connections()) == 0 })
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 1 {
		t.Fatalf("beat-kept instance lost: %+v", si)
	}
}

// TestBatchDeregister: the bulk deregister removes beat-kept instances
// group by group; an unknown one is ok (as Nacos answers), a bad address
// or service name is an indexed exception, connection-bound instances are
// untouched, and listeners hear of each changed service once.
func TestBatchDeregister(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	var mu sync.Mutex
	changes := map[string]int{}
	reg.OnChange(func(k naming.ServiceKey) { mu.Lock(); changes[k.Name]++; mu.Unlock() })
	var items []wire.BeatItem
	var addrsA []string
	for i := 1; i <= 50; i++ {
		ip := fmt.Sprintf("10.0.0.%d", i)
		items = append(items, wire.BeatItem{ServiceName: "providers:a", Instance: winst(ip, 20880)})
		addrsA = append(addrsA, ip+":20880")
	}
	cb := winst("10.0.1.1", 1)
	cb.ClusterName = "c1"
	items = append(items, wire.BeatItem{ServiceName: "providers:b", Instance: cb}, wire.BeatItem{ServiceName: "providers:b", Instance: winst("10.0.1.2", 1)})
	c.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: items})
	c.mustCall(&wire.InstanceRequest{NamingHeader: nh("providers:b"), Type: wire.RegisterInstance, Instance: winst("10.0.1.3", 1)})
	mu.Lock()
	clear(changes)
	mu.Unlock()
	req := &wire.FerryBatchDeregisterRequest{Groups: []wire.BeatGroup{
		{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "providers:a", Addrs: append(addrsA, "10.9.9.9:1")},
		{ServiceName: "providers:b", Cluster: "c1", Addrs: []string{"10.0.1.1:1", "10.0.1.2:1", "10.0.1.3:1", "nonsense"}},
		{ServiceName: "bad@@name", Addrs: []string{"10.0.0.1:20880"}},
	}}
	r, ok := c.mustCall(req).(*wire.FerryBatchDeregisterResponse)
	if !ok || !r.OK() {
		t.Fatalf("bulk deregister: %+v", r)
	}
	all, err := r.All(req)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range all {
		want := wire.BeatOK
		if i == 54 || i == 55 { // "nonsense", bad service name
			want = wire.BeatInvalid
		}
		if res.Status != want || (want == wire.BeatInvalid && res.Message == "") {
			t.Errorf("address %d: %+v, want %s", i, res, want)
		}
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 0 {
		t.Fatalf("providers:a left with %d hosts", len(si.Hosts))
	}
	// 10.0.1.2 is in cluster DEFAULT (the group says c1): kept; 10.0.1.3 is
	// connection-bound: kept.
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:b"}, nil, false); len(si.Hosts) != 2 {
		t.Fatalf("providers:b: %+v", si.Hosts)
	}
	mu.Lock()
	if changes["providers:a"] != 1 || changes["providers:b"] != 1 || len(changes) != 2 {
		t.Errorf("listeners told %v, want each service once", changes)
	}
	mu.Unlock()
	// Again: nothing left to remove, every address ok.
	r = c.mustCall(&wire.FerryBatchDeregisterRequest{Groups: req.Groups[:1]}).(*wire.FerryBatchDeregisterResponse)
	if !r.OK() || len(r.Exceptions) != 0 {
		t.Fatalf("second bulk deregister: %+v", r)
	}
}

// TestBatchBeatOff: with FerryBatchBeat off the server looks like a real
// Nacos 2.x: no capability flag in the server check, and the extension's
// request answered like any unknown type (ErrorResponse 302), while the
// standard BatchInstanceRequest still works.
func TestBatchBeatOff(t *testing.T) {
	s, reg := startServer(t, func(c *Config) { c.FerryBatchBeat = false })
	c := dialRaw(t, s.Addr().String(), true)
	if c.batchBeat {
		t.Fatal("server check says ferryBatchBeat with the extension off")
	}
	a := wire.BeatItem{ServiceName: "providers:a", Instance: winst("10.0.0.1", 20880)}
	r := c.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: []wire.BeatItem{a}})
	e, ok := r.(*wire.ErrorResponse)
	if !ok || e.ErrorCode != wire.CodeNoHandler || e.Success {
		t.Fatalf("batch beat with the extension off: %+v", r)
	}
	// The bulk deregister belongs to the same extension: 302 as well.
	dr := c.mustCall(&wire.FerryBatchDeregisterRequest{Groups: []wire.BeatGroup{{ServiceName: "providers:a", Addrs: []string{"10.0.0.1:20880"}}}})
	if d, ok := dr.(*wire.ErrorResponse); !ok || d.ErrorCode != wire.CodeNoHandler {
		t.Fatalf("bulk deregister with the extension off: %+v", dr)
	}
	// The same answer as a type nobody knows.
	p := &wire.Payload{Metadata: &wire.Metadata{Type: "NoSuchRequest"}}
	out, err := c.req.Request(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(out)
	if u, ok := m.(*wire.ErrorResponse); !ok || u.ErrorCode != e.ErrorCode || u.Message != e.Message {
		t.Fatalf("unknown type answered %+v, batch beat %+v", m, e)
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 0 {
		t.Fatalf("a refused batch beat registered: %+v", si)
	}
	br := c.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("providers:a"), Type: wire.BatchRegisterInstance,
		Instances: []wire.Instance{winst("10.0.0.1", 20880), winst("10.0.0.2", 20880)}})
	if !br.Result().OK() {
		t.Fatalf("batch register: %+v", br)
	}
	if si, _ := reg.Select(naming.ServiceKey{Name: "providers:a"}, nil, false); len(si.Hosts) != 2 {
		t.Fatalf("batch register with the extension off: %+v", si)
	}
}

func TestMaxConnections(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.MaxConnections = 1 })
	dialRaw(t, s.Addr().String(), true)
	cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p, _ := wire.Encode(&wire.ServerCheckRequest{})
	_, err = wire.NewRequestClient(cc).Request(context.Background(), p)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over limit: %v", err)
	}
}

func TestConnectReset(t *testing.T) {
	s, _ := startServer(t, nil)
	c := dialRaw(t, s.Addr().String(), true)
	if err := s.ResetConnection(context.Background(), c.connID, "127.0.0.2", 8848); err != nil {
		t.Fatal(err)
	}
	r := <-c.resets
	if r.ServerIP != "127.0.0.2" || r.ServerPort != "8848" {
		t.Fatalf("%+v", r)
	}
	if err := s.ResetConnection(context.Background(), "nope", "", 0); !errors.Is(err, ErrNotConnected) {
		t.Fatal(err)
	}
}

func TestPluggableHandler(t *testing.T) {
	reg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, reg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	s.Handle("ConfigQueryRequest", func() wire.Message { return &wire.HealthCheckRequest{} },
		func(context.Context, *Conn, wire.Request) (wire.Response, error) {
			calls.Add(1)
			return &wire.HealthCheckResponse{}, errors.New("boom")
		})
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(lis); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	c := dialRaw(t, s.Addr().String(), true)
	p := &wire.Payload{Metadata: &wire.Metadata{Type: "ConfigQueryRequest"}}
	out, err := c.req.Request(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(out)
	if r := m.(wire.Response).Result(); r.ResultCode != 500 || r.ErrorCode != 500 || calls.Load() != 1 {
		t.Fatalf("%+v", r)
	}
	s.Stop(context.Background()) // twice is fine
}

func TestManyConcurrentClients(t *testing.T) {
	s, reg := startServer(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := dialRaw(t, s.Addr().String(), true)
			for j := 0; j < 20; j++ {
				c.mustCall(&wire.InstanceRequest{NamingHeader: nh("svc"), Type: wire.RegisterInstance, Instance: winst("10.0.0.1", i*100+j+1)})
				c.mustCall(&wire.SubscribeServiceRequest{NamingHeader: nh("svc"), Subscribe: true})
			}
		}(i)
	}
	wg.Wait()
	if si, _ := reg.Select(naming.ServiceKey{Name: "svc"}, nil, false); len(si.Hosts) != 8 {
		t.Fatalf("hosts = %d, want one per connection", len(si.Hosts))
	}
}

func TestPushAll(t *testing.T) {
	s, _ := startServer(t, nil)
	a := dialRaw(t, s.Addr().String(), true)
	b := dialRaw(t, s.Addr().String(), true)
	silent := dialRaw(t, s.Addr().String(), true)
	silent.ack.Store(false)
	refuser := dialRaw(t, s.Addr().String(), true)
	refuser.nack.Store(true)
	// A name that holds the mark and the field's spelling: the template
	// must split at the real requestId only.
	name := `x"requestId":"` + pushIDMark + `"`
	newReq := func() *wire.NotifySubscriberRequest {
		r := &wire.NotifySubscriberRequest{ServiceInfo: wire.ServiceInfo{Name: name}}
		r.Namespace, r.GroupName, r.ServiceName = "public", "DEFAULT_GROUP", name
		return r
	}
	ids := []string{a.connID, b.connID, silent.connID, "nope", refuser.connID}
	start := time.Now()
	res := s.PushAll(context.Background(), ids, newReq(), 300*time.Millisecond)
	if len(res) != len(ids) {
		t.Fatalf("%d results", len(res))
	}
	for i, want := range []error{nil, nil, ErrTimeout, ErrNotConnected, nil} {
		switch {
		case want == nil && i < 2 && res[i].Err != nil:
			t.Errorf("%d: %v", i, res[i].Err)
		case want != nil && !errors.Is(res[i].Err, want):
			t.Errorf("%d: %v, want %v", i, res[i].Err, want)
		case res[i].At.Before(start):
			t.Errorf("%d: at %v", i, res[i].At)
		}
	}
	if res[4].Err == nil || !strings.Contains(res[4].Err.Error(), "500") {
		t.Errorf("refused push: %v", res[4].Err)
	}
	seen := map[string]bool{}
	for _, c := range []*rawClient{a, b, silent, refuser} {
		select {
		case p := <-c.pushes:
			if p.ServiceName != name || p.ServiceInfo.Name != name || p.RequestID == "" || seen[p.RequestID] {
				t.Errorf("push %+v", p)
			}
			seen[p.RequestID] = true
		case <-time.After(30 * time.Second):
			t.Fatal("no push")
		}
	}
	// Nothing is left pending, and a cancelled fan-out ends at once.
	s.pendMu.Lock()
	n := len(s.pending)
	s.pendMu.Unlock()
	if n != 0 {
		t.Fatalf("%d pending after PushAll", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = s.PushAll(ctx, []string{silent.connID}, newReq(), time.Minute)
	if !errors.Is(res[0].Err, context.Canceled) {
		t.Fatal(res[0].Err)
	}
	// Concurrent fan-outs to the same connections.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range s.PushAll(context.Background(), []string{a.connID, b.connID}, newReq(), 5*time.Second) {
				if r.Err != nil {
					t.Error(r.Err)
				}
			}
		}()
	}
	wg.Wait()
	if len(s.PushAll(context.Background(), nil, newReq(), time.Second)) != 0 {
		t.Fatal("results for no connection")
	}
}

func TestConfigValidateWindow(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{0, 65535, 2 << 30} {
		c := DefaultConfig()
		c.WindowBytes = w
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "WindowBytes") {
			t.Errorf("WindowBytes %d: %v", w, err)
		}
	}
}

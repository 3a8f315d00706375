package udppush

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

var demo = naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"}

// render stands in for httpapi.ServiceInfoJSON (which imports this
// package): the name, clusters, lastRefTime and host addresses.
func render(k naming.ServiceKey, clusters string, si naming.ServiceInfo) ([]byte, error) {
	hosts := []string{}
	for _, h := range si.Hosts {
		hosts = append(hosts, h.IP+":"+strconv.Itoa(h.Port)+" "+h.Metadata["v"])
	}
	return json.Marshal(map[string]any{"name": k.Grouped(), "clusters": clusters, "lastRefTime": si.LastRefTime, "hosts": hosts})
}

// newService starts a Service over a fresh naming core with test timings:
// acks are waited for 100 ms instead of 1 s, subscribers expire after
// 300 ms instead of 30 s (scaled down so each test takes about a second;
// the rules do not depend on the values; tests that must not see a
// timeout fire under load lengthen theirs).
func newService(t *testing.T, edit func(*Config)) (*Service, *naming.Registry) {
	t.Helper()
	reg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.AckTimeout = 100 * time.Millisecond
	cfg.SubscriberTTL = 300 * time.Millisecond
	cfg.SweepInterval = 20 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, Deps{Naming: reg, Render: render}, testlog.New(t, -4), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s, reg
}

// push is one datagram a fake client received, decoded.
type push struct {
	raw         []byte
	gzipped     bool
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastRefTime int64  `json:"lastRefTime"`
}

// client is a fake Nacos 1.x push receiver on a loopback UDP socket: it
// decodes every datagram and, when ack is set, answers as nacos-sdk-go
// v1.1.4's PushReceiver does.
type client struct {
	conn *net.UDPConn
	ack  bool

	mu  sync.Mutex
	got []push
}

func newClient(t *testing.T, ack bool) *client {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{conn: conn, ack: ack}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p := push{raw: append([]byte(nil), buf[:n]...)}
			b := p.raw
			if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
				p.gzipped = true
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err == nil {
					b, _ = io.ReadAll(zr)
				}
			}
			_ = json.Unmarshal(b, &p)
			c.mu.Lock()
			c.got = append(c.got, p)
			c.mu.Unlock()
			if c.ack {
				a, _ := json.Marshal(map[string]string{"type": "push-ack", "lastRefTime": strconv.FormatInt(p.LastRefTime, 10), "data": ""})
				_, _ = conn.WriteToUDPAddrPort(a, from)
			}
		}
	}()
	return c
}

func (c *client) port() string { return strconv.Itoa(c.conn.LocalAddr().(*net.UDPAddr).Port) }

func (c *client) pushes() []push {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]push(nil), c.got...)
}

// poll is what the HTTP API hands over for one instance-list poll from
// loopback.
func (c *client) poll(s *Service, key naming.ServiceKey) {
	s.Subscribe(Query{Key: key, Source: netip.MustParseAddr("127.0.0.1"), UDPPort: c.port(), Agent: goAgent, ClientIP: "127.0.0.1"})
}

func register(t *testing.T, reg *naming.Registry, ip string, port int, meta string) {
	t.Helper()
	in := naming.Instance{IP: ip, Port: port, Weight: 1, Healthy: true, Enabled: true, Ephemeral: true, Metadata: map[string]string{"v": meta}}
	if err := reg.RegisterBeatKept(demo, in); err != nil {
		t.Fatal(err)
	}
}

func count(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func (s *Service) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) == 0 && len(s.rounds) == 0 && len(s.latest) == 0
}

// An acknowledged push is sent once, carries the rendered ServiceInfo in
// Nacos' envelope (gzipped when large), and is listed with the naming
// core's subscribers.
func TestPushAcknowledged(t *testing.T) {
	// A 1 s ack timeout: a loaded machine must not turn a slow ack into a
	// retry here.
	s, reg := newService(t, func(c *Config) { c.AckTimeout = time.Second; c.SubscriberTTL = time.Minute })
	c := newClient(t, true)
	c.poll(s, demo)
	subs := reg.Subscribers(demo)
	if len(subs) != 1 || subs[0].ClientID != "udp:127.0.0.1:"+c.port() {
		t.Fatalf("naming lists %+v", subs)
	}
	register(t, reg, "10.0.0.1", 20880, "x")
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the ack", func() bool { return count(s.met.pushes.WithLabelValues(resultOK)) == 1 })
	got := c.pushes()
	if len(got) != 1 || got[0].Type != "dom" || got[0].gzipped {
		t.Fatalf("got %+v", got)
	}
	var si struct {
		Name  string   `json:"name"`
		Hosts []string `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(got[0].Data), &si); err != nil || si.Name != "DEFAULT_GROUP@@demo" || len(si.Hosts) != 1 || si.Hosts[0] != "10.0.0.1:20880 x" {
		t.Fatalf("data %s (%v)", got[0].Data, err)
	}
	poll.Until(t, 30*time.Second, "no pending push", s.idle)
	if n := count(s.met.sent.WithLabelValues("retry")); n != 0 {
		t.Fatalf("%v retries of an acked push", n)
	}

	// A large service goes gzipped (≥ 1024 bytes).
	for i := 0; i < 40; i++ {
		register(t, reg, "10.0.1."+strconv.Itoa(i), 20880, "some-metadata-value")
	}
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the second ack", func() bool { return count(s.met.pushes.WithLabelValues(resultOK)) == 2 })
	if got := c.pushes(); len(got) != 2 || !got[1].gzipped || len(got[1].Data) < 1024 {
		t.Fatalf("second push: gzipped %v, %d bytes of data", got[1].gzipped, len(got[1].Data))
	}
}

// A client that never acks gets the push 1 + Retries times, AckTimeout
// apart, then the push is dropped and nothing more is sent.
func TestNeverAckedIsRetriedThenDropped(t *testing.T) {
	s, reg := newService(t, func(c *Config) { c.Retries = 2; c.SubscriberTTL = time.Minute })
	c := newClient(t, false)
	c.poll(s, demo)
	register(t, reg, "10.0.0.1", 20880, "x")
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the drop", func() bool { return count(s.met.pushes.WithLabelValues(resultDropped)) == 1 })
	poll.Until(t, 30*time.Second, "no timer left", s.idle)
	got := c.pushes()
	if len(got) != 3 {
		t.Fatalf("%d datagrams, want 3 (1 + 2 retries)", len(got))
	}
	for _, p := range got[1:] {
		if !bytes.Equal(p.raw, got[0].raw) {
			t.Fatal("a retry differs from the push")
		}
	}
	if n := count(s.met.sent.WithLabelValues("retry")); n != 2 {
		t.Fatalf("retries counted %v", n)
	}
	// The subscriber stays (it still polls): the next change is pushed.
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the next push", func() bool { return len(c.pushes()) == 4 })
}

// A newer push to the same subscription replaces an unacknowledged one:
// its retries stop, only the new one is retried.
func TestNewerPushSupersedes(t *testing.T) {
	// 1 s: the second push must come before the first one's retry.
	s, reg := newService(t, func(c *Config) { c.AckTimeout = time.Second; c.Retries = 1; c.SubscriberTTL = time.Minute })
	c := newClient(t, false)
	c.poll(s, demo)
	register(t, reg, "10.0.0.1", 20880, "x")
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the first push", func() bool { return len(c.pushes()) == 1 })
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the drop", func() bool { return count(s.met.pushes.WithLabelValues(resultDropped)) == 1 })
	poll.Until(t, 30*time.Second, "no timer left", s.idle)
	if n := count(s.met.pushes.WithLabelValues(resultSuperseded)); n != 1 {
		t.Fatalf("superseded %v", n)
	}
	got := c.pushes()
	if len(got) != 3 || got[1].LastRefTime == got[0].LastRefTime || got[2].LastRefTime != got[1].LastRefTime {
		t.Fatalf("refs %d datagrams: want push1, push2, retry of push2", len(got))
	}
}

// A client that stops polling expires after SubscriberTTL and is not
// pushed to any more; one that keeps polling is.
func TestStoppedPollingStopsPushes(t *testing.T) {
	// TTL 1 s against polls every 50 ms: the active client stays even on a
	// loaded machine.
	s, reg := newService(t, func(c *Config) { c.SubscriberTTL = time.Second })
	active, silent := newClient(t, true), newClient(t, true)
	active.poll(s, demo)
	silent.poll(s, demo)
	register(t, reg, "10.0.0.1", 20880, "x")
	// active polls as a 1.x client does (every cacheMillis; here 50 ms).
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				active.poll(s, demo)
			}
		}
	}()
	defer func() { close(stop); <-polled }()
	poll.Until(t, 30*time.Second, "the silent subscriber's expiry", func() bool { return s.Count() == 1 })
	if subs := reg.Subscribers(demo); len(subs) != 1 || subs[0].ClientID != "udp:127.0.0.1:"+active.port() {
		t.Fatalf("naming still lists %+v", subs)
	}
	if n := count(s.met.expired); n != 1 {
		t.Fatalf("expired %v", n)
	}
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the active client's push", func() bool { return len(active.pushes()) == 1 })
	poll.Until(t, 30*time.Second, "the round's end", s.idle)
	// Both would have been sent in the same round, from one goroutine,
	// before the active client's ack could settle it.
	if n := len(silent.pushes()); n != 0 {
		t.Fatalf("the silent client got %d pushes", n)
	}
}

// Garbage on the push socket is counted and ignored; pushes go on.
func TestGarbageIgnored(t *testing.T) {
	s, reg := newService(t, nil)
	c := newClient(t, true)
	c.poll(s, demo)
	register(t, reg, "10.0.0.1", 20880, "x")
	srv := s.Addr().(*net.UDPAddr).AddrPort()
	junk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	for _, b := range []string{"", "\x00\xff\xfe", "{", `{"type":"dom"}`, "\x1f\x8b\x08\x00garbage",
		`{"type":"push-ack","lastRefTime":"1","data":""}`, string(bytes.Repeat([]byte("x"), 60000))} {
		if _, err := junk.WriteToUDPAddrPort([]byte(b), srv); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 30*time.Second, "the garbage counted", func() bool {
		return count(s.met.ignored.WithLabelValues("malformed")) == 6 && count(s.met.ignored.WithLabelValues("unknown")) == 1
	})
	s.ServicePushed(demo, time.Now())
	poll.Until(t, 30*time.Second, "the ack", func() bool { return count(s.met.pushes.WithLabelValues(resultOK)) == 1 })
}

// Polls that cannot subscribe are answered elsewhere, counted here, and
// leave no subscriber.
func TestRefusedPolls(t *testing.T) {
	s, reg := newService(t, func(c *Config) { c.MaxPerIP = 2 })
	lo := netip.MustParseAddr("127.0.0.1")
	for _, q := range []Query{
		{Key: demo, Source: lo, UDPPort: "0", Agent: goAgent},
		{Key: demo, Source: lo, UDPPort: "70000", Agent: goAgent},
		{Key: demo, Source: lo, UDPPort: "5000", Agent: "curl/8.5.0"},
	} {
		s.Subscribe(q)
	}
	if s.Count() != 0 || len(reg.Subscribers(demo)) != 0 {
		t.Fatal("a refused poll subscribed")
	}
	// One address floods: two ports × services are held, the rest refused.
	for i := 0; i < 50; i++ {
		s.Subscribe(Query{Key: naming.ServiceKey{Name: "svc" + strconv.Itoa(i%5)}, Source: lo, UDPPort: strconv.Itoa(5000 + i), Agent: goAgent})
	}
	if s.Count() != 2 {
		t.Fatalf("%d subscriptions from one address, want 2", s.Count())
	}
	if n := count(s.met.refused.WithLabelValues(ReasonPort)); n != 2 {
		t.Fatalf("port refusals %v", n)
	}
	if n := count(s.met.refused.WithLabelValues(ReasonAgent)); n != 1 {
		t.Fatalf("agent refusals %v", n)
	}
	if n := count(s.met.refused.WithLabelValues(ReasonLimit)); n != 48 {
		t.Fatalf("limit refusals %v", n)
	}
	// A clientIP that is not the source is counted; the push would go to
	// the source.
	s.Subscribe(Query{Key: demo, Source: netip.MustParseAddr("127.0.0.2"), UDPPort: "5000", Agent: goAgent, ClientIP: "192.0.2.1"})
	if subs := s.Subscribers(demo); len(subs) != 1 || subs[0].Addr.String() != "127.0.0.2:5000" || count(s.met.clientIPIgnored) != 1 {
		t.Fatalf("spoofed clientIP: %+v, counted %v", subs, count(s.met.clientIPIgnored))
	}
}

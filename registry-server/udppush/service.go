// Package udppush pushes service changes to Nacos 1.x clients over UDP, as
// Nacos 2.x still does for them (PushExecutorUdpImpl, UdpPushService,
// UdpConnector). A 1.x client names its push endpoint in every instance-list
// poll (udpPort); the HTTP API hands each poll to Subscribe, which records
// the subscription (expired when the polls stop). When a service's merged
// push fires (the gRPC API's push delay, through ServicePushed), every UDP
// subscriber of it gets the ServiceInfo JSON its poll would return, in
// Nacos' envelope, and the push is sent again until the client's push-ack
// arrives or the retry budget ends.
//
// The rules, with their Nacos source references, are in
// docs/nacos-udp-push.md. The wire format is pure code (envelope.go,
// agent.go, table.go); the socket, timers and clock are here.
package udppush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// Naming is the naming core (*naming.Registry implements it). Subscribe
// and Unsubscribe list the UDP subscribers next to the gRPC ones (client id
// Subscriber.ClientID); they are called with the Service's lock held and
// must not call back into it.
type Naming interface {
	NormalizeKey(k naming.ServiceKey) (naming.ServiceKey, error)
	Select(key naming.ServiceKey, clusters []string, healthyOnly bool) (naming.ServiceInfo, error)
	Subscribe(clientID string, key naming.ServiceKey, clusters string) error
	Unsubscribe(clientID string, key naming.ServiceKey) error
}

// Deps are the Service's collaborators; Naming and Render are required.
type Deps struct {
	Naming Naming
	// Render encodes si exactly as GET /nacos/v1/ns/instance/list answers it
	// (httpapi.ServiceInfoJSON), clusters as the subscriber sent them.
	Render func(key naming.ServiceKey, clusters string, si naming.ServiceInfo) ([]byte, error)
	// Now is the clock of subscriber expiry and push latency; nil: time.Now.
	Now func() time.Time
}

// Service is the UDP push of one node. New validates, Start binds the
// socket and returns, Stop is idempotent. Subscribe and ServicePushed may be
// called from any goroutine at any time (before Start and after Stop they
// do nothing).
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	met  *metrics

	lastRef atomic.Int64 // last push id handed out

	mu      sync.Mutex // guards everything below
	conn    *net.UDPConn
	tab     *table
	pending map[ackKey]*pending // pushes waiting for their ack
	latest  map[subKey]int64    // push id of a subscription's pending push
	rounds  map[*round]struct{} // rounds with an armed retry timer
	started bool
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup // read loop, sweep loop, rounds, retry timers
}

// ackKey is what an ack is matched by: its sender and lastRefTime (Nacos
// AckEntry.getAckKey).
type ackKey struct {
	addr netip.AddrPort
	ref  int64
}

type pending struct {
	r   *round
	sub subKey
	pkt []byte
}

// round is one push of one service to its subscribers. attempts and keys
// are guarded by Service.mu.
type round struct {
	svc      naming.ServiceKey
	ref      int64
	since    time.Time
	attempts int
	keys     []ackKey
	timer    *time.Timer
}

// ErrStopped: Start after Stop.
var ErrStopped = errors.New("udppush: stopped")

// New validates cfg and deps. registerer may be nil.
func New(cfg Config, deps Deps, logger *slog.Logger, registerer prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Naming == nil || deps.Render == nil {
		return nil, fmt.Errorf("%w: Deps.Naming and Deps.Render are required", ErrConfig)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, deps: deps, log: logger,
		tab: newTable(), pending: map[ackKey]*pending{}, latest: map[subKey]int64{}, rounds: map[*round]struct{}{},
		stop: make(chan struct{}),
	}
	s.met = newMetrics(registerer, func() float64 { return float64(s.Count()) })
	return s, nil
}

// Start binds the push socket (Host:Port) and starts reading acks and
// expiring subscriptions. Disabled, it does nothing.
func (s *Service) Start() error {
	if !s.cfg.Enabled {
		return nil
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("udppush: listen: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		pc.Close()
		return ErrStopped
	}
	if s.started {
		pc.Close()
		return errors.New("udppush: already started")
	}
	s.conn, s.started = pc.(*net.UDPConn), true
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.readLoop(s.conn) }()
	go func() { defer s.wg.Done(); s.sweepLoop() }()
	s.log.Info("UDP push listening", "addr", pc.LocalAddr().String())
	return nil
}

// Addr is the push socket's address (nil before Start or when disabled).
func (s *Service) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// Stop closes the socket, cancels pending retries, takes the subscribers
// out of the naming core's list and waits (until ctx ends) for the
// goroutines. Idempotent.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	for r := range s.rounds {
		if r.timer.Stop() {
			s.wg.Done()
		}
	}
	clear(s.rounds)
	clear(s.pending)
	for _, sub := range s.tab.subs {
		_ = s.deps.Naming.Unsubscribe(sub.ClientID(), sub.Key)
	}
	s.tab = newTable()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("udppush: stop: %w", ctx.Err())
	}
}

// Subscribe records the push endpoint of one instance-list poll, or
// counts why it records none (Reason*). Call it before the poll's answer
// is selected, so that no change between the two goes unpushed.
func (s *Service) Subscribe(q Query) {
	if !s.cfg.Enabled {
		return
	}
	addr, reason, ipIgnored := target(q)
	if reason != "" {
		s.met.refused.WithLabelValues(reason).Inc()
		return
	}
	key, err := s.deps.Naming.NormalizeKey(q.Key)
	if err != nil {
		return // the poll itself fails on it
	}
	q.Key = key
	if ipIgnored {
		s.met.clientIPIgnored.Inc()
	}
	now := s.deps.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		return
	}
	before := ""
	if old := s.tab.subs[subKey{addr, key}]; old != nil {
		before = old.Clusters
	}
	sub, added, reason := s.tab.touch(q, addr, now, s.cfg.MaxPerIP, s.cfg.MaxSubscribers)
	if reason != "" {
		s.met.refused.WithLabelValues(reason).Inc()
		return
	}
	if added || sub.Clusters != before {
		_ = s.deps.Naming.Subscribe(sub.ClientID(), key, sub.Clusters)
	}
	if added {
		s.log.Debug("1.x subscriber", "addr", addr.String(), "service", key.Grouped(), "agent", q.Agent, "clientIP", q.ClientIP)
	}
}

// Subscribers returns copies of key's UDP subscriptions, sorted by address.
func (s *Service) Subscribers(key naming.ServiceKey) []Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tab.of(key)
}

// Count is the number of UDP subscriptions.
func (s *Service) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tab.subs)
}

// ServicePushed is the gRPC API's merged-push hook: key's push delay ended
// (since is its first merged change). It must not block: the push runs on
// its own goroutine.
func (s *Service) ServicePushed(key naming.ServiceKey, since time.Time) {
	s.mu.Lock()
	if !s.started || s.closed || len(s.tab.bySvc[key]) == 0 {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.push(key, since)
	}()
}

// filter is what a subscriber's ServiceInfo depends on.
type filter struct {
	clusters    string
	healthyOnly bool
}

// push sends key's state to each of its subscribers: one datagram per
// distinct filter, the same bytes for every subscriber of that filter (the
// push id is per round; an ack is matched by sender and id).
func (s *Service) push(key naming.ServiceKey, since time.Time) {
	s.mu.Lock()
	subs := s.tab.of(key)
	s.mu.Unlock()
	ref := s.nextRef()
	pkts := map[filter][]byte{}
	type send struct {
		sub subKey
		pkt []byte
	}
	sends := make([]send, 0, len(subs))
	for _, sub := range subs {
		f := filter{sub.Clusters, sub.HealthyOnly}
		pkt, ok := pkts[f]
		if !ok {
			pkt = s.encode(key, f, ref)
			pkts[f] = pkt
		}
		if pkt == nil {
			continue
		}
		sends = append(sends, send{subKey{sub.Addr, key}, pkt})
	}
	r := &round{svc: key, ref: ref, since: since, attempts: 1}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	conn := s.conn
	live := sends[:0]
	for _, sd := range sends {
		if s.tab.subs[sd.sub] == nil {
			continue // expired meanwhile
		}
		if old, ok := s.latest[sd.sub]; ok {
			if _, waiting := s.pending[ackKey{sd.sub.addr, old}]; waiting {
				delete(s.pending, ackKey{sd.sub.addr, old})
				s.met.pushes.WithLabelValues(resultSuperseded).Inc()
			}
		}
		k := ackKey{sd.sub.addr, ref}
		s.pending[k] = &pending{r: r, sub: sd.sub, pkt: sd.pkt}
		s.latest[sd.sub] = ref
		r.keys = append(r.keys, k)
		live = append(live, sd)
	}
	s.mu.Unlock()
	for _, sd := range live {
		s.send(conn, sd.sub.addr, sd.pkt, "push")
	}
	s.arm(r)
}

// encode renders the datagram of key for f (nil when it cannot be sent:
// logged, and counted when too large).
func (s *Service) encode(key naming.ServiceKey, f filter, ref int64) []byte {
	si, err := s.deps.Naming.Select(key, splitClusters(f.clusters), f.healthyOnly)
	if err != nil {
		s.log.Error("push select", "service", key.Grouped(), "err", err)
		return nil
	}
	data, err := s.deps.Render(key, f.clusters, si)
	if err != nil {
		s.log.Error("push render", "service", key.Grouped(), "err", err)
		return nil
	}
	pkt, err := EncodeEnvelope(data, ref, s.cfg.CompressThreshold)
	if err != nil {
		s.log.Error("push encode", "service", key.Grouped(), "err", err)
		return nil
	}
	if len(pkt) > MaxDatagram {
		s.met.pushes.WithLabelValues(resultTooLarge).Inc()
		s.log.Warn("push too large for one datagram; 1.x clients of it learn by polling",
			"service", key.Grouped(), "bytes", len(pkt), "hosts", len(si.Hosts))
		return nil
	}
	return pkt
}

func (s *Service) send(conn *net.UDPConn, addr netip.AddrPort, pkt []byte, kind string) {
	if _, err := conn.WriteToUDPAddrPort(pkt, addr); err != nil {
		s.met.sendErrors.Inc()
		s.log.Debug("push send", "addr", addr.String(), "err", err)
		return // the retry timer sends it again
	}
	s.met.sent.WithLabelValues(kind).Inc()
}

// arm schedules r's retry after AckTimeout.
func (s *Service) arm(r *round) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(r.keys) == 0 {
		return
	}
	s.wg.Add(1)
	r.timer = time.AfterFunc(s.cfg.AckTimeout, func() {
		defer s.wg.Done()
		s.retry(r)
	})
	s.rounds[r] = struct{}{}
}

// retry sends r's unacknowledged pushes again, or drops those that used
// their budget (1 + Retries sends, as UdpConnector.UdpRetrySender).
func (s *Service) retry(r *round) {
	s.mu.Lock()
	delete(s.rounds, r)
	if s.closed {
		s.mu.Unlock()
		return
	}
	conn := s.conn
	var resend []*pending
	live := r.keys[:0]
	for _, k := range r.keys {
		p := s.pending[k]
		if p == nil || p.r != r {
			continue // acked or superseded
		}
		switch {
		case s.tab.subs[p.sub] == nil:
			s.settleLocked(k, p)
			s.met.pushes.WithLabelValues(resultGone).Inc()
		case r.attempts > s.cfg.Retries:
			s.settleLocked(k, p)
			s.met.pushes.WithLabelValues(resultDropped).Inc()
			s.log.Debug("push not acknowledged, dropped", "addr", k.addr.String(), "service", r.svc.Grouped(), "sends", r.attempts)
		default:
			live = append(live, k)
			resend = append(resend, p)
		}
	}
	r.keys = live
	if len(live) > 0 {
		r.attempts++
	}
	s.mu.Unlock()
	for _, p := range resend {
		s.send(conn, p.sub.addr, p.pkt, "retry")
	}
	s.arm(r)
}

// settleLocked forgets pending push k.
func (s *Service) settleLocked(k ackKey, p *pending) {
	delete(s.pending, k)
	if s.latest[p.sub] == k.ref {
		delete(s.latest, p.sub)
	}
}

// readLoop reads acks; anything else is counted and ignored.
func (s *Service) readLoop(conn *net.UDPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("push socket read", "err", err)
			continue
		}
		ref, ok := ParseAck(buf[:n])
		if !ok {
			s.met.ignored.WithLabelValues("malformed").Inc()
			continue
		}
		k := ackKey{netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), ref}
		s.mu.Lock()
		p := s.pending[k]
		if p != nil {
			s.settleLocked(k, p)
		}
		s.mu.Unlock()
		if p == nil {
			s.met.ignored.WithLabelValues("unknown").Inc()
			continue
		}
		s.met.pushes.WithLabelValues(resultOK).Inc()
		s.met.latency.Observe(s.deps.Now().Sub(p.r.since).Seconds())
	}
}

func (s *Service) sweepLoop() {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(s.deps.Now())
		}
	}
}

// sweep forgets the subscriptions not polled within SubscriberTTL of now.
// Their unacknowledged pushes end at their next retry ("gone").
func (s *Service) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, sub := range s.tab.expired(now, s.cfg.SubscriberTTL) {
		s.tab.remove(subKey{sub.Addr, sub.Key})
		_ = s.deps.Naming.Unsubscribe(sub.ClientID(), sub.Key)
		s.met.expired.Inc()
		s.log.Debug("1.x subscriber expired", "addr", sub.Addr.String(), "service", sub.Key.Grouped())
	}
}

// nextRef is a push id: nanoseconds of the clock (Nacos uses
// System.nanoTime()), strictly increasing.
func (s *Service) nextRef() int64 {
	for {
		last := s.lastRef.Load()
		n := max(s.deps.Now().UnixNano(), last+1)
		if s.lastRef.CompareAndSwap(last, n) {
			return n
		}
	}
}

// splitClusters reads a subscriber's clusters as the HTTP API does.
func splitClusters(raw string) []string {
	var out []string
	for _, c := range strings.Split(raw, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

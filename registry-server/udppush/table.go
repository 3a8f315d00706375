package udppush

import (
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// Query is what one Nacos 1.x instance-list poll (GET
// /nacos/v1/ns/instance/list) says about its push endpoint.
type Query struct {
	Key         naming.ServiceKey
	Clusters    string // as sent (comma list, "" = all)
	HealthyOnly bool
	// Source is the request's remote address: the only address pushes go to.
	Source netip.Addr
	// ClientIP is the address the client says it has; recorded, never a
	// push destination.
	ClientIP string
	UDPPort  string // as sent
	Agent    string // User-Agent, else Client-Version
	App      string
}

// Subscriber is one 1.x subscription: one UDP endpoint's interest in one
// service (the latest poll's clusters and healthyOnly win, as Nacos keeps
// one subscriber per client and service).
type Subscriber struct {
	Addr        netip.AddrPort // Source:udpPort
	Key         naming.ServiceKey
	Clusters    string
	HealthyOnly bool
	ClientIP    string
	Agent       string
	App         string
	Since       time.Time // first poll
	LastPoll    time.Time
}

// ClientID is the subscription's client id in the naming core's
// subscriber list: "udp:ip:port". (Nacos names it "ip:port#true", which is
// the naming core's beat-kept publisher id and must not be shared.)
func (s *Subscriber) ClientID() string { return "udp:" + s.Addr.String() }

// Reasons a poll's push endpoint is not subscribed (metric label values).
const (
	ReasonPort  = "port"  // udpPort missing a number, 0, or out of 1–65535
	ReasonAgent = "agent" // not a client Nacos pushes to (UdpPushService.canEnablePush)
	ReasonLimit = "limit" // the source address holds MaxPerIP subscriptions
	ReasonFull  = "full"  // the node holds MaxSubscribers subscriptions
)

// target is the pure admission check of a poll: the push address, or why
// there is none, and whether the poll's clientIP was not its source (then
// ignored).
func target(q Query) (addr netip.AddrPort, reason string, clientIPIgnored bool) {
	port, err := strconv.Atoi(q.UDPPort)
	if err != nil || port < 1 || port > 65535 {
		return netip.AddrPort{}, ReasonPort, false
	}
	if !CanPush(q.Agent) {
		return netip.AddrPort{}, ReasonAgent, false
	}
	src := q.Source.Unmap()
	if q.ClientIP != "" {
		ip, err := netip.ParseAddr(q.ClientIP)
		clientIPIgnored = err != nil || ip.Unmap() != src
	}
	return netip.AddrPortFrom(src, uint16(port)), "", clientIPIgnored
}

type subKey struct {
	addr netip.AddrPort
	svc  naming.ServiceKey
}

// table holds the subscriptions. It is plain data: the Service's mutex
// guards it and the caller passes the time in.
type table struct {
	subs  map[subKey]*Subscriber
	bySvc map[naming.ServiceKey]map[netip.AddrPort]*Subscriber
	perIP map[netip.Addr]int
}

func newTable() *table {
	return &table{
		subs:  map[subKey]*Subscriber{},
		bySvc: map[naming.ServiceKey]map[netip.AddrPort]*Subscriber{},
		perIP: map[netip.Addr]int{},
	}
}

// touch records a poll for addr: a known subscription is refreshed (and
// takes the poll's filters), a new one is added within the bounds. added
// is true for a new subscription; reason is set when none was recorded.
func (t *table) touch(q Query, addr netip.AddrPort, now time.Time, maxPerIP, maxAll int) (s *Subscriber, added bool, reason string) {
	k := subKey{addr, q.Key}
	if s = t.subs[k]; s != nil {
		s.LastPoll, s.Clusters, s.HealthyOnly = now, q.Clusters, q.HealthyOnly
		s.ClientIP, s.Agent, s.App = q.ClientIP, q.Agent, q.App
		return s, false, ""
	}
	switch {
	case t.perIP[addr.Addr()] >= maxPerIP:
		return nil, false, ReasonLimit
	case len(t.subs) >= maxAll:
		return nil, false, ReasonFull
	}
	s = &Subscriber{Addr: addr, Key: q.Key, Clusters: q.Clusters, HealthyOnly: q.HealthyOnly,
		ClientIP: q.ClientIP, Agent: q.Agent, App: q.App, Since: now, LastPoll: now}
	t.subs[k] = s
	m := t.bySvc[q.Key]
	if m == nil {
		m = map[netip.AddrPort]*Subscriber{}
		t.bySvc[q.Key] = m
	}
	m[addr] = s
	t.perIP[addr.Addr()]++
	return s, true, ""
}

func (t *table) remove(k subKey) {
	if t.subs[k] == nil {
		return
	}
	delete(t.subs, k)
	if m := t.bySvc[k.svc]; m != nil {
		delete(m, k.addr)
		if len(m) == 0 {
			delete(t.bySvc, k.svc)
		}
	}
	if t.perIP[k.addr.Addr()]--; t.perIP[k.addr.Addr()] <= 0 {
		delete(t.perIP, k.addr.Addr())
	}
}

// expired lists the subscriptions not polled for longer than ttl at now.
func (t *table) expired(now time.Time, ttl time.Duration) []*Subscriber {
	var out []*Subscriber
	for _, s := range t.subs {
		if now.Sub(s.LastPoll) > ttl {
			out = append(out, s)
		}
	}
	return out
}

// of returns copies of key's subscriptions, sorted by address.
func (t *table) of(key naming.ServiceKey) []Subscriber {
	m := t.bySvc[key]
	out := make([]Subscriber, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Compare(out[j].Addr) < 0 })
	return out
}

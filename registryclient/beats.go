package registryclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// beatKey names one beat-kept instance.
type beatKey struct {
	svc  ServiceRef
	addr Addr
}

// beatEntry is one beat-kept instance. All fields are guarded by
// beatState.mu.
type beatEntry struct {
	key     beatKey
	full    wire.BeatItem // the whole instance: registers an unknown one (a plain beat is addr in a group)
	addr    string        // the instance's IP and port as a BeatGroup address: the beat-kept client
	slot    int
	slotIdx int
	needReg bool // the next beat carries the full instance with registerIfUnknown
	queued  bool // in the ring
	removed bool
}

// beatState is the beat schedule, the bounded buffer of due beats and the
// redirect cache. It is plain data driven by the beat loop (advance, drain,
// apply, failed) and by Keep/Release/Forget; every method is called with
// mu held.
//
// The redirect cache is keyed by beat-kept client, the instance's
// "ip:port" (entry.addr): a registry cluster makes one member responsible
// for each ip:port (Distro's tag, whatever the service, cluster or
// namespace), so one service's instances may be beaten on several nodes.
// An address has an entry only while some kept instance has that address.
type beatState struct {
	mu    sync.Mutex
	bySvc map[ServiceRef]map[Addr]*beatEntry
	slots [][]*beatEntry
	tick  int
	// ring is the bounded buffer of due beats, oldest at head.
	ring    []*beatEntry
	head, n int
	// redirect caches beat-kept client ("ip:port") → responsible node
	// ("host:port"); no entry means the main connection's server.
	redirect map[string]string
	// clients counts the kept instances of each beat-kept client address;
	// an address's redirect entry goes with its last instance.
	clients map[string]int
	// light marks services beaten with light beats only (LightOnly): no
	// full item, no registerIfUnknown, an unknown answer not retried.
	light    map[ServiceRef]bool
	maxBatch int
	// inflight marks nodes with a batch being sent.
	inflight map[string]bool

	droppedUnlogged int
	lastDropLog     time.Time
}

func (b *beatState) init(cfg Config) {
	b.bySvc = map[ServiceRef]map[Addr]*beatEntry{}
	n := int((cfg.BeatPeriod + cfg.BeatInterval - 1) / cfg.BeatInterval)
	if n < 1 {
		n = 1
	}
	b.slots = make([][]*beatEntry, n)
	b.ring = make([]*beatEntry, cfg.BeatBuffer)
	b.redirect = map[string]string{}
	b.clients = map[string]int{}
	b.light = map[ServiceRef]bool{}
	b.inflight = map[string]bool{}
	b.maxBatch = cfg.MaxBatchBeats
}

// size is the number of beat-kept instances.
func (b *beatState) size() int {
	n := 0
	for _, s := range b.slots {
		n += len(s)
	}
	return n
}

func (b *beatState) addToSlot(e *beatEntry) {
	best := 0
	for i := range b.slots {
		if len(b.slots[i]) < len(b.slots[best]) {
			best = i
		}
	}
	e.slot, e.slotIdx = best, len(b.slots[best])
	b.slots[best] = append(b.slots[best], e)
}

func (b *beatState) removeEntry(e *beatEntry) {
	s := b.slots[e.slot]
	last := s[len(s)-1]
	s[e.slotIdx] = last
	last.slotIdx = e.slotIdx
	s[len(s)-1] = nil
	b.slots[e.slot] = s[:len(s)-1]
	e.removed = true
	if b.clients[e.addr]--; b.clients[e.addr] <= 0 {
		delete(b.clients, e.addr)
		delete(b.redirect, e.addr)
	}
	if m := b.bySvc[e.key.svc]; m != nil {
		delete(m, e.key.addr)
		if len(m) == 0 {
			delete(b.bySvc, e.key.svc)
		}
	}
}

// keep makes insts the beat-kept set of svc; it returns the entries that
// are new or changed (to be registered at once).
func (b *beatState) keep(svc ServiceRef, insts []Instance) (fresh []*beatEntry) {
	cur := b.bySvc[svc]
	want := make(map[Addr]Instance, len(insts))
	for _, i := range insts {
		want[i.Addr()] = i
	}
	for a, e := range cur {
		if _, ok := want[a]; !ok {
			b.removeEntry(e)
		}
	}
	if len(want) > 0 && b.bySvc[svc] == nil {
		b.bySvc[svc] = make(map[Addr]*beatEntry, len(want))
	}
	for a, i := range want {
		full := wire.BeatItem{Namespace: svc.Namespace, GroupName: svc.Group, ServiceName: svc.Name, Instance: i.wire(true)}
		if e, ok := b.bySvc[svc][a]; ok {
			if instEqual(e.full.Instance, full.Instance) {
				// Unchanged: hold the caller's copy from now on, so that an
				// equal but older copy of the metadata is not kept alive
				// beside the one the caller holds.
				e.full.Instance.Metadata = full.Instance.Metadata
				continue
			}
			e.full, e.needReg = full, true
			e.addr = wire.BeatAddr(full.Instance.IP, full.Instance.Port)
			fresh = append(fresh, e)
			continue
		}
		e := &beatEntry{key: beatKey{svc, a}, full: full, needReg: true}
		e.addr = wire.BeatAddr(full.Instance.IP, full.Instance.Port)
		b.clients[e.addr]++
		b.bySvc[svc][a] = e
		b.addToSlot(e)
		fresh = append(fresh, e)
	}
	return fresh
}

func instEqual(a, b wire.Instance) bool {
	return a.InstanceID == b.InstanceID && a.IP == b.IP && a.Port == b.Port && a.Weight == b.Weight &&
		a.Healthy == b.Healthy && a.Enabled == b.Enabled && a.ClusterName == b.ClusterName && maps.Equal(a.Metadata, b.Metadata)
}

// release stops beating addrs of svc (all when none given) and returns the
// removed entries.
func (b *beatState) release(svc ServiceRef, addrs []Addr) []*beatEntry {
	var out []*beatEntry
	cur := b.bySvc[svc]
	if len(addrs) == 0 {
		for _, e := range cur {
			out = append(out, e)
		}
	} else {
		for _, a := range addrs {
			if e, ok := cur[a]; ok {
				out = append(out, e)
			}
		}
	}
	for _, e := range out {
		b.removeEntry(e)
	}
	return out
}

// enqueue puts e's beat in the ring; when full the oldest is dropped.
// It returns the number dropped (0 or 1).
func (b *beatState) enqueue(e *beatEntry) int {
	if e.queued || e.removed {
		return 0
	}
	dropped := 0
	if b.n == len(b.ring) {
		old := b.ring[b.head]
		old.queued = false
		b.ring[b.head] = nil
		b.head = (b.head + 1) % len(b.ring)
		b.n--
		dropped = 1
	}
	b.ring[(b.head+b.n)%len(b.ring)] = e
	b.n++
	e.queued = true
	return dropped
}

// advance moves to the next interval and enqueues the beats due in it;
// it returns how many older beats were dropped to make room.
func (b *beatState) advance() int {
	slot := b.tick % len(b.slots)
	b.tick++
	dropped := 0
	for _, e := range b.slots[slot] {
		dropped += b.enqueue(e)
	}
	b.droppedUnlogged += dropped
	return dropped
}

// beatBatch is one FerryBatchBeatRequest to one node ("" = the main
// connection's server).
type beatBatch struct {
	node    string
	entries []*beatEntry
	req     *wire.FerryBatchBeatRequest
}

// drain empties the ring into batches, one per node (split at maxBatch).
func (b *beatState) drain() []beatBatch {
	es := make([]*beatEntry, 0, b.n)
	for ; b.n > 0; b.n-- {
		e := b.ring[b.head]
		b.ring[b.head] = nil
		b.head = (b.head + 1) % len(b.ring)
		e.queued = false
		if !e.removed {
			es = append(es, e)
		}
	}
	b.head = 0
	return b.route(es)
}

// route builds the batches of es, one per node (split at maxBatch): each
// entry goes to the node cached for its address, or to the main
// connection's server ("") when none is; nodes in order of first
// appearance.
func (b *beatState) route(es []*beatEntry) []beatBatch {
	byNode := map[string][]*beatEntry{}
	var order []string
	for _, e := range es {
		node := b.redirect[e.addr]
		if _, ok := byNode[node]; !ok {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], e)
	}
	var out []beatBatch
	for _, node := range order {
		out = append(out, b.batches(node, byNode[node])...)
	}
	return out
}

// redirected records node's redirect answer for the beat-kept client at
// addr: to another node it is cached (for addr alone), to node itself or
// to no one the entry is cleared (back to the main server). An address no
// kept instance has is not cached, so the cache stays bounded by the
// kept set.
func (b *beatState) redirected(addr, node, to string) {
	if to == "" || to == node || b.clients[addr] == 0 {
		delete(b.redirect, addr)
		return
	}
	b.redirect[addr] = to
}

// dropNode clears every redirect entry naming node (it failed).
func (b *beatState) dropNode(node string) {
	if node == "" {
		return
	}
	for a, n := range b.redirect {
		if n == node {
			delete(b.redirect, a)
		}
	}
}

// batches builds the requests of one node's entries: full items (with
// registerIfUnknown on the request) for instances to be registered, and
// the rest as compact groups, one per service and cluster. Each batch's
// entries are in answer order (wire.FerryBatchBeatRequest.Items): the full
// items, then the group addresses group by group.
func (b *beatState) batches(node string, es []*beatEntry) []beatBatch {
	var out []beatBatch
	for len(es) > 0 {
		n := min(len(es), b.maxBatch)
		chunk := es[:n:n]
		es = es[n:]
		req := &wire.FerryBatchBeatRequest{Beats: []wire.BeatItem{}}
		ordered := make([]*beatEntry, 0, n)
		var light []*beatEntry
		for _, e := range chunk {
			if e.needReg && !b.light[e.key.svc] {
				req.Beats = append(req.Beats, e.full)
				req.RegisterIfUnknown = true
				ordered = append(ordered, e)
			} else {
				light = append(light, e)
			}
		}
		var grouped []*beatEntry
		req.Groups, grouped = groupAddrs(light, func(e *beatEntry) (ServiceRef, string, string) {
			return e.key.svc, e.full.Instance.ClusterName, e.addr
		})
		ordered = append(ordered, grouped...)
		out = append(out, beatBatch{node: node, entries: ordered, req: req})
	}
	return out
}

// beatOutcome counts what apply saw.
type beatOutcome struct {
	ok, unknown, redirect, invalid, dropped int
	lightUnknown                            int // unknown answers to light-only beats
	invalidMsg                              string
}

// apply handles a node's per-item answers. A redirect updates the entry of
// that item's address only.
func (b *beatState) apply(node string, es []*beatEntry, rs []wire.BeatResult) beatOutcome {
	var o beatOutcome
	for i, e := range es {
		r := rs[i]
		switch r.Status {
		case wire.BeatOK:
			o.ok++
			e.needReg = false
		case wire.BeatUnknown:
			o.unknown++
			e.needReg = true
			if b.light[e.key.svc] {
				// Not ours to bring back now: registered again (at its
				// next beat) only once LightOnly is lifted.
				o.lightUnknown++
				continue
			}
			o.dropped += b.enqueue(e)
		case wire.BeatRedirect:
			// Resent next interval, not now: one hop per interval at
			// most, so a node answering from a stale member view cannot
			// bounce a beat around within one.
			o.redirect++
			b.redirected(e.addr, node, r.Redirect)
			o.dropped += b.enqueue(e)
		default:
			o.invalid++
			e.needReg = false
			o.invalidMsg = r.Message
		}
	}
	b.droppedUnlogged += o.dropped
	return o
}

// failed handles a failed request to node: every redirect entry naming
// node is cleared (those addresses go back to the main server) and the
// beats go back in the buffer.
func (b *beatState) failed(node string, es []*beatEntry) int {
	b.dropNode(node)
	dropped := 0
	for _, e := range es {
		dropped += b.enqueue(e)
	}
	b.droppedUnlogged += dropped
	return dropped
}

// ---- the client side ----

// ShareKept gives each of hosts (svc's instances as a query answered them)
// whose metadata equals that of an instance Keep is beating at the same
// ip:port the kept map instead: a caller that lists what it keeps (the
// sync worker's reconcile) then holds one copy of each instance's metadata,
// not the kept one and an equal listed one. The shared maps must not be
// modified. It returns how many were shared.
func (c *Client) ShareKept(svc ServiceRef, hosts []wire.Instance) int {
	svc, err := c.ref(svc)
	if err != nil {
		return 0
	}
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	kept := c.beats.bySvc[svc]
	if len(kept) == 0 {
		return 0
	}
	n := 0
	for i := range hosts {
		h := &hosts[i]
		e, ok := kept[Addr{IP: h.IP, Port: h.Port}]
		if !ok {
			e, ok = kept[Addr{IP: h.IP, Port: h.Port, Cluster: h.ClusterName}]
		}
		if ok && maps.Equal(e.full.Instance.Metadata, h.Metadata) {
			h.Metadata = e.full.Instance.Metadata
			n++
		}
	}
	return n
}

// Keep makes insts the full set of beat-kept instances of svc for this
// client (idempotent; it replaces the previous set). New instances are
// registered at once by a batch beat with registerIfUnknown; the rest are
// beaten every BeatPeriod by merged beats. An instance whose fields changed
// since the last Keep is sent in full again in the same call: the server
// replaces a known instance from a full item with registerIfUnknown, so
// subscribers see one change and never a gap.
// Instances missing from insts stop being beaten without a deregistration
// (they expire on the server unless someone else beats them); use Forget to
// remove them at once. Against a server without merged beats (a real
// Nacos) Keep returns ErrNoBatchBeat: use BatchRegister instead. An error
// of the immediate registration is returned, but the set is kept and
// retried by the beat loop.
func (c *Client) Keep(ctx context.Context, svc ServiceRef, insts []Instance) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	for _, i := range insts {
		if err := i.validate(); err != nil {
			return err
		}
	}
	if c.state.Load() != 1 {
		return ErrClosed
	}
	if c.batchBeat.Load() == capUnsupported {
		return c.noBatchBeat()
	}
	c.beats.mu.Lock()
	fresh := c.beats.keep(svc, insts)
	var batches []beatBatch
	if len(fresh) > 0 {
		for _, e := range fresh {
			e.needReg = true
		}
		batches = c.beats.route(fresh)
	}
	c.beats.mu.Unlock()
	var errs []error
	for _, bb := range batches {
		errs = append(errs, c.sendBatch(ctx, bb))
	}
	return errors.Join(errs...)
}

func (c *Client) noBatchBeat() error {
	return fmt.Errorf("%w (server %s)", ErrNoBatchBeat, c.CurrentServer())
}

// Release stops beating addrs of svc (all of svc when none given) without
// deregistering them: another client (the new owner of a lease) keeps them
// alive.
func (c *Client) Release(svc ServiceRef, addrs ...Addr) {
	svc, err := c.ref(svc)
	if err != nil {
		return
	}
	c.beats.mu.Lock()
	c.beats.release(svc, addrs)
	if len(addrs) == 0 || c.beats.bySvc[svc] == nil {
		delete(c.beats.light, svc)
	}
	c.beats.mu.Unlock()
}

// LightOnly switches svc to light beats only (on) or back (off). While on,
// the kept instances of svc are beaten by address only: nothing is
// registered (no full item, no registerIfUnknown, Keep's new instances
// included), and an instance the server answers "unknown" for (someone
// removed it) is not beaten again until LightOnly is lifted. A sync worker
// uses it while it cannot prove it owns svc (its store is unreachable):
// it keeps alive what it registered and can resurrect nothing. Turning it
// off queues the instances that need a registration for the next beat.
// Local only; it does not block on I/O.
func (c *Client) LightOnly(svc ServiceRef, on bool) {
	svc, err := c.ref(svc)
	if err != nil {
		return
	}
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	if on {
		if c.beats.bySvc[svc] != nil {
			c.beats.light[svc] = true
		}
		return
	}
	if !c.beats.light[svc] {
		return
	}
	delete(c.beats.light, svc)
	dropped := 0
	for _, e := range c.beats.bySvc[svc] {
		if e.needReg {
			dropped += c.beats.enqueue(e)
		}
	}
	c.beats.droppedUnlogged += dropped
}

// KeptCount is the number of beat-kept instances.
func (c *Client) KeptCount() int {
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	return c.beats.size()
}

// Redirect returns the cached responsible node of the beat-kept client at
// ip:port (Distro's unit: every kept instance with that address, of any
// service), if any.
func (c *Client) Redirect(ip string, port int) (string, bool) {
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	n, ok := c.beats.redirect[wire.BeatAddr(ip, port)]
	return n, ok
}

func (c *Client) beatLoop() {
	t := time.NewTicker(c.cfg.BeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.beatRound(c.ctx, false)
			c.nodes.closeIdle(time.Now().Add(-nodeIdleTimeout))
		}
	}
}

// nodeIdleTimeout closes a redirect node's connection unused this long.
const nodeIdleTimeout = 2 * time.Minute

// beatOnce runs one interval and waits for its requests (tests, benchmarks).
func (c *Client) beatOnce(ctx context.Context) { c.beatRound(ctx, true) }

// beatRound runs one interval: enqueue the due beats and send one batch per
// node, nodes in parallel. A node whose previous batch is still in flight
// (a slow or dead node) gets its beats back in the buffer, so that it never
// delays the other nodes' beats. With wait, it returns when the sends are
// done.
func (c *Client) beatRound(ctx context.Context, wait bool) {
	if c.batchBeat.Load() == capUnsupported {
		return
	}
	c.beats.mu.Lock()
	dropped := c.beats.advance()
	batches := c.beats.drain()
	byNode := map[string][]beatBatch{}
	for _, bb := range batches {
		if c.beats.inflight[bb.node] {
			dropped += c.beats.failed("", bb.entries)
			continue
		}
		byNode[bb.node] = append(byNode[bb.node], bb)
	}
	for node := range byNode {
		c.beats.inflight[node] = true
	}
	c.beats.mu.Unlock()
	c.m.drops.Add(float64(dropped))
	c.logDrops()
	var wg sync.WaitGroup
	for node, bbs := range byNode {
		wg.Add(1)
		c.goTracked(func() {
			defer wg.Done()
			for _, bb := range bbs {
				_ = c.sendBatch(ctx, bb)
			}
			c.beats.mu.Lock()
			delete(c.beats.inflight, node)
			c.beats.mu.Unlock()
		})
	}
	if wait {
		wg.Wait()
	}
}

func (c *Client) logDrops() {
	c.beats.mu.Lock()
	n := c.beats.droppedUnlogged
	if n == 0 || time.Since(c.beats.lastDropLog) < time.Minute {
		c.beats.mu.Unlock()
		return
	}
	c.beats.droppedUnlogged = 0
	c.beats.lastDropLog = time.Now()
	c.beats.mu.Unlock()
	c.log.Warn("beat buffer full: oldest beats dropped", "dropped", n, "buffer", c.cfg.BeatBuffer)
}

// sendBatch sends one batch and applies the answer.
func (c *Client) sendBatch(ctx context.Context, bb beatBatch) error {
	s, err := c.nodeSession(ctx, bb.node)
	if err == nil {
		var resp wire.Response
		resp, err = c.callOn(ctx, s, bb.req)
		if err == nil {
			var all []wire.BeatResult
			r, ok := resp.(*wire.FerryBatchBeatResponse)
			if ok {
				all, err = r.All(bb.req)
			}
			if !ok || err != nil || len(all) != len(bb.entries) {
				err = fmt.Errorf("%w: FerryBatchBeatRequest at %s: answer %s does not match %d beats (%v)", ErrProtocol, s.srv.Addr(), resp.TypeName(), len(bb.entries), err)
			} else {
				c.m.beatsSent.Add(float64(len(bb.entries)))
				c.m.beatBatch.Observe(float64(len(bb.entries)))
				c.beats.mu.Lock()
				o := c.beats.apply(bb.node, bb.entries, all)
				c.beats.mu.Unlock()
				c.m.beatResults.WithLabelValues(wire.BeatOK).Add(float64(o.ok))
				c.m.beatResults.WithLabelValues(wire.BeatUnknown).Add(float64(o.unknown))
				c.m.lightUnknown.Add(float64(o.lightUnknown))
				c.m.beatResults.WithLabelValues(wire.BeatRedirect).Add(float64(o.redirect))
				c.m.beatResults.WithLabelValues(wire.BeatInvalid).Add(float64(o.invalid))
				c.m.redirects.Add(float64(o.redirect))
				c.m.drops.Add(float64(o.dropped))
				if o.invalid > 0 {
					c.log.Warn("beats refused as invalid", "server", s.srv.Addr(), "count", o.invalid, "last", o.invalidMsg)
				}
				return nil
			}
		}
		var se *ServerError
		if errors.As(err, &se) && se.Code == wire.CodeNoHandler {
			if c.batchBeat.Swap(capUnsupported) != capUnsupported {
				c.log.Error("server has no batch beat handler: merged beats off; use BatchRegister", "server", s.srv.Addr())
			}
			return fmt.Errorf("%w: %w", ErrNoBatchBeat, err)
		}
		if isConnErr(err) {
			if bb.node == "" {
				c.kickSession(s)
			} else {
				s.close(err)
			}
		}
	}
	c.m.beatResults.WithLabelValues("error").Add(float64(len(bb.entries)))
	c.beats.mu.Lock()
	dropped := c.beats.failed(bb.node, bb.entries)
	c.beats.mu.Unlock()
	c.m.drops.Add(float64(dropped))
	return err
}

// ---- node connections (for beats to nodes other than the main server) ----

type nodePool struct {
	mu     sync.Mutex
	closed bool
	m      map[string]*session
	used   map[string]time.Time
}

func (p *nodePool) init() { p.m, p.used = map[string]*session{}, map[string]time.Time{} }

// closeIdle closes the connections last used before cutoff.
func (p *nodePool) closeIdle(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.m {
		if p.used[k].Before(cutoff) || s.closed() {
			s.close(ErrClosed)
			delete(p.m, k)
			delete(p.used, k)
		}
	}
}

func (p *nodePool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, s := range p.m {
		s.close(ErrClosed)
		delete(p.m, k)
	}
}

// nodeSession returns a connection to node ("" = the main one).
func (c *Client) nodeSession(ctx context.Context, node string) (*session, error) {
	if node == "" {
		wctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
		return c.waitSession(wctx, nil)
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if cur != nil && cur.srv.Addr() == node && !cur.closed() {
		return cur, nil
	}
	c.nodes.mu.Lock()
	s, ok := c.nodes.m[node]
	c.nodes.used[node] = time.Now()
	c.nodes.mu.Unlock()
	if ok && !s.closed() {
		return s, nil
	}
	srv, err := ParseServer(node)
	if err != nil {
		return nil, err
	}
	s, err = dialSession(ctx, srv, &c.cfg, c.codec, c, c.log, &c.wg)
	if err != nil {
		return nil, err
	}
	c.nodes.mu.Lock()
	defer c.nodes.mu.Unlock()
	if c.nodes.closed {
		s.close(ErrClosed)
		return nil, ErrClosed
	}
	if old, ok := c.nodes.m[node]; ok && old != s {
		old.close(ErrClosed)
	}
	c.nodes.m[node] = s
	c.nodes.used[node] = time.Now()
	return s, nil
}

// httpDeregister deletes a beat-kept instance through the HTTP open API
// (DELETE /nacos/v1/ns/instance, ephemeral=true), on node first (when
// known) and then on the servers of the list until one answers 200.
func (c *Client) httpDeregister(ctx context.Context, node string, svc ServiceRef, a Addr) error {
	var targets []string
	if node != "" {
		targets = append(targets, node)
	}
	if cur := c.CurrentServer(); cur != "" && cur != node {
		targets = append(targets, cur)
	}
	for _, s := range c.Servers() {
		if s.Addr() != node && s.Addr() != c.CurrentServer() {
			targets = append(targets, s.Addr())
		}
	}
	q := url.Values{}
	q.Set("namespaceId", svc.Namespace)
	q.Set("groupName", svc.Group)
	q.Set("serviceName", svc.Group+"@@"+svc.Name)
	q.Set("ip", a.IP)
	q.Set("port", strconv.Itoa(a.Port))
	if a.Cluster != "" {
		q.Set("clusterName", a.Cluster)
	}
	q.Set("ephemeral", "true")
	var errs []error
	for _, t := range targets {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		start := time.Now()
		resp, err := c.httpDo(rctx, http.MethodDelete, t, "/nacos/v1/ns/instance", q) // auth.go: token, 403 re-login
		if errors.Is(err, ErrInvalidInput) {
			cancel()
			return err
		}
		c.m.latency.WithLabelValues("HTTPDeregister").Observe(time.Since(start).Seconds())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				c.m.requests.WithLabelValues("HTTPDeregister", "ok").Inc()
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		cancel()
		c.m.requests.WithLabelValues("HTTPDeregister", "error").Inc()
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: deregister %s %s:%d: %w", ErrNoServer, svc, a.IP, a.Port, errors.Join(errs...))
}

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
	full    wire.BeatItem // the whole instance: registers an unknown one
	light   wire.BeatItem // address only: a plain beat
	addr    string        // light.IP and light.Port as a BeatGroup address
	slot    int
	slotIdx int
	needReg bool // the next beat carries the full instance with registerIfUnknown
	queued  bool // in the ring
	removed bool
}

// beatState is the beat schedule, the bounded buffer of due beats and the
// redirect cache. It is plain data driven by the beat loop (advance, drain,
// apply, failed) and by Keep/Release; every method is called with mu held.
type beatState struct {
	mu    sync.Mutex
	bySvc map[ServiceRef]map[Addr]*beatEntry
	slots [][]*beatEntry
	tick  int
	// ring is the bounded buffer of due beats, oldest at head.
	ring    []*beatEntry
	head, n int
	// redirect caches service → responsible node ("host:port").
	redirect map[ServiceRef]string
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
	b.redirect = map[ServiceRef]string{}
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
				continue
			}
			e.full, e.light, e.needReg = full, lightItem(full), true
			e.addr = wire.BeatAddr(e.light.IP, e.light.Port)
			fresh = append(fresh, e)
			continue
		}
		e := &beatEntry{key: beatKey{svc, a}, full: full, light: lightItem(full), needReg: true}
		e.addr = wire.BeatAddr(e.light.IP, e.light.Port)
		b.bySvc[svc][a] = e
		b.addToSlot(e)
		fresh = append(fresh, e)
	}
	return fresh
}

// lightItem names the instance by address only (wire: Instance omitted).
func lightItem(full wire.BeatItem) wire.BeatItem {
	return wire.BeatItem{Namespace: full.Namespace, GroupName: full.GroupName, ServiceName: full.ServiceName,
		IP: full.Instance.IP, Port: full.Instance.Port, Cluster: full.Instance.ClusterName}
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
	byNode := map[string][]*beatEntry{}
	var order []string
	for ; b.n > 0; b.n-- {
		e := b.ring[b.head]
		b.ring[b.head] = nil
		b.head = (b.head + 1) % len(b.ring)
		e.queued = false
		if e.removed {
			continue
		}
		node := b.redirect[e.key.svc]
		if _, ok := byNode[node]; !ok {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], e)
	}
	b.head = 0
	var out []beatBatch
	for _, node := range order {
		out = append(out, b.batches(node, byNode[node])...)
	}
	return out
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
			if e.needReg {
				req.Beats = append(req.Beats, e.full)
				req.RegisterIfUnknown = true
				ordered = append(ordered, e)
			} else {
				light = append(light, e)
			}
		}
		var grouped []*beatEntry
		req.Groups, grouped = groupAddrs(light, func(e *beatEntry) (ServiceRef, string, string) {
			return e.key.svc, e.light.Cluster, e.addr
		})
		ordered = append(ordered, grouped...)
		out = append(out, beatBatch{node: node, entries: ordered, req: req})
	}
	return out
}

// beatOutcome counts what apply saw.
type beatOutcome struct {
	ok, unknown, redirect, invalid, dropped int
	invalidMsg                              string
}

// apply handles a node's per-item answers.
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
			o.dropped += b.enqueue(e)
		case wire.BeatRedirect:
			o.redirect++
			if r.Redirect == "" || r.Redirect == node {
				delete(b.redirect, e.key.svc)
			} else {
				b.redirect[e.key.svc] = r.Redirect
			}
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

// failed handles a failed request to node: its redirect entries are
// cleared and the beats go back in the buffer.
func (b *beatState) failed(node string, es []*beatEntry) int {
	if node != "" {
		for svc, n := range b.redirect {
			if n == node {
				delete(b.redirect, svc)
			}
		}
	}
	dropped := 0
	for _, e := range es {
		dropped += b.enqueue(e)
	}
	b.droppedUnlogged += dropped
	return dropped
}

// ---- the client side ----

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
		batches = c.beats.batches(c.beats.redirect[svc], fresh)
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
	c.beats.mu.Unlock()
}

// KeptCount is the number of beat-kept instances.
func (c *Client) KeptCount() int {
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	return c.beats.size()
}

// Redirect returns the cached responsible node of svc, if any.
func (c *Client) Redirect(svc ServiceRef) (string, bool) {
	svc, err := c.ref(svc)
	if err != nil {
		return "", false
	}
	c.beats.mu.Lock()
	defer c.beats.mu.Unlock()
	n, ok := c.beats.redirect[svc]
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
		req, err := http.NewRequestWithContext(rctx, http.MethodDelete, "http://"+t+"/nacos/v1/ns/instance?"+q.Encode(), nil)
		if err != nil {
			cancel()
			return fmt.Errorf("%w: %v", ErrInvalidInput, err)
		}
		start := time.Now()
		resp, err := c.http.Do(req)
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

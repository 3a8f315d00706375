package naming

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry is one node's naming state: per-client data (connection-bound
// clients and beat-kept clients, the unit Distro will replicate), the
// Raft-fed persistent data, and a per-service index with a lazily rebuilt
// materialised view that queries and pushes read.
//
// It has no timers: the owner calls Expire periodically. Every method is
// safe for concurrent use; mu guards all state below it. Change listeners
// (OnChange) are called after mu is released, on the mutating goroutine.
type Registry struct {
	cfg   Config
	clock func() time.Time

	lastRef atomic.Int64 // last lastRefTime handed out (ms)

	lmu             sync.Mutex
	listeners       []func(ServiceKey)
	clientListeners []func(clientID string)

	mu       sync.RWMutex
	clients  map[string]*client // by client id: connection id, or "ip:port#true" for beat-kept
	beaters  map[string]*client // the beat-kept subset of clients
	kept     []*entry           // every beat-kept entry, for the expiry scan
	services map[ServiceKey]*service
	subs     map[ServiceKey]map[string]string // service → subscriber client id → clusters
}

// client is Nacos' Client: what one publisher holds, one entry per service.
type client struct {
	id      string
	kind    ClientKind
	entries map[ServiceKey]*entry
	subs    map[ServiceKey]struct{} // connection clients' subscriptions
	// owner is the member responsible for the client ("" = this node);
	// only this node's beat-kept entries are in Registry.kept (expired
	// here). revision rises on every change of the entries made here, and
	// is the owner's revision for a client applied with ApplyClient.
	owner    string
	revision uint64
}

// entry is a client's registration in one service: one instance or a batch
// (connection clients), or one beat-kept instance with its beat state.
type entry struct {
	insts    []Instance
	lastBeat time.Time // beat-kept only
	// Beat-kept only: the instance's beat interval, unhealthy and delete
	// timeouts (preserved.* metadata or defaults), resolved once at
	// registration so beats and the expiry scan never parse metadata.
	interval, timeout, del time.Duration
	// client and key name the entry, keptIdx is its index+1 in
	// Registry.kept (0: not beat-kept), for the expiry scan.
	client  string
	key     ServiceKey
	keptIdx int
}

// service is the per-service index.
type service struct {
	key        ServiceKey
	ephemeral  bool
	publishers map[string]struct{} // client ids with an entry here
	persistent []Instance          // from Raft, health applied from health
	health     map[Addr]bool       // prober's verdict on persistent instances
	overrides  map[Addr]Override
	meta       *ServiceMeta
	emptySince time.Time // zero while it has instances

	// snap is what queries read; nil when stale (rebuilt by the next read).
	// invalidate is the one place that drops it.
	snap *Snapshot
}

// NewRegistry returns an empty registry reading time from clock (time.Now
// when nil). cfg must be valid: call cfg.Validate first; an invalid config
// is a programming error and panics.
func NewRegistry(cfg Config, clock func() time.Time) *Registry {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if clock == nil {
		clock = time.Now
	}
	return &Registry{
		cfg:      cfg,
		clock:    clock,
		clients:  map[string]*client{},
		beaters:  map[string]*client{},
		services: map[ServiceKey]*service{},
		subs:     map[ServiceKey]map[string]string{},
	}
}

// Config returns the registry's configuration.
func (r *Registry) Config() Config { return r.cfg }

// OnChange adds a listener told each service whose instances (or their
// visible state) changed. It is called after the change, outside the
// registry's lock, on the goroutine that made the change: it must not block
// (schedule work, do not do it).
func (r *Registry) OnChange(fn func(ServiceKey)) {
	r.lmu.Lock()
	r.listeners = append(r.listeners, fn)
	r.lmu.Unlock()
}

func (r *Registry) notify(keys []ServiceKey) {
	if len(keys) == 0 {
		return
	}
	r.lmu.Lock()
	ls := r.listeners
	r.lmu.Unlock()
	for _, k := range keys {
		for _, l := range ls {
			l(k)
		}
	}
}

// BeatClientID is the client id of beat-kept instances at ip:port, as Nacos'
// IpPortBasedClient ("ip:port#true").
func BeatClientID(ip string, port int) string {
	return ip + ":" + strconv.Itoa(port) + "#true"
}

// svcLocked returns the service, creating it with the given kind.
func (r *Registry) svcLocked(k ServiceKey, ephemeral bool) *service {
	s := r.services[k]
	if s == nil {
		s = &service{key: k, ephemeral: ephemeral, publishers: map[string]struct{}{}}
		r.services[k] = s
	}
	return s
}

// invalidate drops the service's snapshot (and so everything memoised on
// it). Every change to what rebuildLocked reads — the publishers and their
// entries, the persistent instances and their health, the overrides, the
// metadata — must call it (directly, or through dirty) under r.mu.
func (s *service) invalidate() { s.snap = nil }

func (s *service) dirty(now time.Time) {
	s.invalidate()
	if len(s.publishers) == 0 && len(s.persistent) == 0 {
		if s.emptySince.IsZero() {
			s.emptySince = now
		}
	} else {
		s.emptySince = time.Time{}
	}
}

// checkKindLocked refuses an instance of the other kind than the service.
func (r *Registry) checkKindLocked(k ServiceKey, ephemeral bool) error {
	if s := r.services[k]; s != nil && s.ephemeral != ephemeral {
		kind := "persistent"
		if s.ephemeral {
			kind = "ephemeral"
		}
		return fmt.Errorf("%w: service %s is %s", ErrEphemeralMismatch, k.Grouped(), kind)
	}
	return nil
}

// CheckKind reports ErrEphemeralMismatch when the service exists with the
// other kind. The Raft store calls it before proposing a persistent write.
func (r *Registry) CheckKind(key ServiceKey, ephemeral bool) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.checkKindLocked(k, ephemeral)
}

// Register sets connection client clientID's entry for key to insts (one
// instance, or a batch), replacing any previous entry: Nacos 2.x semantics.
// Re-sending the same registration is a no-op for subscribers.
func (r *Registry) Register(clientID string, key ServiceKey, insts ...Instance) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	if len(insts) == 0 {
		return fmt.Errorf("%w: no instance", ErrInvalidParam)
	}
	if len(insts) > r.cfg.MaxBatch {
		return fmt.Errorf("%w: batch of %d instances (max %d)", ErrLimitExceeded, len(insts), r.cfg.MaxBatch)
	}
	norm := make([]Instance, len(insts))
	for i, in := range insts {
		if norm[i], err = r.normalizeInstance(k, in, true); err != nil {
			return err
		}
	}
	now := r.clock()
	r.mu.Lock()
	if err := r.checkKindLocked(k, true); err != nil {
		r.mu.Unlock()
		return err
	}
	c := r.clients[clientID]
	if c == nil {
		c = &client{id: clientID, kind: ConnectionClient, entries: map[ServiceKey]*entry{}}
		r.clients[clientID] = c
	}
	changed := true
	if old := c.entries[k]; old != nil && sameInstances(old.insts, norm) {
		changed = false
	}
	c.entries[k] = &entry{insts: norm}
	s := r.svcLocked(k, true)
	s.publishers[clientID] = struct{}{}
	if changed {
		s.dirty(now)
		c.revision++
	}
	r.mu.Unlock()
	if changed {
		r.notify([]ServiceKey{k})
		r.notifyClients([]string{clientID})
	}
	return nil
}

// Deregister removes connection client clientID's entry for key, whatever
// instance fields the request carried (Nacos 2.x).
func (r *Registry) Deregister(clientID string, key ServiceKey) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	now := r.clock()
	r.mu.Lock()
	changed := r.removeEntryLocked(clientID, k, now)
	r.mu.Unlock()
	if changed {
		r.notify([]ServiceKey{k})
		r.notifyClients([]string{clientID})
	}
	return nil
}

func (r *Registry) removeEntryLocked(clientID string, k ServiceKey, now time.Time) bool {
	c := r.clients[clientID]
	if c == nil || c.entries[k] == nil {
		return false
	}
	r.unkeepLocked(c.entries[k])
	delete(c.entries, k)
	c.revision++
	if len(c.entries) == 0 && len(c.subs) == 0 {
		delete(r.clients, clientID)
		delete(r.beaters, clientID)
	}
	if s := r.services[k]; s != nil {
		delete(s.publishers, clientID)
		s.dirty(now)
	}
	return true
}

// keepLocked adds a beat-kept entry to r.kept (the expiry scan).
func (r *Registry) keepLocked(e *entry) {
	r.kept = append(r.kept, e)
	e.keptIdx = len(r.kept)
}

// unkeepLocked takes a beat-kept entry out of r.kept (swap with the last).
func (r *Registry) unkeepLocked(e *entry) {
	if e.keptIdx == 0 {
		return
	}
	i, last := e.keptIdx-1, r.kept[len(r.kept)-1]
	r.kept[i], last.keptIdx = last, i+1
	r.kept[len(r.kept)-1] = nil
	r.kept = r.kept[:len(r.kept)-1]
	e.keptIdx = 0
}

// DropClient forgets a connection client: its instances and subscriptions,
// at once (its connection closed or was found dead).
func (r *Registry) DropClient(clientID string) {
	now := r.clock()
	r.mu.Lock()
	c := r.clients[clientID]
	if c == nil {
		r.mu.Unlock()
		return
	}
	keys := make([]ServiceKey, 0, len(c.entries))
	for k, e := range c.entries {
		r.unkeepLocked(e)
		keys = append(keys, k)
		if s := r.services[k]; s != nil {
			delete(s.publishers, clientID)
			s.dirty(now)
		}
	}
	for k := range c.subs {
		r.unsubscribeLocked(clientID, k)
	}
	delete(r.clients, clientID)
	delete(r.beaters, clientID)
	r.mu.Unlock()
	sortKeys(keys)
	r.notify(keys)
	r.notifyClients([]string{clientID})
}

// Subscription is one subscriber of a service.
type Subscription struct {
	ClientID string
	Clusters string // as subscribed: comma list, "" = all
}

// Subscribe records clientID's interest in key (replacing its clusters).
// It is idempotent.
func (r *Registry) Subscribe(clientID string, key ServiceKey, clusters string) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[clientID]
	if c == nil {
		c = &client{id: clientID, kind: ConnectionClient, entries: map[ServiceKey]*entry{}}
		r.clients[clientID] = c
	}
	if c.subs == nil {
		c.subs = map[ServiceKey]struct{}{}
	}
	c.subs[k] = struct{}{}
	m := r.subs[k]
	if m == nil {
		m = map[string]string{}
		r.subs[k] = m
	}
	m[clientID] = clusters
	return nil
}

// Unsubscribe drops clientID's interest in key.
func (r *Registry) Unsubscribe(clientID string, key ServiceKey) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[clientID]; c != nil {
		delete(c.subs, k)
		if len(c.entries) == 0 && len(c.subs) == 0 {
			delete(r.clients, clientID)
		}
	}
	r.unsubscribeLocked(clientID, k)
	return nil
}

func (r *Registry) unsubscribeLocked(clientID string, k ServiceKey) {
	if m := r.subs[k]; m != nil {
		delete(m, clientID)
		if len(m) == 0 {
			delete(r.subs, k)
		}
	}
}

// Subscribers returns the subscribers of key, sorted by client id.
func (r *Registry) Subscribers(key ServiceKey) []Subscription {
	r.mu.RLock()
	m := r.subs[key]
	out := make([]Subscription, 0, len(m))
	for id, cl := range m {
		out = append(out, Subscription{ClientID: id, Clusters: cl})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// BeatStatus is the outcome of one beat.
type BeatStatus uint8

const (
	// BeatOK: a known beat-kept instance was refreshed.
	BeatOK BeatStatus = iota
	// BeatRegistered: unknown, registered from the beat's instance.
	BeatRegistered
	// BeatUnknown: unknown and not registered (Nacos 20404).
	BeatUnknown
)

// BeatResult answers a beat.
type BeatResult struct {
	Status BeatStatus
	// Interval is the beat interval the client should keep
	// (preserved.heart.beat.interval, or Config.BeatInterval).
	Interval time.Duration
}

// RegisterBeatKept registers (or replaces) a beat-kept instance: the HTTP v1
// register of an ephemeral instance. The instance counts as just beaten.
func (r *Registry) RegisterBeatKept(key ServiceKey, inst Instance) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	n, err := r.normalizeInstance(k, inst, true)
	if err != nil {
		return err
	}
	now := r.clock()
	r.mu.Lock()
	changed, err := r.putBeatKeptLocked(k, n, now)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if changed {
		r.notify([]ServiceKey{k})
		r.notifyClients([]string{BeatClientID(n.IP, n.Port)})
	}
	return nil
}

func (r *Registry) putBeatKeptLocked(k ServiceKey, n Instance, now time.Time) (bool, error) {
	if err := r.checkKindLocked(k, true); err != nil {
		return false, err
	}
	id := BeatClientID(n.IP, n.Port)
	c := r.clients[id]
	if c == nil {
		c = &client{id: id, kind: BeatKeptClient, entries: map[ServiceKey]*entry{}}
		r.clients[id] = c
		r.beaters[id] = c
	}
	old := c.entries[k]
	changed := old == nil || !sameInstances(old.insts, []Instance{n})
	e := &entry{insts: []Instance{n}, lastBeat: now, client: id, key: k}
	e.interval, e.timeout, e.del = r.beatTimes(n.Metadata)
	switch {
	case old != nil && old.keptIdx > 0:
		e.keptIdx = old.keptIdx
		r.kept[e.keptIdx-1] = e
	case c.owner == "": // another member expires its own clients
		r.keepLocked(e)
	}
	c.entries[k] = e
	s := r.svcLocked(k, true)
	s.publishers[id] = struct{}{}
	if changed {
		s.dirty(now)
		c.revision++
	}
	return changed, nil
}

// Beat refreshes a beat-kept instance (HTTP v1 beat, Ferry's batch beat).
// An unhealthy one turns healthy. An unknown one is registered from inst
// when registerIfUnknown, else BeatUnknown is returned. inst needs IP, Port
// and Cluster to find a known instance.
func (r *Registry) Beat(key ServiceKey, inst Instance, registerIfUnknown bool) (BeatResult, error) {
	res := r.BeatMany([]BeatRequest{{Key: key, Instance: inst}}, registerIfUnknown)
	return res[0].BeatResult, res[0].Err
}

// BeatRequest is one item of BeatMany.
type BeatRequest struct {
	Key      ServiceKey
	Instance Instance
}

// BeatOutcome answers one BeatRequest.
type BeatOutcome struct {
	BeatResult
	Err error
}

// BeatMany is Beat for many instances under one lock (Ferry's merged beat).
func (r *Registry) BeatMany(items []BeatRequest, registerIfUnknown bool) []BeatOutcome {
	out := make([]BeatOutcome, len(items))
	now := r.clock()
	var changed []ServiceKey
	var changedClients []string
	var keys keyRun
	var idBuf []byte
	r.mu.Lock()
	for i, it := range items {
		k, err := keys.normalize(r, it.Key)
		if err != nil {
			out[i].Err = err
			continue
		}
		if it.Instance.IP == "" || it.Instance.Port < 1 || it.Instance.Port > 65535 {
			out[i].Err = fmt.Errorf("%w: beat without a valid ip and port", ErrInvalidParam)
			continue
		}
		if out[i], idBuf = r.beatKnownLocked(k, Addr{IP: it.Instance.IP, Port: it.Instance.Port, Cluster: it.Instance.Cluster}, now, idBuf, &changed, &changedClients); out[i].Status == BeatOK {
			continue
		}
		if !registerIfUnknown {
			continue // BeatUnknown
		}
		n, err := r.normalizeInstance(k, it.Instance, true)
		if err != nil {
			out[i].Err = err
			continue
		}
		n.Healthy = true
		if _, err := r.putBeatKeptLocked(k, n, now); err != nil {
			out[i].Err = err
			continue
		}
		out[i].Status = BeatRegistered
		out[i].Interval, _, _ = r.beatTimes(n.Metadata)
		changed = append(changed, k)
		changedClients = append(changedClients, BeatClientID(n.IP, n.Port))
	}
	r.mu.Unlock()
	r.notify(dedupKeys(changed))
	r.notifyClients(changedClients)
	return out
}

// keyRun normalizes service keys that come in runs (batch items grouped by
// service): a key equal to the previous one is not normalized again.
type keyRun struct {
	in, k ServiceKey
	err   error
	ok    bool
}

func (c *keyRun) normalize(r *Registry, in ServiceKey) (ServiceKey, error) {
	if !c.ok || in != c.in {
		c.in, c.ok = in, true
		c.k, c.err = r.NormalizeKey(in)
	}
	return c.k, c.err
}

// beatKnownLocked refreshes the beat-kept instance at a in service k (a
// normalized key): BeatOK, reviving it when unhealthy (appending k to
// changed and the client to changedClients), or BeatUnknown when there is
// none. idBuf is scratch space for
// the client id (returned for reuse), so a beat allocates nothing.
func (r *Registry) beatKnownLocked(k ServiceKey, a Addr, now time.Time, idBuf []byte, changed *[]ServiceKey, changedClients *[]string) (BeatOutcome, []byte) {
	cluster := a.Cluster
	if cluster == "" {
		cluster = DefaultCluster
	}
	idBuf = append(idBuf[:0], a.IP...) // BeatClientID(a.IP, a.Port)
	idBuf = append(idBuf, ':')
	idBuf = strconv.AppendInt(idBuf, int64(a.Port), 10)
	idBuf = append(idBuf, "#true"...)
	var e *entry
	c := r.clients[string(idBuf)] // no allocation: map index by converted bytes
	if c != nil {
		if e = c.entries[k]; e != nil && e.insts[0].Cluster != cluster {
			e = nil
		}
	}
	if e == nil {
		return BeatOutcome{BeatResult: BeatResult{Status: BeatUnknown, Interval: r.cfg.BeatInterval}}, idBuf
	}
	e.lastBeat = now
	if !e.insts[0].Healthy {
		e.insts[0].Healthy = true
		if s := r.services[k]; s != nil {
			s.dirty(now)
		}
		c.revision++
		*changed = append(*changed, k)
		*changedClients = append(*changedClients, c.id)
	}
	return BeatOutcome{BeatResult: BeatResult{Status: BeatOK, Interval: e.interval}}, idBuf
}

// BeatGroup is a light beat of many instances of one service.
type BeatGroup struct {
	Key   ServiceKey
	Addrs []Addr
}

// BeatGroups refreshes known beat-kept instances, group by group, under one
// lock (Ferry's compact merged beat): one outcome per address, in order,
// BeatOK or BeatUnknown (light beats never register), or an error for an
// invalid key or address.
func (r *Registry) BeatGroups(groups []BeatGroup) []BeatOutcome {
	n := 0
	for _, g := range groups {
		n += len(g.Addrs)
	}
	out := make([]BeatOutcome, 0, n)
	now := r.clock()
	var changed []ServiceKey
	var changedClients []string
	var idBuf []byte
	r.mu.Lock()
	for _, g := range groups {
		k, err := r.NormalizeKey(g.Key)
		for _, a := range g.Addrs {
			var o BeatOutcome
			switch {
			case err != nil:
				o.Err = err
			case a.IP == "" || a.Port < 1 || a.Port > 65535:
				o.Err = fmt.Errorf("%w: beat without a valid ip and port", ErrInvalidParam)
			default:
				o, idBuf = r.beatKnownLocked(k, a, now, idBuf, &changed, &changedClients)
			}
			out = append(out, o)
		}
	}
	r.mu.Unlock()
	r.notify(dedupKeys(changed))
	r.notifyClients(changedClients)
	return out
}

// DeregisterBeatKept removes the beat-kept instance at a (cluster "" matches
// any).
func (r *Registry) DeregisterBeatKept(key ServiceKey, a Addr) error {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return err
	}
	now := r.clock()
	id := BeatClientID(a.IP, a.Port)
	r.mu.Lock()
	changed := false
	if c := r.clients[id]; c != nil {
		if e := c.entries[k]; e != nil && (a.Cluster == "" || e.insts[0].Cluster == a.Cluster) {
			changed = r.removeEntryLocked(id, k, now)
		}
	}
	r.mu.Unlock()
	if changed {
		r.notify([]ServiceKey{k})
		r.notifyClients([]string{id})
	}
	return nil
}

// DeregisterBeatKeptMany is DeregisterBeatKept for many instances under one
// lock (Ferry's bulk deregister): each item names a beat-kept instance by
// Key and Instance.IP, Port and Cluster ("" matches any cluster). Listeners
// are told once per changed service. errs[i] is non-nil for an item whose
// key, ip or port is invalid; an instance that is not there is no error
// (Nacos answers success).
func (r *Registry) DeregisterBeatKeptMany(items []BeatRequest) (errs []error) {
	errs = make([]error, len(items))
	now := r.clock()
	var changed []ServiceKey
	var changedClients []string
	var seen map[ServiceKey]struct{} // changed as a set
	var keys keyRun
	r.mu.Lock()
	for i, it := range items {
		k, err := keys.normalize(r, it.Key)
		if err != nil {
			errs[i] = err
			continue
		}
		a := it.Instance
		if a.IP == "" || a.Port < 1 || a.Port > 65535 {
			errs[i] = fmt.Errorf("%w: deregister without a valid ip and port", ErrInvalidParam)
			continue
		}
		if a.Cluster != "" && !validCluster(a.Cluster) {
			errs[i] = fmt.Errorf("%w: cluster %q", ErrInvalidParam, a.Cluster)
			continue
		}
		id := BeatClientID(a.IP, a.Port)
		if c := r.clients[id]; c != nil {
			if e := c.entries[k]; e != nil && (a.Cluster == "" || e.insts[0].Cluster == a.Cluster) &&
				r.removeEntryLocked(id, k, now) && appendClient(&changedClients, id) && (len(changed) == 0 || changed[len(changed)-1] != k) {
				if seen == nil {
					seen = map[ServiceKey]struct{}{}
				}
				if _, ok := seen[k]; !ok {
					seen[k] = struct{}{}
					changed = append(changed, k)
				}
			}
		}
	}
	r.mu.Unlock()
	r.notify(changed)
	r.notifyClients(changedClients)
	return errs
}

// appendClient appends id to ids and returns true (for use in a condition).
func appendClient(ids *[]string, id string) bool {
	*ids = append(*ids, id)
	return true
}

// Expire applies time to this node's beat-kept instances (unhealthy after
// their beat timeout, removed after their delete timeout, both strictly
// after; clients owned by another member are that member's to expire) and
// forgets services empty for longer than EmptyServiceTTL. The owner calls it
// periodically (every second is fine); late is allowed, early never.
func (r *Registry) Expire(now time.Time) {
	var changed []ServiceKey
	var changedClients []string
	r.mu.Lock()
	// Downwards: a removal swaps the last entry (already seen) into i.
	for i := len(r.kept) - 1; i >= 0; i-- {
		e := r.kept[i]
		idle := now.Sub(e.lastBeat)
		switch {
		case idle > e.del:
			r.removeEntryLocked(e.client, e.key, now)
			changed = append(changed, e.key)
			changedClients = append(changedClients, e.client)
		case idle > e.timeout && e.insts[0].Healthy:
			e.insts[0].Healthy = false
			if s := r.services[e.key]; s != nil {
				s.dirty(now)
			}
			if c := r.clients[e.client]; c != nil {
				c.revision++
			}
			changed = append(changed, e.key)
			changedClients = append(changedClients, e.client)
		}
	}
	for k, s := range r.services {
		if s.meta == nil && !s.emptySince.IsZero() && now.Sub(s.emptySince) > r.cfg.EmptyServiceTTL &&
			len(s.publishers) == 0 && len(s.persistent) == 0 {
			delete(r.services, k)
		}
	}
	r.mu.Unlock()
	changed = dedupKeys(changed)
	sortKeys(changed)
	r.notify(changed)
	sort.Strings(changedClients)
	r.notifyClients(slices.Compact(changedClients))
}

// SetPersistent replaces the persistent instances of key (called by the
// Raft FSM after apply; never fails). Instances are normalized leniently:
// the store validated them before proposing.
func (r *Registry) SetPersistent(key ServiceKey, insts []Instance) {
	k := r.lenientKey(key)
	now := r.clock()
	norm := make([]Instance, 0, len(insts))
	for _, in := range insts {
		n, err := r.normalizeInstance(k, in, false)
		if err != nil {
			n = in
			n.Ephemeral = false
			if n.Cluster == "" {
				n.Cluster = DefaultCluster
			}
		}
		norm = append(norm, n)
	}
	r.mu.Lock()
	s := r.svcLocked(k, false)
	keep := make(map[Addr]bool, len(norm))
	for _, n := range norm {
		keep[addrOf(n)] = true
	}
	for a := range s.health {
		if !keep[a] {
			delete(s.health, a)
		}
	}
	s.persistent = norm
	s.dirty(now)
	r.mu.Unlock()
	r.notify([]ServiceKey{k})
}

// SetOverrides replaces the operator overrides of key (Raft FSM).
func (r *Registry) SetOverrides(key ServiceKey, o []Override) {
	k := r.lenientKey(key)
	now := r.clock()
	r.mu.Lock()
	s := r.services[k]
	if s == nil {
		// Overrides may precede the instances they apply to (a restart
		// replays them first): keep them on an empty service.
		s = r.svcLocked(k, true)
		s.dirty(now)
	}
	s.overrides = make(map[Addr]Override, len(o))
	for _, ov := range o {
		if ov.Addr.Cluster == "" {
			ov.Addr.Cluster = DefaultCluster
		}
		s.overrides[ov.Addr] = ov
	}
	s.invalidate()
	r.mu.Unlock()
	r.notify([]ServiceKey{k})
}

// SetServiceMeta sets key's operator metadata (Raft FSM). A new service
// takes its kind from m.Ephemeral. The zero ServiceMeta means "no stored
// metadata" (removed or never set), as the Raft store sends it.
func (r *Registry) SetServiceMeta(key ServiceKey, m ServiceMeta) {
	if m.ProtectThreshold == 0 && len(m.Metadata) == 0 && !m.Ephemeral {
		r.DeleteServiceMeta(key)
		return
	}
	k := r.lenientKey(key)
	now := r.clock()
	r.mu.Lock()
	s := r.services[k]
	if s == nil {
		s = r.svcLocked(k, m.Ephemeral)
		s.dirty(now)
	}
	mc := m
	mc.Metadata = copyMap(m.Metadata)
	s.meta = &mc
	s.invalidate()
	r.mu.Unlock()
	r.notify([]ServiceKey{k})
}

// DeleteServiceMeta forgets key's operator metadata (Raft FSM); the
// service is then cleaned like any other once empty.
func (r *Registry) DeleteServiceMeta(key ServiceKey) {
	k := r.lenientKey(key)
	r.mu.Lock()
	if s := r.services[k]; s != nil {
		s.meta = nil
		s.invalidate()
	}
	r.mu.Unlock()
	r.notify([]ServiceKey{k})
}

// ServiceMeta returns key's operator metadata, if any.
func (r *Registry) ServiceMeta(key ServiceKey) (ServiceMeta, bool) {
	k := r.lenientKey(key)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s := r.services[k]; s != nil && s.meta != nil {
		m := *s.meta
		m.Metadata = copyMap(m.Metadata)
		return m, true
	}
	return ServiceMeta{}, false
}

// SetHealth records the prober's verdict on a persistent instance.
func (r *Registry) SetHealth(key ServiceKey, a Addr, healthy bool) {
	k := r.lenientKey(key)
	if a.Cluster == "" {
		a.Cluster = DefaultCluster
	}
	now := r.clock()
	r.mu.Lock()
	s := r.services[k]
	if s == nil || !hasAddr(s.persistent, a) {
		r.mu.Unlock()
		return
	}
	if h, ok := s.health[a]; ok && h == healthy {
		r.mu.Unlock()
		return
	}
	if s.health == nil {
		s.health = map[Addr]bool{}
	}
	s.health[a] = healthy
	s.dirty(now)
	r.mu.Unlock()
	r.notify([]ServiceKey{k})
}

func (r *Registry) lenientKey(k ServiceKey) ServiceKey {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	return k
}

// ServiceExists reports whether key is known (it may be empty).
func (r *Registry) ServiceExists(key ServiceKey) bool {
	k := r.lenientKey(key)
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.services[k] != nil
}

// Services returns every known service, sorted.
func (r *Registry) Services() []ServiceKey {
	r.mu.RLock()
	out := make([]ServiceKey, 0, len(r.services))
	for k := range r.services {
		out = append(out, k)
	}
	r.mu.RUnlock()
	sortKeys(out)
	return out
}

// Instances returns key's merged instances with overrides applied,
// disabled and unhealthy ones included, sorted by ip, port, cluster.
func (r *Registry) Instances(key ServiceKey) []Instance {
	k := r.lenientKey(key)
	snap := r.snapshotOf(k)
	if snap == nil {
		return nil
	}
	out := make([]Instance, len(snap.insts))
	copy(out, snap.insts)
	return out
}

// Persistent returns key's persistent instances with their current health
// (for the prober).
func (r *Registry) Persistent(key ServiceKey) []Instance {
	k := r.lenientKey(key)
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.services[k]
	if s == nil {
		return nil
	}
	out := make([]Instance, len(s.persistent))
	for i, in := range s.persistent {
		if h, ok := s.health[addrOf(in)]; ok {
			in.Healthy = h
		}
		out[i] = in
	}
	return out
}

// snapshotOf returns k's current snapshot, rebuilding it if stale; nil
// when the service is unknown.
func (r *Registry) snapshotOf(k ServiceKey) *Snapshot {
	r.mu.RLock()
	s := r.services[k]
	if s == nil {
		r.mu.RUnlock()
		return nil
	}
	if snap := s.snap; snap != nil {
		r.mu.RUnlock()
		return snap
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	s = r.services[k]
	if s == nil {
		return nil
	}
	if s.snap == nil {
		r.rebuildLocked(s)
	}
	return s.snap
}

// rebuildLocked merges a service's sources into a new snapshot. The
// snapshot is never mutated after publication (readers hold it without the
// lock).
func (r *Registry) rebuildLocked(s *service) {
	n := len(s.persistent)
	for id := range s.publishers {
		if c := r.clients[id]; c != nil {
			if e := c.entries[s.key]; e != nil {
				n += len(e.insts)
			}
		}
	}
	view := make([]Instance, 0, n)
	for id := range s.publishers {
		if c := r.clients[id]; c != nil {
			if e := c.entries[s.key]; e != nil {
				view = append(view, e.insts...)
			}
		}
	}
	for _, in := range s.persistent {
		if h, ok := s.health[addrOf(in)]; ok {
			in.Healthy = h
		}
		view = append(view, in)
	}
	for i := range view {
		if ov, ok := s.overrides[addrOf(view[i])]; ok {
			view[i] = applyOverride(view[i], ov)
		}
	}
	sort.Slice(view, func(i, j int) bool {
		a, b := view[i], view[j]
		if a.IP != b.IP {
			return a.IP < b.IP
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.ID < b.ID
	})
	s.snap = &Snapshot{insts: view, meta: s.meta}
}

func applyOverride(in Instance, ov Override) Instance {
	if ov.Enabled != nil {
		in.Enabled = *ov.Enabled
	}
	if ov.Weight != nil {
		in.Weight = *ov.Weight
	}
	if len(ov.Metadata) > 0 {
		md := make(map[string]string, len(in.Metadata)+len(ov.Metadata))
		for k, v := range in.Metadata {
			md[k] = v
		}
		for k, v := range ov.Metadata {
			md[k] = v
		}
		in.Metadata = md
	}
	return in
}

// nextRefTime returns a lastRefTime in ms, strictly greater than any before.
func (r *Registry) nextRefTime() int64 {
	now := r.clock().UnixMilli()
	for {
		last := r.lastRef.Load()
		next := now
		if next <= last {
			next = last + 1
		}
		if r.lastRef.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Select answers a query, a subscription or a push: key's instances in the
// given clusters (all when empty), enabled only, healthy only if asked, with
// the protect threshold applied as Nacos does. An unknown service gives an
// empty ServiceInfo. Clusters is echoed joined by ",". The hosts slice and
// metadata maps are shared with the registry: read them, don't modify them.
// The selection is memoised on the service's snapshot (info.Snapshot) per
// clusters and healthyOnly; LastRefTime is new on every call.
func (r *Registry) Select(key ServiceKey, clusters []string, healthyOnly bool) (ServiceInfo, error) {
	k, err := r.NormalizeKey(key)
	if err != nil {
		return ServiceInfo{}, err
	}
	info := ServiceInfo{Key: k, Clusters: strings.Join(clusters, ","), CacheMillis: r.cfg.CacheMillis, Hosts: []Instance{}}
	snap := r.snapshotOf(k)
	info.LastRefTime = r.nextRefTime()
	if snap == nil {
		return info, nil
	}
	sel := snap.Memo(selectMemoKey(clusters, healthyOnly), func() any {
		return selectFrom(snap, clusters, healthyOnly)
	}).(*selection)
	info.Hosts, info.ReachProtectionThreshold, info.Snapshot = sel.hosts, sel.reachProtection, snap
	return info, nil
}

// selection is Select's memoised part.
type selection struct {
	hosts           []Instance
	reachProtection bool
}

// selectMemoKey encodes Select's parameters injectively (cluster names are
// length-prefixed: any byte may occur in them).
func selectMemoKey(clusters []string, healthyOnly bool) string {
	if len(clusters) == 0 { // the common query: no allocation
		if healthyOnly {
			return "naming.select:h"
		}
		return "naming.select:a"
	}
	var b strings.Builder
	b.WriteString("naming.select:")
	if healthyOnly {
		b.WriteByte('h')
	} else {
		b.WriteByte('a')
	}
	for _, c := range clusters {
		b.WriteString(strconv.Itoa(len(c)))
		b.WriteByte(':')
		b.WriteString(c)
	}
	return b.String()
}

// selectFrom filters a snapshot: a pure function of its arguments.
func selectFrom(snap *Snapshot, clusters []string, healthyOnly bool) *selection {
	inCluster := func(c string) bool {
		if len(clusters) == 0 {
			return true
		}
		for _, x := range clusters {
			if x == c {
				return true
			}
		}
		return false
	}
	var all, healthy int
	hosts := make([]Instance, 0, len(snap.insts))
	for _, in := range snap.insts {
		if !in.Enabled || !inCluster(in.Cluster) {
			continue
		}
		all++
		if in.Healthy {
			healthy++
		}
		if !healthyOnly || in.Healthy {
			hosts = append(hosts, in)
		}
	}
	sel := &selection{hosts: hosts}
	if meta := snap.meta; meta != nil && all > 0 {
		th := meta.ProtectThreshold
		if th < 0 {
			th = 0
		}
		if float64(healthy)/float64(all) <= th {
			sel.reachProtection = true
			prot := make([]Instance, 0, all)
			for _, in := range snap.insts {
				if in.Enabled && inCluster(in.Cluster) {
					in.Healthy = true
					prot = append(prot, in)
				}
			}
			sel.hosts = prot
		}
	}
	return sel
}

// ListServices returns the number of services in namespace/group and the
// names (ungrouped, sorted) of page pageNo (1-based) of pageSize.
func (r *Registry) ListServices(namespace, group string, pageNo, pageSize int) (count int, names []string) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if group == "" {
		group = DefaultGroup
	}
	r.mu.RLock()
	all := make([]string, 0)
	for k := range r.services {
		if k.Namespace == namespace && k.Group == group {
			all = append(all, k.Name)
		}
	}
	r.mu.RUnlock()
	sort.Strings(all)
	count = len(all)
	start := (pageNo - 1) * pageSize
	if start < 0 {
		start = 0
	}
	if pageSize <= 0 || start >= count {
		return count, []string{}
	}
	end := start + pageSize
	if end > count {
		end = count
	}
	return count, append([]string(nil), all[start:end]...)
}

// Stats counts what the registry holds (for metrics).
type Stats struct {
	Services             int
	ConnectionClients    int
	BeatClients          int
	ConnectionInstances  int
	BeatKeptInstances    int
	PersistentInstances  int
	UnhealthyInstances   int
	Subscriptions        int
	DisabledByOverride   int
	ServicesWithMetadata int
}

// Stats returns current counts.
func (r *Registry) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var st Stats
	st.Services = len(r.services)
	for _, c := range r.clients {
		n := 0
		for _, e := range c.entries {
			n += len(e.insts)
			for _, in := range e.insts {
				if !in.Healthy {
					st.UnhealthyInstances++
				}
			}
		}
		if c.kind == BeatKeptClient {
			st.BeatClients++
			st.BeatKeptInstances += n
		} else {
			if len(c.entries) > 0 {
				st.ConnectionClients++
			}
			st.ConnectionInstances += n
		}
	}
	for _, s := range r.services {
		st.PersistentInstances += len(s.persistent)
		for _, in := range s.persistent {
			h := in.Healthy
			if v, ok := s.health[addrOf(in)]; ok {
				h = v
			}
			if !h {
				st.UnhealthyInstances++
			}
		}
		for _, ov := range s.overrides {
			if ov.Enabled != nil && !*ov.Enabled {
				st.DisabledByOverride++
			}
		}
		if s.meta != nil {
			st.ServicesWithMetadata++
		}
	}
	for _, m := range r.subs {
		st.Subscriptions += len(m)
	}
	return st
}

func addrOf(in Instance) Addr { return Addr{IP: in.IP, Port: in.Port, Cluster: in.Cluster} }

func hasAddr(insts []Instance, a Addr) bool {
	for _, in := range insts {
		if addrOf(in) == a {
			return true
		}
	}
	return false
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sameInstances(a, b []Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.IP != y.IP || x.Port != y.Port || x.Weight != y.Weight || x.Healthy != y.Healthy ||
			x.Enabled != y.Enabled || x.Ephemeral != y.Ephemeral || x.Cluster != y.Cluster || len(x.Metadata) != len(y.Metadata) {
			return false
		}
		for k, v := range x.Metadata {
			if w, ok := y.Metadata[k]; !ok || w != v {
				return false
			}
		}
	}
	return true
}

func dedupKeys(keys []ServiceKey) []ServiceKey {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[ServiceKey]struct{}, len(keys))
	out := keys[:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

func sortKeys(keys []ServiceKey) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Name < b.Name
	})
}

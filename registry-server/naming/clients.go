package naming

import (
	"cmp"
	"fmt"
	"sort"
)

// Clients are the unit a registry cluster replicates (Nacos 2.x Distro
// syncs whole clients, not services). Every client has an owner, the
// member responsible for it ("" = this node), and a revision that rises
// with every change of its entries made by its owner:
//
//   - this node's clients change through the write methods (Register,
//     RegisterBeatKept, BeatMany, Expire, ...); each change bumps the
//     revision and is reported to OnClientChange listeners, which read the
//     whole client back with Client (Distro sends it to the peers);
//   - another member's clients arrive whole through ApplyClient and leave
//     through DropClient; this node never expires them (their owner does)
//     and ApplyClient reports them to OnClientChange listeners too;
//   - SetClientOwner moves a client between members (a dead member's
//     beat-kept clients adopted by their new responsible node, or handed
//     over); an adopted client counts as just beaten, so it never expires
//     sooner than its delete timeout after adoption.

// ClientKind tells connection-bound clients from beat-kept ones.
type ClientKind uint8

const (
	// ConnectionClient is a gRPC connection (client id = connection id):
	// it belongs to the node holding the connection.
	ConnectionClient ClientKind = iota
	// BeatKeptClient is an ip:port kept alive by beats (client id
	// "ip:port#true"): it belongs to the member its address hashes to.
	BeatKeptClient
)

func (k ClientKind) String() string {
	if k == BeatKeptClient {
		return "beat"
	}
	return "connection"
}

// ClientData is one whole client: what Client returns and ApplyClient
// takes. Entries are sorted by service key; their instances are normalized
// (ApplyClient takes them as the owner stored them).
type ClientData struct {
	ID       string
	Kind     ClientKind
	Owner    string // "" = this node
	Revision uint64
	Entries  []ClientEntry
}

// ClientEntry is a client's registration in one service.
type ClientEntry struct {
	Key       ServiceKey
	Instances []Instance
}

// ClientRevision names a client's owner and revision (Distro's verify).
type ClientRevision struct {
	ID       string
	Owner    string
	Revision uint64
}

// OnClientChange adds a listener told the id of each client whose data
// (entries, instances, health, owner) changed, after the change, outside
// the registry's lock, on the goroutine that made it; a client that is gone
// reads back as absent from Client. It must not block. Beats that only
// refresh a beat time are not changes. Subscriptions are not client data.
func (r *Registry) OnClientChange(fn func(clientID string)) {
	r.lmu.Lock()
	r.clientListeners = append(r.clientListeners, fn)
	r.lmu.Unlock()
}

func (r *Registry) notifyClients(ids []string) {
	if len(ids) == 0 {
		return
	}
	r.lmu.Lock()
	ls := r.clientListeners
	r.lmu.Unlock()
	if len(ls) == 0 {
		return
	}
	if len(ids) > 1 {
		seen := make(map[string]struct{}, len(ids))
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			if _, ok := seen[id]; !ok {
				seen[id] = struct{}{}
				out = append(out, id)
			}
		}
		ids = out
	}
	for _, id := range ids {
		for _, l := range ls {
			l(id)
		}
	}
}

// Client returns a copy of one client's data; false when there is no such
// client or it publishes nothing (a connection that only subscribes).
func (r *Registry) Client(id string) (ClientData, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.clients[id]
	if c == nil || len(c.entries) == 0 {
		return ClientData{}, false
	}
	cd := ClientData{ID: c.id, Kind: c.kind, Owner: c.owner, Revision: c.revision, Entries: make([]ClientEntry, 0, len(c.entries))}
	for k, e := range c.entries {
		insts := make([]Instance, len(e.insts))
		for i, in := range e.insts {
			in.Metadata = copyMap(in.Metadata)
			insts[i] = in
		}
		cd.Entries = append(cd.Entries, ClientEntry{Key: k, Instances: insts})
	}
	sort.Slice(cd.Entries, func(i, j int) bool { return compareKeys(cd.Entries[i].Key, cd.Entries[j].Key) < 0 })
	return cd, true
}

// ClientRevisions lists every publishing client's owner and revision,
// sorted by id.
func (r *Registry) ClientRevisions() []ClientRevision {
	r.mu.RLock()
	out := make([]ClientRevision, 0, len(r.clients))
	for _, c := range r.clients {
		if len(c.entries) > 0 {
			out = append(out, ClientRevision{ID: c.id, Owner: c.owner, Revision: c.revision})
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ApplyClient replaces a whole client with cd (another member's copy:
// cd.Owner names it), keeping the client's subscriptions. It is a no-op,
// returning false, when the client is already at cd's owner and revision;
// the caller (Distro) decides which copy is newer. Entries with no
// instances are dropped; a cd without entries removes the client's
// registrations. Beat-kept entries of a client owned elsewhere are not
// expired here; owned by this node (Owner ""), they count as beaten now.
// The kind of each service is checked as for a local registration.
func (r *Registry) ApplyClient(cd ClientData) (bool, error) {
	if cd.ID == "" {
		return false, fmt.Errorf("%w: client without an id", ErrInvalidParam)
	}
	entries := make(map[ServiceKey][]Instance, len(cd.Entries))
	for _, ce := range cd.Entries {
		if len(ce.Instances) == 0 {
			continue
		}
		k := r.lenientKey(ce.Key)
		insts := make([]Instance, len(ce.Instances))
		for i, in := range ce.Instances {
			in.Metadata = copyMap(in.Metadata)
			in.Ephemeral = true
			if in.Cluster == "" {
				in.Cluster = DefaultCluster
			}
			insts[i] = in
		}
		entries[k] = insts
	}
	if cd.Kind == BeatKeptClient {
		for k, insts := range entries {
			if len(insts) != 1 {
				return false, fmt.Errorf("%w: beat-kept client %s has %d instances in %s", ErrInvalidParam, cd.ID, len(insts), k.Grouped())
			}
		}
	}
	now := r.clock()
	r.mu.Lock()
	c := r.clients[cd.ID]
	if c != nil && c.owner == cd.Owner && c.revision == cd.Revision && len(c.entries) > 0 {
		r.mu.Unlock()
		return false, nil
	}
	for k := range entries {
		if err := r.checkKindLocked(k, true); err != nil {
			r.mu.Unlock()
			return false, err
		}
	}
	if c == nil {
		c = &client{id: cd.ID, kind: cd.Kind, entries: map[ServiceKey]*entry{}}
		r.clients[cd.ID] = c
	}
	c.kind, c.owner, c.revision = cd.Kind, cd.Owner, cd.Revision
	if c.kind == BeatKeptClient {
		r.beaters[c.id] = c
	}
	var changed []ServiceKey
	for k, e := range c.entries { // entries the new copy no longer has
		if _, ok := entries[k]; ok {
			continue
		}
		r.unkeepLocked(e)
		delete(c.entries, k)
		if s := r.services[k]; s != nil {
			delete(s.publishers, c.id)
			s.dirty(now)
		}
		changed = append(changed, k)
	}
	for k, insts := range entries {
		old := c.entries[k]
		e := &entry{insts: insts, client: c.id, key: k}
		if c.kind == BeatKeptClient {
			e.lastBeat = now
			if old != nil {
				e.lastBeat = old.lastBeat
			}
			e.interval, e.timeout, e.del = r.beatTimes(insts[0].Metadata)
		}
		if old != nil {
			r.unkeepLocked(old)
		}
		if c.kind == BeatKeptClient && c.owner == "" {
			r.keepLocked(e)
		}
		c.entries[k] = e
		s := r.svcLocked(k, true)
		s.publishers[c.id] = struct{}{}
		if old == nil || !sameInstances(old.insts, insts) {
			s.dirty(now)
			changed = append(changed, k)
		}
	}
	if len(c.entries) == 0 && len(c.subs) == 0 {
		delete(r.clients, c.id)
		delete(r.beaters, c.id)
	}
	r.mu.Unlock()
	sortKeys(changed)
	r.notify(changed)
	r.notifyClients([]string{cd.ID})
	return true, nil
}

// SetClientOwner moves a client to owner ("" = this node) and bumps its
// revision, so that the new owner's copy wins everywhere. A beat-kept client
// taken over by this node counts as beaten now (adopted clients never
// expire sooner than their delete timeout after adoption) and joins this
// node's expiry; one given away leaves it. False when there is no such
// client or it already has that owner.
func (r *Registry) SetClientOwner(id, owner string) bool {
	now := r.clock()
	r.mu.Lock()
	c := r.clients[id]
	if c == nil || c.owner == owner {
		r.mu.Unlock()
		return false
	}
	c.owner = owner
	c.revision++
	if c.kind == BeatKeptClient {
		for _, e := range c.entries {
			if owner == "" {
				e.lastBeat = now
				if e.keptIdx == 0 {
					r.keepLocked(e)
				}
			} else {
				r.unkeepLocked(e)
			}
		}
	}
	r.mu.Unlock()
	r.notifyClients([]string{id})
	return true
}

func compareKeys(a, b ServiceKey) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// Responsibility says which member of a registry cluster is responsible for
// a beat-kept client (Distro's ip:port tag): the one node that takes its
// beats, expires it and syncs it to the others. Connection-bound clients
// need no answer: they belong to the node holding the connection. The gRPC
// API redirects merged beats and the HTTP API forwards 1.x writes for
// clients another member is responsible for. Implementations are called
// concurrently from request goroutines and must answer from memory.
type Responsibility interface {
	// Responsible returns "" when this node is responsible for the
	// beat-kept client at ip:port, else the responsible member's main-port
	// address ("host:port").
	Responsible(ip string, port int) string
}

// ThisNode is a single node's Responsibility: this node, always.
type ThisNode struct{}

// Responsible returns "" (this node).
func (ThisNode) Responsible(string, int) string { return "" }

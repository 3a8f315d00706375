package distro

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// The engine is Distro's protocol as deterministic code (etcd-io/raft's
// shape): events go in (a client changed, a tick, the serving members
// changed, a message arrived, a send finished), and what to do comes out —
// messages for peers and operations on the local registry, in order. It
// owns no goroutine, no timer and no socket; the adapter feeds it and
// carries its outputs. Not safe for concurrent use: one goroutine (the
// adapter's) drives it.
//
// The unit is a whole client (naming.ClientData). Its owner syncs it to
// every peer; receivers keep a copy owned by the sender. Rules:
//   - a connection client belongs to the node holding the connection; a
//     beat-kept client to Responsible(ip:port, serving members);
//   - changes are merged per (client, peer) for SyncDelay and go to each
//     peer as one batch at a time, read from the registry when sent (the
//     latest state); a failed batch is retried after RetryDelay;
//   - every VerifyInterval the owner sends each peer the revisions of all
//     its clients; the peer asks back for the ones it lacks or holds at
//     another revision; a copy no serving owner vouched for in three
//     rounds is an orphan and is dropped;
//   - handover: an owner sends each beat-kept client that now hashes to
//     another serving member to it; that member adopts it
//     (SetClientOwner to itself, which counts as a beat) and syncs it, and
//     the old owner yields when the copy arrives. Copies of an owner that
//     no longer serves are adopted by the member they now hash to;
//   - copies of a dead member's connection clients are dropped ConnGrace
//     after it stopped serving (longer than an SDK reconnect plus redo);
//   - a member that cannot see a majority of the members removes nothing
//     (CanRemove gates drops here and expiry in the adapter).

// Config tunes the engine. Start from DefaultConfig.
type Config struct {
	// SyncDelay merges the changes of a client before sending (Nacos: 1 s).
	SyncDelay time.Duration
	// RetryDelay is the wait before a failed batch is sent again.
	RetryDelay time.Duration
	// VerifyInterval is how often owners send their revisions (Nacos: 5 s).
	VerifyInterval time.Duration
	// ConnGrace keeps copies of a dead member's connection clients
	// (Nacos' expired-client time: 3 min).
	ConnGrace time.Duration
}

// DefaultConfig is Ferry's Distro timing.
func DefaultConfig() Config {
	return Config{SyncDelay: 50 * time.Millisecond, RetryDelay: time.Second, VerifyInterval: 5 * time.Second, ConnGrace: 3 * time.Minute}
}

// ErrConfig marks a bad Config or member list.
var ErrConfig = errors.New("distro: invalid config")

// Source is the local registry as the engine reads it
// (*naming.Registry implements it).
type Source interface {
	Client(id string) (naming.ClientData, bool)
	ClientRevisions() []naming.ClientRevision
}

// OpKind is a registry operation.
type OpKind uint8

const (
	// OpApply: ApplyClient(Client) (Client.Owner is the sender).
	OpApply OpKind = iota
	// OpDrop: DropClient(ID).
	OpDrop
	// OpOwn: SetClientOwner(ID, Owner) ("" = this node adopts it).
	OpOwn
)

// Op is one registry operation, to apply in order.
type Op struct {
	Kind   OpKind
	Client naming.ClientData
	ID     string
	Owner  string
}

// MsgKind is a message type.
type MsgKind uint8

const (
	// MsgSync carries whole clients the sender owns, and ids of clients it
	// owned and removed.
	MsgSync MsgKind = iota
	// MsgVerify carries the revisions of every client the sender owns.
	MsgVerify
	// MsgVerifyAnswer names the clients the receiver of a verify wants
	// whole.
	MsgVerifyAnswer
)

// Message is one message between members (the sender is the envelope's).
type Message struct {
	Kind      MsgKind
	Clients   []naming.ClientData     `json:",omitempty"`
	Removed   []string                `json:",omitempty"`
	Revisions []naming.ClientRevision `json:",omitempty"`
	Missing   []string                `json:",omitempty"`
}

// Envelope is a message to one peer.
type Envelope struct {
	To  string
	Msg Message
}

// Engine is one member's Distro state.
type Engine struct {
	self    string
	members []string // every configured member, sorted
	cfg     Config
	src     Source

	serving   []string             // sorted
	downSince map[string]time.Time // members not serving, since when
	local     map[string]bool      // clients this node owns (to send their removal)
	pending   map[string]map[string]time.Time
	inflight  map[string][]string // peer → ids of the batch in flight
	removed   map[string]bool     // local clients removed, not yet sent everywhere
	sentRm    map[string]map[string]bool
	confirmed map[string]time.Time // copies: last time their owner vouched for them
	nextVerif time.Time
	nextScan  time.Time // the copies' scan runs once a second, not every tick
}

// New builds the engine of member self over src; every member starts
// serving (as the failure detector's SUSPICIOUS start).
func New(cfg Config, self string, members []string, src Source) (*Engine, error) {
	if cfg.SyncDelay < 0 || cfg.RetryDelay <= 0 || cfg.VerifyInterval <= 0 || cfg.ConnGrace <= 0 {
		return nil, fmt.Errorf("%w: %+v", ErrConfig, cfg)
	}
	ms := append([]string(nil), members...)
	sort.Strings(ms)
	if i := sort.SearchStrings(ms, self); i >= len(ms) || ms[i] != self {
		return nil, fmt.Errorf("%w: members %v do not contain %s", ErrConfig, ms, self)
	}
	e := &Engine{self: self, members: ms, cfg: cfg, src: src, serving: ms,
		downSince: map[string]time.Time{}, local: map[string]bool{}, pending: map[string]map[string]time.Time{},
		inflight: map[string][]string{}, removed: map[string]bool{}, sentRm: map[string]map[string]bool{},
		confirmed: map[string]time.Time{}}
	for _, id := range e.ownIDs() {
		e.local[id] = true
	}
	return e, nil
}

// CanRemove reports whether this member sees a majority of the members
// serving (itself included): only then may anything be removed.
func (e *Engine) CanRemove() bool { return len(e.serving) >= len(e.members)/2+1 }

// Serving is the serving members the engine knows (sorted).
func (e *Engine) Serving() []string { return append([]string(nil), e.serving...) }

func (e *Engine) peers() []string {
	out := make([]string, 0, len(e.members)-1)
	for _, m := range e.members {
		if m != e.self {
			out = append(out, m)
		}
	}
	return out
}

func (e *Engine) ownIDs() []string {
	var out []string
	for _, r := range e.src.ClientRevisions() {
		if r.Owner == "" {
			out = append(out, r.ID)
		}
	}
	return out
}

// beatTag is the responsibility tag of a beat-kept client id
// ("ip:port#true" → "ip:port"), "" for a connection client.
func beatTag(id string) string {
	if t, ok := strings.CutSuffix(id, "#true"); ok {
		return t
	}
	return ""
}

func (e *Engine) schedule(peer, id string, due time.Time) {
	m := e.pending[peer]
	if m == nil {
		m = map[string]time.Time{}
		e.pending[peer] = m
	}
	if old, ok := m[id]; !ok || due.Before(old) {
		m[id] = due
	}
}

// ClientChanged: the local registry reports client id changed (its
// OnClientChange). Clients this node owns are scheduled to every peer.
func (e *Engine) ClientChanged(id string, now time.Time) {
	cd, ok := e.src.Client(id)
	switch {
	case ok && cd.Owner == "":
		e.local[id] = true
		delete(e.removed, id)
	case !ok && e.local[id]:
		delete(e.local, id)
		e.removed[id] = true
	default:
		delete(e.local, id)
		return
	}
	for _, p := range e.peers() {
		e.schedule(p, id, now.Add(e.cfg.SyncDelay))
	}
}

// Tick advances time: due batches (one per peer at a time), verifies, and
// (once a second: late is fine, early never) the drops of orphan copies
// and of a dead member's connection clients after ConnGrace.
func (e *Engine) Tick(now time.Time) ([]Op, []Envelope) {
	var out []Envelope
	for _, p := range e.peers() {
		if e.inflight[p] != nil {
			continue
		}
		var ids []string
		for id, due := range e.pending[p] {
			if !due.After(now) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		sort.Strings(ids)
		var msg Message
		for _, id := range ids {
			delete(e.pending[p], id)
			if cd, ok := e.src.Client(id); ok && cd.Owner == "" {
				msg.Clients = append(msg.Clients, cd)
			} else if !ok && e.removed[id] {
				msg.Removed = append(msg.Removed, id)
			}
		}
		if len(msg.Clients)+len(msg.Removed) == 0 {
			continue
		}
		e.inflight[p] = ids
		out = append(out, Envelope{To: p, Msg: msg})
	}
	if !now.Before(e.nextVerif) {
		e.nextVerif = now.Add(e.cfg.VerifyInterval)
		var revs []naming.ClientRevision
		for _, r := range e.src.ClientRevisions() {
			if r.Owner == "" {
				revs = append(revs, r)
			}
		}
		for _, p := range e.peers() {
			out = append(out, Envelope{To: p, Msg: Message{Kind: MsgVerify, Revisions: revs}})
		}
		e.handOver(now)
	}
	var ops []Op
	if now.Before(e.nextScan) {
		return nil, out
	}
	e.nextScan = now.Add(time.Second)
	for _, r := range e.src.ClientRevisions() {
		if r.Owner == "" {
			delete(e.confirmed, r.ID)
			continue
		}
		since, down := e.downSince[r.Owner]
		switch {
		case down:
			// The owner does not serve: its beat-kept clients are adopted
			// by their new responsible member; its connection clients
			// wait ConnGrace for the SDKs to reconnect and redo elsewhere.
			if e.CanRemove() && beatTag(r.ID) == "" && now.Sub(since) >= e.cfg.ConnGrace {
				ops = append(ops, Op{Kind: OpDrop, ID: r.ID})
			}
		default:
			// A serving owner vouches for its clients every verify; a copy
			// nobody vouched for in three rounds is an orphan (removed or
			// handed over while our messages were lost).
			c, ok := e.confirmed[r.ID]
			if !ok {
				e.confirmed[r.ID] = now
			} else if e.CanRemove() && now.Sub(c) > 3*e.cfg.VerifyInterval {
				ops = append(ops, Op{Kind: OpDrop, ID: r.ID})
				delete(e.confirmed, r.ID)
			}
		}
	}
	return ops, out
}

// SyncDone: the batch last sent to peer was delivered (ok) or not; a
// failed one is sent again after RetryDelay.
func (e *Engine) SyncDone(peer string, ok bool, now time.Time) {
	ids := e.inflight[peer]
	delete(e.inflight, peer)
	if !ok {
		for _, id := range ids {
			e.schedule(peer, id, now.Add(e.cfg.RetryDelay))
		}
		return
	}
	for _, id := range ids {
		if e.removed[id] {
			m := e.sentRm[id]
			if m == nil {
				m = map[string]bool{}
				e.sentRm[id] = m
			}
			m[peer] = true
			if len(m) == len(e.members)-1 {
				delete(e.removed, id)
				delete(e.sentRm, id)
			}
		}
	}
}

// MembersChanged: the serving members (UP and SUSPICIOUS) are now
// serving. Beat-kept copies of owners that no longer serve and that now
// hash to this node are adopted; clients this node owns that now hash to
// another member are sent to it.
func (e *Engine) MembersChanged(serving []string, now time.Time) []Op {
	s := append([]string(nil), serving...)
	sort.Strings(s)
	e.serving = s
	in := map[string]bool{}
	for _, m := range s {
		in[m] = true
	}
	for _, m := range e.members {
		if in[m] {
			delete(e.downSince, m)
		} else if _, ok := e.downSince[m]; !ok {
			e.downSince[m] = now
		}
	}
	var ops []Op
	for _, r := range e.src.ClientRevisions() {
		if r.Owner != "" && !in[r.Owner] && e.responsibleHere(r.ID) {
			ops = append(ops, Op{Kind: OpOwn, ID: r.ID, Owner: ""})
		}
	}
	e.handOver(now)
	return ops
}

// SetMembers replaces the member list (a run-time membership change; it
// must contain this node) and then applies serving as MembersChanged
// does. A new peer is sent every client this node owns at once (it may
// also have loaded a snapshot; the copies are idempotent); what was
// pending for, or in flight to, a removed peer is forgotten, and the
// removed peer's copies here are treated as a non-serving owner's:
// beat-kept ones adopted, connection clients dropped after ConnGrace.
func (e *Engine) SetMembers(members, serving []string, now time.Time) ([]Op, error) {
	ms := append([]string(nil), members...)
	sort.Strings(ms)
	if i := sort.SearchStrings(ms, e.self); i >= len(ms) || ms[i] != e.self {
		return nil, fmt.Errorf("%w: members %v do not contain %s", ErrConfig, ms, e.self)
	}
	in := map[string]bool{}
	for _, m := range ms {
		in[m] = true
	}
	was := map[string]bool{}
	for _, m := range e.members {
		was[m] = true
		if !in[m] {
			delete(e.pending, m)
			delete(e.inflight, m)
			if _, ok := e.downSince[m]; !ok {
				e.downSince[m] = now
			}
		}
	}
	e.members = ms
	for id, sent := range e.sentRm {
		for p := range sent {
			if !in[p] {
				delete(sent, p)
			}
		}
		if len(sent) >= len(e.members)-1 {
			delete(e.removed, id)
			delete(e.sentRm, id)
		}
	}
	for _, m := range ms {
		if !was[m] && m != e.self {
			for _, id := range e.ownIDs() {
				e.schedule(m, id, now)
			}
		}
	}
	var srv []string
	for _, m := range serving {
		if in[m] {
			srv = append(srv, m)
		}
	}
	return e.MembersChanged(srv, now), nil
}

// Members is the member list the engine knows (sorted).
func (e *Engine) Members() []string { return append([]string(nil), e.members...) }

// handOver sends every beat-kept client this node owns but another
// serving member is now responsible for to that member, which adopts it
// (and this node yields when the adopter's copy arrives).
func (e *Engine) handOver(now time.Time) {
	for _, r := range e.src.ClientRevisions() {
		if tag := beatTag(r.ID); r.Owner == "" && tag != "" {
			if to := Responsible(tag, e.serving); to != "" && to != e.self {
				e.schedule(to, r.ID, now)
			}
		}
	}
}

// responsibleHere: id is a beat-kept client this node is responsible for.
func (e *Engine) responsibleHere(id string) bool {
	t := beatTag(id)
	return t != "" && Responsible(t, e.serving) == e.self
}

// Receive handles a message from peer from.
func (e *Engine) Receive(from string, m Message, now time.Time) ([]Op, []Envelope) {
	var ops []Op
	var out []Envelope
	switch m.Kind {
	case MsgSync:
		for _, cd := range m.Clients {
			cur, ok := e.src.Client(cd.ID)
			tag := beatTag(cd.ID)
			if ok && cur.Owner == "" {
				// Both think they own it: the member responsible now wins.
				if tag != "" && Responsible(tag, e.serving) == from {
					cd.Owner = from
					ops = append(ops, Op{Kind: OpApply, Client: cd})
				} else {
					e.schedule(from, cd.ID, now)
				}
				continue
			}
			cd.Owner = from
			e.confirmed[cd.ID] = now
			ops = append(ops, Op{Kind: OpApply, Client: cd})
			if e.responsibleHere(cd.ID) {
				ops = append(ops, Op{Kind: OpOwn, ID: cd.ID, Owner: ""}) // adopt
			}
		}
		for _, id := range m.Removed {
			cur, ok := e.src.Client(id)
			if !ok || cur.Owner == "" {
				continue
			}
			// The owner's removal, or the responsible member's (whatever
			// stale owner our copy names).
			if tag := beatTag(id); cur.Owner == from || (tag != "" && Responsible(tag, e.serving) == from) {
				ops = append(ops, Op{Kind: OpDrop, ID: id})
			}
		}
	case MsgVerify:
		var missing []string
		for _, r := range m.Revisions {
			cur, ok := e.src.Client(r.ID)
			if ok && cur.Owner == from {
				e.confirmed[r.ID] = now
			}
			switch {
			case ok && cur.Owner == "":
				if tag := beatTag(r.ID); tag != "" && Responsible(tag, e.serving) != e.self {
					missing = append(missing, r.ID) // the owner now: yield when it arrives
				} else {
					e.schedule(from, r.ID, now) // ours: tell it
				}
			case !ok || cur.Owner != from || cur.Revision != r.Revision:
				missing = append(missing, r.ID)
			}
		}
		// Beat-kept copies of owners that no longer serve and that hash
		// here are adopted.
		for _, r := range e.src.ClientRevisions() {
			if r.Owner != "" && !e.servingMember(r.Owner) && e.responsibleHere(r.ID) {
				ops = append(ops, Op{Kind: OpOwn, ID: r.ID, Owner: ""})
			}
		}
		if len(missing) > 0 {
			out = append(out, Envelope{To: from, Msg: Message{Kind: MsgVerifyAnswer, Missing: missing}})
		}
	case MsgVerifyAnswer:
		for _, id := range m.Missing {
			e.schedule(from, id, now)
		}
	}
	return ops, out
}

func (e *Engine) servingMember(m string) bool {
	i := sort.SearchStrings(e.serving, m)
	return i < len(e.serving) && e.serving[i] == m
}

package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/clusternet"
)

// ReportPath is the cluster route of member reports.
const ReportPath = "/ferry/cluster/v1/report"

// ErrMemberList: two members were started with different member lists;
// they refuse each other (a cluster must not form from disagreeing lists).
var ErrMemberList = errors.New("membership: member lists differ")

// report is what members exchange: the sender, its own state and its
// member list; Formed says the sender's Raft group has run (it has a
// configuration and elected a leader: a starting member without state
// then joins it instead of bootstrapping), Ready that it is caught up and serving (a joining
// member is promoted to voter once it is).
type report struct {
	Member  string   `json:"member"`
	State   State    `json:"state"`
	Members []string `json:"members"`
	Formed  bool     `json:"formed,omitempty"`
	Ready   bool     `json:"ready,omitempty"`
}

// Membership runs the failure detector: it probes every peer over the
// cluster port each ProbeInterval and answers their probes. Its methods are
// safe for concurrent use; mu guards the member list, the detector, the
// listeners, the peers' last reports and the log-once map.
//
// The member list is cfg.Members at start and may change at run time
// (SetMembers: the Raft configuration of a formed cluster, or a re-read
// cluster.conf before it formed). Members exchange lists on every probe;
// until this member's Raft group is formed a different list is refused
// both ways (two lists must never bootstrap two clusters); once formed,
// the list is the Raft configuration's, which members learn a few
// milliseconds apart, so a difference is only logged.
type Membership struct {
	cfg    Config
	log    *slog.Logger
	client *clusternet.Client
	srv    *clusternet.Server
	met    *metrics

	mu        sync.Mutex
	members   []string // sorted
	formed    func() bool
	ready     func() bool
	peerRep   map[string]report // each peer's last report
	det       *Detector
	selfInfo  func() map[string]any // extra extendInfo of this node (nodes route)
	listeners []func()
	logged    map[string]string // member → last problem logged
	agreed    map[string]bool   // members that confirmed this node's list

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	started  bool // guarded by mu
}

// New validates cfg and serves the member reports on srv (the cluster
// port's server; handle before it starts). reg may be nil.
func New(cfg Config, srv *clusternet.Server, logger *slog.Logger, reg prometheus.Registerer) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:     cfg,
		log:     logger.With("subsystem", "membership"),
		client:  clusternet.NewClient(cfg.Self, cfg.ProbeTimeout),
		srv:     srv,
		members: Sorted(cfg.Members),
		peerRep: map[string]report{},
		det:     NewDetector(cfg.Self, cfg.Members, cfg.FailLimit),
		logged:  map[string]string{},
		agreed:  map[string]bool{cfg.Self: true},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	met, err := newMetrics(reg, m)
	if err != nil {
		return nil, err
	}
	m.met = met
	srv.Handle(ReportPath, m.onReport)
	return m, nil
}

// Client is the cluster-port client this member sends with (for other
// cluster routes).
func (m *Membership) Client() *clusternet.Client { return m.client }

// Self is this node's address.
func (m *Membership) Self() string { return m.cfg.Self }

// Members is the member list, sorted.
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.members...)
}

// SetMembers replaces the member list at run time: it must contain this
// node (see CheckMembers). New members start DOWN until they answer a
// probe; removed ones are forgotten and their cluster requests refused.
// Listeners are told when the list changed.
func (m *Membership) SetMembers(members []string) error {
	if err := CheckMembers(m.cfg.Self, members); err != nil {
		return err
	}
	sorted := Sorted(members)
	m.mu.Lock()
	if SameList(sorted, m.members) {
		m.mu.Unlock()
		return nil
	}
	old := m.members
	m.members = sorted
	m.det.SetMembers(sorted)
	keep := map[string]bool{}
	for _, x := range sorted {
		keep[x] = true
	}
	for x := range m.agreed {
		if !keep[x] {
			delete(m.agreed, x)
		}
	}
	for x := range m.peerRep {
		if !keep[x] {
			delete(m.peerRep, x)
		}
	}
	m.mu.Unlock()
	if m.srv != nil {
		m.srv.SetMembers(sorted)
	}
	m.log.Info("member list changed", "from", strings.Join(old, ","), "to", strings.Join(sorted, ","))
	m.changed()
	return nil
}

// SetFormed tells the membership whether this member's Raft group has
// run (reported to peers; such a member tolerates another member list).
func (m *Membership) SetFormed(fn func() bool) {
	m.mu.Lock()
	m.formed = fn
	m.mu.Unlock()
}

// SetReady tells the membership whether this member is caught up and
// serving (reported to peers).
func (m *Membership) SetReady(fn func() bool) {
	m.mu.Lock()
	m.ready = fn
	m.mu.Unlock()
}

// PeerFormed reports whether any peer's last report said its Raft group
// is formed.
func (m *Membership) PeerFormed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.peerRep {
		if r.Formed {
			return true
		}
	}
	return false
}

// PeerReady reports whether member's last report said it is caught up
// and serving, and it is UP now.
func (m *Membership) PeerReady(member string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peerRep[member].Ready && m.det.State(member) == Up
}

// isFormed: this member's Raft group exists (false without a hook).
func (m *Membership) isFormed() bool {
	m.mu.Lock()
	fn := m.formed
	m.mu.Unlock()
	return fn != nil && fn()
}

// own is this node's report.
func (m *Membership) own() report {
	m.mu.Lock()
	out := report{Member: m.cfg.Self, State: m.det.State(m.cfg.Self), Members: append([]string(nil), m.members...)}
	formed, ready := m.formed, m.ready
	m.mu.Unlock()
	out.Formed = formed != nil && formed()
	out.Ready = ready != nil && ready()
	return out
}

// acceptable checks a peer's report: it must come from peer and, until
// this member's Raft group is formed, carry the same member list.
func (m *Membership) acceptable(peer string, in report) error {
	if in.Member != peer {
		return m.listError(peer, in)
	}
	if !SameList(in.Members, m.Members()) && !m.isFormed() {
		return m.listError(peer, in)
	}
	return nil
}

// View returns every member's state, sorted by address.
func (m *Membership) View() []MemberView {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.det.View()
}

// Serving returns the members in state UP or SUSPICIOUS, sorted.
func (m *Membership) Serving() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.det.Serving()
}

// State returns member's state ("" for a non-member).
func (m *Membership) State(member string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.det.State(member)
}

// Agreed returns how many members (this node included) have confirmed,
// by a probe or a report, that they run with this node's member list.
func (m *Membership) Agreed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.agreed)
}

// OnChange adds a listener called after any member's state changes
// (outside the lock, on the probing or answering goroutine; must not
// block). Call before Start.
func (m *Membership) OnChange(fn func()) {
	m.mu.Lock()
	m.listeners = append(m.listeners, fn)
	m.mu.Unlock()
}

// SetSelfInfo adds fn's entries to this node's extendInfo in the nodes
// routes (the Raft group's leader, for one). Call before Start.
func (m *Membership) SetSelfInfo(fn func() map[string]any) {
	m.mu.Lock()
	m.selfInfo = fn
	m.mu.Unlock()
}

// Start begins probing the peers; it does not block.
func (m *Membership) Start() error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("membership: already started")
	}
	m.started = true
	m.mu.Unlock()
	go m.loop()
	return nil
}

// Stop ends the probing, waiting until ctx ends at most. Idempotent.
func (m *Membership) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() { close(m.stop) })
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leave marks this node LEAVING and tells every peer at once (best effort,
// bounded by ctx), so they stop counting it before it goes.
func (m *Membership) Leave(ctx context.Context) {
	m.mu.Lock()
	changed := m.det.SetSelf(Leaving)
	m.mu.Unlock()
	if changed {
		m.changed()
	}
	m.round(ctx)
}

func (m *Membership) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	m.round(ctx)
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.round(ctx)
		}
	}
}

// round probes every peer once, in parallel.
func (m *Membership) round(ctx context.Context) {
	out := m.own()
	var wg sync.WaitGroup
	for _, peer := range out.Members {
		if peer == m.cfg.Self {
			continue
		}
		wg.Add(1)
		go func(peer string) {
			defer wg.Done()
			var in report
			err := m.client.Call(ctx, peer, ReportPath, out, &in)
			if err == nil {
				err = m.acceptable(peer, in)
			}
			m.observe(peer, in, err)
		}(peer)
	}
	wg.Wait()
}

func (m *Membership) listError(peer string, in report) error {
	if in.Member != peer {
		return fmt.Errorf("%w: %s answered as %q", ErrMemberList, peer, in.Member)
	}
	return fmt.Errorf("%w: member %s runs with [%s], this node %s with [%s]", ErrMemberList,
		peer, strings.Join(Sorted(in.Members), ","), m.cfg.Self, strings.Join(m.Members(), ","))
}

// observe applies one outcome about peer to the detector, logs problems
// once per change, and tells the listeners of a state change.
func (m *Membership) observe(peer string, in report, err error) {
	now := time.Now()
	m.mu.Lock()
	if m.det.State(peer) == "" { // not (or no longer) a member
		m.mu.Unlock()
		return
	}
	var changed bool
	if err == nil {
		changed = m.det.Success(peer, in.State, now)
		m.peerRep[peer] = in // before agreed: a bootstrapper that sees the agreement also sees Formed
		m.agreed[peer] = true
	} else {
		changed = m.det.Failure(peer, err.Error(), now)
		if errors.Is(err, ErrMemberList) || errors.Is(err, clusternet.ErrNotMember) || errors.Is(err, clusternet.ErrVersion) {
			delete(m.agreed, peer)
		}
	}
	state := m.det.State(peer)
	problem := ""
	if err != nil {
		problem = err.Error()
	}
	logIt := m.logged[peer] != problem
	m.logged[peer] = problem
	m.mu.Unlock()
	result := "ok"
	if err != nil {
		result = "fail"
	}
	m.met.probes.WithLabelValues(result).Inc()
	switch {
	case err != nil && logIt && errors.Is(err, clusternet.ErrNotMember) && !m.isFormed():
		// A member started before the others list it (a run-time join):
		// normal until the leader adds it.
		m.log.Warn("not (yet) in this member's list: waiting to be added (or check the lists)", "member", peer, "err", err)
	case err != nil && logIt && (errors.Is(err, ErrMemberList) || errors.Is(err, clusternet.ErrNotMember) || errors.Is(err, clusternet.ErrVersion)):
		m.log.Error("member refused: the cluster will not form with it", "member", peer, "err", err)
	case err != nil && logIt:
		m.log.Warn("member probe failed", "member", peer, "state", state, "err", err)
	case err == nil && logIt:
		m.log.Info("member answers again", "member", peer, "state", state)
	}
	if changed {
		m.log.Info("member state", "member", peer, "state", state)
		m.changed()
	}
}

func (m *Membership) changed() {
	m.mu.Lock()
	ls := m.listeners
	m.mu.Unlock()
	for _, l := range ls {
		l()
	}
}

// onReport answers a peer's probe with this node's state and list, and
// takes the probe as a sign of the peer's life. A peer with another list
// is refused (409), naming both lists.
func (m *Membership) onReport(_ context.Context, from string, body []byte) (any, error) {
	var in report
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &clusternet.StatusError{Status: http.StatusBadRequest, Err: fmt.Errorf("membership: undecodable report from %s: %v", from, err)}
	}
	if err := m.acceptable(from, in); err != nil {
		m.observe(from, report{}, err)
		return nil, &clusternet.StatusError{Status: http.StatusConflict, Err: err}
	}
	m.observe(from, in, nil)
	return m.own(), nil
}

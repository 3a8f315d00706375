// Package raftstore is the registry's CP store: persistent instances,
// instance overrides (operator offline, weight, metadata) and service
// metadata, replicated through hashicorp/raft with a BoltDB log and a file
// snapshot store. Today it runs as one self-bootstrapped node; peers join
// later through the same Config (bind address, server ID, data dir).
//
// The FSM's state is the source of truth. After every applied entry and
// after a snapshot restore it hands the complete state of each changed
// service to an Applier (the naming core), which serves queries and pushes.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// Store is a running Raft node with the registry's FSM. Its methods are
// safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	fsm     *fsm
	metrics *metrics
	raft    *raft.Raft
	bolt    *raftboltdb.BoltStore
	trans   io.Closer
	addr    string // transport address

	leading   atomic.Bool   // leader and caught up (barrier passed)
	readyOnce sync.Once     // closes readyCh
	readyCh   chan struct{} // closed the first time the node leads
	done      chan struct{} // closed by Stop
	forward   Forwarder     // set before writes; nil: followers refuse writes
	wg        sync.WaitGroup
	stopOnce  sync.Once
	stopErr   error
}

// Open validates cfg, opens (or creates) the data directory, bootstraps a
// single-node cluster when cfg.Bootstrap and there is no state yet, and
// starts Raft. It does not wait for leadership: writes wait for it (up to
// ApplyTimeout) and Ready reports it. The Applier receives the replayed
// state as Raft restores the snapshot (already inside Open) and re-applies
// the log (once leader), so it must be usable before Open is called; after
// the first Ready it holds everything committed. reg may be nil (no
// metrics).
func Open(cfg Config, logger *slog.Logger, a Applier, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("subsystem", "raftstore")
	s := &Store{cfg: cfg, log: logger, readyCh: make(chan struct{}), done: make(chan struct{})}
	f := newFSM(a, nil)
	m, err := newMetrics(reg, f.counts)
	if err != nil {
		return nil, fmt.Errorf("raftstore: metrics: %w", err)
	}
	f.metrics = m
	s.fsm, s.metrics = f, m

	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftstore: data dir: %w", err)
	}
	hl := newHCLogger(logger)
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.Dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open log store: %w", err)
	}
	s.bolt = bolt
	fail := func(err error) (*Store, error) {
		if s.trans != nil {
			_ = s.trans.Close()
		}
		_ = bolt.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, hl)
	if err != nil {
		return fail(fmt.Errorf("raftstore: snapshot store: %w", err))
	}
	var trans raft.Transport
	if cfg.BindAddr == "" {
		_, it := raft.NewInmemTransport("")
		trans, s.trans = it, it
	} else {
		var adv net.Addr
		if cfg.AdvertiseAddr != "" {
			if adv, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
				return fail(fmt.Errorf("%w: AdvertiseAddr: %v", ErrConfig, err))
			}
		}
		nt, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 3, 10*time.Second, hl)
		if err != nil {
			return fail(fmt.Errorf("raftstore: transport on %s: %w", cfg.BindAddr, err))
		}
		trans, s.trans = nt, nt
	}

	s.addr = string(trans.LocalAddr())
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ServerID)
	rc.Logger = hl
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrConfig, err))
	}

	has, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		return fail(fmt.Errorf("raftstore: read state: %w", err))
	}
	if !has && cfg.Bootstrap && len(cfg.Peers) == 0 {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, conf); err != nil {
			return fail(fmt.Errorf("raftstore: bootstrap: %w", err))
		}
		logger.Info("bootstrapped single-node cluster", "id", cfg.ServerID, "addr", trans.LocalAddr())
	}
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("raftstore: start raft: %w", err))
	}
	s.raft = r
	m.setState(r.State())
	s.wg.Add(1)
	go s.watchLeadership()
	return s, nil
}

// watchLeadership marks the store ready once it leads and a barrier has
// applied every earlier entry, and not ready when leadership is lost.
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	obs := make(chan raft.Observation, 8)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	})
	s.raft.RegisterObserver(o)
	defer s.raft.DeregisterObserver(o)
	check := func() {
		st := s.raft.State()
		s.metrics.setState(st)
		if st != raft.Leader {
			s.leading.Store(false)
			return
		}
		if s.leading.Load() {
			return
		}
		if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
			s.log.Warn("barrier after election failed", "err", err)
			return
		}
		if s.raft.State() == raft.Leader {
			s.leading.Store(true)
			s.readyOnce.Do(func() { close(s.readyCh) })
			s.log.Info("leader and ready")
		}
	}
	check()
	tick := time.NewTicker(time.Second) // re-check: observations may be dropped
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-obs:
			check()
		case <-tick.C:
			check()
		}
	}
}

// Leading reports whether this node leads and has applied every entry
// committed before its term (leader-only work runs while it holds: the
// health prober).
func (s *Store) Leading() bool { return s.leading.Load() }

// Ready reports whether this node is caught up and serving: the leader
// once Leading, a follower once it knows the leader and has applied every
// entry it knows to be committed. Writes on a ready follower are forwarded
// to the leader (with a Forwarder).
func (s *Store) Ready() bool {
	if s.leading.Load() {
		return true
	}
	select {
	case <-s.done:
		return false
	default:
	}
	if s.raft.State() != raft.Follower {
		return false
	}
	if _, id := s.raft.LeaderWithID(); id == "" {
		return false
	}
	return s.raft.AppliedIndex() >= s.raft.CommitIndex()
}

// WaitReady waits up to d for Ready.
func (s *Store) WaitReady(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond) // followers become ready without an event
	defer tick.Stop()
	for !s.Ready() {
		select {
		case <-s.readyCh:
		case <-s.done:
			return ErrStopped
		case <-t.C:
			return fmt.Errorf("%w: not caught up with a leader within %s", ErrNotLeader, d)
		case <-tick.C:
		}
	}
	return nil
}

// Forwarder sends an encoded log entry to the leader (by its ServerID)
// and returns the leader's answer: nil, a domain error or a store error,
// rebuilt with ErrorFrom. Called from write goroutines, concurrently.
type Forwarder interface {
	Forward(ctx context.Context, leaderID string, entry []byte) error
}

// SetForwarder makes writes on a follower go to the leader through f.
// Call before the first write.
func (s *Store) SetForwarder(f Forwarder) { s.forward = f }

// Bootstrap bootstraps a node without state with every peer of
// Config.Peers as a voter (the same configuration on every member, so
// they form one cluster); a node with state, or already bootstrapped, is
// left as it is. Call once the members agree on the list.
func (s *Store) Bootstrap() error { return s.BootstrapPeers(s.cfg.Peers) }

// BootstrapPeers is Bootstrap with the given voters (the member list as
// it is when the members agree, which may have been re-read since Open).
func (s *Store) BootstrapPeers(peers []Peer) error {
	if len(peers) == 0 {
		return nil
	}
	conf := raft.Configuration{}
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
	}
	err := s.raft.BootstrapCluster(conf).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftstore: bootstrap: %w", err)
	}
	s.log.Info("bootstrapped the cluster", "voters", len(conf.Servers))
	return nil
}

// ApplyEntry applies an encoded entry sent by a follower (Forwarder's
// other end): only on the leader, never forwarded again.
func (s *Store) ApplyEntry(entry []byte) error {
	if len(entry) == 0 {
		return fmt.Errorf("%w: empty entry", ErrInvalidParam)
	}
	if _, ok := dispatch[entry[0]]; !ok {
		return fmt.Errorf("%w: unknown entry type %d", ErrInvalidParam, entry[0])
	}
	return s.applyEncoded(entry, false)
}

// apply proposes one entry and returns the FSM's domain error, or a store
// error (ErrNotLeader, ErrTimeout, ErrStopped).
func (s *Store) apply(typ byte, body any) error {
	select {
	case <-s.done:
		return ErrStopped
	default:
	}
	b, err := encode(typ, body)
	if err != nil {
		return err
	}
	return s.applyEncoded(b, true)
}

// applyEncoded applies entry b here when this node leads, or, when
// forward is allowed, sends it to the leader; without a leader it waits
// for one, up to ApplyTimeout. A leader that loses leadership while the
// entry commits tries again through the next leader when forward is
// allowed (the entry may have committed: at least once, as a forwarded
// write whose leader died; callers never see a transient "not leader").
func (s *Store) applyEncoded(b []byte, forward bool) error {
	start := time.Now()
	for {
		err := s.applyOnce(b, forward, start)
		if !forward || s.forward == nil || !errors.Is(err, errLostLeadership) || time.Since(start) >= s.cfg.ApplyTimeout {
			return err
		}
		s.metrics.forwarded("retry")
		select {
		case <-s.done:
			return ErrStopped
		case <-time.After(20 * time.Millisecond): // the next election
		}
	}
}

// errLostLeadership marks an ErrNotLeader of a leader that lost
// leadership while the entry was being committed.
var errLostLeadership = errors.New("leadership lost while committing")

func (s *Store) applyOnce(b []byte, forward bool, start time.Time) error {
	typ := b[0]
	for !s.leading.Load() {
		addr, id := s.raft.LeaderWithID()
		if id != "" && string(id) != s.cfg.ServerID {
			if !forward || s.forward == nil {
				return fmt.Errorf("%w: the leader is %s at %s", ErrNotLeader, id, addr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout-time.Since(start))
			err := s.forward.Forward(ctx, string(id), b)
			cancel()
			if errors.Is(err, ErrNotLeader) && time.Since(start) < s.cfg.ApplyTimeout {
				// The leader changed (or died) under us: ask again soon.
				s.metrics.forwarded("retry")
				select {
				case <-s.done:
					return ErrStopped
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			s.metrics.forwarded(ErrorCode(err))
			return err
		}
		select {
		case <-s.done:
			return ErrStopped
		case <-time.After(10 * time.Millisecond): // waiting for an election
		}
		if time.Since(start) >= s.cfg.ApplyTimeout {
			return fmt.Errorf("%w: no leader within %s", ErrNotLeader, s.cfg.ApplyTimeout)
		}
	}
	left := s.cfg.ApplyTimeout - time.Since(start)
	if left <= 0 {
		return ErrTimeout
	}
	fut := s.raft.Apply(b, left)
	if err := fut.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			return fmt.Errorf("%w: %w: %v", ErrNotLeader, errLostLeadership, err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return fmt.Errorf("%w: %v", ErrTimeout, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return ErrStopped
		}
		return fmt.Errorf("raftstore: apply: %w", err)
	}
	if s.metrics != nil {
		s.metrics.applySeconds.WithLabelValues(cmdNames[typ]).Observe(time.Since(start).Seconds())
	}
	if e, ok := fut.Response().(error); ok && e != nil {
		return e
	}
	return nil
}

// PutInstance registers or replaces a persistent instance (keyed by ip,
// port and cluster; cluster "" means DEFAULT). An ephemeral instance, or a
// service created ephemeral, gives ErrKindClash.
func (s *Store) PutInstance(key naming.ServiceKey, inst naming.Instance) error {
	return s.apply(cmdPutInstance, putInstanceCmd{Key: key, Instance: inst})
}

// RemoveInstance deregisters a persistent instance; removing an unknown one
// is not an error.
func (s *Store) RemoveInstance(key naming.ServiceKey, a naming.Addr) error {
	return s.apply(cmdRemoveInstance, addrCmd{Key: key, Addr: a})
}

// PutOverride sets (replaces) the override of one instance address.
func (s *Store) PutOverride(key naming.ServiceKey, o naming.Override) error {
	return s.apply(cmdPutOverride, putOverrideCmd{Key: key, Override: o})
}

// RemoveOverride drops the override of one instance address.
func (s *Store) RemoveOverride(key naming.ServiceKey, a naming.Addr) error {
	return s.apply(cmdRemoveOverride, addrCmd{Key: key, Addr: a})
}

// SetEnabledByIP is graceful offline (enabled=false) and its reverse, in one
// entry: every persistent instance and every override of ip (and port,
// when not 0) in the namespace, plus targets (ephemeral instances the
// caller found in the naming view), gets Enabled=false; or, with
// enabled=true, loses the Enabled flag of its override (the override goes
// when nothing else is left in it).
func (s *Store) SetEnabledByIP(namespace, ip string, port int, enabled bool, targets []Target) error {
	return s.apply(cmdSetEnabledByIP, setEnabledByIPCmd{Namespace: namespace, IP: ip, Port: port, Enabled: enabled, Targets: targets})
}

// PutServiceMeta sets a service's metadata. Its Ephemeral flag is fixed at
// first write: changing it, or marking ephemeral a service with persistent
// instances, gives ErrKindClash.
func (s *Store) PutServiceMeta(key naming.ServiceKey, m naming.ServiceMeta) error {
	return s.apply(cmdPutServiceMeta, putServiceMetaCmd{Key: key, Meta: m})
}

// SetHealth records the health prober's verdict on a persistent instance
// through the log, so that every member serves it.
func (s *Store) SetHealth(key naming.ServiceKey, a naming.Addr, healthy bool) error {
	return s.apply(cmdSetHealth, setHealthCmd{Key: key, Addr: a, Healthy: healthy})
}

// RemoveService drops a service's metadata and overrides; ErrServiceNotEmpty
// while it has persistent instances.
func (s *Store) RemoveService(key naming.ServiceKey) error {
	return s.apply(cmdRemoveService, serviceCmd{Key: key})
}

// Instances returns the service's persistent instances, sorted by address.
func (s *Store) Instances(key naming.ServiceKey) []naming.Instance { return s.fsm.instances(key) }

// Overrides returns the service's overrides, sorted by address.
func (s *Store) Overrides(key naming.ServiceKey) []naming.Override { return s.fsm.overrides(key) }

// ServiceMeta returns the service's stored metadata, if any.
func (s *Store) ServiceMeta(key naming.ServiceKey) (naming.ServiceMeta, bool) {
	return s.fsm.serviceMeta(key)
}

// Services returns every service the store holds state for, sorted.
func (s *Store) Services() []naming.ServiceKey { return s.fsm.serviceKeys() }

// AllInstances returns every persistent instance with its service (the
// health prober's targets).
func (s *Store) AllInstances() []Keyed { return s.fsm.allInstances() }

// AddVoter adds a peer (its ServerID and Raft address) to the cluster; on
// the leader only. Peers start with Bootstrap=false and an empty Dir.
func (s *Store) AddVoter(id, addr string) error {
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return fmt.Errorf("raftstore: add voter %s: %w", id, err)
	}
	return nil
}

// Server is one server of the Raft configuration.
type Server struct {
	ID    string // its ServerID (a member's address)
	Addr  string // its Raft transport address
	Voter bool   // a voter, else a non-voter (catching up)
}

// Configuration returns the latest Raft configuration this node knows
// (committed or not), in its order; empty before the group is formed.
func (s *Store) Configuration() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: configuration: %w", err)
	}
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Addr: string(sv.Address), Voter: sv.Suffrage == raft.Voter})
	}
	return out, nil
}

// Formed reports whether this node has a Raft configuration (it was
// bootstrapped, or a leader replicated one to it).
func (s *Store) Formed() bool {
	c, err := s.Configuration()
	return err == nil && len(c) > 0
}

// Elected reports whether this node's group has run: it has a
// configuration and an entry beyond the bootstrap one (a leader appends
// one when elected). A group only bootstrapped may be bootstrapped again
// by the other members of the same list (the same configuration: one
// cluster); one that has run may only be joined.
func (s *Store) Elected() bool { return s.Formed() && s.raft.LastIndex() > 1 }

// voters counts the voters of the latest configuration.
func (s *Store) voters() int {
	c, _ := s.Configuration()
	n := 0
	for _, sv := range c {
		if sv.Voter {
			n++
		}
	}
	return n
}

// AddNonvoter adds a server that receives the log but does not vote (a
// joining member catching up); on the leader only.
func (s *Store) AddNonvoter(id, addr string) error {
	return s.configChange("add non-voter "+id, s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout))
}

// RemoveServer removes a server from the configuration; on the leader
// only (a leader removing itself steps down once it is committed).
func (s *Store) RemoveServer(id string) error {
	return s.configChange("remove "+id, s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout))
}

// TransferLeadership hands leadership to another voter and returns once
// it did (or failed).
func (s *Store) TransferLeadership() error {
	return s.configChange("transfer leadership", s.raft.LeadershipTransfer())
}

func (s *Store) configChange(what string, f raft.Future) error {
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %s: %v", ErrNotLeader, what, err)
		}
		return fmt.Errorf("raftstore: %s: %w", what, err)
	}
	return nil
}

// Addr is this node's Raft transport address.
func (s *Store) Addr() string { return s.addr }

// Leader returns the current leader's server ID and address ("" when
// none is known).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Snapshot forces a snapshot now (tests, operators).
func (s *Store) Snapshot() error { return s.raft.Snapshot().Error() }

// Stop shuts Raft down and closes the transport and the log store. It is
// idempotent; Raft's shutdown is bounded by its own timers.
func (s *Store) Stop() error {
	s.stopOnce.Do(func() {
		if s.leading.Load() && s.voters() > 1 {
			// Graceful stop of the leader: hand leadership over first, so
			// writes pause for one transfer instead of an election timeout.
			if err := s.raft.LeadershipTransfer().Error(); err != nil {
				s.log.Warn("leadership transfer", "err", err)
			} else {
				s.log.Info("leadership transferred")
			}
		}
		close(s.done)
		err := s.raft.Shutdown().Error()
		s.wg.Wait()
		s.metrics.setState(raft.Shutdown)
		s.leading.Store(false)
		if nt, ok := s.trans.(*raft.NetworkTransport); ok {
			nt.CloseStreams() // pooled connections: lets peers' readers end
		}
		if cerr := s.trans.Close(); err == nil {
			err = cerr
		}
		if cerr := s.bolt.Close(); err == nil {
			err = cerr
		}
		s.stopErr = err
	})
	return s.stopErr
}

// newHCLogger routes hashicorp/raft's hclog output to slog.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: slogWriter{l}, DisableTime: true})
}

// slogWriter logs each write (hclog writes one line per call) as a record,
// at the level hclog put in the line.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		level := slog.LevelInfo
		switch {
		case strings.HasPrefix(line, "[ERROR]"):
			level = slog.LevelError
		case strings.HasPrefix(line, "[WARN]"):
			level = slog.LevelWarn
		case strings.HasPrefix(line, "[DEBUG]"), strings.HasPrefix(line, "[TRACE]"):
			level = slog.LevelDebug
		}
		w.l.Log(context.Background(), level, line, "from", "raft")
	}
	return len(p), nil
}

// ReadIndexer asks the leader (by its ServerID) for its read index:
// ReadIndex run there. The cluster transport implements it next to
// Forwarder; without one a follower cannot serve a linearizable read.
type ReadIndexer interface {
	ReadIndex(ctx context.Context, leaderID string) (uint64, error)
}

// ReadIndex is the leader's half of a linearizable read (after Raft's
// ReadIndex, §6.4 of the thesis): the index of the last command this
// leader applied, returned once a quorum has confirmed it still leads, so
// no newer leader can have acknowledged a write this index does not cover.
// On a follower it is ErrNotLeader.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if !s.leading.Load() {
		return 0, fmt.Errorf("%w: read index asked of a follower", ErrNotLeader)
	}
	// Every acknowledged write was applied here before its caller got the
	// answer, so the last applied command covers them all; confirming the
	// leadership afterwards proves no newer leader acknowledged more.
	// hashicorp/raft may count an answer to a heartbeat sent just before
	// this call; a follower that answered it had heard from this leader
	// within the heartbeat interval and refuses to vote for anyone else
	// meanwhile, so no other leader can have acknowledged a write since.
	idx := s.fsm.applied.Load()
	done := make(chan error, 1)
	go func() { done <- s.raft.VerifyLeader().Error() }()
	select {
	case err := <-done:
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return idx, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: leadership not confirmed: %v", ErrTimeout, ctx.Err())
	case <-s.done:
		return 0, ErrStopped
	}
}

// Linearize makes the next local read linearizable: it gets the leader's
// read index (locally when leading, else through the ReadIndexer) and
// waits until this node has applied up to it. Reads without it are local
// and may lag the leader by the replication delay. Bounded by ctx and by
// ApplyTimeout.
func (s *Store) Linearize(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	var idx uint64
	var err error
	if s.leading.Load() {
		idx, err = s.ReadIndex(ctx)
	} else {
		_, id := s.raft.LeaderWithID()
		ri, ok := s.forward.(ReadIndexer)
		switch {
		case id == "":
			return fmt.Errorf("%w: no leader known for a linearizable read", ErrNotLeader)
		case !ok:
			return fmt.Errorf("%w: this node cannot ask the leader for a read index", ErrNotLeader)
		}
		idx, err = ri.ReadIndex(ctx, string(id))
	}
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for s.fsm.applied.Load() < idx {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: applied %d, read index %d: %v", ErrTimeout, s.fsm.applied.Load(), idx, ctx.Err())
		case <-s.done:
			return ErrStopped
		}
	}
	s.metrics.linearizedRead()
	return nil
}

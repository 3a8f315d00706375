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

	ready     atomic.Bool   // leader and caught up (barrier passed)
	readyOnce sync.Once     // closes readyCh
	readyCh   chan struct{} // closed the first time the node is ready
	done      chan struct{} // closed by Stop
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
	if !has && cfg.Bootstrap {
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
			s.ready.Store(false)
			return
		}
		if s.ready.Load() {
			return
		}
		if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
			s.log.Warn("barrier after election failed", "err", err)
			return
		}
		if s.raft.State() == raft.Leader {
			s.ready.Store(true)
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

// Ready reports whether this node accepts writes now (it leads and has
// applied every entry committed before its term).
func (s *Store) Ready() bool { return s.ready.Load() }

// WaitReady waits up to d for Ready.
func (s *Store) WaitReady(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.readyCh:
		return nil
	case <-s.done:
		return ErrStopped
	case <-t.C:
		return fmt.Errorf("%w: no leadership within %s", ErrNotLeader, d)
	}
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
	start := time.Now()
	if !s.ready.Load() {
		if addr, id := s.raft.LeaderWithID(); id != "" && string(id) != s.cfg.ServerID {
			return fmt.Errorf("%w: the leader is %s at %s", ErrNotLeader, id, addr)
		}
		if err := s.WaitReady(s.cfg.ApplyTimeout); err != nil {
			return err
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
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
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
		close(s.done)
		err := s.raft.Shutdown().Error()
		s.wg.Wait()
		s.metrics.setState(raft.Shutdown)
		s.ready.Store(false)
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

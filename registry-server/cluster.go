package registryserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/clusternet"
	"github.com/ferrysync/ferry/registry-server/distro"
	"github.com/ferrysync/ferry/registry-server/lifecycle"
	"github.com/ferrysync/ferry/registry-server/loader"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// A registry cluster member (Config.Members set) adds to the node: the
// cluster port (port+1001, clusternet) with the member probes
// (membership) and the Raft forwarding route, one Raft group over every
// member (server id = member address, transport on port-1000, bootstrapped
// from the member list once a majority agrees on it), and Nacos'
// /nacos/v1/core/cluster routes, and Distro (package distro) for
// ephemeral clients: the naming core's client changes go to the engine,
// its messages travel on the cluster port, its Mapper says who is
// responsible for beat-kept clients (grpcapi redirects, httpapi forwards),
// and expiry pauses while this member sees no majority.

// raftApplyPath is the cluster route of writes forwarded to the leader.
const raftApplyPath = "/ferry/cluster/v1/raft/apply"

// raftReadIndexPath: a follower asks the leader for its read index
// (linearizable reads).
const raftReadIndexPath = "/ferry/cluster/v1/raft/readindex"

// raftPortOf is a member's Raft address (host:port-1000).
func raftPortOf(member string) (string, error) {
	host, port, err := membership.SplitAddr(member)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(membership.PortsOf(port).Raft)), nil
}

// clusterRaftConfig turns the Raft config into a member's: its id is the
// member address, its transport is on port-1000 (bound on Bind, advertised
// on the member's host), and its peers are every member.
func clusterRaftConfig(cfg Config, rcfg raftstore.Config) raftstore.Config {
	self := cfg.Self()
	rcfg.ServerID = self
	rcfg.BindAddr = net.JoinHostPort(cfg.Bind, strconv.Itoa(membership.PortsOf(cfg.Port).Raft))
	rcfg.AdvertiseAddr, _ = raftPortOf(self) // validated
	rcfg.Bootstrap = false
	rcfg.Peers = nil
	for _, m := range cfg.Members {
		addr, _ := raftPortOf(m)
		rcfg.Peers = append(rcfg.Peers, raftstore.Peer{ID: m, Addr: addr})
	}
	return rcfg
}

// joinCluster adds the cluster parts to an opened node.
// distroPath is the cluster route of Distro's messages;
// distroSnapshotPath pages through a member's clients for a starting one.
const (
	distroPath         = "/ferry/cluster/v1/distro"
	distroSnapshotPath = "/ferry/cluster/v1/distro/snapshot"
)

// distroLoadWait bounds how long a starting member looks for a peer to
// load the ephemeral data from before it serves without (the first member
// of a cluster started alone; its peers fill it in through their verifies
// once they are up).
const distroLoadWait = 10 * time.Second

type snapshotRequest struct {
	After string `json:"after,omitempty"`
}

// distroLoader loads Distro's snapshot from a peer at start; the node
// refuses SDK connections and reports not ready until it is done.
type distroLoader struct {
	s      *Server
	dist   *distro.Runner
	client *clusternet.Client
	peers  []string
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (d *distroLoader) Start() error {
	go d.run()
	return nil
}

func (d *distroLoader) run() {
	defer close(d.done)
	defer d.s.loaded.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), distroLoadWait)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	fetch := func(ctx context.Context, peer, after string) (distro.SnapshotChunk, error) {
		var c distro.SnapshotChunk
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		defer ccancel()
		err := d.client.Call(cctx, peer, distroSnapshotPath, snapshotRequest{After: after}, &c)
		return c, err
	}
	for {
		n, peer, err := d.dist.Load(ctx, d.peers, fetch)
		if err == nil {
			d.log.Info("ephemeral data loaded from a peer before serving", "peer", peer, "clients", n,
				"took", time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			d.log.Warn("no peer answered a snapshot: serving without it; the peers' verifies fill this member in",
				"waited", time.Since(start).Round(time.Millisecond), "err", err)
			return
		case <-time.After(200 * time.Millisecond): // the peers' cluster ports may not be open yet
		}
	}
}

func (d *distroLoader) Stop(ctx context.Context) error {
	d.once.Do(func() { close(d.stop) })
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newDistro builds the Distro runner over the naming core: merged beats
// and 1.x writes of beat-kept clients go to the member it makes
// responsible, and expiry pauses while this member sees no majority.
func (s *Server) newDistro(cfg Config, logger *slog.Logger) (*distro.Runner, error) {
	client := clusternet.NewClient(cfg.Self(), 3*time.Second)
	send := func(ctx context.Context, to string, m distro.Message) error {
		return client.Call(ctx, to, distroPath, m, nil)
	}
	r, err := distro.NewRunner(distro.DefaultConfig(), cfg.Self(), cfg.Members, s.reg, send, 20*time.Millisecond, logger)
	if err != nil {
		return nil, fmt.Errorf("registryserver: %w", err)
	}
	s.grpc.SetResponsibility(r.Mapper())
	s.expiry.gate = r.CanRemove
	return r, nil
}

func (s *Server) joinCluster(cfg Config, store *raftstore.Store, dist *distro.Runner, logger *slog.Logger, prom prometheus.Registerer) error {
	self := cfg.Self()
	cnet := clusternet.NewServer(self, net.JoinHostPort(cfg.Bind, strconv.Itoa(membership.PortsOf(cfg.Port).Cluster)), cfg.Members)
	mem, err := membership.New(cfg.membershipConfig(), cnet, logger, prom)
	if err != nil {
		return fmt.Errorf("registryserver: %w", err)
	}
	fwd := forwarder{client: clusternet.NewClient(self, cfg.Raft.ApplyTimeout)}
	store.SetForwarder(fwd)
	cnet.Handle(raftApplyPath, func(_ context.Context, _ string, body []byte) (any, error) {
		var req applyRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		err := store.ApplyEntry(req.Entry)
		ans := applyAnswer{Code: raftstore.ErrorCode(err)}
		if err != nil {
			ans.Message = err.Error()
		}
		return ans, nil
	})
	cnet.Handle(raftReadIndexPath, func(ctx context.Context, _ string, _ []byte) (any, error) {
		idx, err := store.ReadIndex(ctx)
		ans := readIndexAnswer{Index: idx, Code: raftstore.ErrorCode(err)}
		if err != nil {
			ans.Message = err.Error()
		}
		return ans, nil
	})
	mem.SetSelfInfo(func() map[string]any {
		id, addr := store.Leader()
		var group, nonVoters []string
		if conf, err := store.Configuration(); err == nil {
			for _, sv := range conf {
				if sv.Voter {
					group = append(group, sv.Addr)
				} else {
					nonVoters = append(nonVoters, sv.ID)
				}
			}
		}
		// Nacos' raftMetaData shape, with Ferry's one group.
		return map[string]any{"raftMetaData": map[string]any{"metaDataMap": map[string]any{
			"ferry_registry": map[string]any{"leader": addr, "leaderMember": id, "raftGroupMember": membership.Sorted(group),
				"ferryNonVoters": membership.Sorted(nonVoters)},
		}}}
	})
	mem.SetFormed(store.Elected)
	mem.SetReady(func() bool { return store.Ready() && s.loaded.Load() })
	changer := &memberChanger{self: self, mem: mem, store: store, client: clusternet.NewClient(self, cfg.Raft.ApplyTimeout), log: s.log}
	cnet.Handle(membersPath, changer.serve)
	s.changer = changer
	cnet.Handle(distroPath, func(_ context.Context, from string, body []byte) (any, error) {
		var m distro.Message
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		dist.Receive(from, m)
		return struct{}{}, nil
	})
	bal, err := loader.New(cfg.Balance, s.grpc, mem, mem.Client(), logger, prom)
	if err != nil {
		return fmt.Errorf("registryserver: %w", err)
	}
	bal.HandleCluster(cnet)
	s.balancer = bal
	mem.OnChange(func() {
		if err := dist.SetMembers(mem.Members(), mem.Serving()); err != nil {
			s.log.Error("distro member list", "err", err)
		}
		bal.MembersChanged()
	})
	cnet.Handle(distroSnapshotPath, func(_ context.Context, _ string, body []byte) (any, error) {
		var req snapshotRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, &clusternet.StatusError{Status: http.StatusBadRequest, Err: fmt.Errorf("distro snapshot: undecodable request: %v", err)}
		}
		return dist.Snapshot(req.After, distro.SnapshotChunkSize), nil
	})
	var peers []string
	for _, m := range membership.Sorted(cfg.Members) {
		if m != self {
			peers = append(peers, m)
		}
	}
	s.grpc.SetStarting(func() bool { return !s.loaded.Load() })
	s.life.Add(lifecycle.Service, "distro snapshot load", &distroLoader{s: s, dist: dist, client: clusternet.NewClient(self, 3*time.Second),
		peers: peers, log: s.log, stop: make(chan struct{}), done: make(chan struct{})})
	s.Mount("/nacos/v1/core/cluster/", s.auth.Guard(mem.Handler(), s.cfg.HTTP.MaxBodyBytes)) // operator routes: loopback or admin
	s.Mount("POST /nacos/v1/core/cluster/server/leave", s.auth.Guard(changer.changeHandler(false), s.cfg.HTTP.MaxBodyBytes))
	s.Mount("POST /nacos/v1/core/cluster/server/join", s.auth.Guard(changer.changeHandler(true), s.cfg.HTTP.MaxBodyBytes))
	s.members = mem
	s.life.Add(lifecycle.Service, "membership", mem)
	s.life.Add(lifecycle.Service, "distro", dist)
	s.life.Add(lifecycle.Service, "raft bootstrap", newBootstrapper(mem, store, s.log))
	s.life.Add(lifecycle.Service, "member list follower", &membersFollower{ch: changer, dist: dist, every: 200 * time.Millisecond,
		stop: make(chan struct{}), done: make(chan struct{})})
	s.life.Add(lifecycle.Listener, "cluster port", cnet)
	return nil
}

// Members is the node's membership (nil on a single node).
func (s *Server) Members() *membership.Membership { return s.members }

type applyRequest struct {
	Entry []byte `json:"entry"`
}

type applyAnswer struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// forwarder sends a follower's write to the leader over the cluster port
// (the leader's Raft server id is its member address).
type forwarder struct{ client *clusternet.Client }

func (f forwarder) Forward(ctx context.Context, leaderID string, entry []byte) error {
	var ans applyAnswer
	if err := f.client.Call(ctx, leaderID, raftApplyPath, applyRequest{Entry: entry}, &ans); err != nil {
		// The leader is unreachable (it may just have died): the store
		// looks for the next leader until its ApplyTimeout.
		return fmt.Errorf("%w: forward to %s: %v", raftstore.ErrNotLeader, leaderID, err)
	}
	return raftstore.ErrorFrom(ans.Code, ans.Message)
}

type readIndexAnswer struct {
	Index   uint64 `json:"index"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ReadIndex asks the leader for its read index (raftstore.ReadIndexer).
func (f forwarder) ReadIndex(ctx context.Context, leaderID string) (uint64, error) {
	var ans readIndexAnswer
	if err := f.client.Call(ctx, leaderID, raftReadIndexPath, struct{}{}, &ans); err != nil {
		return 0, fmt.Errorf("%w: read index from %s: %v", raftstore.ErrNotLeader, leaderID, err)
	}
	return ans.Index, raftstore.ErrorFrom(ans.Code, ans.Message)
}

// raftReporter writes the prober's verdicts through the Raft log.
type raftReporter struct {
	store *raftstore.Store
	log   *slog.Logger
}

func (r raftReporter) SetHealth(key naming.ServiceKey, a naming.Addr, healthy bool) {
	if err := r.store.SetHealth(key, a, healthy); err != nil {
		r.log.Warn("health verdict not recorded", "service", key.Grouped(), "ip", a.IP, "port", a.Port, "healthy", healthy, "err", err)
	}
}

// bootstrapper bootstraps the Raft group once a majority of the members
// (this node included) confirmed they run with this node's member list: a
// member started with another list never bootstraps a cluster of its own.
// A member that hears from a peer whose group has already run (elected a
// leader: a member added at run time) never bootstraps: the leader adds
// it. (A peer that only bootstrapped the same list and died before an
// election does not stop the others from bootstrapping the same
// configuration and electing a leader among themselves.)
type bootstrapper struct {
	mem   *membership.Membership
	store *raftstore.Store
	log   *slog.Logger
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newBootstrapper(mem *membership.Membership, store *raftstore.Store, log *slog.Logger) *bootstrapper {
	return &bootstrapper{mem: mem, store: store, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

func (b *bootstrapper) Start() error {
	go func() {
		defer close(b.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		waiting := time.Now()
		for {
			quorum := len(b.mem.Members())/2 + 1
			if b.store.Formed() {
				return
			}
			if b.mem.PeerFormed() {
				b.log.Info("a peer's Raft group is formed: joining it (the leader adds this member) instead of bootstrapping")
				return
			}
			if n := b.mem.Agreed(); n >= quorum {
				var peers []raftstore.Peer
				for _, m := range b.mem.Members() {
					addr, _ := raftPortOf(m) // validated
					peers = append(peers, raftstore.Peer{ID: m, Addr: addr})
				}
				if err := b.store.BootstrapPeers(peers); err != nil {
					b.log.Error("raft bootstrap", "err", err)
				}
				return
			} else if time.Since(waiting) > 30*time.Second {
				b.log.Warn("waiting for a majority of the members to agree on the member list before forming the Raft group",
					"agreed", n, "need", quorum)
				waiting = time.Now()
			}
			select {
			case <-b.stop:
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (b *bootstrapper) Stop(ctx context.Context) error {
	b.once.Do(func() { close(b.stop) })
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

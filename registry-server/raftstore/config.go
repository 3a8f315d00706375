package raftstore

import (
	"fmt"
	"time"
)

// Config configures the Raft store. Peers come later: the bind address,
// server ID and data directory are what a member needs to join a cluster.
type Config struct {
	// Dir holds raft.db (BoltDB log and stable store) and snapshots/.
	// Required.
	Dir string
	// ServerID is this node's stable Raft server ID. Required.
	ServerID string
	// BindAddr is the TCP address of the Raft transport ("127.0.0.1:7848",
	// Nacos' port-1000 convention). Empty means an in-memory transport: a
	// single node that can never have peers (tests, embedded demo).
	BindAddr string
	// AdvertiseAddr is the address peers dial; empty means the bound
	// address.
	AdvertiseAddr string
	// Bootstrap makes a node that finds no existing state bootstrap a
	// one-voter cluster of itself. Nodes that will join an existing cluster
	// set it to false. Ignored when Peers is set.
	Bootstrap bool
	// Peers, when set, is the whole cluster (this node included, by
	// ServerID): Open then bootstraps nothing; Bootstrap(), called once the
	// members agree on the list, bootstraps a node without state with all
	// of them as voters, the same configuration on every member.
	Peers []Peer
	// ApplyTimeout bounds one write: waiting for leadership, enqueueing and
	// committing.
	ApplyTimeout time.Duration
	// SnapshotRetain is how many snapshots to keep on disk.
	SnapshotRetain int
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks SnapshotThreshold.
	SnapshotInterval time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are Raft's
	// timers (hashicorp/raft's Config). A single node becomes leader after
	// about HeartbeatTimeout.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
}

// Peer is one voter of the cluster.
type Peer struct {
	ID   string // its ServerID
	Addr string // its Raft transport address
}

// DefaultConfig returns a single-node configuration that bootstraps itself
// on first start. Dir is left empty: the caller must set it.
func DefaultConfig() Config {
	return Config{
		ServerID:           "ferry-registry-1",
		Bootstrap:          true,
		ApplyTimeout:       5 * time.Second,
		SnapshotRetain:     2,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is empty", ErrConfig)
	case c.ServerID == "":
		return fmt.Errorf("%w: ServerID is empty", ErrConfig)
	case len(c.Peers) > 0 && c.BindAddr == "":
		return fmt.Errorf("%w: Peers need a BindAddr (the TCP transport)", ErrConfig)
	case c.ApplyTimeout <= 0:
		return fmt.Errorf("%w: ApplyTimeout must be > 0", ErrConfig)
	case c.SnapshotRetain < 1:
		return fmt.Errorf("%w: SnapshotRetain must be >= 1", ErrConfig)
	case c.SnapshotThreshold < 1:
		return fmt.Errorf("%w: SnapshotThreshold must be >= 1", ErrConfig)
	case c.SnapshotInterval <= 0:
		return fmt.Errorf("%w: SnapshotInterval must be > 0", ErrConfig)
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return fmt.Errorf("%w: HeartbeatTimeout must be >= 5ms", ErrConfig)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("%w: ElectionTimeout must be >= HeartbeatTimeout", ErrConfig)
	case c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("%w: LeaderLeaseTimeout must be in (0, HeartbeatTimeout]", ErrConfig)
	}
	if len(c.Peers) > 0 {
		seen, self := map[string]bool{}, false
		for _, p := range c.Peers {
			if p.ID == "" || p.Addr == "" || seen[p.ID] {
				return fmt.Errorf("%w: Peers: bad or duplicate peer %+v", ErrConfig, p)
			}
			seen[p.ID] = true
			self = self || p.ID == c.ServerID
		}
		if !self {
			return fmt.Errorf("%w: Peers do not include ServerID %s", ErrConfig, c.ServerID)
		}
	}
	return nil
}

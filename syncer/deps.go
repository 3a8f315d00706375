package syncer

import (
	"context"
	"net"
	"time"
)

// Source is the ZooKeeper catalog of one cluster (package zkwatch), shared
// read-only by the engine. All methods are safe for concurrent use.
type Source interface {
	// Changes delivers the names of ZooKeeper services (the child of the
	// root, e.g. "org.foo.Bar") whose snapshot changed, coalesced: a name
	// is delivered at least once after each change. The engine is its only
	// reader.
	Changes() <-chan string
	// Snapshot returns the current providers of one service; false when the
	// service does not exist (or has no providers node).
	Snapshot(service string) (ServiceSnapshot, bool)
	// Services lists every service currently in the catalog.
	Services() []string
	// Synced reports whether the catalog mirrors a live session: the
	// (re-)listing after the last session (re-)establishment is complete and
	// the session is connected now. While false the engine removes nothing;
	// when it turns true the engine reconciles every owned service.
	Synced() bool
	// ProviderExists asks ZooKeeper (not the cache) whether a provider node
	// still exists. An error means "unknown": the engine then keeps the
	// instance.
	ProviderExists(ctx context.Context, node string) (bool, error)
}

// Registry is the target registry as one worker uses it (package
// registryclient). Instances are beat-kept and ephemeral: the client beats
// the instances it keeps (merged batch beats) and they expire on the
// registry's side when beats stop; they are never bound to the client's
// connection. Against a real Nacos (no batch-beat extension) the worker's
// adapter falls back to connection-bound batch registrations instead (see
// syncer/worker/fallback.go and the README). One worker's calls for one service are never concurrent (the
// engine processes a service on one goroutine at a time); calls for
// different services are.
type Registry interface {
	// Keep upserts every instance of insts in svc and makes insts the
	// complete set the client beats for svc, replacing the previous set:
	// instances left out stop being beaten but are not deregistered (use
	// Deregister). Idempotent; an empty insts stops beating svc.
	Keep(ctx context.Context, svc ServiceRef, insts []Instance) error
	// Deregister removes insts (matched by ip and port) from svc now and
	// stops beating them.
	Deregister(ctx context.Context, svc ServiceRef, insts []Instance) error
	// Release stops beating every instance of svc without deregistering
	// anything: they stay until their beat timeout, so a new owner takes
	// them over without a gap. Local only; it does not block on I/O.
	Release(svc ServiceRef)
	// LightOnly switches svc to light beats only (on) or back (off): while
	// on, the instances kept for svc are beaten but nothing is registered,
	// and one the registry no longer knows (another owner removed it) is
	// not brought back. The engine turns it on while it cannot prove it
	// owns svc (a store outage) and off once it can. Local only.
	LightOnly(svc ServiceRef, on bool)
	// List returns every instance the registry holds for svc, whoever
	// registered it (the engine tells its own by the source marker).
	List(ctx context.Context, svc ServiceRef) ([]Instance, error)
}

// Ownership says which shards this worker owns (package store's lessor).
// Services map to shards with Deps.ShardOf. Safe for concurrent use.
type Ownership interface {
	// Owned returns the shards this worker holds now, with their lease epoch.
	Owned() map[int]uint64
	// Owns reports whether the worker still holds shard at epoch; the engine
	// checks it right before each apply (fencing).
	Owns(shard int, epoch uint64) bool
	// Kept returns the shards whose lease lapsed while the store was
	// unreachable, with their epoch: not owned (Owns is false, so nothing
	// is registered or deregistered for them), but their instances stay
	// beaten (Registry.LightOnly) until the store says whether they are
	// still this worker's: then each turns up in Owned again with the same
	// epoch, or disappears (moved meanwhile: released at once).
	Kept() map[int]uint64
	// Changed is signalled (coalesced) whenever Owned or Kept changes.
	Changed() <-chan struct{}
}

// AppModes gives each Dubbo application's mode (package store).
type AppModes interface {
	// Mode returns the app's mode; ModeSync for an unknown app.
	Mode(app string) AppMode
	// Changed is signalled (coalesced) whenever any mode changes.
	Changed() <-chan struct{}
}

// EventKind names an event written to the events table.
type EventKind string

// Event kinds.
const (
	EventStaleRemoval  EventKind = "stale_removal_dropped"
	EventStaleHeld     EventKind = "stale_downgrade_held"
	EventMassHeld      EventKind = "mass_removal_held"
	EventMassReleased  EventKind = "mass_removal_released"
	EventEvicted       EventKind = "evicted"
	EventForeign       EventKind = "foreign_instance"
	EventApplyFailed   EventKind = "apply_failed"
	EventOwnershipLost EventKind = "ownership_lost"
	EventBadMapping    EventKind = "mapping_names_skipped"
	// EventMetadataMissing: an application's remote metadata could not be
	// copied (no node, or over the config service's limit).
	EventMetadataMissing EventKind = "app_metadata_unavailable"
	// EventNoConfigService: the target has no config service; mappings
	// and remote metadata are not copied, instances are.
	EventNoConfigService EventKind = "no_config_service"
)

// Event is one thing operators should see.
type Event struct {
	At       time.Time
	Kind     EventKind
	Task     string
	Service  string // Nacos service name ("" for task-wide events)
	Instance string // ip:port
	Worker   string
	Detail   string
}

// EventSink records events (package store). Record must not block for long:
// it is called from the engine's workers; an implementation buffers and
// drops (counting) when full.
type EventSink interface {
	Record(Event)
}

// Prober checks that a provider's port accepts connections.
type Prober interface {
	Probe(ctx context.Context, addr string) error
}

// TCPProber dials the address.
type TCPProber struct{}

// Probe opens and closes a TCP connection to addr.
func (TCPProber) Probe(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Clock is the engine's time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

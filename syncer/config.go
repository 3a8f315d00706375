package syncer

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors.
var (
	// ErrConfig wraps every Config.Validate failure.
	ErrConfig = errors.New("syncer: invalid config")
	// ErrDeps is returned by New when a required dependency is missing.
	ErrDeps = errors.New("syncer: missing dependency")
	// ErrStopped is returned by calls on a stopped engine.
	ErrStopped = errors.New("syncer: engine stopped")
	// ErrNoConfigService is wrapped by a Configs call the target cannot
	// serve at all (it has no config service): the engine then says so once
	// and syncs instances only.
	ErrNoConfigService = errors.New("syncer: target has no config service")
)

// Config is one task's engine configuration: one ZooKeeper cluster synced
// into one registry namespace and group.
type Config struct {
	// Task names the task in events and logs.
	Task string
	// Cluster is the ZooKeeper cluster's name; it goes into the source
	// marker "ferry.source=zk:<Cluster>". Required.
	Cluster string
	// Worker is this worker's id, written to "ferry.worker". Required.
	Worker string
	// Namespace and Group are where instances are registered in the target
	// registry (Nacos namespace id "public" and group "DEFAULT_GROUP" by default).
	Namespace string
	Group     string
	// Filter selects interfaces by glob.
	Filter Filter

	// Workers is the size of the apply pool (concurrent services).
	Workers int
	// FullInterval is the period of the full reconcile of every owned
	// service (with List from the registry); each period is randomised by
	// ±FullJitter (a fraction).
	FullInterval time.Duration
	FullJitter   float64
	// SyncedPoll is how often the engine polls Source.Synced for a
	// false→true transition (then it reconciles everything).
	SyncedPoll time.Duration
	// ApplyTimeout bounds one service's registry calls.
	ApplyTimeout time.Duration
	// RetryBase and RetryMax bound the exponential backoff (with full
	// jitter) after a failed apply.
	RetryBase time.Duration
	RetryMax  time.Duration

	// StaleHold is how long a stale-looking removal or downgrade is held
	// before ZooKeeper's level truth wins.
	StaleHold time.Duration
	// MassShare, MassMin, MassWindow, MassGrace: removals within MassWindow
	// that reach MassMin instances and more than MassShare of the task's
	// instances are held (an event is raised) until Confirm or MassGrace.
	MassShare  float64
	MassMin    int
	MassWindow time.Duration
	MassGrace  time.Duration

	// ProbeInterval is the port-probe sweep period (0 disables probing);
	// ProbeTimeout bounds one probe; ProbeConcurrency bounds parallel probes.
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	ProbeConcurrency int

	// MaxConfigBytes is the target config service's content limit (Nacos'
	// default 100 KiB): an application's remote metadata above it is not
	// copied and its instances of that revision are held back.
	MaxConfigBytes int
	// MetadataGrace is how long a remote metadata revision Ferry copied
	// stays in the config service once no instance uses it (a consumer
	// holding an old instance list may still read it).
	MetadataGrace time.Duration
}

// DefaultConfig returns the defaults; Cluster and Worker must still be set.
func DefaultConfig() Config {
	return Config{
		Task:             "default",
		Namespace:        "public",
		Group:            "DEFAULT_GROUP",
		Workers:          8,
		FullInterval:     5 * time.Minute,
		FullJitter:       0.2,
		SyncedPoll:       time.Second,
		ApplyTimeout:     10 * time.Second,
		RetryBase:        200 * time.Millisecond,
		RetryMax:         30 * time.Second,
		StaleHold:        30 * time.Second,
		MassShare:        0.5,
		MassMin:          10,
		MassWindow:       time.Minute,
		MassGrace:        10 * time.Minute,
		ProbeInterval:    30 * time.Second,
		ProbeTimeout:     2 * time.Second,
		ProbeConcurrency: 16,
		MaxConfigBytes:   100 * 1024,
		MetadataGrace:    10 * time.Minute,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrConfig, field, why) }
	switch {
	case c.Cluster == "":
		return bad("Cluster", "is empty")
	case c.Worker == "":
		return bad("Worker", "is empty")
	case c.Namespace == "":
		return bad("Namespace", "is empty")
	case c.Group == "":
		return bad("Group", "is empty")
	case c.Workers < 1:
		return bad("Workers", "must be ≥ 1")
	case c.FullInterval <= 0:
		return bad("FullInterval", "must be > 0")
	case c.FullJitter < 0 || c.FullJitter >= 1:
		return bad("FullJitter", "must be in [0, 1)")
	case c.SyncedPoll <= 0:
		return bad("SyncedPoll", "must be > 0")
	case c.ApplyTimeout <= 0:
		return bad("ApplyTimeout", "must be > 0")
	case c.RetryBase <= 0:
		return bad("RetryBase", "must be > 0")
	case c.RetryMax < c.RetryBase:
		return bad("RetryMax", "must be ≥ RetryBase")
	case c.StaleHold < 0:
		return bad("StaleHold", "must be ≥ 0")
	case c.MaxConfigBytes <= 0:
		return bad("MaxConfigBytes", "must be > 0")
	case c.MetadataGrace <= 0:
		return bad("MetadataGrace", "must be > 0")
	case c.MassShare <= 0 || c.MassShare > 1:
		return bad("MassShare", "must be in (0, 1]")
	case c.MassMin < 0:
		return bad("MassMin", "must be ≥ 0")
	case c.MassWindow <= 0:
		return bad("MassWindow", "must be > 0")
	case c.MassGrace <= 0:
		return bad("MassGrace", "must be > 0")
	case c.ProbeInterval < 0:
		return bad("ProbeInterval", "must be ≥ 0")
	case c.ProbeInterval > 0 && c.ProbeTimeout <= 0:
		return bad("ProbeTimeout", "must be > 0")
	case c.ProbeInterval > 0 && c.ProbeConcurrency < 1:
		return bad("ProbeConcurrency", "must be ≥ 1")
	}
	if err := validatePatterns(c.Filter.Include); err != nil {
		return bad("Filter.Include", err.Error())
	}
	if err := validatePatterns(c.Filter.Exclude); err != nil {
		return bad("Filter.Exclude", err.Error())
	}
	return nil
}

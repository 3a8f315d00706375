package store

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// ZKCluster is a ZooKeeper ensemble Ferry reads Dubbo providers from.
type ZKCluster struct {
	ID            int64  `gorm:"primaryKey"`
	Name          string // unique
	ConnectString string // host:port,host:port
	Root          string // Dubbo root, default /dubbo
	// SessionTimeoutMS is the ZooKeeper session timeout in milliseconds.
	SessionTimeoutMS int64 `gorm:"column:session_timeout_ms"`
	// Version counts the row's changes (1 at creation); an update that
	// names a version other than the row's is refused (versions.go).
	Version   int64
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName is the migrations' table.
func (ZKCluster) TableName() string { return "zk_clusters" }

func (c *ZKCluster) validate() error {
	switch {
	case strings.TrimSpace(c.Name) == "" || len(c.Name) > 128:
		return fmt.Errorf("%w zk cluster name %q", ErrInvalid, c.Name)
	case strings.TrimSpace(c.ConnectString) == "" || len(c.ConnectString) > 1024:
		return fmt.Errorf("%w zk cluster connect string %q", ErrInvalid, c.ConnectString)
	case c.Root != "" && (!strings.HasPrefix(c.Root, "/") || len(c.Root) > 255):
		return fmt.Errorf("%w zk cluster root %q: must start with /", ErrInvalid, c.Root)
	case c.SessionTimeoutMS < 0:
		return fmt.Errorf("%w zk cluster session timeout %dms", ErrInvalid, c.SessionTimeoutMS)
	}
	if c.Root == "" {
		c.Root = "/dubbo"
	}
	if c.SessionTimeoutMS == 0 {
		c.SessionTimeoutMS = 30000
	}
	return nil
}

// RegistryKind is the kind of registry a cluster is.
type RegistryKind string

// Registry kinds.
const (
	RegistryBundled RegistryKind = "bundled" // Ferry's own registry server
	RegistryNacos   RegistryKind = "nacos"   // a real Nacos 2.x
)

// RegistryCluster is a Nacos-compatible registry Ferry writes to.
type RegistryCluster struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Kind       RegistryKind
	ServerList []string `gorm:"column:server_list;serializer:json"`
	Namespace  string
	GroupName  string // Nacos group, default DEFAULT_GROUP
	Username   string
	Password   string `json:"-"` // stored encrypted (secrets.go); never logged nor shown
	Version    int64  // as ZKCluster.Version
	UpdatedBy  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName is the migrations' table.
func (RegistryCluster) TableName() string { return "registry_clusters" }

func (c *RegistryCluster) validate() error {
	switch {
	case strings.TrimSpace(c.Name) == "" || len(c.Name) > 128:
		return fmt.Errorf("%w registry cluster name %q", ErrInvalid, c.Name)
	case c.Kind != RegistryBundled && c.Kind != RegistryNacos:
		return fmt.Errorf("%w registry cluster kind %q: want bundled or nacos", ErrInvalid, c.Kind)
	case len(c.ServerList) == 0:
		return fmt.Errorf("%w registry cluster server list: empty", ErrInvalid)
	}
	for _, s := range c.ServerList {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " ,") {
			return fmt.Errorf("%w registry cluster server list entry %q", ErrInvalid, s)
		}
	}
	if c.GroupName == "" {
		c.GroupName = "DEFAULT_GROUP"
	}
	return nil
}

// TaskScope says what a sync task covers.
type TaskScope string

// Task scopes.
const (
	ScopeFull    TaskScope = "full"    // every service under the ZooKeeper root
	ScopeService TaskScope = "service" // one service
)

// TaskState is a sync task's lifecycle state.
type TaskState string

// Task states.
const (
	TaskRunning TaskState = "running"
	TaskPaused  TaskState = "paused"
	TaskDeleted TaskState = "deleted" // kept as a tombstone so every worker deregisters
)

// SyncTask mirrors a ZooKeeper cluster (or one service of it) into a
// registry cluster.
type SyncTask struct {
	ID              int64 `gorm:"primaryKey"`
	SourceClusterID int64 // ZKCluster.ID
	DestClusterID   int64 // RegistryCluster.ID
	Scope           TaskScope
	Service         string // the Dubbo interface when Scope is service
	// Include and Exclude are path.Match patterns over service (interface)
	// names; empty Include means all.
	Include   []string `gorm:"column:include_patterns;serializer:json"`
	Exclude   []string `gorm:"column:exclude_patterns;serializer:json"`
	State     TaskState
	Version   int64 // as ZKCluster.Version; edits and state changes count
	CreatedBy string
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName is the migrations' table.
func (SyncTask) TableName() string { return "sync_tasks" }

func validState(s TaskState) bool {
	return s == TaskRunning || s == TaskPaused || s == TaskDeleted
}

func (t *SyncTask) validate() error {
	switch {
	case t.SourceClusterID <= 0:
		return fmt.Errorf("%w task source cluster id %d", ErrInvalid, t.SourceClusterID)
	case t.DestClusterID <= 0:
		return fmt.Errorf("%w task destination cluster id %d", ErrInvalid, t.DestClusterID)
	case t.Scope != ScopeFull && t.Scope != ScopeService:
		return fmt.Errorf("%w task scope %q: want full or service", ErrInvalid, t.Scope)
	case t.Scope == ScopeService && strings.TrimSpace(t.Service) == "":
		return fmt.Errorf("%w task service: empty with scope service", ErrInvalid)
	case t.Scope == ScopeFull && t.Service != "":
		return fmt.Errorf("%w task service %q: must be empty with scope full", ErrInvalid, t.Service)
	case len(t.Service) > 512:
		return fmt.Errorf("%w task service: longer than 512", ErrInvalid)
	case t.State != "" && !validState(t.State):
		return fmt.Errorf("%w task state %q", ErrInvalid, t.State)
	}
	for _, p := range append(append([]string(nil), t.Include...), t.Exclude...) {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("%w task pattern %q", ErrInvalid, p)
		}
	}
	if t.State == "" {
		t.State = TaskRunning
	}
	if t.Include == nil {
		t.Include = []string{}
	}
	if t.Exclude == nil {
		t.Exclude = []string{}
	}
	return nil
}

// Matches reports whether the task covers service: scope, then Include
// (empty = all), then Exclude.
func (t *SyncTask) Matches(service string) bool {
	if t.Scope == ScopeService {
		return service == t.Service
	}
	ok := len(t.Include) == 0
	for _, p := range t.Include {
		if m, _ := path.Match(p, service); m {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, p := range t.Exclude {
		if m, _ := path.Match(p, service); m {
			return false
		}
	}
	return true
}

// AppMode is how Ferry treats one application during the migration.
type AppMode string

// App modes.
const (
	AppSync     AppMode = "sync"     // mirror its ZooKeeper providers into the registry
	AppNative   AppMode = "native"   // it registers in the registry itself: skip it
	AppExcluded AppMode = "excluded" // leave it alone entirely
)

// App is one application's migration mode and who set it.
type App struct {
	ID        int64 `gorm:"primaryKey"`
	Name      string
	Mode      AppMode
	Version   int64 // as ZKCluster.Version
	ChangedBy string
	ChangedAt time.Time
}

// TableName is the migrations' table.
func (App) TableName() string { return "apps" }

// Worker is a sync worker process. Times come from the database's clock.
type Worker struct {
	ID          string
	Address     string
	Version     string
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Live: heartbeat within the liveness window of the query.
	Live bool
	// AppliedGeneration is the settings generation the worker last reported
	// having applied (generation.go); 0 until its first report.
	AppliedGeneration int64
}

// Lease is one shard's lease row. Owner "" means free.
type Lease struct {
	Shard     int
	Owner     string
	Epoch     uint64
	ExpiresAt time.Time // database clock
}

// Event kinds the sync engine records; others are allowed.
const (
	EventRegistered    = "registered"
	EventDeregistered  = "deregistered"
	EventStaleDropped  = "stale_removal_dropped"
	EventEvicted       = "evicted"
	EventError         = "error"
	EventLeaseAcquired = "lease_acquired"
	EventLeaseLost     = "lease_lost"
)

// Event is one line of the audit trail.
type Event struct {
	ID       int64     `gorm:"primaryKey"`
	Time     time.Time `gorm:"column:occurred_at"`
	Kind     string
	Service  string
	Instance string
	Worker   string
	Detail   string
}

// TableName is the migrations' table.
func (Event) TableName() string { return "events" }

func (e *Event) validate() error {
	switch {
	case e.Kind == "" || len(e.Kind) > 64:
		return fmt.Errorf("%w event kind %q", ErrInvalid, e.Kind)
	case len(e.Service) > 512:
		return fmt.Errorf("%w event service: longer than 512", ErrInvalid)
	case len(e.Instance) > 255:
		return fmt.Errorf("%w event instance: longer than 255", ErrInvalid)
	case len(e.Worker) > 128:
		return fmt.Errorf("%w event worker: longer than 128", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	return nil
}

// Package naming is the registry's naming state on one node: services,
// their instances (connection-bound, beat-kept and persistent), instance
// metadata overrides, subscribers and change notification.
//
// Sources of instances, and who feeds them:
//   - connection-bound ephemeral instances: the gRPC API, one entry (an
//     instance or a batch) per service per connection (Nacos 2.x semantics);
//   - beat-kept ephemeral instances: HTTP v1 clients and Ferry's merged batch
//     beat; alive while beats arrive (unhealthy after 15 s, removed after 30 s
//     by default, overridable with the preserved.* metadata keys);
//   - persistent instances, overrides and service metadata: the Raft FSM
//     (package raftstore), which pushes its applied state into the Registry
//     through SetPersistent, SetOverrides and SetServiceMeta.
//
// The Registry holds the materialised view that queries and pushes read.
package naming

// Defaults shared by every API.
const (
	DefaultNamespace = "public"
	DefaultGroup     = "DEFAULT_GROUP"
	DefaultCluster   = "DEFAULT"
	// GroupSeparator joins group and service name: "DEFAULT_GROUP@@demo".
	GroupSeparator = "@@"
)

// Preserved metadata keys (Nacos PreservedMetadataKeys) that tune a
// beat-kept instance's timeouts, in milliseconds.
const (
	MetaHeartBeatInterval = "preserved.heart.beat.interval"
	MetaHeartBeatTimeout  = "preserved.heart.beat.timeout"
	MetaIPDeleteTimeout   = "preserved.ip.delete.timeout"
)

// ServiceKey names one service. Name is ungrouped ("demo", not
// "DEFAULT_GROUP@@demo").
type ServiceKey struct {
	Namespace string
	Group     string
	Name      string
}

// Grouped returns "group@@name", the form Nacos puts in Instance.serviceName.
func (k ServiceKey) Grouped() string { return k.Group + GroupSeparator + k.Name }

// Instance is one provider endpoint as the registry stores it. Defaults
// (cluster "DEFAULT", generated ID) are filled by the registry, not callers.
type Instance struct {
	ID        string // instanceId; "ip#port#cluster#group@@name" when none given
	IP        string
	Port      int
	Weight    float64
	Healthy   bool
	Enabled   bool
	Ephemeral bool
	Cluster   string
	Metadata  map[string]string
}

// Addr identifies an instance inside a service: ip, port and cluster.
type Addr struct {
	IP      string
	Port    int
	Cluster string
}

// Override is an operator's change to an instance (Nacos' "instance metadata"
// written through PUT /v1/ns/instance): it survives re-registration and
// applies to whichever source holds the instance. Nil fields change nothing.
type Override struct {
	Addr     Addr
	Enabled  *bool
	Weight   *float64
	Metadata map[string]string
}

// ServiceMeta is the persistent, operator-set part of a service.
type ServiceMeta struct {
	ProtectThreshold float64
	Metadata         map[string]string
	// Ephemeral is fixed when the service is first created: registering an
	// instance of the other kind is refused (Nacos INVALID_PARAM).
	Ephemeral bool
}

// ServiceInfo is the answer to a query, a subscription and a push: the
// fields of Nacos' ServiceInfo.
type ServiceInfo struct {
	Key                      ServiceKey
	Clusters                 string // echoed as requested
	CacheMillis              int64
	Hosts                    []Instance
	LastRefTime              int64 // ms; strictly increasing per Registry
	Checksum                 string
	AllIPs                   bool
	ReachProtectionThreshold bool
	// Snapshot is the service state Hosts were selected from (nil for an
	// unknown service). Callers memoise what they derive from the hosts
	// (an encoded body) with Snapshot.Memo: it is dropped on every change.
	Snapshot *Snapshot
}

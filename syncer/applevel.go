package syncer

import (
	"context"
	"strings"

	"github.com/ferrysync/ferry/zkwatch"
)

// Dubbo 3 application-level instances (docs/dubbo3-app-level.md has the
// rules with their sources). Each /services/{app}/{ip:port} node becomes an
// instance of registry service {app} in the task's group, the way Java
// Dubbo's NacosServiceDiscovery registers it (NacosNamingServiceUtils.
// toInstance): ip and port from the node, metadata the ServiceInstance
// metadata unchanged (dubbo.endpoints, dubbo.metadata.revision,
// dubbo.metadata.storage-type, dubbo.metadata-service.url-params,
// timestamp, ...), weight, healthy, enabled and ephemeral at the Nacos
// client's defaults; plus the source marker.
//
// The engine keys an application as zkwatch.AppKey(app) ("app:{app}"),
// next to the interface-level service names, so both share the queue,
// shards, leases, stale guard, probe sweeper and mass-removal hold.

// AppInstance is one application-level instance node.
type AppInstance struct {
	Node                string // full znode path
	ID                  string // node name, "ip:port"
	Address             string
	Port                int
	Metadata            map[string]string
	RegistrationTimeUTC int64 // ms; Java only
}

// AppSnapshot is the current instance set of one application.
type AppSnapshot struct {
	App       string
	Instances []AppInstance
}

// AppSource is the application-level part of the ZooKeeper catalog (Dubbo
// 3 /services). Its changes arrive on Source.Changes as AppKey(app). Safe
// for concurrent use.
type AppSource interface {
	// Apps lists the applications that have instances.
	Apps() []string
	// AppSnapshot returns an application's instances; false when the
	// application is unknown (or has no instances left).
	AppSnapshot(app string) (AppSnapshot, bool)
	// AppMetadata reads the application's MetadataInfo for a revision
	// from ZooKeeper's metadata report now; false when there is none.
	AppMetadata(ctx context.Context, app, revision string) (string, bool, error)
	// AppMetadataPath is that node's path (for events).
	AppMetadataPath(app, revision string) string
}

// AppKey is the engine's work key of an application.
func AppKey(app string) string { return zkwatch.AppKey(app) }

// appOfKey returns the application of a work key, false for an
// interface-level service.
func appOfKey(key string) (string, bool) { return strings.CutPrefix(key, zkwatch.AppKeyPrefix) }

// Application-level metadata keys the sync reads.
const (
	keyAppTimestamp = "timestamp" // ServiceInstanceMetadataUtils.TIMESTAMP_KEY (Java; dubbo-go writes none)
)

// AppTimestamp is the instance's start time in ms: its "timestamp" metadata
// (Java Dubbo 3 sets it, in ms), else Curator's registrationTimeUTC, else 0.
func AppTimestamp(in AppInstance) int64 {
	if ts := metaTimestamp(in.Metadata[keyAppTimestamp]); ts > 0 {
		return ts
	}
	if in.RegistrationTimeUTC > 0 {
		return in.RegistrationTimeUTC
	}
	return 0
}

// BuildAppInstance maps an application-level instance to the instance the
// sync registers: ip and port from the node; metadata = the instance's
// metadata unchanged, plus the marker; weight RegistryWeight; enabled;
// healthy; ephemeral.
func BuildAppInstance(in AppInstance, m Marker) Instance {
	md := make(map[string]string, len(in.Metadata)+2)
	for k, v := range in.Metadata {
		md[k] = v
	}
	md[MetaSource] = m.Source()
	md[MetaWorker] = m.Worker
	return Instance{IP: in.Address, Port: in.Port, Weight: RegistryWeight, Enabled: true, Healthy: true,
		Ephemeral: true, Metadata: md}
}

// SkipApp returns why an application-level instance is not synced (the
// app mode aside), or SkipNone: a bad address, or withNacos=true in its
// metadata (the provider registers in the registry itself).
func SkipApp(in AppInstance) SkipReason {
	if in.Address == "" || len(in.Address) > 253 || strings.ContainsAny(in.Address, " /@?#") || in.Port <= 0 || in.Port > 65535 {
		return SkipBadAddress
	}
	if strings.EqualFold(in.Metadata[keyWithNacos], "true") {
		return SkipWithNacos
	}
	return SkipNone
}

// appCandidates maps an application's instances to candidates of registry
// service app.
func appCandidates(snap AppSnapshot, m Marker) []Candidate {
	out := make([]Candidate, 0, len(snap.Instances))
	for _, in := range snap.Instances {
		c := Candidate{Node: in.Node, Name: snap.App, Addr: Addr(in.Address, in.Port), Timestamp: AppTimestamp(in),
			App: snap.App, Skip: SkipApp(in)}
		if c.Skip == SkipNone {
			c.Instance = BuildAppInstance(in, m)
		}
		out = append(out, c)
	}
	return out
}

// AppSnapshot implements AppSource.
func (z ZKSource) AppSnapshot(app string) (AppSnapshot, bool) { return AppSnapshotOf(z.W, app) }

// Apps implements AppSource.
func (z ZKSource) Apps() []string { return z.W.Apps() }

// AppMetadata implements AppSource.
func (z ZKSource) AppMetadata(ctx context.Context, app, revision string) (string, bool, error) {
	return z.W.AppMetadata(ctx, app, revision)
}

// AppMetadataPath implements AppSource.
func (z ZKSource) AppMetadataPath(app, revision string) string {
	return z.W.AppMetadataPath(app, revision)
}

// AppSnapshotOf reads an application's instances from a watcher.
func AppSnapshotOf(w *zkwatch.Watcher, app string) (AppSnapshot, bool) {
	insts, ok := w.AppInstances(app)
	if !ok || len(insts) == 0 {
		return AppSnapshot{}, false
	}
	out := AppSnapshot{App: app, Instances: make([]AppInstance, len(insts))}
	for i, in := range insts {
		out.Instances[i] = AppInstance{Node: in.Node, ID: in.ID, Address: in.Address, Port: in.Port,
			Metadata: in.Metadata, RegistrationTimeUTC: in.RegistrationTimeUTC}
	}
	return out, true
}

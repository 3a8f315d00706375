package syncer

import (
	"path"
	"strings"
)

// The Dubbo → Nacos mapping follows what Dubbo's own Nacos registry writes, so
// that a Dubbo consumer switched to Nacos finds providers synced from
// ZooKeeper exactly where a provider switched to Nacos would have put itself:
//
//   - apache/dubbo dubbo-registry/dubbo-registry-nacos/src/main/java/org/apache/dubbo/registry/nacos/NacosRegistry.java
//     (getServiceName: category + ":" + url.getColonSeparatedKey(); createInstance:
//     every URL parameter + category, protocol, path; ip/port from the URL;
//     weight, enabled, healthy, ephemeral left at the Nacos client's defaults:
//     weight 1.0, enabled, healthy, ephemeral);
//   - apache/dubbo dubbo-common/src/main/java/org/apache/dubbo/common/URL.java
//     (getColonSeparatedKey: getServiceInterface() — the "interface" parameter,
//     else the path — then ":" + version and ":" + group, a blank part kept as
//     an empty segment, so the name always has four segments);
//   - apache/dubbo dubbo-registry/dubbo-registry-nacos/src/main/java/org/apache/dubbo/registry/nacos/NacosNamingServiceWrapper.java
//     (handleInnerSymbol: every "$" of the whole service name becomes "___"
//     before any Nacos call, dubbo issue #7129; dubbo-go's registry/nacos does
//     not do this, so a "$" interface is only reachable by Java consumers
//     under the replaced name, which is the one we write);
//   - apache/dubbo-go registry/nacos/registry.go (getServiceName: the same
//     four segments; createRegisterParam: metadata from URL params).
//
// Deliberate differences, each documented in reference/dubbo.md §2.4:
//   - parameters with empty values are dropped (Java's ZooKeeper path never
//     writes them, and version="" would not match a consumer whose version
//     is unset);
//   - interface=<iface> is added when the URL lacked it (simplified URLs), so
//     dubbo-go consumers, which need path or interface, rebuild the URL;
//   - enabled=false when a configurator disabled the provider (Nacos has no
//     configurators; Java and dubbo-go consumers drop disabled instances);
//   - the source marker keys below.

// Metadata keys the sync adds to every instance it registers.
const (
	// MetaSource marks an instance as written by Ferry from one ZooKeeper
	// cluster: "zk:<cluster>". The sync never touches an instance without
	// its own marker.
	MetaSource = "ferry.source"
	// MetaWorker names the worker that currently owns (beats) the instance.
	MetaWorker = "ferry.worker"
)

// Dubbo URL parameter keys the mapping reads or writes.
const (
	keyInterface   = "interface"
	keyVersion     = "version"
	keyGroup       = "group"
	keyCategory    = "category"
	keyProtocol    = "protocol"
	keyPath        = "path"
	keyApplication = "application"
	keyWithNacos   = "withNacos"
	keyEnabled     = "enabled"
	categoryProv   = "providers"
)

// RegistryWeight is the Nacos weight of every synced instance: 1.0, the value
// Java Dubbo's NacosRegistry leaves in place (it never sets the weight). Dubbo
// load balancers ignore the Nacos weight and read the "weight" metadata key,
// which keeps the provider's own value; a Nacos weight copied from Dubbo's
// (default 100, dubbo-go's 0) would only mislead non-Dubbo clients.
const RegistryWeight = 1.0

// Interface returns the Dubbo service interface of a URL: its "interface"
// parameter, else its path (Dubbo's URL.getServiceInterface).
func Interface(u URL) string {
	if v := u.Params[keyInterface]; v != "" {
		return v
	}
	return strings.TrimPrefix(u.Path, "/")
}

// ServiceName returns the Nacos service name Dubbo's Nacos registry gives a
// provider URL: "providers:{interface}:{version}:{group}", missing parts kept
// as empty segments ("providers:org.Foo::"), then every "$" replaced by "___".
func ServiceName(u URL) string {
	name := categoryProv + ":" + Interface(u) + ":" + strings.TrimSpace(u.Params[keyVersion]) + ":" +
		strings.TrimSpace(u.Params[keyGroup])
	return strings.ReplaceAll(name, "$", "___")
}

// Marker identifies this sync in instance metadata.
type Marker struct {
	Cluster string // ZooKeeper cluster name: MetaSource = "zk:" + Cluster
	Worker  string // this worker's id: MetaWorker
}

// Source is the MetaSource value of this marker.
func (m Marker) Source() string { return "zk:" + m.Cluster }

// Ours reports whether an instance carries this sync's source marker (any
// worker of the same ZooKeeper cluster).
func (m Marker) Ours(inst Instance) bool { return inst.Metadata[MetaSource] == m.Source() }

// BuildInstance maps a provider to the instance the sync registers: ip and
// port from the URL; metadata = every non-empty URL parameter (timestamp and
// weight included, unchanged) + category=providers, protocol, path (no
// leading slash), interface when missing, and the marker; weight
// RegistryWeight; enabled unless disabled; healthy; ephemeral.
func BuildInstance(p Provider, m Marker) Instance {
	u := p.URL
	md := make(map[string]string, len(u.Params)+6)
	for k, v := range u.Params {
		if v != "" {
			md[k] = v
		}
	}
	md[keyCategory] = categoryProv
	md[keyProtocol] = u.Protocol
	md[keyPath] = strings.TrimPrefix(u.Path, "/")
	if md[keyInterface] == "" {
		md[keyInterface] = Interface(u)
	}
	md[MetaSource] = m.Source()
	md[MetaWorker] = m.Worker
	enabled := !p.Disabled && !strings.EqualFold(u.Params[keyEnabled], "false")
	if !enabled {
		md[keyEnabled] = "false"
	}
	return Instance{
		IP:        u.Host,
		Port:      u.Port,
		Weight:    RegistryWeight,
		Enabled:   enabled,
		Healthy:   true,
		Ephemeral: true,
		Metadata:  md,
	}
}

// AppMode is how the sync treats one Dubbo application.
type AppMode string

// App modes, as stored per application.
const (
	// ModeSync: the app's providers are synced (the default for any app).
	ModeSync AppMode = "sync"
	// ModeNative: the app registers in the registry itself; not synced.
	ModeNative AppMode = "native"
	// ModeExcluded: an operator excluded the app; not synced.
	ModeExcluded AppMode = "excluded"
)

// SkipReason says why a provider is not synced; "" means it is synced. The
// values are metric label values.
type SkipReason string

// Skip reasons.
const (
	SkipNone            SkipReason = ""
	SkipBadAddress      SkipReason = "bad_address"
	SkipNotIncluded     SkipReason = "not_included"
	SkipExcludedPattern SkipReason = "excluded_pattern"
	SkipWithNacos       SkipReason = "with_nacos"
	SkipAppNative       SkipReason = "app_native"
	SkipAppExcluded     SkipReason = "app_excluded"
	SkipForeign         SkipReason = "foreign_instance" // the address is held by an instance without our marker
	// SkipMetadata: an application-level instance whose remote metadata
	// could not be copied into the config service (held back).
	SkipMetadata SkipReason = "metadata_unavailable"
)

// SkipReasons lists every reason a provider can be skipped, for metrics.
var skipReasons = []SkipReason{SkipBadAddress, SkipNotIncluded, SkipExcludedPattern, SkipWithNacos,
	SkipAppNative, SkipAppExcluded, SkipForeign, SkipMetadata}

// Filter selects the providers a task syncs. Patterns are path.Match globs
// over the Dubbo interface ("org.foo.*"); an empty Include means all.
type Filter struct {
	Include []string
	Exclude []string
}

// validatePatterns reports the first malformed glob.
func validatePatterns(pats []string) error {
	for _, p := range pats {
		if _, err := path.Match(p, ""); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(pats []string, s string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// Skip returns why p is not synced, or SkipNone. mode is the mode of p's
// application (its "application" parameter); "" counts as ModeSync.
func (f Filter) Skip(p Provider, mode AppMode) SkipReason {
	u := p.URL
	if u.Host == "" || u.Port <= 0 || u.Port > 65535 || Interface(u) == "" {
		return SkipBadAddress
	}
	iface := Interface(u)
	if len(f.Include) > 0 && !matchAny(f.Include, iface) {
		return SkipNotIncluded
	}
	if matchAny(f.Exclude, iface) {
		return SkipExcludedPattern
	}
	if strings.EqualFold(u.Params[keyWithNacos], "true") {
		return SkipWithNacos
	}
	switch mode {
	case ModeNative:
		return SkipAppNative
	case ModeExcluded:
		return SkipAppExcluded
	}
	return SkipNone
}

// Application returns the provider's Dubbo application name ("" if unset).
func Application(p Provider) string { return p.URL.Params[keyApplication] }

package syncer

import (
	"net"
	"strconv"
)

// URL is a parsed Dubbo provider URL (protocol://host:port/path?params), as
// the ZooKeeper watcher delivers it. Params hold decoded values; Path has no
// leading slash.
type URL struct {
	Protocol string
	Host     string
	Port     int
	Path     string
	Params   map[string]string
}

// Provider is one provider node under /dubbo/{service}/providers.
type Provider struct {
	Node      string // full ZooKeeper path of the node
	URL       URL
	Timestamp int64 // the URL's timestamp parameter, in ms (0 when absent)
	Disabled  bool  // a configurator disabled this provider (enabled=false)
}

// ServiceSnapshot is the current provider set of one ZooKeeper service node
// (/dubbo/{service}).
type ServiceSnapshot struct {
	Service string
	// Providers holds the newest provider per "host:port" (see Addr).
	Providers map[string]Provider
	// Shadowed holds the older nodes for an address that also has a newer
	// one in Providers (the provider restarted before its old ephemeral node
	// expired).
	Shadowed []Provider
	Revision uint64
}

// ServiceRef names one service in the target registry.
type ServiceRef struct {
	Namespace string
	Group     string
	Name      string
}

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Group + "@@" + r.Name }

// Instance is one instance as the sync registers it in the target registry.
type Instance struct {
	IP        string
	Port      int
	Weight    float64
	Enabled   bool
	Healthy   bool
	Ephemeral bool
	Metadata  map[string]string
}

// Addr is the instance's "ip:port" key (IPv6 in brackets).
func (i Instance) Addr() string { return Addr(i.IP, i.Port) }

// Addr joins host and port the way ServiceSnapshot.Providers is keyed.
func Addr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// sameInstance reports whether two instances would look the same to a
// consumer (and to the registry).
func sameInstance(a, b Instance) bool {
	if a.IP != b.IP || a.Port != b.Port || a.Weight != b.Weight || a.Enabled != b.Enabled ||
		a.Healthy != b.Healthy || a.Ephemeral != b.Ephemeral || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return true
}

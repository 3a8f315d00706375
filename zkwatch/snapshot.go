package zkwatch

import (
	"slices"
	"strings"
)

// ServiceSnapshot is the state of one service node at one revision.
type ServiceSnapshot struct {
	// Service is the decoded service node name, e.g.
	// "org.apache.dubbo.demo.DemoService". One node may hold several
	// versions and groups: group providers by URL.Version()/Group().
	Service string
	// Providers by "host:port" (IPv6 as "[::1]:20880"); when several nodes
	// share a host:port the newest timestamp wins.
	Providers map[string]Provider
	// Shadowed are the older nodes sharing a host:port with a provider above,
	// newest first (a restarted provider whose old node is not gone yet).
	Shadowed []Provider
	// Counts of the other categories' children.
	Consumers, Routers, Configurators int
	// Revision increases on every change of this service (and once after a
	// session expiry, with the fresh listing).
	Revision uint64
}

// Provider is one provider node.
type Provider struct {
	Node      string // full znode path
	URL       URL    // parsed
	Timestamp int64  // milliseconds (dubbo-go's seconds normalised); 0 if absent
	Disabled  bool   // a configurator with disabled=true matches it
}

// provEntry is what the watcher keeps per provider node: its full znode
// path, the one copy of it in the process. The providers map's key is the
// path's last element, a substring of it, and every snapshot's
// Provider.Node is this same string, so the engine's records of the node
// share it too (a node name is ~600 bytes: one copy instead of three). The
// URL is parsed again when a snapshot is taken; keeping parsed URLs would
// cost more memory than the name itself.
type provEntry struct{ node string }

// name is the node's name: the path after its last '/' (a znode name has
// none; the URL inside is encoded).
func (e provEntry) name() string { return e.node[strings.LastIndexByte(e.node, '/')+1:] }

// overrideRule is a configurator that disables providers.
type overrideRule struct {
	host    string // "" or 0.0.0.0: any
	port    int    // 0: any
	version string // "" or "*": any
	group   string // "" or "*": any
}

func (r overrideRule) matches(u URL) bool {
	if r.host != "" && r.host != "0.0.0.0" && r.host != u.Host {
		return false
	}
	if r.port != 0 && r.port != u.Port {
		return false
	}
	if r.version != "" && r.version != "*" && r.version != u.Version() {
		return false
	}
	if r.group != "" && r.group != "*" && r.group != u.Group() {
		return false
	}
	return true
}

// parseOverride returns the rule of a configurator node, ok=false when the
// node does not disable anything.
func parseOverride(raw string) (overrideRule, bool, error) {
	u, err := ParseProviderNode(raw)
	if err != nil {
		return overrideRule{}, false, err
	}
	if u.Params["disabled"] != "true" || u.Params["enabled"] == "false" {
		return overrideRule{}, false, nil
	}
	return overrideRule{host: u.Host, port: u.Port, version: u.Version(), group: u.Group()}, true, nil
}

// buildSnapshot parses the provider nodes (full paths) and picks, per
// host:port, the newest timestamp (ties: the greater node name, so the
// choice is stable).
func buildSnapshot(nodes []string, rules []overrideRule) (map[string]Provider, []Provider) {
	provs := make(map[string]Provider, len(nodes))
	var shadowed []Provider
	for _, node := range nodes {
		u, err := ParseProviderNode(provEntry{node: node}.name())
		if err != nil {
			continue // counted when listed
		}
		p := Provider{Node: node, URL: u, Timestamp: u.Timestamp()}
		for _, r := range rules {
			if r.matches(u) {
				p.Disabled = true
				break
			}
		}
		addr := u.Addr()
		old, ok := provs[addr]
		if !ok {
			provs[addr] = p
			continue
		}
		if newer(p, old) {
			provs[addr] = p
			shadowed = append(shadowed, old)
		} else {
			shadowed = append(shadowed, p)
		}
	}
	slices.SortFunc(shadowed, func(a, b Provider) int {
		if newer(a, b) {
			return -1
		}
		if newer(b, a) {
			return 1
		}
		return 0
	})
	return provs, shadowed
}

func newer(a, b Provider) bool {
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	return strings.Compare(a.Node, b.Node) > 0
}

package grpcapi

import (
	"encoding/json"
	"sync"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// hostsCache keeps each service's encoded hosts per filter between changes
// of its view (naming's Revision): queries, subscriptions and pushes of an
// unchanged service reuse the JSON instead of encoding instances again.
type hostsCache struct {
	mu  sync.Mutex // guards m
	m   map[hostsKey]hostsEntry
	max int
}

type hostsKey struct {
	svc         naming.ServiceKey
	clusters    string
	healthyOnly bool
}

type hostsEntry struct {
	rev  uint64
	json json.RawMessage
}

func newHostsCache(max int) *hostsCache {
	return &hostsCache{m: map[hostsKey]hostsEntry{}, max: max}
}

// wireInfo renders si for the gRPC path with its hosts from the cache.
func (s *Server) wireInfo(si naming.ServiceInfo, clusters string, healthyOnly bool) wire.ServiceInfo {
	c := s.hosts
	k := hostsKey{svc: si.Key, clusters: clusters, healthyOnly: healthyOnly}
	if si.Revision != 0 {
		c.mu.Lock()
		e, ok := c.m[k]
		c.mu.Unlock()
		if ok && e.rev == si.Revision {
			hosts := si.Hosts
			si.Hosts = nil
			wi := toWireServiceInfo(si, s.reg.Config())
			wi.Clusters = clusters
			wi.HostsJSON = e.json
			if len(hosts) == 0 {
				wi.Hosts = []wire.Instance{}
			}
			return wi
		}
	}
	wi := toWireServiceInfo(si, s.reg.Config())
	wi.Clusters = clusters
	if si.Revision == 0 {
		return wi
	}
	b, err := json.Marshal(wi.Hosts)
	if err != nil {
		return wi
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m) // crude but bounded: the hot services come back at once
	}
	c.m[k] = hostsEntry{rev: si.Revision, json: b}
	c.mu.Unlock()
	wi.Hosts, wi.HostsJSON = nil, b
	return wi
}

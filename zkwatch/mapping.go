package zkwatch

import (
	"errors"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"
)

// Dubbo 3's interface → application mapping: /{root}/mapping/{interface},
// a persistent node whose data is a comma-separated list of application
// names (ZookeeperMetadataReport, ServiceNameMapping.DEFAULT_MAPPING_GROUP).

// MappingKeyPrefix starts the key under which Changes delivers an
// interface whose mapping node changed: MappingKey(iface).
const MappingKeyPrefix = "mapping:"

// MappingKey is the Changes key of an interface's mapping.
func MappingKey(iface string) string { return MappingKeyPrefix + iface }

const mappingChild = "mapping"

// mappingState is what the watcher keeps of the mapping nodes (guarded by
// the watcher's mu).
type mappingState struct {
	nodes map[string]string // interface → node data
}

// Mappings lists the interfaces that have a mapping node, sorted.
func (w *Watcher) Mappings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.maps.nodes))
	for iface := range w.maps.nodes {
		out = append(out, iface)
	}
	slices.Sort(out)
	return out
}

// Mapping returns the data of an interface's mapping node; false when the
// node does not exist (or is not listed yet).
func (w *Watcher) Mapping(iface string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.maps.nodes[iface]
	return d, ok
}

// MappingPath is the znode path of an interface's mapping node.
func (w *Watcher) MappingPath(iface string) string { return w.mappingPath() + "/" + iface }

func (w *Watcher) mappingPath() string { return w.rootPath + "/" + mappingChild }

// isMappingPath reports whether p is the mapping node or one below it.
func (w *Watcher) isMappingPath(p string) bool {
	mp := w.mappingPath()
	return p == mp || strings.HasPrefix(p, mp+"/")
}

// processMapping lists the mapping node or reads one interface's node.
func (w *Watcher) processMapping(p string) error {
	mp := w.mappingPath()
	if p == mp {
		return w.listMappings()
	}
	iface := strings.TrimPrefix(p, mp+"/")
	if iface == "" || strings.Contains(iface, "/") {
		return nil
	}
	return w.getMapping(iface)
}

func (w *Watcher) listMappings() error {
	mp := w.mappingPath()
	children, err := w.childrenW("mapping", mp)
	if errors.Is(err, zk.ErrNoNode) {
		w.mu.Lock()
		for iface := range w.maps.nodes {
			delete(w.maps.nodes, iface)
			w.notes.mark(MappingKey(iface))
		}
		w.mu.Unlock()
		return w.existsW(mp)
	}
	if err != nil {
		return w.handleListErr("mapping", mp, err)
	}
	seen := make(map[string]bool, len(children))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, iface := range children {
		seen[iface] = true
		if _, ok := w.maps.nodes[iface]; !ok {
			w.q.add(mp + "/" + iface)
		}
	}
	for iface := range w.maps.nodes {
		if !seen[iface] {
			delete(w.maps.nodes, iface)
			w.notes.mark(MappingKey(iface))
		}
	}
	return nil
}

func (w *Watcher) getMapping(iface string) error {
	p := w.mappingPath() + "/" + iface
	w.m.listings.WithLabelValues("mapping_node").Inc()
	data, _, _, err := w.conn.GetW(p)
	gone := errors.Is(err, zk.ErrNoNode)
	if err != nil && !gone {
		w.m.listErrors.WithLabelValues("mapping_node").Inc()
		return w.handleListErr("mapping_node", p, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old, had := w.maps.nodes[iface]
	if gone {
		if had {
			delete(w.maps.nodes, iface)
			w.notes.mark(MappingKey(iface))
		}
		return nil
	}
	d := string(data)
	w.maps.nodes[iface] = d
	if !had || old != d {
		w.notes.mark(MappingKey(iface))
	}
	return nil
}

// relistMappingsLocked queues the mapping tree after a session expiry.
func (w *Watcher) relistMappingsLocked() {
	w.q.add(w.mappingPath())
	for iface := range w.maps.nodes {
		w.q.add(w.mappingPath() + "/" + iface)
	}
}

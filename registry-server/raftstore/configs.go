package raftstore

import (
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// Config log entries (the config service's persistent data, in the same
// log as persistent instances).
const (
	cmdPutConfig    byte = 8
	cmdRemoveConfig byte = 9
)

type (
	// putConfigCmd creates or replaces a config. The proposer sets
	// LastModified (so replicas agree); the FSM computes the md5, checks
	// CheckCAS against CasMD5 and keeps HistoryMax previous versions.
	putConfigCmd struct {
		Key          configsvc.Key
		Content      string
		Type         string
		LastModified int64
		CheckCAS     bool   `json:",omitempty"`
		CasMD5       string `json:",omitempty"`
		HistoryMax   int
	}
	removeConfigCmd struct {
		Key configsvc.Key
	}
)

// configState is the FSM's config part. items and changed are guarded by
// fsm.mu; watch is read by the apply goroutine after the lock is released.
type configState struct {
	items   map[configsvc.Key]*configsvc.Item
	changed []configsvc.Key
	watch   atomic.Pointer[func(configsvc.Key)]
}

func (c *configState) takeChangedLocked() []configsvc.Key {
	ch := c.changed
	c.changed = nil
	return ch
}

// notify tells the watcher (if any) about changed keys, outside the lock.
func (c *configState) notify(keys []configsvc.Key) {
	if len(keys) == 0 {
		return
	}
	w := c.watch.Load()
	if w == nil {
		return
	}
	for _, k := range keys {
		(*w)(k)
	}
}

func (f *fsm) putConfig(c putConfigCmd) (map[naming.ServiceKey]change, error) {
	if err := configsvc.ValidateKey(c.Key); err != nil {
		return nil, err
	}
	cs := &f.cfg
	if cs.items == nil {
		cs.items = map[configsvc.Key]*configsvc.Item{}
	}
	md5 := configsvc.MD5(c.Content)
	old := cs.items[c.Key]
	if c.CheckCAS && old != nil && old.MD5 != c.CasMD5 {
		return nil, configsvc.ErrCASMismatch
	}
	if old != nil && old.MD5 == md5 && old.Type == c.Type {
		return nil, nil // same content: nothing changes, nobody is told
	}
	it := &configsvc.Item{Key: c.Key, Content: c.Content, MD5: md5, Type: c.Type, LastModified: c.LastModified}
	if old != nil && c.HistoryMax > 0 {
		h := make([]configsvc.Version, 0, min(len(old.History)+1, c.HistoryMax))
		h = append(h, configsvc.Version{Content: old.Content, MD5: old.MD5, Type: old.Type, LastModified: old.LastModified})
		for _, v := range old.History {
			if len(h) == c.HistoryMax {
				break
			}
			h = append(h, v)
		}
		it.History = h
	}
	cs.items[c.Key] = it
	cs.changed = append(cs.changed, c.Key)
	return nil, nil
}

func (f *fsm) removeConfig(c removeConfigCmd) (map[naming.ServiceKey]change, error) {
	if _, ok := f.cfg.items[c.Key]; !ok {
		return nil, nil
	}
	delete(f.cfg.items, c.Key)
	f.cfg.changed = append(f.cfg.changed, c.Key)
	return nil, nil
}

func compareConfigKeys(a, b configsvc.Key) int {
	if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return strings.Compare(a.DataID, b.DataID)
}

func copyItem(it *configsvc.Item) configsvc.Item {
	out := *it
	out.History = slices.Clone(it.History)
	return out
}

// snapshotLocked lists every config, sorted (under the read lock).
func (c *configState) snapshotLocked() []configsvc.Item {
	out := make([]configsvc.Item, 0, len(c.items))
	for _, k := range slices.SortedFunc(maps.Keys(c.items), compareConfigKeys) {
		out = append(out, copyItem(c.items[k]))
	}
	return out
}

// restoreLocked replaces every config and returns the keys that existed
// before or exist now (under the write lock).
func (c *configState) restoreLocked(items []configsvc.Item) []configsvc.Key {
	next := make(map[configsvc.Key]*configsvc.Item, len(items))
	for i := range items {
		it := items[i]
		next[it.Key] = &it
	}
	var keys []configsvc.Key
	for k := range c.items {
		keys = append(keys, k)
	}
	for k := range next {
		if _, ok := c.items[k]; !ok {
			keys = append(keys, k)
		}
	}
	c.items = next
	c.changed = nil
	return keys
}

// PutConfig stores a config through the Raft log (Open's node must be the
// leader). With checkCAS, an existing config is replaced only if its md5
// is casMD5 (else configsvc.ErrCASMismatch); a missing one is created.
// Publishing the same content and type again changes nothing.
func (s *Store) PutConfig(k configsvc.Key, content, typ string, lastModified int64, checkCAS bool, casMD5 string, historyMax int) error {
	return s.apply(cmdPutConfig, putConfigCmd{Key: k, Content: content, Type: typ, LastModified: lastModified,
		CheckCAS: checkCAS, CasMD5: casMD5, HistoryMax: historyMax})
}

// RemoveConfig deletes a config (no error when it does not exist).
func (s *Store) RemoveConfig(k configsvc.Key) error {
	return s.apply(cmdRemoveConfig, removeConfigCmd{Key: k})
}

// Config returns a copy of one config.
func (s *Store) Config(k configsvc.Key) (configsvc.Item, bool) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	it := s.fsm.cfg.items[k]
	if it == nil {
		return configsvc.Item{}, false
	}
	return copyItem(it), true
}

// ConfigMD5 returns a config's md5 ("" when it does not exist) without
// copying its content.
func (s *Store) ConfigMD5(k configsvc.Key) string {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	if it := s.fsm.cfg.items[k]; it != nil {
		return it.MD5
	}
	return ""
}

// ConfigCount is the number of stored configs.
func (s *Store) ConfigCount() int {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return len(s.fsm.cfg.items)
}

// SetConfigWatcher sets the function told about every config key that
// changed (put with new content, removed, or touched by a snapshot
// restore), called from the apply goroutine with no lock held; it must not
// block nor write to the store. nil unsets it.
func (s *Store) SetConfigWatcher(w func(configsvc.Key)) {
	if w == nil {
		s.fsm.cfg.watch.Store(nil)
		return
	}
	s.fsm.cfg.watch.Store(&w)
}

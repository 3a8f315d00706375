package httpapi

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

// fakeNaming is a small in-memory stand-in for the naming core's Registry
// (the real one arrives at merge): beat-kept instances with expiry on an
// injected clock, persistent instances, overrides and service metadata fed
// by the Raft store's Applier calls, and Select applying overrides, the
// enabled filter and healthyOnly.
type fakeNaming struct {
	mu     sync.Mutex
	now    func() time.Time
	beat   map[naming.ServiceKey]map[string]*beatEntry
	pers   map[naming.ServiceKey][]naming.Instance
	ovr    map[naming.ServiceKey][]naming.Override
	meta   map[naming.ServiceKey]naming.ServiceMeta
	health map[naming.ServiceKey]map[string]bool
	refT   int64
}

type beatEntry struct {
	inst naming.Instance
	last time.Time
}

func newFakeNaming(now func() time.Time) *fakeNaming {
	return &fakeNaming{
		now:    now,
		beat:   map[naming.ServiceKey]map[string]*beatEntry{},
		pers:   map[naming.ServiceKey][]naming.Instance{},
		ovr:    map[naming.ServiceKey][]naming.Override{},
		meta:   map[naming.ServiceKey]naming.ServiceMeta{},
		health: map[naming.ServiceKey]map[string]bool{},
	}
}

func akey(a naming.Addr) string {
	if a.Cluster == "" {
		a.Cluster = naming.DefaultCluster
	}
	return a.IP + ":" + itoa(a.Port) + ":" + a.Cluster
}

func itoa(n int) string { return strconv.Itoa(n) }

func iaddr(in naming.Instance) naming.Addr {
	return naming.Addr{IP: in.IP, Port: in.Port, Cluster: in.Cluster}
}

// expireLocked drops beat-kept instances past their delete timeout.
func (f *fakeNaming) expireLocked(key naming.ServiceKey) {
	now := f.now()
	for k, e := range f.beat[key] {
		del := time.Duration(preserved(e.inst.Metadata, naming.MetaIPDeleteTimeout, defaultIPDeleteTimout)) * time.Millisecond
		if now.Sub(e.last) > del {
			delete(f.beat[key], k)
		}
	}
}

func (f *fakeNaming) RegisterBeatKept(key naming.ServiceKey, inst naming.Instance) error {
	_, err := f.Beat(key, inst, true)
	return err
}

func (f *fakeNaming) Beat(key naming.ServiceKey, inst naming.Instance, register bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(key)
	if inst.Cluster == "" {
		inst.Cluster = naming.DefaultCluster
	}
	k := akey(iaddr(inst))
	if e, ok := f.beat[key][k]; ok {
		e.last = f.now()
		if register {
			e.inst = inst
		}
		return true, nil
	}
	if !register {
		return false, nil
	}
	if f.beat[key] == nil {
		f.beat[key] = map[string]*beatEntry{}
	}
	inst.Ephemeral = true
	f.beat[key][k] = &beatEntry{inst: inst, last: f.now()}
	return true, nil
}

func (f *fakeNaming) DeregisterBeatKept(key naming.ServiceKey, a naming.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.beat[key], akey(a))
	return nil
}

func (f *fakeNaming) Select(key naming.ServiceKey, clusters []string, healthyOnly bool) (naming.ServiceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(key)
	now := f.now()
	var all []naming.Instance
	for _, k := range slices.Sorted(maps.Keys(f.beat[key])) {
		e := f.beat[key][k]
		in := e.inst
		in.Metadata = maps.Clone(in.Metadata)
		to := time.Duration(preserved(in.Metadata, naming.MetaHeartBeatTimeout, defaultBeatTimeout)) * time.Millisecond
		in.Healthy = now.Sub(e.last) <= to
		all = append(all, in)
	}
	for _, in := range f.pers[key] {
		in.Metadata = maps.Clone(in.Metadata)
		if h, ok := f.health[key][akey(iaddr(in))]; ok {
			in.Healthy = h
		}
		all = append(all, in)
	}
	ovr := map[string]naming.Override{}
	for _, o := range f.ovr[key] {
		ovr[akey(o.Addr)] = o
	}
	var hosts []naming.Instance
	for _, in := range all {
		if o, ok := ovr[akey(iaddr(in))]; ok {
			if o.Enabled != nil {
				in.Enabled = *o.Enabled
			}
			if o.Weight != nil {
				in.Weight = *o.Weight
			}
			for k, v := range o.Metadata {
				if in.Metadata == nil {
					in.Metadata = map[string]string{}
				}
				in.Metadata[k] = v
			}
		}
		if !in.Enabled || (healthyOnly && !in.Healthy) {
			continue
		}
		if len(clusters) > 0 && !slices.Contains(clusters, in.Cluster) {
			continue
		}
		hosts = append(hosts, in)
	}
	f.refT++
	return naming.ServiceInfo{Key: key, Hosts: hosts, CacheMillis: 10000, LastRefTime: now.UnixMilli() + f.refT}, nil
}

func (f *fakeNaming) keysLocked() []naming.ServiceKey {
	set := map[naming.ServiceKey]bool{}
	for k, m := range f.beat {
		if len(m) > 0 {
			set[k] = true
		}
	}
	for k := range f.pers {
		set[k] = true
	}
	for k := range f.meta {
		set[k] = true
	}
	return slices.SortedFunc(maps.Keys(set), func(a, b naming.ServiceKey) int {
		return strings.Compare(a.Namespace+"/"+a.Group+"/"+a.Name, b.Namespace+"/"+b.Group+"/"+b.Name)
	})
}

func (f *fakeNaming) Services() []naming.ServiceKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keysLocked()
}

func (f *fakeNaming) ListServices(ns, group string, pageNo, pageSize int) (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, k := range f.keysLocked() {
		if k.Namespace == ns && k.Group == group {
			names = append(names, k.Name)
		}
	}
	start := (pageNo - 1) * pageSize
	if start >= len(names) {
		return len(names), nil
	}
	return len(names), names[start:min(len(names), start+pageSize)]
}

// Applier side (raftstore feeds it).

func (f *fakeNaming) SetPersistent(key naming.ServiceKey, insts []naming.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(insts) == 0 {
		delete(f.pers, key)
		return
	}
	f.pers[key] = insts
}

func (f *fakeNaming) SetOverrides(key naming.ServiceKey, o []naming.Override) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(o) == 0 {
		delete(f.ovr, key)
		return
	}
	f.ovr[key] = o
}

func (f *fakeNaming) SetServiceMeta(key naming.ServiceKey, m naming.ServiceMeta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Metadata == nil && m.ProtectThreshold == 0 && !m.Ephemeral {
		delete(f.meta, key)
		return
	}
	f.meta[key] = m
}

func (f *fakeNaming) SetHealth(key naming.ServiceKey, a naming.Addr, healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.health[key] == nil {
		f.health[key] = map[string]bool{}
	}
	f.health[key][akey(a)] = healthy
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

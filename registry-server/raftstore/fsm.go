package raftstore

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/configsvc"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// Applier receives the FSM's applied state, one service at a time, always
// the complete current value (never a delta). It is called from the FSM's
// single apply goroutine, in log order, after the FSM state has changed and
// with no FSM lock held; it must not call back into the Store's write
// methods (that would deadlock Raft). *naming.Registry implements it.
type Applier interface {
	// SetPersistent sets all persistent instances of the service (nil: none).
	SetPersistent(key naming.ServiceKey, insts []naming.Instance)
	// SetOverrides sets all instance overrides of the service (nil: none).
	SetOverrides(key naming.ServiceKey, o []naming.Override)
	// SetServiceMeta sets the service's metadata; the zero value means the
	// service has no stored metadata (it was removed or never set).
	SetServiceMeta(key naming.ServiceKey, m naming.ServiceMeta)
}

// Log entry types: the first byte of every entry; the JSON body follows.
// Values are persisted: never renumber, only append.
const (
	cmdPutInstance    byte = 1
	cmdRemoveInstance byte = 2
	cmdPutOverride    byte = 3
	cmdRemoveOverride byte = 4
	cmdSetEnabledByIP byte = 5
	cmdPutServiceMeta byte = 6
	cmdRemoveService  byte = 7
	// 8 and 9 are the config service's (configs.go). 10-31 are left for
	// the next domains (users and roles); cluster state starts at 32.

	// cmdSetHealth records the health prober's verdict on a persistent
	// instance, so every member serves it (not only the leader).
	cmdSetHealth byte = 32
)

var cmdNames = map[byte]string{
	cmdPutInstance:    "put_instance",
	cmdRemoveInstance: "remove_instance",
	cmdPutOverride:    "put_override",
	cmdRemoveOverride: "remove_override",
	cmdSetEnabledByIP: "set_enabled_by_ip",
	cmdPutServiceMeta: "put_service_meta",
	cmdRemoveService:  "remove_service",
	cmdPutConfig:      "put_config",
	cmdRemoveConfig:   "remove_config",
	cmdSetHealth:      "set_health",
	cmdAuthUser:       "auth_user",
	cmdAuthRole:       "auth_role",
	cmdAuthPermission: "auth_permission",
}

// Command bodies.
type (
	putInstanceCmd struct {
		Key      naming.ServiceKey
		Instance naming.Instance
	}
	addrCmd struct {
		Key  naming.ServiceKey
		Addr naming.Addr
	}
	putOverrideCmd struct {
		Key      naming.ServiceKey
		Override naming.Override
	}
	// setEnabledByIPCmd is graceful offline (Enabled=false) and its reverse
	// for every instance of IP (and Port, when not 0) in Namespace: the
	// persistent instances and existing overrides the FSM knows, plus
	// Targets, the ephemeral instances the proposer saw in the naming view.
	setEnabledByIPCmd struct {
		Namespace string
		IP        string
		Port      int
		Enabled   bool
		Targets   []Target
	}
	putServiceMetaCmd struct {
		Key  naming.ServiceKey
		Meta naming.ServiceMeta
	}
	serviceCmd struct {
		Key naming.ServiceKey
	}
	setHealthCmd struct {
		Key     naming.ServiceKey
		Addr    naming.Addr
		Healthy bool
	}
)

// Target is one instance address inside a service.
type Target struct {
	Key  naming.ServiceKey
	Addr naming.Addr
}

// service is the FSM's state for one service. Guarded by fsm.mu.
type service struct {
	Meta      *naming.ServiceMeta        `json:",omitempty"`
	Instances map[string]naming.Instance `json:",omitempty"` // by addrKey
	Overrides map[string]naming.Override `json:",omitempty"` // by addrKey
}

func (s *service) empty() bool {
	return s.Meta == nil && len(s.Instances) == 0 && len(s.Overrides) == 0
}

// change says what part of a service an apply touched.
type change uint8

const (
	chInstances change = 1 << iota
	chOverrides
	chMeta
)

// fsm is the state machine. Apply, Snapshot and Restore are called by Raft
// (Apply and Restore from one goroutine, never concurrently); readers take
// mu.RLock. The state is the source of truth; the Applier mirrors it.
type fsm struct {
	applier Applier
	metrics *metrics

	mu       sync.RWMutex // guards services and cfg's maps
	services map[naming.ServiceKey]*service
	cfg      configState // the config service's data (configs.go)
	auth     authState   // users, roles, permissions (auth.go)
	// applied is the index of the last command applied (Linearize waits
	// on it: raft's AppliedIndex moves when an entry is handed to the FSM,
	// before the FSM has run it).
	applied atomic.Uint64
}

func newFSM(a Applier, m *metrics) *fsm {
	return &fsm{applier: a, metrics: m, services: map[naming.ServiceKey]*service{}}
}

// addrKey is the Nacos metadataId "ip:port:cluster".
func addrKey(a naming.Addr) string {
	return a.IP + ":" + strconv.Itoa(a.Port) + ":" + a.Cluster
}

func normAddr(a naming.Addr) naming.Addr {
	if a.Cluster == "" {
		a.Cluster = naming.DefaultCluster
	}
	return a
}

func instAddr(in naming.Instance) naming.Addr {
	return normAddr(naming.Addr{IP: in.IP, Port: in.Port, Cluster: in.Cluster})
}

// encode builds a log entry.
func encode(typ byte, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s: %v", ErrInvalidParam, cmdNames[typ], err)
	}
	return append([]byte{typ}, b...), nil
}

// handler decodes an entry's body (outside the FSM lock) and returns the
// function that applies it (under the lock).
type handler func(body []byte) func(f *fsm) (map[naming.ServiceKey]change, error)

// dispatch maps a log entry type to its decoder and apply function.
var dispatch = map[byte]handler{
	cmdPutInstance:    decodeThen((*fsm).putInstance),
	cmdRemoveInstance: decodeThen((*fsm).removeInstance),
	cmdPutOverride:    decodeThen((*fsm).putOverride),
	cmdRemoveOverride: decodeThen((*fsm).removeOverride),
	cmdSetEnabledByIP: decodeThen((*fsm).setEnabledByIP),
	cmdPutServiceMeta: decodeThen((*fsm).putServiceMeta),
	cmdRemoveService:  decodeThen((*fsm).removeService),
	cmdPutConfig:      decodeThen((*fsm).putConfig),
	cmdRemoveConfig:   decodeThen((*fsm).removeConfig),
	cmdSetHealth:      decodeThen((*fsm).setHealth),
	cmdAuthUser:       decodeThen((*fsm).authUser),
	cmdAuthRole:       decodeThen((*fsm).authRole),
	cmdAuthPermission: decodeThen((*fsm).authPermission),
}

// decodeThen decodes the body strictly; an undecodable body panics, since
// replicas must never diverge on what a committed entry means.
func decodeThen[T any](apply func(*fsm, T) (map[naming.ServiceKey]change, error)) handler {
	return func(body []byte) func(f *fsm) (map[naming.ServiceKey]change, error) {
		var c T
		if err := json.Unmarshal(body, &c); err != nil {
			panic(fmt.Sprintf("raftstore: undecodable %T log entry: %v", c, err))
		}
		return func(f *fsm) (map[naming.ServiceKey]change, error) { return apply(f, c) }
	}
}

// Apply applies one committed entry and returns nil or a domain error.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 {
		panic(fmt.Sprintf("raftstore: empty log entry at index %d", l.Index))
	}
	h, ok := dispatch[l.Data[0]]
	if !ok {
		panic(fmt.Sprintf("raftstore: unknown log entry type %d at index %d", l.Data[0], l.Index))
	}
	run := h(l.Data[1:]) // decodes (and panics on garbage) before locking
	f.mu.Lock()
	changed, err := run(f)
	var views []view
	if f.applier != nil {
		views = f.viewsLocked(changed)
	}
	cfgChanged := f.cfg.takeChangedLocked()
	f.mu.Unlock()
	f.metrics.applied(cmdNames[l.Data[0]], err)
	f.publish(views)
	f.cfg.notify(cfgChanged)
	f.applied.Store(l.Index)
	return err
}

// view is a copy of one service's state, to hand to the Applier.
type view struct {
	key   naming.ServiceKey
	what  change
	meta  naming.ServiceMeta
	insts []naming.Instance
	ovrs  []naming.Override
}

func (f *fsm) viewsLocked(changed map[naming.ServiceKey]change) []view {
	keys := slices.SortedFunc(maps.Keys(changed), compareKeys)
	out := make([]view, 0, len(keys))
	for _, k := range keys {
		v := view{key: k, what: changed[k]}
		if s := f.services[k]; s != nil {
			if s.Meta != nil {
				v.meta = copyMeta(*s.Meta)
			}
			v.insts = sortedInstances(s.Instances)
			v.ovrs = sortedOverrides(s.Overrides)
		}
		out = append(out, v)
	}
	return out
}

func (f *fsm) publish(views []view) {
	if f.applier == nil {
		return
	}
	for _, v := range views {
		if v.what&chMeta != 0 {
			f.applier.SetServiceMeta(v.key, v.meta)
		}
		if v.what&chInstances != 0 {
			f.applier.SetPersistent(v.key, v.insts)
		}
		if v.what&chOverrides != 0 {
			f.applier.SetOverrides(v.key, v.ovrs)
		}
	}
}

func compareKeys(a, b naming.ServiceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func (f *fsm) svc(k naming.ServiceKey) *service {
	s := f.services[k]
	if s == nil {
		s = &service{}
		f.services[k] = s
	}
	return s
}

func (f *fsm) gc(k naming.ServiceKey) {
	if s := f.services[k]; s != nil && s.empty() {
		delete(f.services, k)
	}
}

func validKey(k naming.ServiceKey) error {
	if k.Namespace == "" || k.Group == "" || k.Name == "" {
		return fmt.Errorf("%w: namespace, group and service name are required", ErrInvalidParam)
	}
	return nil
}

func validAddr(a naming.Addr) error {
	if a.IP == "" || a.Port < 1 || a.Port > 65535 {
		return fmt.Errorf("%w: bad instance address %s", ErrInvalidParam, addrKey(a))
	}
	return nil
}

func (f *fsm) putInstance(c putInstanceCmd) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	if c.Instance.Ephemeral {
		return nil, fmt.Errorf("%w: instance %s is ephemeral, only persistent instances are stored", ErrKindClash, addrKey(instAddr(c.Instance)))
	}
	a := instAddr(c.Instance)
	if err := validAddr(a); err != nil {
		return nil, err
	}
	if w := c.Instance.Weight; w < 0 || w > 10000 {
		return nil, fmt.Errorf("%w: weight %v out of [0, 10000]", ErrInvalidParam, w)
	}
	s := f.services[c.Key]
	if s != nil && s.Meta != nil && s.Meta.Ephemeral {
		return nil, fmt.Errorf("%w: service %s is ephemeral, instance %s is persistent", ErrKindClash, c.Key.Grouped(), addrKey(a))
	}
	in := c.Instance
	in.Cluster = a.Cluster
	in.Metadata = maps.Clone(in.Metadata)
	s = f.svc(c.Key)
	if s.Instances == nil {
		s.Instances = map[string]naming.Instance{}
	}
	s.Instances[addrKey(a)] = in
	return map[naming.ServiceKey]change{c.Key: chInstances}, nil
}

func (f *fsm) removeInstance(c addrCmd) (map[naming.ServiceKey]change, error) {
	return removeAddr(f, c, chInstances, func(s *service) map[string]naming.Instance { return s.Instances })
}

// removeAddr deletes c.Addr's entry from the map of c.Key's service that
// pick selects, reporting ch when there was one; removing nothing is no
// error (idempotent, as Nacos).
func removeAddr[V any](f *fsm, c addrCmd, ch change, pick func(*service) map[string]V) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	s := f.services[c.Key]
	if s == nil {
		return nil, nil
	}
	m, k := pick(s), addrKey(normAddr(c.Addr))
	if _, ok := m[k]; !ok {
		return nil, nil
	}
	delete(m, k)
	f.gc(c.Key)
	return map[naming.ServiceKey]change{c.Key: ch}, nil
}

func (f *fsm) putOverride(c putOverrideCmd) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	o := c.Override
	o.Addr = normAddr(o.Addr)
	if err := validAddr(o.Addr); err != nil {
		return nil, err
	}
	if o.Weight != nil && (*o.Weight < 0 || *o.Weight > 10000) {
		return nil, fmt.Errorf("%w: weight %v out of [0, 10000]", ErrInvalidParam, *o.Weight)
	}
	o.Metadata = maps.Clone(o.Metadata)
	s := f.svc(c.Key)
	if s.Overrides == nil {
		s.Overrides = map[string]naming.Override{}
	}
	s.Overrides[addrKey(o.Addr)] = o
	return map[naming.ServiceKey]change{c.Key: chOverrides}, nil
}

func (f *fsm) removeOverride(c addrCmd) (map[naming.ServiceKey]change, error) {
	return removeAddr(f, c, chOverrides, func(s *service) map[string]naming.Override { return s.Overrides })
}

func (f *fsm) setEnabledByIP(c setEnabledByIPCmd) (map[naming.ServiceKey]change, error) {
	if c.Namespace == "" || c.IP == "" || c.Port < 0 || c.Port > 65535 {
		return nil, fmt.Errorf("%w: offline needs a namespace, an ip and a port in [0, 65535]", ErrInvalidParam)
	}
	match := func(a naming.Addr) bool { return a.IP == c.IP && (c.Port == 0 || a.Port == c.Port) }
	targets := map[naming.ServiceKey]map[string]naming.Addr{}
	add := func(k naming.ServiceKey, a naming.Addr) {
		if targets[k] == nil {
			targets[k] = map[string]naming.Addr{}
		}
		targets[k][addrKey(a)] = a
	}
	for k, s := range f.services {
		if k.Namespace != c.Namespace {
			continue
		}
		for _, in := range s.Instances {
			if a := instAddr(in); match(a) {
				add(k, a)
			}
		}
		for _, o := range s.Overrides {
			if match(o.Addr) {
				add(k, o.Addr)
			}
		}
	}
	for _, t := range c.Targets {
		a := normAddr(t.Addr)
		if t.Key.Namespace == c.Namespace && match(a) && validKey(t.Key) == nil && validAddr(a) == nil {
			add(t.Key, a)
		}
	}
	changed := map[naming.ServiceKey]change{}
	for k, addrs := range targets {
		s := f.svc(k)
		for ak, a := range addrs {
			o, had := s.Overrides[ak]
			if !had {
				o = naming.Override{Addr: a}
			}
			if c.Enabled {
				// The reverse of offline: drop the enabled flag, and the
				// override itself when nothing else is left in it.
				if !had || o.Enabled == nil {
					continue
				}
				o.Enabled = nil
				if o.Weight == nil && o.Metadata == nil {
					delete(s.Overrides, ak)
				} else {
					s.Overrides[ak] = o
				}
			} else {
				if o.Enabled != nil && !*o.Enabled {
					continue
				}
				disabled := false
				o.Enabled = &disabled
				if s.Overrides == nil {
					s.Overrides = map[string]naming.Override{}
				}
				s.Overrides[ak] = o
			}
			changed[k] |= chOverrides
		}
		f.gc(k)
	}
	return changed, nil
}

func (f *fsm) putServiceMeta(c putServiceMetaCmd) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	m := copyMeta(c.Meta)
	if m.ProtectThreshold < 0 || m.ProtectThreshold > 1 {
		return nil, fmt.Errorf("%w: protectThreshold %v out of [0, 1]", ErrInvalidParam, m.ProtectThreshold)
	}
	s := f.services[c.Key]
	if s != nil && s.Meta != nil && s.Meta.Ephemeral != m.Ephemeral {
		return nil, fmt.Errorf("%w: service %s exists with ephemeral=%t", ErrKindClash, c.Key.Grouped(), s.Meta.Ephemeral)
	}
	if s != nil && m.Ephemeral && len(s.Instances) > 0 {
		return nil, fmt.Errorf("%w: service %s has persistent instances", ErrKindClash, c.Key.Grouped())
	}
	s = f.svc(c.Key)
	s.Meta = &m
	return map[naming.ServiceKey]change{c.Key: chMeta}, nil
}

func (f *fsm) removeService(c serviceCmd) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	s := f.services[c.Key]
	if s == nil {
		return nil, nil
	}
	if len(s.Instances) > 0 {
		return nil, fmt.Errorf("%w: %s has %d persistent instances", ErrServiceNotEmpty, c.Key.Grouped(), len(s.Instances))
	}
	var ch change
	if s.Meta != nil {
		ch |= chMeta
	}
	if len(s.Overrides) > 0 {
		ch |= chOverrides
	}
	delete(f.services, c.Key)
	return map[naming.ServiceKey]change{c.Key: ch}, nil
}

func copyMeta(m naming.ServiceMeta) naming.ServiceMeta {
	m.Metadata = maps.Clone(m.Metadata)
	return m
}

func sortedInstances(m map[string]naming.Instance) []naming.Instance {
	if len(m) == 0 {
		return nil
	}
	out := make([]naming.Instance, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		in := m[k]
		in.Metadata = maps.Clone(in.Metadata)
		out = append(out, in)
	}
	return out
}

func sortedOverrides(m map[string]naming.Override) []naming.Override {
	if len(m) == 0 {
		return nil
	}
	out := make([]naming.Override, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o := m[k]
		o.Metadata = maps.Clone(o.Metadata)
		if o.Enabled != nil {
			v := *o.Enabled
			o.Enabled = &v
		}
		if o.Weight != nil {
			v := *o.Weight
			o.Weight = &v
		}
		out = append(out, o)
	}
	return out
}

// snapshotState is the persisted form of the FSM (JSON).
type snapshotState struct {
	Version  int
	Services []snapshotService
	Configs  []configsvc.Item `json:",omitempty"` // configs.go; absent in older snapshots
	Auth     *auth.Snapshot   `json:",omitempty"` // auth.go; absent in older snapshots
	// Applied is the index of the last command in the snapshot (absent in
	// older snapshots: 0), so a restored follower knows how far it is for
	// linearizable reads.
	Applied uint64 `json:",omitempty"`
}

type snapshotService struct {
	Key       naming.ServiceKey
	Meta      *naming.ServiceMeta `json:",omitempty"`
	Instances []naming.Instance   `json:",omitempty"`
	Overrides []naming.Override   `json:",omitempty"`
}

// Snapshot copies the state under the read lock; Persist writes it later.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := snapshotState{Version: 1, Applied: f.applied.Load()}
	for _, k := range slices.SortedFunc(maps.Keys(f.services), compareKeys) {
		s := f.services[k]
		ss := snapshotService{Key: k, Instances: sortedInstances(s.Instances), Overrides: sortedOverrides(s.Overrides)}
		if s.Meta != nil {
			m := copyMeta(*s.Meta)
			ss.Meta = &m
		}
		st.Services = append(st.Services, ss)
	}
	st.Configs = f.cfg.snapshotLocked()
	st.Auth = f.auth.snapshotLocked()
	return &fsmSnapshot{state: st}, nil
}

// Restore replaces the state and republishes every service that existed
// before or exists now.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st snapshotState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("raftstore: decode snapshot: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("raftstore: snapshot version %d not supported", st.Version)
	}
	next := map[naming.ServiceKey]*service{}
	for _, ss := range st.Services {
		s := &service{Meta: ss.Meta}
		for _, in := range ss.Instances {
			if s.Instances == nil {
				s.Instances = map[string]naming.Instance{}
			}
			s.Instances[addrKey(instAddr(in))] = in
		}
		for _, o := range ss.Overrides {
			if s.Overrides == nil {
				s.Overrides = map[string]naming.Override{}
			}
			s.Overrides[addrKey(normAddr(o.Addr))] = o
		}
		next[ss.Key] = s
	}
	f.mu.Lock()
	changed := map[naming.ServiceKey]change{}
	for k := range f.services {
		changed[k] = chMeta | chInstances | chOverrides
	}
	for k := range next {
		changed[k] = chMeta | chInstances | chOverrides
	}
	f.services = next
	views := f.viewsLocked(changed)
	cfgChanged := f.cfg.restoreLocked(st.Configs)
	f.auth.restoreLocked(st.Auth)
	f.mu.Unlock()
	f.applied.Store(st.Applied)
	f.publish(views)
	f.cfg.notify(cfgChanged)
	return nil
}

type fsmSnapshot struct{ state snapshotState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Read side, under the read lock.

func (f *fsm) instances(k naming.ServiceKey) []naming.Instance {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if s := f.services[k]; s != nil {
		return sortedInstances(s.Instances)
	}
	return nil
}

func (f *fsm) overrides(k naming.ServiceKey) []naming.Override {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if s := f.services[k]; s != nil {
		return sortedOverrides(s.Overrides)
	}
	return nil
}

func (f *fsm) serviceMeta(k naming.ServiceKey) (naming.ServiceMeta, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if s := f.services[k]; s != nil && s.Meta != nil {
		return copyMeta(*s.Meta), true
	}
	return naming.ServiceMeta{}, false
}

func (f *fsm) serviceKeys() []naming.ServiceKey {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.SortedFunc(maps.Keys(f.services), compareKeys)
}

func (f *fsm) allInstances() []Keyed {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Keyed
	for _, k := range slices.SortedFunc(maps.Keys(f.services), compareKeys) {
		for _, in := range sortedInstances(f.services[k].Instances) {
			out = append(out, Keyed{Key: k, Instance: in})
		}
	}
	return out
}

func (f *fsm) counts() (services, instances, overrides int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, s := range f.services {
		instances += len(s.Instances)
		overrides += len(s.Overrides)
	}
	return len(f.services), instances, overrides
}

// Keyed is a persistent instance with its service.
type Keyed struct {
	Key      naming.ServiceKey
	Instance naming.Instance
}

// setHealth sets the Healthy flag of a persistent instance; an instance
// that is gone, or already has that health, changes nothing.
func (f *fsm) setHealth(c setHealthCmd) (map[naming.ServiceKey]change, error) {
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	s := f.services[c.Key]
	if s == nil {
		return nil, nil
	}
	k := addrKey(normAddr(c.Addr))
	in, ok := s.Instances[k]
	if !ok || in.Healthy == c.Healthy {
		return nil, nil
	}
	in.Healthy = c.Healthy
	s.Instances[k] = in
	return map[naming.ServiceKey]change{c.Key: chInstances}, nil
}

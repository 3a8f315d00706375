package registryclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"sync"

	"github.com/ferrysync/ferry/wire"
)

// DefaultGroup is Nacos' default group.
const DefaultGroup = "DEFAULT_GROUP"

// ServiceRef names a service. Empty Namespace means Config.Namespace, empty
// Group DEFAULT_GROUP; Name is ungrouped.
type ServiceRef struct {
	Namespace string
	Group     string
	Name      string
}

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Group + "@@" + r.Name }

// Instance is an instance to register. Zero Weight means 1, empty Cluster
// the server's default ("DEFAULT"). Unlike Nacos' pojo, the zero value is
// enabled and healthy.
type Instance struct {
	IP         string
	Port       int
	Weight     float64
	Cluster    string
	Metadata   map[string]string
	InstanceID string
	Disabled   bool
	Unhealthy  bool
}

// Addr names an instance inside a service.
type Addr struct {
	IP      string
	Port    int
	Cluster string
}

// Addr returns the instance's address.
func (i Instance) Addr() Addr { return Addr{IP: i.IP, Port: i.Port, Cluster: i.Cluster} }

func (i Instance) validate() error {
	if i.IP == "" {
		return fmt.Errorf("%w: instance ip is empty", ErrInvalidInput)
	}
	if i.Port <= 0 || i.Port > 65535 {
		return fmt.Errorf("%w: instance %s port %d out of range", ErrInvalidInput, i.IP, i.Port)
	}
	if i.Weight < 0 {
		return fmt.Errorf("%w: instance %s:%d weight %v < 0", ErrInvalidInput, i.IP, i.Port, i.Weight)
	}
	return nil
}

// wire converts to the Nacos JSON form.
func (i Instance) wire(ephemeral bool) wire.Instance {
	w := i.Weight
	if w == 0 {
		w = 1
	}
	return wire.Instance{InstanceID: i.InstanceID, IP: i.IP, Port: i.Port, Weight: w, Healthy: !i.Unhealthy,
		Enabled: !i.Disabled, Ephemeral: ephemeral, ClusterName: i.Cluster, Metadata: i.Metadata}
}

// ServiceInfo is a service's state as the server sends it (Name ungrouped,
// hosts' ServiceName grouped).
type ServiceInfo = wire.ServiceInfo

// namingState is the redo log, the service cache and the listeners.
type namingState struct {
	mu    sync.Mutex // guards every field
	regs  map[ServiceRef]*regEntry
	subs  map[ServiceRef][]*listener
	cache map[ServiceRef]*cached
	// dispatch queue: latest info per service not yet given to listeners.
	pending map[ServiceRef]ServiceInfo
	signal  chan struct{}
	nextID  uint64
	// diskMu serialises snapshot writes (taken before mu).
	diskMu sync.Mutex
}

// regEntry is one connection-bound registration to redo: an instance or a
// batch. Entries are replaced, never mutated.
type regEntry struct {
	single *wire.Instance
	batch  []wire.Instance
}

type listener struct {
	id uint64
	fn func(ServiceInfo)
}

type cached struct {
	info     ServiceInfo
	fromDisk bool // loaded at start: any server answer replaces it
}

func (n *namingState) init() {
	n.regs = map[ServiceRef]*regEntry{}
	n.subs = map[ServiceRef][]*listener{}
	n.cache = map[ServiceRef]*cached{}
	n.pending = map[ServiceRef]ServiceInfo{}
	n.signal = make(chan struct{}, 1)
}

func (c *Client) ref(r ServiceRef) (ServiceRef, error) {
	if r.Namespace == "" {
		r.Namespace = c.cfg.Namespace
	}
	if r.Group == "" {
		r.Group = DefaultGroup
	}
	if r.Name == "" {
		return r, fmt.Errorf("%w: empty service name", ErrInvalidInput)
	}
	return r, nil
}

func header(r ServiceRef) wire.NamingHeader {
	return wire.NamingHeader{Namespace: r.Namespace, ServiceName: r.Name, GroupName: r.Group}
}

// Register registers inst as this connection's instance of svc (Nacos:
// one instance or batch per service per connection; it replaces the
// previous one). It lives while the connection lives and is re-registered
// after every reconnect. It enters the redo log before it is sent: when
// the call fails, the next connection still registers it (Deregister drops
// it).
func (c *Client) Register(ctx context.Context, svc ServiceRef, inst Instance) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	if err := inst.validate(); err != nil {
		return err
	}
	wi := inst.wire(true)
	e := &regEntry{single: &wi}
	c.naming.mu.Lock()
	c.naming.regs[svc] = e
	c.naming.mu.Unlock()
	_, err = c.request(ctx, regRequest(svc, e))
	return err
}

// Deregister removes this connection's registration of svc (inst names it;
// the server removes the connection's entry whatever the fields).
func (c *Client) Deregister(ctx context.Context, svc ServiceRef, inst Instance) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	if err := inst.validate(); err != nil {
		return err
	}
	c.naming.mu.Lock()
	delete(c.naming.regs, svc)
	c.naming.mu.Unlock()
	_, err = c.request(ctx, deregRequest(svc, inst.wire(true)))
	return err
}

// BatchRegister makes insts this connection's full list for svc, replacing
// the previous one (Nacos BatchInstanceRequest, server ≥ 2.2). An empty
// list deregisters the service's entry.
func (c *Client) BatchRegister(ctx context.Context, svc ServiceRef, insts []Instance) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	ws := make([]wire.Instance, 0, len(insts))
	for _, i := range insts {
		if err := i.validate(); err != nil {
			return err
		}
		ws = append(ws, i.wire(true))
	}
	c.naming.mu.Lock()
	prev := c.naming.regs[svc]
	if len(ws) == 0 {
		delete(c.naming.regs, svc)
	} else {
		c.naming.regs[svc] = &regEntry{batch: ws}
	}
	c.naming.mu.Unlock()
	if len(ws) == 0 {
		if prev == nil {
			return nil
		}
		var any wire.Instance
		if prev.single != nil {
			any = *prev.single
		} else {
			any = prev.batch[0]
		}
		_, err = c.request(ctx, deregRequest(svc, any))
		return err
	}
	_, err = c.request(ctx, &wire.BatchInstanceRequest{NamingHeader: header(svc), Type: wire.BatchRegisterInstance, Instances: ws})
	return err
}

func regRequest(svc ServiceRef, e *regEntry) wire.Request {
	if e.single != nil {
		return &wire.InstanceRequest{NamingHeader: header(svc), Type: wire.RegisterInstance, Instance: *e.single}
	}
	return &wire.BatchInstanceRequest{NamingHeader: header(svc), Type: wire.BatchRegisterInstance, Instances: e.batch}
}

func deregRequest(svc ServiceRef, inst wire.Instance) wire.Request {
	inst.Ephemeral = true
	return &wire.InstanceRequest{NamingHeader: header(svc), Type: wire.DeregisterInstance, Instance: inst}
}

// RegisterPersistent registers a persistent instance
// (PersistentInstanceRequest; Nacos ≥ 2.3 servers).
func (c *Client) RegisterPersistent(ctx context.Context, svc ServiceRef, inst Instance) error {
	return c.persistent(ctx, svc, inst, wire.RegisterInstance)
}

// DeregisterPersistent removes a persistent instance.
func (c *Client) DeregisterPersistent(ctx context.Context, svc ServiceRef, inst Instance) error {
	return c.persistent(ctx, svc, inst, wire.DeregisterInstance)
}

func (c *Client) persistent(ctx context.Context, svc ServiceRef, inst Instance, typ string) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	if err := inst.validate(); err != nil {
		return err
	}
	_, err = c.request(ctx, &wire.PersistentInstanceRequest{NamingHeader: header(svc), Type: typ, Instance: inst.wire(false)})
	return err
}

// Query asks a server for svc once (ServiceQueryRequest); clusters is a
// comma list ("" = all). The answer is cached. With failover on, a
// failover file for svc is returned instead.
func (c *Client) Query(ctx context.Context, svc ServiceRef, clusters string, healthyOnly bool) (ServiceInfo, error) {
	svc, err := c.ref(svc)
	if err != nil {
		return ServiceInfo{}, err
	}
	if info, ok := c.failoverInfo(svc); ok {
		return info, nil
	}
	resp, err := c.request(ctx, &wire.ServiceQueryRequest{NamingHeader: header(svc), Cluster: clusters, HealthyOnly: healthyOnly})
	if err != nil {
		return ServiceInfo{}, err
	}
	q, ok := resp.(*wire.QueryServiceResponse)
	if !ok {
		return ServiceInfo{}, fmt.Errorf("%w: ServiceQueryRequest answered with %s", ErrProtocol, resp.TypeName())
	}
	if clusters == "" && !healthyOnly && c.cachesQuery(svc) {
		c.storeService(svc, q.ServiceInfo)
	}
	return q.ServiceInfo, nil
}

// ListServices lists a group's service names (ungrouped), page pageNo
// (1-based) of pageSize; count is the group's total.
func (c *Client) ListServices(ctx context.Context, namespace, group string, pageNo, pageSize int) (count int, names []string, err error) {
	if pageNo < 1 || pageSize < 1 {
		return 0, nil, fmt.Errorf("%w: pageNo and pageSize must be ≥ 1", ErrInvalidInput)
	}
	r, _ := c.ref(ServiceRef{Namespace: namespace, Group: group, Name: "-"})
	h := header(r)
	h.ServiceName = ""
	resp, err := c.request(ctx, &wire.ServiceListRequest{NamingHeader: h, PageNo: pageNo, PageSize: pageSize})
	if err != nil {
		return 0, nil, err
	}
	l, ok := resp.(*wire.ServiceListResponse)
	if !ok {
		return 0, nil, fmt.Errorf("%w: ServiceListRequest answered with %s", ErrProtocol, resp.TypeName())
	}
	return l.Count, l.ServiceNames, nil
}

// Subscribe subscribes to svc: fn is called (from one goroutine, one call
// at a time, latest state only) with the state the server answers and
// every newer push. Subscriptions are re-sent after every reconnect; like
// registrations they enter the redo log before the request, so a failed
// Subscribe is retried on the next connection until Unsubscribe.
func (c *Client) Subscribe(ctx context.Context, svc ServiceRef, fn func(ServiceInfo)) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	if fn == nil {
		fn = func(ServiceInfo) {}
	}
	c.naming.mu.Lock()
	c.naming.nextID++
	c.naming.subs[svc] = append(c.naming.subs[svc], &listener{id: c.naming.nextID, fn: fn})
	known, ok := c.naming.cache[svc]
	c.naming.mu.Unlock()
	if ok {
		c.enqueueNotify(svc, known.info)
	}
	resp, err := c.request(ctx, subRequest(svc, true))
	if err != nil {
		return err
	}
	if r, ok := resp.(*wire.SubscribeServiceResponse); ok {
		c.processService(svc, r.ServiceInfo)
	}
	return nil
}

func subRequest(svc ServiceRef, on bool) *wire.SubscribeServiceRequest {
	return &wire.SubscribeServiceRequest{NamingHeader: header(svc), Subscribe: on, Clusters: ""}
}

// Unsubscribe drops every listener of svc and unsubscribes.
func (c *Client) Unsubscribe(ctx context.Context, svc ServiceRef) error {
	svc, err := c.ref(svc)
	if err != nil {
		return err
	}
	c.naming.mu.Lock()
	delete(c.naming.subs, svc)
	c.naming.mu.Unlock()
	_, err = c.request(ctx, subRequest(svc, false))
	return err
}

// Service returns svc's cached state: the failover file when failover is
// on, else the last pushed, queried or (LoadCacheAtStart) snapshot state
// (a query is cached when svc is subscribed or CacheDir is set).
// ErrNotCached when there is none.
func (c *Client) Service(svc ServiceRef) (ServiceInfo, error) {
	svc, err := c.ref(svc)
	if err != nil {
		return ServiceInfo{}, err
	}
	if info, ok := c.failoverInfo(svc); ok {
		return info, nil
	}
	c.naming.mu.Lock()
	defer c.naming.mu.Unlock()
	if e, ok := c.naming.cache[svc]; ok {
		return e.info, nil
	}
	return ServiceInfo{}, fmt.Errorf("%w: %s", ErrNotCached, svc)
}

// onPush implements serverRequests: only the main connection's pushes
// count.
func (c *Client) onPush(s *session, req *wire.NotifySubscriberRequest) {
	c.m.pushes.Inc()
	c.mu.Lock()
	main := c.cur == s
	c.mu.Unlock()
	if !main {
		return
	}
	ns := req.Namespace
	if ns == "" {
		ns = c.cfg.Namespace
	}
	info := req.ServiceInfo
	svc := ServiceRef{Namespace: ns, Group: info.GroupName, Name: info.Name}
	if svc.Group == "" {
		svc.Group = DefaultGroup
	}
	if svc.Name == "" {
		return
	}
	c.processService(svc, info)
}

// processService stores a server's state of svc unless the cache holds a
// newer one (lastRefTime), writes the snapshot and notifies listeners.
func (c *Client) processService(svc ServiceRef, info ServiceInfo) {
	if !c.storeService(svc, info) {
		return
	}
	c.naming.mu.Lock()
	_, subscribed := c.naming.subs[svc]
	c.naming.mu.Unlock()
	if subscribed {
		if fo, ok := c.failoverInfo(svc); ok {
			info = fo
		}
		c.enqueueNotify(svc, info)
	}
}

// cachesQuery says whether a query's answer for svc goes to the cache: when
// svc is subscribed (the cache is what its listeners see) or already cached,
// or when CacheDir keeps snapshots on disk. Otherwise the answer is only
// returned: a caller listing every service (the sync worker) would keep a
// second copy of the whole registry, growing with every service it ever
// listed.
func (c *Client) cachesQuery(svc ServiceRef) bool {
	if c.cfg.CacheDir != "" {
		return true
	}
	c.naming.mu.Lock()
	defer c.naming.mu.Unlock()
	_, sub := c.naming.subs[svc]
	_, cached := c.naming.cache[svc]
	return sub || cached
}

// storeService updates the cache; false when info is not newer.
func (c *Client) storeService(svc ServiceRef, info ServiceInfo) bool {
	c.naming.mu.Lock()
	old, ok := c.naming.cache[svc]
	if ok && !old.fromDisk && info.LastRefTime <= old.info.LastRefTime {
		c.naming.mu.Unlock()
		return false
	}
	c.naming.cache[svc] = &cached{info: info}
	c.naming.mu.Unlock()
	if c.cfg.CacheDir != "" {
		// Writers are serialised and write only the state still current,
		// so an older state never overwrites a newer file.
		c.naming.diskMu.Lock()
		c.naming.mu.Lock()
		e := c.naming.cache[svc]
		current := e != nil && e.info.LastRefTime == info.LastRefTime
		c.naming.mu.Unlock()
		if current {
			if err := writeSnapshot(c.cfg.CacheDir, svc, info); err != nil {
				c.log.Warn("snapshot write failed", "service", svc.String(), "err", err)
			}
		}
		c.naming.diskMu.Unlock()
	}
	return true
}

func (c *Client) enqueueNotify(svc ServiceRef, info ServiceInfo) {
	c.naming.mu.Lock()
	c.naming.pending[svc] = info
	c.naming.mu.Unlock()
	select {
	case c.naming.signal <- struct{}{}:
	default:
	}
}

// dispatchLoop calls listeners with the latest state per service.
func (c *Client) dispatchLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.naming.signal:
		}
		c.naming.mu.Lock()
		batch := c.naming.pending
		c.naming.pending = map[ServiceRef]ServiceInfo{}
		type call struct {
			ls   []*listener
			info ServiceInfo
		}
		calls := make([]call, 0, len(batch))
		for svc, info := range batch {
			calls = append(calls, call{ls: append([]*listener(nil), c.naming.subs[svc]...), info: info})
		}
		c.naming.mu.Unlock()
		for _, cl := range calls {
			for _, l := range cl.ls {
				l.fn(cl.info)
			}
		}
	}
}

// redo re-sends every registration and subscription on a new session; false
// when the session failed meanwhile. An entry changed by a caller during
// the redo is sent again in its new state, so the server converges on the
// last call.
func (c *Client) redo(s *session) bool {
	c.naming.mu.Lock()
	regs := maps.Clone(c.naming.regs)
	subs := make([]ServiceRef, 0, len(c.naming.subs))
	for svc := range c.naming.subs {
		subs = append(subs, svc)
	}
	c.naming.mu.Unlock()
	for svc, e := range regs {
		for {
			if _, err := c.callOn(c.ctx, s, regRequest(svc, e)); err != nil {
				c.log.Warn("redo register failed", "service", svc.String(), "err", err)
				if isConnErr(err) {
					return false
				}
			}
			c.naming.mu.Lock()
			now := c.naming.regs[svc]
			c.naming.mu.Unlock()
			if now == e {
				break
			}
			if now == nil {
				var any wire.Instance
				if e.single != nil {
					any = *e.single
				} else {
					any = e.batch[0]
				}
				if _, err := c.callOn(c.ctx, s, deregRequest(svc, any)); err != nil && isConnErr(err) {
					return false
				}
				break
			}
			e = now
		}
	}
	for _, svc := range subs {
		resp, err := c.callOn(c.ctx, s, subRequest(svc, true))
		if err != nil {
			c.log.Warn("redo subscribe failed", "service", svc.String(), "err", err)
			if isConnErr(err) {
				return false
			}
			continue
		}
		if r, ok := resp.(*wire.SubscribeServiceResponse); ok {
			c.processService(svc, r.ServiceInfo)
		}
	}
	return true
}

func isConnErr(err error) bool { return err != nil && errors.Is(err, errConnectionLost) }

func joinHostPort(host, port string) string {
	if _, err := strconv.Atoi(port); err != nil {
		return ""
	}
	return net.JoinHostPort(host, port)
}

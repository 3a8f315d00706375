// Package httpapi is the registry's Nacos HTTP open API (v1 and v2 naming
// routes under /nacos), Ferry's graceful-offline call, readiness and
// liveness, and the /metrics mount.
//
// Handlers are thin: parse and validate parameters (params.go), call the
// naming view (Naming, Beater) or the Raft store (Store), map the error at
// the edge (one table, in writeError).
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// Naming is the naming core's materialised view (*naming.Registry
// implements it). Methods are called concurrently from request goroutines.
type Naming interface {
	// DeregisterBeatKept removes a beat-kept ephemeral instance; removing an
	// unknown one is not an error.
	DeregisterBeatKept(key naming.ServiceKey, a naming.Addr) error
	// Select returns the service's enabled instances of the given clusters
	// (all when empty), only healthy ones when healthyOnly, with the
	// protect threshold applied. An unknown service gives empty Hosts.
	Select(key naming.ServiceKey, clusters []string, healthyOnly bool) (naming.ServiceInfo, error)
	// ListServices pages the ungrouped names of a namespace's group.
	ListServices(namespace, group string, pageNo, pageSize int) (count int, names []string)
	// Services lists every service key.
	Services() []naming.ServiceKey
}

// Beater keeps beat-kept (HTTP 1.x style) ephemeral instances alive. The
// naming core's Registry.Beat returns a richer result; the server wiring
// adapts it: ok is true when the instance is alive after the call (it was
// known, or it was registered because registerIfUnknown).
type Beater interface {
	Beat(key naming.ServiceKey, inst naming.Instance, registerIfUnknown bool) (ok bool, err error)
	// RegisterBeatKept registers or replaces a beat-kept instance (the v1
	// register: a re-register with new weight or metadata replaces them).
	RegisterBeatKept(key naming.ServiceKey, inst naming.Instance) error
}

// Store is the Raft store (*raftstore.Store implements it). Write methods
// block until committed and return raftstore's domain and store errors.
type Store interface {
	PutInstance(key naming.ServiceKey, inst naming.Instance) error
	RemoveInstance(key naming.ServiceKey, a naming.Addr) error
	PutOverride(key naming.ServiceKey, o naming.Override) error
	SetEnabledByIP(namespace, ip string, port int, enabled bool, targets []raftstore.Target) error
	PutServiceMeta(key naming.ServiceKey, m naming.ServiceMeta) error
	RemoveService(key naming.ServiceKey) error
	Instances(key naming.ServiceKey) []naming.Instance
	Overrides(key naming.ServiceKey) []naming.Override
	ServiceMeta(key naming.ServiceKey) (naming.ServiceMeta, bool)
	// Ready reports whether the store accepts writes (leader, caught up).
	Ready() bool
}

// Deps are the API's collaborators. Naming, Beater and Store are required.
type Deps struct {
	Naming Naming
	Beater Beater
	Store  Store
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
	// Ready, when set, is ANDed with Store.Ready for /nacos/ready (e.g. the
	// gRPC server is listening).
	Ready func() bool
	// Now is the clock (lastRefTime fallback); nil means time.Now.
	Now func() time.Time
	// PushSubscribers, when set, records the UDP push endpoint of Nacos
	// 1.x instance-list polls (subscribers.go).
	PushSubscribers PushSubscribers
	// Responsibility says which member takes a beat-kept client's writes
	// (register, deregister, beat of ephemeral instances): those of another
	// member are forwarded to it once. Nil means naming.ThisNode.
	Responsibility naming.Responsibility
}

// API serves the HTTP routes. Safe for concurrent use; it holds no state
// besides its dependencies.
type API struct {
	deps      Deps
	cfg       Config
	log       *slog.Logger
	metrics   *metrics
	mux       *http.ServeMux
	forwarder *http.Client // 1.x writes to the responsible member
}

// New validates cfg and deps and builds the routes. reg may be nil.
func New(deps Deps, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Naming == nil || deps.Beater == nil || deps.Store == nil {
		return nil, fmt.Errorf("%w: Deps.Naming, Deps.Beater and Deps.Store are required", ErrConfig)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Responsibility == nil {
		deps.Responsibility = naming.ThisNode{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("httpapi: metrics: %w", err)
	}
	a := &API{deps: deps, cfg: cfg, log: logger.With("subsystem", "httpapi"), metrics: m, mux: http.NewServeMux(),
		forwarder: &http.Client{Timeout: cfg.ForwardTimeout}}
	a.routes()
	return a, nil
}

// Handler serves every route: /nacos/v1/ns/..., /nacos/v2/ns/...,
// /nacos/ready, /nacos/live and (with a Gatherer) /metrics. Mount it at
// "/" of the main HTTP port.
func (a *API) Handler() http.Handler { return a.mux }

// version selects the answer format.
type version int

const (
	v1 version = 1
	v2 version = 2
)

type handlerFunc func(r *http.Request, p params) (any, *apiError)

func (a *API) routes() {
	for _, v := range []version{v1, v2} {
		pre := "/nacos/v" + strconv.Itoa(int(v)) + "/ns"
		a.handle(v, "POST "+pre+"/instance", a.register)
		a.handle(v, "DELETE "+pre+"/instance", a.deregister)
		a.handle(v, "PUT "+pre+"/instance", a.update)
		a.handle(v, "PATCH "+pre+"/instance", a.patch(v))
		a.handle(v, "GET "+pre+"/instance", a.detail(v))
		a.handle(v, "GET "+pre+"/instance/list", a.list)
		a.handle(v, "PUT "+pre+"/instance/beat", a.beat)
		a.handle(v, "GET "+pre+"/service/list", a.serviceList(v))
		a.handle(v, "POST "+pre+"/service", a.serviceCreate)
		a.handle(v, "PUT "+pre+"/service", a.serviceUpdate)
		a.handle(v, "GET "+pre+"/service", a.serviceGet(v))
		a.handle(v, "DELETE "+pre+"/service", a.serviceDelete)
		a.handle(v, "GET "+pre+"/operator/metrics", a.operatorMetrics)
		a.handle(v, "PUT "+pre+"/ferry/offline", a.offline)
	}
	a.mux.HandleFunc("GET /nacos/live", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	a.mux.HandleFunc("GET /nacos/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready() {
			writeText(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		writeText(w, http.StatusOK, "ready")
	})
	if a.deps.Gatherer != nil {
		a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.deps.Gatherer, promhttp.HandlerOpts{}))
	}
}

func (a *API) ready() bool {
	return a.deps.Store.Ready() && (a.deps.Ready == nil || a.deps.Ready())
}

// handle wraps a handler with the body limit, parameter parsing, the
// answer format of its version and the per-route metrics.
func (a *API) handle(v version, pattern string, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		var (
			out  any
			aerr *apiError
		)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				aerr = &apiError{status: http.StatusRequestEntityTooLarge, code: codeParamValidate, msg: fmt.Sprintf("request body exceeds %d bytes", a.cfg.MaxBodyBytes)}
			} else {
				aerr = errInvalid(codeParamValidate, "malformed parameters: %v", err)
			}
		} else {
			out, aerr = h(r, params{v: r.Form, cfg: &a.cfg})
		}
		status := http.StatusOK
		if rl, ok := out.(relay); ok && aerr == nil {
			status = rl.status
			if rl.ctype != "" {
				w.Header().Set("Content-Type", rl.ctype)
			}
			w.WriteHeader(rl.status)
			_, _ = w.Write(rl.body)
		} else if aerr != nil {
			status = aerr.status
			if status >= 500 {
				a.log.Warn("request failed", "route", pattern, "status", status, "err", aerr.msg)
			}
			writeError(w, v, aerr)
		} else {
			writeOK(w, v, out)
		}
		a.metrics.observe(pattern, status, time.Since(start))
	})
}

// raw marks a v1 answer whose body is written as is (text "ok"), still
// wrapped in the v2 envelope as data.
type raw string

// bare marks an answer that v2 does not wrap either (InstanceControllerV2
// returns the beat's ObjectNode as is).
type bare struct{ v any }

func writeOK(w http.ResponseWriter, v version, out any) {
	if b, ok := out.(bare); ok {
		if s, ok := b.v.(string); ok {
			writeText(w, http.StatusOK, s)
			return
		}
		writeJSON(w, http.StatusOK, b.v)
		return
	}
	if v == v2 {
		if r, ok := out.(raw); ok {
			out = string(r)
		}
		writeJSON(w, http.StatusOK, envelope{Code: codeSuccess, Message: codeText[codeSuccess], Data: out})
		return
	}
	if r, ok := out.(raw); ok {
		writeText(w, http.StatusOK, string(r))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeError(w http.ResponseWriter, v version, e *apiError) {
	if v == v2 {
		writeJSON(w, e.status, envelope{Code: e.code, Message: codeText[e.code], Data: e.msg})
		return
	}
	if e.check {
		writeText(w, e.status, e.msg+"\n")
		return
	}
	writeText(w, e.status, "caused: "+e.msg+";")
}

// envelope is Nacos' v2 Result.
type envelope struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "caused: "+err.Error()+";")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

// storeError maps a raftstore error onto an answer.
func storeError(err error) *apiError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raftstore.ErrInvalidParam):
		return &apiError{status: 400, code: codeParamValidate, msg: err.Error()}
	case errors.Is(err, raftstore.ErrServiceNotEmpty):
		return &apiError{status: 400, code: codeConflict, msg: err.Error()}
	case errors.Is(err, raftstore.ErrNotLeader), errors.Is(err, raftstore.ErrTimeout), errors.Is(err, raftstore.ErrStopped):
		return &apiError{status: 503, code: codeServerError, msg: err.Error()}
	}
	return &apiError{status: 500, code: codeServerError, msg: err.Error()}
}

// namingError maps the naming core's errors: the caller's mistakes are 400
// (as Nacos' INVALID_PARAM), anything else a server error.
func namingError(err error) *apiError {
	if errors.Is(err, naming.ErrInvalidParam) || errors.Is(err, naming.ErrEphemeralMismatch) || errors.Is(err, naming.ErrLimitExceeded) {
		return errInvalid(codeInstanceError, "%v", err)
	}
	return serverError(err)
}

func serverError(err error) *apiError {
	return &apiError{status: 500, code: codeServerError, msg: err.Error()}
}

// kind reports what the naming view and the store know of a service: its
// ephemeral hosts, its persistent instances, its stored metadata.
type kind struct {
	exists     bool
	ephemeral  bool // has ephemeral instances, or metadata says so
	persistent bool // has persistent instances, or metadata says so
	meta       naming.ServiceMeta
	hasMeta    bool
}

func (a *API) kindOf(key naming.ServiceKey) (kind, *apiError) {
	var k kind
	k.meta, k.hasMeta = a.deps.Store.ServiceMeta(key)
	if k.hasMeta {
		k.exists = true
		k.ephemeral, k.persistent = k.meta.Ephemeral, !k.meta.Ephemeral
	}
	if len(a.deps.Store.Instances(key)) > 0 {
		k.exists, k.persistent = true, true
	}
	if len(a.deps.Store.Overrides(key)) > 0 {
		k.exists = true
	}
	si, err := a.deps.Naming.Select(key, nil, false)
	if err != nil {
		return k, serverError(err)
	}
	for _, h := range si.Hosts {
		k.exists = true
		if h.Ephemeral {
			k.ephemeral = true
		}
	}
	return k, nil
}

func (a *API) register(r *http.Request, p params) (any, *apiError) {
	f, err := p.instance()
	if err != nil {
		return nil, err
	}
	if to := a.responsible(f.inst.IP, f.inst.Port); f.inst.Ephemeral && to != "" {
		return a.forward(r, p, to)
	}
	k, err := a.kindOf(f.key)
	if err != nil {
		return nil, err
	}
	if f.inst.Ephemeral {
		if k.persistent {
			return nil, errInvalid(codeInstanceError, "Current service %s is persistent service, can't register ephemeral instance.", f.key.Grouped())
		}
		if berr := a.deps.Beater.RegisterBeatKept(f.key, f.inst); berr != nil {
			return nil, namingError(berr)
		}
		return raw("ok"), nil
	}
	if k.ephemeral {
		return nil, errInvalid(codeInstanceError, "Current service %s is ephemeral service, can't register persistent instance.", f.key.Grouped())
	}
	return raw("ok"), storeError(a.deps.Store.PutInstance(f.key, f.inst))
}

func (a *API) deregister(r *http.Request, p params) (any, *apiError) {
	key, addr, err := p.instanceAddr()
	if err != nil {
		return nil, err
	}
	if boolParam(p.opt("ephemeral", "true")) {
		if to := a.responsible(addr.IP, addr.Port); to != "" {
			return a.forward(r, p, to)
		}
		if derr := a.deps.Naming.DeregisterBeatKept(key, addr); derr != nil {
			return nil, serverError(derr)
		}
		return raw("ok"), nil
	}
	return raw("ok"), storeError(a.deps.Store.RemoveInstance(key, addr))
}

// update is PUT /instance: Nacos stores enabled, weight and metadata
// together as instance metadata (an override keyed ip:port:cluster) that
// survives re-registration. The service must exist.
func (a *API) update(_ *http.Request, p params) (any, *apiError) {
	f, err := p.instance()
	if err != nil {
		return nil, err
	}
	k, err := a.kindOf(f.key)
	if err != nil {
		return nil, err
	}
	if !k.exists {
		return nil, errInvalid(codeInstanceError, "service not found, namespace: %s, service: %s", f.key.Namespace, f.key.Grouped())
	}
	enabled, weight := f.inst.Enabled, f.inst.Weight
	o := naming.Override{
		Addr:    naming.Addr{IP: f.inst.IP, Port: f.inst.Port, Cluster: f.inst.Cluster},
		Enabled: &enabled,
		Weight:  &weight,
	}
	if f.metaSet {
		o.Metadata = f.inst.Metadata
	}
	return raw("ok"), storeError(a.deps.Store.PutOverride(f.key, o))
}

// patch is PATCH /instance: like update, but only the parameters given
// (metadata, weight, enabled) change the instance's override; the instance
// must exist.
func (a *API) patch(v version) handlerFunc {
	return func(_ *http.Request, p params) (any, *apiError) {
		key, addr, err := p.instanceAddr()
		if err != nil {
			return nil, err
		}
		var o naming.Override
		found := false
		for _, x := range a.deps.Store.Overrides(key) {
			if x.Addr == addr {
				o, found = x, true
			}
		}
		if !found {
			si, serr := a.deps.Naming.Select(key, []string{addr.Cluster}, false)
			if serr != nil {
				return nil, serverError(serr)
			}
			for _, h := range si.Hosts {
				found = found || (h.IP == addr.IP && h.Port == addr.Port)
			}
			for _, in := range a.deps.Store.Instances(key) {
				found = found || (in.IP == addr.IP && in.Port == addr.Port && in.Cluster == addr.Cluster)
			}
		}
		if !found {
			return nil, errInvalid(codeInstanceError, "instance not found")
		}
		o.Addr = addr
		if strings.TrimSpace(p.v.Get("metadata")) != "" {
			md, merr := p.metadata("metadata")
			if merr != nil {
				return nil, merr
			}
			o.Metadata = md
		}
		if strings.TrimSpace(p.v.Get("weight")) != "" {
			w, werr := p.weight()
			if werr != nil {
				return nil, werr
			}
			o.Weight = &w
		}
		if s := strings.TrimSpace(p.v.Get("enabled")); s != "" {
			e := boolParam(s)
			o.Enabled = &e
		}
		if serr := a.deps.Store.PutOverride(key, o); serr != nil {
			return nil, storeError(serr)
		}
		if v == v2 {
			return bare{"ok"}, nil // InstanceControllerV2.patch returns a bare String
		}
		return raw("ok"), nil
	}
}

func (a *API) detail(v version) handlerFunc {
	return func(_ *http.Request, p params) (any, *apiError) {
		key, addr, err := p.instanceAddr()
		if err != nil {
			return nil, err
		}
		ip, port, cluster := addr.IP, addr.Port, addr.Cluster
		si, serr := a.deps.Naming.Select(key, []string{cluster}, false)
		if serr != nil {
			return nil, serverError(serr)
		}
		if len(si.Hosts) == 0 {
			return nil, &apiError{status: 404, code: codeNotFound, msg: fmt.Sprintf("no ips found for cluster %s in service %s", cluster, key.Grouped())}
		}
		for _, h := range si.Hosts {
			if h.IP != ip || h.Port != port {
				continue
			}
			d := instanceDetail{
				Service: key.Grouped(), IP: h.IP, Port: h.Port, ClusterName: cluster,
				Weight: h.Weight, Healthy: h.Healthy, InstanceID: instanceID(key, h), Metadata: nonNil(h.Metadata),
			}
			if v == v2 {
				return instanceDetailV2(d), nil
			}
			return d, nil
		}
		return nil, &apiError{status: 404, code: codeNotFound, msg: "no matched ip found!"}
	}
}

func (a *API) list(r *http.Request, p params) (any, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return nil, err
	}
	raw, clusters, err := p.clusters()
	if err != nil {
		return nil, err
	}
	healthyOnly := boolParam(p.opt("healthyOnly", "false"))
	a.subscribe(r, p, key, raw, healthyOnly) // before the answer is selected
	si, serr := a.deps.Naming.Select(key, clusters, healthyOnly)
	if serr != nil {
		return nil, serverError(serr)
	}
	return a.serviceInfo(key, raw, si), nil
}

func (a *API) beat(r *http.Request, p params) (any, *apiError) {
	key, inst, full, err := p.beat()
	if err != nil {
		return nil, err
	}
	if to := a.responsible(inst.IP, inst.Port); to != "" {
		return a.forward(r, p, to)
	}
	interval := a.cfg.ClientBeatInterval.Milliseconds()
	if full {
		interval = preserved(inst.Metadata, naming.MetaHeartBeatInterval, interval)
		if k, kerr := a.kindOf(key); kerr != nil {
			return nil, kerr
		} else if k.persistent {
			return nil, errInvalid(codeInstanceError, "Current service %s is persistent service, can't register ephemeral instance.", key.Grouped())
		}
	}
	ok, berr := a.deps.Beater.Beat(key, inst, full)
	if berr != nil {
		return nil, serverError(berr)
	}
	code := 10200 // Nacos ResponseCode.OK
	if !ok {
		code = 20404 // NamingResponseCode.RESOURCE_NOT_FOUND: re-register
	}
	return bare{beatAnswer{ClientBeatInterval: interval, Code: code, LightBeatEnabled: true}}, nil
}

// beatAnswer is the beat's ObjectNode, fields in Nacos' insertion order
// (2.x answers lightBeatEnabled with 20404 too).
type beatAnswer struct {
	ClientBeatInterval int64 `json:"clientBeatInterval"`
	Code               int   `json:"code"`
	LightBeatEnabled   bool  `json:"lightBeatEnabled"`
}

func (a *API) serviceList(v version) handlerFunc {
	return func(_ *http.Request, p params) (any, *apiError) {
		var pageNo, pageSize int
		var err *apiError
		if v == v2 {
			// v2: optional, 1 and 20 by default, pageSize capped at 500.
			if pageNo, pageSize, err = p.pageOpt(1, 20); err != nil {
				return nil, err
			}
			pageSize = min(pageSize, 500)
		} else if pageNo, pageSize, err = p.page(); err != nil {
			return nil, err
		}
		ns, err := p.namespace()
		if err != nil {
			return nil, err
		}
		group, err := p.group()
		if err != nil {
			return nil, err
		}
		count, names := a.deps.Naming.ListServices(ns, group, pageNo, pageSize)
		if names == nil {
			names = []string{}
		}
		if v == v2 {
			return serviceListV2{Count: count, Services: names}, nil
		}
		return serviceListV1{Count: count, Doms: names}, nil
	}
}

type serviceListV1 struct {
	Count int      `json:"count"`
	Doms  []string `json:"doms"`
}

type serviceListV2 struct {
	Count    int      `json:"count"`
	Services []string `json:"services"`
}

// serviceCreate: POST /service. Nacos creates the service with
// ephemeral=false unless told otherwise, and refuses an existing one.
func (a *API) serviceCreate(_ *http.Request, p params) (any, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return nil, err
	}
	pt, err := p.protectThreshold(0)
	if err != nil {
		return nil, err
	}
	md, err := p.metadata("metadata")
	if err != nil {
		return nil, err
	}
	k, err := a.kindOf(key)
	if err != nil {
		return nil, err
	}
	if k.exists {
		return nil, errInvalid(codeConflict, "specified service already exists, serviceName : %s", key.Grouped())
	}
	m := naming.ServiceMeta{ProtectThreshold: pt, Metadata: md, Ephemeral: boolParam(p.opt("ephemeral", "false"))}
	return raw("ok"), storeError(a.deps.Store.PutServiceMeta(key, m))
}

// serviceUpdate: PUT /service changes protectThreshold and metadata; the
// ephemeral flag stays what the service is.
func (a *API) serviceUpdate(_ *http.Request, p params) (any, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return nil, err
	}
	k, err := a.kindOf(key)
	if err != nil {
		return nil, err
	}
	if !k.exists {
		return nil, &apiError{status: 400, code: codeNotFound, msg: fmt.Sprintf("service %s not found", key.Grouped())}
	}
	pt, err := p.protectThreshold(k.meta.ProtectThreshold)
	if err != nil {
		return nil, err
	}
	md := k.meta.Metadata
	if strings.TrimSpace(p.v.Get("metadata")) != "" {
		if md, err = p.metadata("metadata"); err != nil {
			return nil, err
		}
	}
	eph := k.ephemeral
	if k.hasMeta {
		eph = k.meta.Ephemeral
	}
	m := naming.ServiceMeta{ProtectThreshold: pt, Metadata: md, Ephemeral: eph}
	return raw("ok"), storeError(a.deps.Store.PutServiceMeta(key, m))
}

func (a *API) serviceGet(v version) handlerFunc {
	return func(_ *http.Request, p params) (any, *apiError) {
		key, err := p.serviceKey()
		if err != nil {
			return nil, err
		}
		k, err := a.kindOf(key)
		if err != nil {
			return nil, err
		}
		if !k.exists {
			return nil, &apiError{status: 404, code: codeNotFound, msg: fmt.Sprintf("service %s is not exist!", key.Grouped())}
		}
		eph := k.ephemeral
		if k.hasMeta {
			eph = k.meta.Ephemeral
		}
		sel := selector{Type: "none", ContextType: "NONE"}
		if v == v2 {
			return serviceDetailV2{
				NamespaceID: key.Namespace, ServiceName: key.Name, GroupName: key.Group, ClusterMap: map[string]any{},
				Metadata: nonNil(k.meta.Metadata), ProtectThreshold: k.meta.ProtectThreshold, Selector: sel, Ephemeral: eph,
			}, nil
		}
		return serviceDetail{
			NamespaceID: key.Namespace, GroupName: key.Group, Name: key.Name,
			ProtectThreshold: k.meta.ProtectThreshold, Metadata: nonNil(k.meta.Metadata),
			Selector: sel, Ephemeral: eph, Clusters: []any{},
		}, nil
	}
}

// serviceDetailV2 is Nacos' ServiceDetailInfo.
type serviceDetailV2 struct {
	NamespaceID      string            `json:"namespaceId"`
	ServiceName      string            `json:"serviceName"`
	GroupName        string            `json:"groupName"`
	ClusterMap       map[string]any    `json:"clusterMap"`
	Metadata         map[string]string `json:"metadata"`
	ProtectThreshold float64           `json:"protectThreshold"`
	Selector         selector          `json:"selector"`
	Ephemeral        bool              `json:"ephemeral"`
}

type selector struct {
	Type        string `json:"type"`
	ContextType string `json:"contextType"`
}

type serviceDetail struct {
	NamespaceID      string            `json:"namespaceId"`
	GroupName        string            `json:"groupName"`
	Name             string            `json:"name"`
	ProtectThreshold float64           `json:"protectThreshold"`
	Metadata         map[string]string `json:"metadata"`
	Selector         selector          `json:"selector"`
	Ephemeral        bool              `json:"ephemeral"`
	Clusters         []any             `json:"clusters"`
}

func (a *API) serviceDelete(_ *http.Request, p params) (any, *apiError) {
	key, err := p.serviceKey()
	if err != nil {
		return nil, err
	}
	si, serr := a.deps.Naming.Select(key, nil, false)
	if serr != nil {
		return nil, serverError(serr)
	}
	if len(si.Hosts) > 0 || len(a.deps.Store.Instances(key)) > 0 {
		return nil, errInvalid(codeConflict, "Service %s is not empty, can't be delete. Please unregister instance first", key.Grouped())
	}
	return raw("ok"), storeError(a.deps.Store.RemoveService(key))
}

func (a *API) operatorMetrics(_ *http.Request, p params) (any, *apiError) {
	status := "UP"
	if !a.ready() {
		status = "DOWN"
	}
	if boolParam(p.opt("onlyStatus", "true")) {
		return struct {
			Status string `json:"status"`
		}{status}, nil
	}
	keys := a.deps.Naming.Services()
	instances := 0
	for _, k := range keys {
		if si, err := a.deps.Naming.Select(k, nil, false); err == nil {
			instances += len(si.Hosts)
		}
	}
	return struct {
		Status        string `json:"status"`
		ServiceCount  int    `json:"serviceCount"`
		InstanceCount int    `json:"instanceCount"`
	}{status, len(keys), instances}, nil
}

// offline is Ferry's graceful offline by IP: PUT /nacos/v1/ns/ferry/offline
// ?ip=...[&port=...][&namespaceId=...][&enabled=false|true]. One Raft entry
// disables (enabled=false, the default) or re-enables every instance of the
// ip (or ip:port) across all services of the namespace.
func (a *API) offline(_ *http.Request, p params) (any, *apiError) {
	ns, err := p.namespace()
	if err != nil {
		return nil, err
	}
	ip, err := p.ip()
	if err != nil {
		return nil, err
	}
	port := 0
	if s := strings.TrimSpace(p.v.Get("port")); s != "" {
		if port, err = parsePort(s, true); err != nil {
			return nil, err
		}
	}
	enabled := boolParam(p.opt("enabled", "false"))
	var targets []raftstore.Target
	if !enabled {
		for _, key := range a.deps.Naming.Services() {
			if key.Namespace != ns {
				continue
			}
			si, serr := a.deps.Naming.Select(key, nil, false)
			if serr != nil {
				return nil, serverError(serr)
			}
			for _, h := range si.Hosts {
				if h.IP == ip && (port == 0 || h.Port == port) {
					targets = append(targets, raftstore.Target{Key: key, Addr: naming.Addr{IP: h.IP, Port: h.Port, Cluster: h.Cluster}})
				}
			}
			if len(targets) > a.cfg.MaxOfflineTargets {
				return nil, errInvalid(codeParamValidate, "more than %d instances match %s", a.cfg.MaxOfflineTargets, ip)
			}
		}
	}
	if serr := a.deps.Store.SetEnabledByIP(ns, ip, port, enabled, targets); serr != nil {
		return nil, storeError(serr)
	}
	a.log.Info("instances by ip", "namespace", ns, "ip", ip, "port", port, "enabled", enabled, "ephemeral_targets", len(targets))
	return raw("ok"), nil
}

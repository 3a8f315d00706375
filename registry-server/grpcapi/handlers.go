package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// errorCodes maps domain errors to Nacos error codes: the one table of
// this API (first match wins).
var errorCodes = []struct {
	err  error
	code int
}{
	{naming.ErrInvalidParam, wire.CodeInvalidParam},
	{naming.ErrEphemeralMismatch, wire.CodeInvalidParam},
	{naming.ErrLimitExceeded, wire.CodeInvalidParam},
	{ErrPersistentNoHub, wire.CodeServerError},
	{context.DeadlineExceeded, wire.CodeServerError},
}

// ErrorCode is the Nacos errorCode for err (500 when unmapped).
func ErrorCode(err error) int {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return wire.CodeServerError
}

func (s *Server) registerNamingHandlers() {
	s.handlers[wire.TypeHealthCheckRequest] = func(context.Context, *Conn, wire.Request) (wire.Response, error) {
		return &wire.HealthCheckResponse{}, nil
	}
	s.handlers[wire.TypeInstanceRequest] = s.handleInstance
	s.handlers[wire.TypeBatchInstanceRequest] = s.handleBatchInstance
	s.handlers[wire.TypePersistentInstanceRequest] = s.handlePersistentInstance
	s.handlers[wire.TypeServiceQueryRequest] = s.handleServiceQuery
	s.handlers[wire.TypeServiceListRequest] = s.handleServiceList
	s.handlers[wire.TypeSubscribeServiceRequest] = s.handleSubscribe
	if s.cfg.FerryBatchBeat {
		// Off, the type has no handler and is answered 302 like any
		// request type a real Nacos does not know.
		s.handlers[wire.TypeFerryBatchBeatRequest] = s.handleBatchBeat
		s.handlers[wire.TypeFerryBatchDeregisterRequest] = s.handleBatchDeregister
	}
}

func keyOf(h *wire.NamingHeader) naming.ServiceKey {
	return naming.ServiceKey{Namespace: h.Namespace, Group: h.GroupName, Name: h.ServiceName}
}

// registered runs a registration for connection c and undoes it if c closed
// meanwhile (its DropClient may have run before the registration landed).
func (s *Server) registered(c *Conn, err error) error {
	if err == nil && c.closed.Load() {
		s.reg.DropClient(c.ID)
		return ErrNotConnected
	}
	return err
}

func (s *Server) handleInstance(_ context.Context, c *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.InstanceRequest)
	resp := &wire.InstanceResponse{Type: req.Type}
	k := keyOf(&req.NamingHeader)
	switch req.Type {
	case wire.RegisterInstance:
		return resp, s.registered(c, s.reg.Register(c.ID, k, fromWireInstance(req.Instance)))
	case wire.DeregisterInstance:
		return resp, s.reg.Deregister(c.ID, k)
	}
	return resp, fmt.Errorf("%w: InstanceRequest type %q", naming.ErrInvalidParam, req.Type)
}

func (s *Server) handleBatchInstance(_ context.Context, c *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.BatchInstanceRequest)
	resp := &wire.BatchInstanceResponse{Type: req.Type}
	if req.Type != wire.BatchRegisterInstance {
		return resp, fmt.Errorf("%w: BatchInstanceRequest type %q", naming.ErrInvalidParam, req.Type)
	}
	insts := make([]naming.Instance, len(req.Instances))
	for i, in := range req.Instances {
		if !in.Ephemeral {
			return resp, fmt.Errorf("%w: batch registration of a persistent instance", naming.ErrInvalidParam)
		}
		insts[i] = fromWireInstance(in)
	}
	k := keyOf(&req.NamingHeader)
	if len(insts) == 0 {
		// The Java client's batch deregister of the last instance.
		return resp, s.reg.Deregister(c.ID, k)
	}
	return resp, s.registered(c, s.reg.Register(c.ID, k, insts...))
}

func (s *Server) handlePersistentInstance(ctx context.Context, _ *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.PersistentInstanceRequest)
	resp := &wire.InstanceResponse{Type: req.Type}
	if s.store == nil {
		return resp, ErrPersistentNoHub
	}
	k := keyOf(&req.NamingHeader)
	in := fromWireInstance(req.Instance)
	in.Ephemeral = false
	switch req.Type {
	case wire.RegisterInstance:
		return resp, s.store.RegisterPersistent(ctx, k, in)
	case wire.DeregisterInstance:
		cl := in.Cluster
		if cl == "" {
			cl = naming.DefaultCluster
		}
		return resp, s.store.DeregisterPersistent(ctx, k, naming.Addr{IP: in.IP, Port: in.Port, Cluster: cl})
	}
	return resp, fmt.Errorf("%w: PersistentInstanceRequest type %q", naming.ErrInvalidParam, req.Type)
}

func (s *Server) handleServiceQuery(_ context.Context, _ *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ServiceQueryRequest)
	resp := &wire.QueryServiceResponse{}
	info, err := s.reg.Select(keyOf(&req.NamingHeader), splitClusters(req.Cluster), req.HealthyOnly)
	if err != nil {
		return resp, err
	}
	enc := s.encodedInfo(info, req.Cluster, req.HealthyOnly)
	if enc == nil {
		resp.ServiceInfo = toWireServiceInfo(info, s.reg.Config())
		resp.ServiceInfo.Clusters = req.Cluster
		return resp, nil
	}
	resp.Encoded = enc
	resp.ServiceInfo.LastRefTime = info.LastRefTime
	return resp, nil
}

// encodedInfo is info (a Select with clusters as sent and healthyOnly)
// pre-encoded, nil if it cannot be. The encoding is a pure function of the
// service's snapshot and of clusters and healthyOnly (lastRefTime aside):
// it is built once per snapshot and shared by the queries, subscribe
// answers and pushes of that state. A change drops the snapshot and this
// with it.
func (s *Server) encodedInfo(info naming.ServiceInfo, clusters string, healthyOnly bool) *wire.ServiceInfoJSON {
	enc, _ := info.Snapshot.Memo(queryMemoKey(clusters, healthyOnly), func() any {
		wi := toWireServiceInfo(info, s.reg.Config())
		wi.Clusters = clusters
		enc, err := wire.EncodeServiceInfo(&wi)
		if err != nil {
			return nil
		}
		return enc
	}).(*wire.ServiceInfoJSON)
	return enc
}

// queryMemoKey names an encoded ServiceInfo on a snapshot: it encodes
// everything the answer depends on besides the snapshot (the clusters as
// sent are echoed, and select the hosts).
func queryMemoKey(cluster string, healthyOnly bool) string {
	switch {
	case cluster == "" && healthyOnly: // the common queries: no allocation
		return "grpcapi.query:h:"
	case cluster == "":
		return "grpcapi.query:a:"
	case healthyOnly:
		return "grpcapi.query:h:" + cluster
	}
	return "grpcapi.query:a:" + cluster
}

func (s *Server) handleServiceList(_ context.Context, _ *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.ServiceListRequest)
	resp := &wire.ServiceListResponse{ServiceNames: []string{}}
	resp.Count, resp.ServiceNames = s.reg.ListServices(req.Namespace, req.GroupName, req.PageNo, req.PageSize)
	return resp, nil
}

func (s *Server) handleSubscribe(_ context.Context, c *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.SubscribeServiceRequest)
	resp := &wire.SubscribeServiceResponse{}
	k := keyOf(&req.NamingHeader)
	if !req.Subscribe {
		return resp, s.reg.Unsubscribe(c.ID, k)
	}
	if err := s.registered(c, s.reg.Subscribe(c.ID, k, req.Clusters)); err != nil {
		return resp, err
	}
	info, err := s.reg.Select(k, splitClusters(req.Clusters), false)
	if err != nil {
		return resp, err
	}
	if resp.Encoded = s.encodedInfo(info, req.Clusters, false); resp.Encoded != nil {
		resp.ServiceInfo.LastRefTime = info.LastRefTime
	} else {
		resp.ServiceInfo = toWireServiceInfo(info, s.reg.Config())
		resp.ServiceInfo.Clusters = req.Clusters
	}
	resp.ResponseHeader = wire.Okay()
	resp.Message = "success"
	// Nacos pushes to the new subscriber alone after the push delay.
	s.push.schedule(pushKey{svc: info.Key, client: c.ID}, s.cfg.PushDelay, s.now())
	return resp, nil
}

// handleBatchBeat answers Ferry's merged beat: ok, unknown (or registered
// when asked), or invalid for the items this node is responsible for, and
// redirect (with the responsible member's address) for the others.
func (s *Server) handleBatchBeat(_ context.Context, _ *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.FerryBatchBeatRequest)
	resp := &wire.FerryBatchBeatResponse{ClientBeatInterval: s.reg.Config().BeatInterval.Milliseconds()}
	total := req.Len()
	items := make([]naming.BeatRequest, len(req.Beats))
	out := make([]naming.BeatOutcome, total)
	var redirect []string // by out index: the responsible member, when not this node
	redirectTo := func(i int, ip string, port int) bool {
		to := s.owners.Responsible(ip, port)
		if to == "" {
			return false
		}
		if redirect == nil {
			redirect = make([]string, total)
		}
		redirect[i] = to
		return true
	}
	var full, light []int // indexes of full and light items
	for i := range req.Beats {
		b := &req.Beats[i]
		key := naming.ServiceKey{Namespace: b.Namespace, Group: b.GroupName, Name: b.ServiceName}
		ip, port := b.IP, b.Port
		if b.Full() {
			ip, port = b.Instance.IP, b.Instance.Port
		}
		if redirectTo(i, ip, port) {
			continue
		}
		if b.Full() {
			items[i] = naming.BeatRequest{Key: key, Instance: fromWireInstance(b.Instance)}
			full = append(full, i)
		} else {
			items[i] = naming.BeatRequest{Key: key, Instance: naming.Instance{IP: b.IP, Port: b.Port, Cluster: b.Cluster}}
			light = append(light, i)
		}
	}
	// Group addresses are light beats, one naming.BeatGroup each; an
	// address that does not parse is answered invalid.
	groups := make([]naming.BeatGroup, 0, len(req.Groups))
	var groupAt []int // out index of each parsed address
	i := len(req.Beats)
	for g := range req.Groups {
		grp := &req.Groups[g]
		ng := naming.BeatGroup{Key: naming.ServiceKey{Namespace: grp.Namespace, Group: grp.GroupName, Name: grp.ServiceName},
			Addrs: make([]naming.Addr, 0, len(grp.Addrs))}
		for _, a := range grp.Addrs {
			if ip, port := wire.SplitBeatAddr(a); port == 0 {
				out[i] = naming.BeatOutcome{Err: fmt.Errorf("%w: beat address %q is not ip:port", naming.ErrInvalidParam, a)}
			} else if !redirectTo(i, ip, port) {
				ng.Addrs = append(ng.Addrs, naming.Addr{IP: ip, Port: port, Cluster: grp.Cluster})
				groupAt = append(groupAt, i)
			}
			i++
		}
		groups = append(groups, ng)
	}
	if len(groupAt) > 0 {
		for j, o := range s.reg.BeatGroups(groups) {
			out[groupAt[j]] = o
		}
	}
	// A full item with registerIfUnknown is an upsert: the client sends one
	// only for an instance new to it (first beat, or after "unknown"), and
	// that instance may be known to the registry with other data, e.g. the
	// marker of the worker that owned it before a lease moved. Replacing it
	// notifies subscribers only when something changed.
	if req.RegisterIfUnknown {
		for _, i := range full {
			if err := s.reg.RegisterBeatKept(items[i].Key, items[i].Instance); err != nil {
				out[i] = naming.BeatOutcome{Err: err}
			} else {
				out[i] = naming.BeatOutcome{BeatResult: naming.BeatResult{Status: naming.BeatRegistered}}
			}
		}
		full = nil
	}
	for _, idx := range [][]int{full, light} {
		if len(idx) == 0 {
			continue
		}
		sub := items
		if len(idx) != len(items) {
			sub = make([]naming.BeatRequest, len(idx))
			for j, i := range idx {
				sub[j] = items[i]
			}
		}
		for j, o := range s.reg.BeatMany(sub, false) {
			out[idx[j]] = o
		}
	}
	all := make([]wire.BeatResult, total)
	var ok, unknown, invalid, redirected float64
	for i, o := range out {
		switch {
		case redirect != nil && redirect[i] != "":
			all[i] = wire.BeatResult{Status: wire.BeatRedirect, Redirect: redirect[i]}
			redirected++
		case o.Err != nil:
			all[i] = wire.BeatResult{Status: wire.BeatInvalid, Message: o.Err.Error()}
			invalid++
		case o.Status == naming.BeatUnknown:
			all[i] = wire.BeatResult{Status: wire.BeatUnknown}
			unknown++
		default:
			all[i] = wire.BeatResult{Status: wire.BeatOK}
			ok++
		}
	}
	resp.Answer(req, all)
	s.met.beats.WithLabelValues(wire.BeatOK).Add(ok)
	s.met.beats.WithLabelValues(wire.BeatUnknown).Add(unknown)
	s.met.beats.WithLabelValues(wire.BeatInvalid).Add(invalid)
	if redirected > 0 {
		s.met.beats.WithLabelValues(wire.BeatRedirect).Add(redirected)
	}
	return resp, nil
}

// handleBatchDeregister answers Ferry's bulk deregister: every group
// address's beat-kept instance this node is responsible for is removed
// under one registry lock, and subscribers are told once per service: ok
// (removed, or not there, as Nacos answers) or invalid; an address another
// member is responsible for is answered redirect.
func (s *Server) handleBatchDeregister(_ context.Context, _ *Conn, r wire.Request) (wire.Response, error) {
	req := r.(*wire.FerryBatchDeregisterRequest)
	resp := &wire.FerryBatchDeregisterResponse{}
	all := make([]wire.BeatResult, req.Len())
	items := make([]naming.BeatRequest, 0, len(all))
	idx := make([]int, 0, len(all)) // items[j] answers all[idx[j]]
	i := 0
	for g := range req.Groups {
		grp := &req.Groups[g]
		key := naming.ServiceKey{Namespace: grp.Namespace, Group: grp.GroupName, Name: grp.ServiceName}
		for _, a := range grp.Addrs {
			all[i].Status = wire.BeatOK
			if ip, port := wire.SplitBeatAddr(a); port == 0 {
				all[i] = wire.BeatResult{Status: wire.BeatInvalid,
					Message: fmt.Errorf("%w: address %q is not ip:port", naming.ErrInvalidParam, a).Error()}
			} else if to := s.owners.Responsible(ip, port); to != "" {
				all[i] = wire.BeatResult{Status: wire.BeatRedirect, Redirect: to}
			} else {
				items = append(items, naming.BeatRequest{Key: key, Instance: naming.Instance{IP: ip, Port: port, Cluster: grp.Cluster}})
				idx = append(idx, i)
			}
			i++
		}
	}
	for j, err := range s.reg.DeregisterBeatKeptMany(items) {
		if err != nil {
			all[idx[j]] = wire.BeatResult{Status: wire.BeatInvalid, Message: err.Error()}
		}
	}
	resp.Answer(all)
	var invalid, redirected float64
	for _, e := range resp.Exceptions {
		if e.Status == wire.BeatRedirect {
			redirected++
		} else {
			invalid++
		}
	}
	s.met.deregs.WithLabelValues(wire.BeatOK).Add(float64(len(all)) - invalid - redirected)
	s.met.deregs.WithLabelValues(wire.BeatInvalid).Add(invalid)
	if redirected > 0 {
		s.met.deregs.WithLabelValues(wire.BeatRedirect).Add(redirected)
	}
	return resp, nil
}

// RedirectAddr renders a peer's main-port address for BeatResult.Redirect.
func RedirectAddr(host string, mainPort int) string {
	return net.JoinHostPort(host, strconv.Itoa(mainPort))
}

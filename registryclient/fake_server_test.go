package registryclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/wire"
)

// fakeServer is a minimal Nacos 2.x naming server on the wire package, for
// round trips and fault injection: connection-bound instances per
// connection, beat-kept instances, subscriptions with pushes, Ferry batch
// beats (with a redirect hook), HTTP DELETE of beat-kept instances.
type fakeServer struct {
	t         testing.TB
	addr      string // main "127.0.0.1:port"
	codec     *wire.Codec
	gs        *grpc.Server
	hs        *http.Server
	batchBeat bool
	// batchDereg serves FerryBatchDeregisterRequest (with batchBeat); off,
	// it is answered 302 like an older Ferry.
	batchDereg bool

	mu         sync.Mutex
	conns      map[string]*fakeConn
	regs       map[string]map[ServiceRef][]wire.Instance // conn → service → instances
	subs       map[ServiceRef]map[string]bool
	kept       map[ServiceRef]map[string]wire.Instance // beat-kept: "ip:port:cluster"
	beatCount  map[string]int                          // beats per "svc|ip:port" key
	refTime    int64
	counts     map[string]int // request type → count
	lightRPCs  int            // FerryBatchBeatRequests without registerIfUnknown
	regRPCs    int
	lastBeats  []wire.BeatItem                          // items of the last batch beat
	redirectTo func(svc ServiceRef, addr string) string // responsible node of addr ("ip:port"); "" or f.addr: this one
	hugeQuery  bool
	beatDelay  time.Duration
	starting   int // ServerChecks answered 300 (server starting)
	stopped    bool
	answers    []wire.Response // client answers received on bi-streams
	bodies     []rawBody       // every client request as received
}

type rawBody struct {
	typ  string
	body []byte
}

type fakeConn struct {
	id     string
	sendMu sync.Mutex
	stream wire.BiRequestStream_RequestBiStreamServer
}

// freePortPair listens on a free main port P whose P+1000 is free too.
func freePortPair(t testing.TB) (httpL, grpcL net.Listener) {
	t.Helper()
	for i := 0; i < 50; i++ {
		h, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := h.Addr().(*net.TCPAddr).Port
		if p+GRPCPortOffset > 65535 {
			h.Close()
			continue
		}
		g, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+GRPCPortOffset))
		if err != nil {
			h.Close()
			continue
		}
		return h, g
	}
	t.Fatal("no free port pair")
	return nil, nil
}

func startFake(t testing.TB, batchBeat bool) *fakeServer {
	t.Helper()
	hl, gl := freePortPair(t)
	return startFakeOn(t, hl, gl, batchBeat)
}

func startFakeOn(t testing.TB, hl, gl net.Listener, batchBeat bool) *fakeServer {
	f := &fakeServer{t: t, addr: hl.Addr().String(), codec: wire.NewCodec(0), batchBeat: batchBeat,
		conns: map[string]*fakeConn{}, regs: map[string]map[ServiceRef][]wire.Instance{},
		subs: map[ServiceRef]map[string]bool{}, kept: map[ServiceRef]map[string]wire.Instance{},
		beatCount: map[string]int{}, counts: map[string]int{}, refTime: time.Now().UnixMilli()}
	f.gs = grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
	wire.RegisterRequestServer(f.gs, f)
	wire.RegisterBiRequestStreamServer(f.gs, f)
	go f.gs.Serve(gl)
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /nacos/v1/ns/instance", f.httpDelete)
	f.hs = &http.Server{Handler: mux}
	go f.hs.Serve(hl)
	t.Cleanup(f.stop)
	return f
}

// stop kills the server (connections closed abruptly).
func (f *fakeServer) stop() {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.mu.Unlock()
	f.gs.Stop()
	f.hs.Close()
}

func connID(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr.String()
	}
	return ""
}

func (f *fakeServer) encode(m wire.Message) *wire.Payload {
	p, err := f.codec.Encode(m)
	if err != nil {
		panic(err)
	}
	return p
}

func svcOf(h wire.NamingHeader) ServiceRef {
	return ServiceRef{Namespace: h.Namespace, Group: h.GroupName, Name: h.ServiceName}
}

// Request implements wire.RequestServer.
func (f *fakeServer) Request(ctx context.Context, p *wire.Payload) (*wire.Payload, error) {
	id := connID(ctx)
	m, err := f.codec.Decode(p)
	if err != nil {
		return f.encode(wire.NewErrorResponse(wire.CodeNoHandler, err.Error())), nil
	}
	f.mu.Lock()
	f.counts[m.TypeName()]++
	f.bodies = append(f.bodies, rawBody{typ: m.TypeName(), body: append([]byte(nil), p.GetBody().GetValue()...)})
	_, registered := f.conns[id]
	f.mu.Unlock()
	if _, ok := m.(*wire.ServerCheckRequest); ok {
		f.mu.Lock()
		starting := f.starting > 0
		if starting {
			f.starting--
		}
		f.mu.Unlock()
		if starting {
			return f.encode(wire.NewErrorResponse(wire.CodeInvalidServerStatus, "server is starting")), nil
		}
		return f.encode(&wire.ServerCheckResponse{ResponseHeader: wire.Okay(), ConnectionID: id, FerryBatchBeat: f.batchBeat}), nil
	}
	if !registered {
		return f.encode(wire.NewErrorResponse(wire.CodeUnregister, "connection not registered")), nil
	}
	f.mu.Lock()
	delay := f.beatDelay
	f.mu.Unlock()
	if _, ok := m.(*wire.FerryBatchBeatRequest); ok && delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var pushes []ServiceRef
	var resp wire.Message
	f.mu.Lock()
	switch r := m.(type) {
	case *wire.HealthCheckRequest:
		resp = &wire.HealthCheckResponse{ResponseHeader: wire.Okay()}
	case *wire.InstanceRequest:
		svc := svcOf(r.NamingHeader)
		if f.regs[id] == nil {
			f.regs[id] = map[ServiceRef][]wire.Instance{}
		}
		if r.Type == wire.RegisterInstance {
			f.regs[id][svc] = []wire.Instance{r.Instance}
		} else {
			delete(f.regs[id], svc)
		}
		pushes = append(pushes, svc)
		resp = &wire.InstanceResponse{ResponseHeader: wire.Okay(), Type: r.Type}
	case *wire.BatchInstanceRequest:
		svc := svcOf(r.NamingHeader)
		if f.regs[id] == nil {
			f.regs[id] = map[ServiceRef][]wire.Instance{}
		}
		f.regs[id][svc] = r.Instances
		pushes = append(pushes, svc)
		resp = &wire.BatchInstanceResponse{ResponseHeader: wire.Okay(), Type: r.Type}
	case *wire.PersistentInstanceRequest:
		svc := svcOf(r.NamingHeader)
		if r.Instance.IP == "bad" {
			ir := &wire.InstanceResponse{Type: r.Type}
			ir.SetError(wire.CodeInvalidParam, "bad ip")
			resp = ir
			break
		}
		resp = &wire.InstanceResponse{ResponseHeader: wire.Okay(), Type: r.Type}
		_ = svc
	case *wire.ServiceQueryRequest:
		info := f.infoLocked(svcOf(r.NamingHeader))
		if f.hugeQuery {
			info.Clusters = strings.Repeat("x", 256<<10)
		}
		resp = &wire.QueryServiceResponse{ResponseHeader: wire.Okay(), ServiceInfo: info}
	case *wire.ServiceListRequest:
		names := map[string]bool{}
		for _, byS := range f.regs {
			for s := range byS {
				if s.Group == r.GroupName && s.Namespace == r.Namespace {
					names[s.Name] = true
				}
			}
		}
		var list []string
		for n := range names {
			list = append(list, n)
		}
		resp = &wire.ServiceListResponse{ResponseHeader: wire.Okay(), Count: len(list), ServiceNames: list}
	case *wire.SubscribeServiceRequest:
		svc := svcOf(r.NamingHeader)
		if r.Subscribe {
			if f.subs[svc] == nil {
				f.subs[svc] = map[string]bool{}
			}
			f.subs[svc][id] = true
		} else {
			delete(f.subs[svc], id)
		}
		resp = &wire.SubscribeServiceResponse{ResponseHeader: wire.Okay(), ServiceInfo: f.infoLocked(svc)}
	case *wire.FerryBatchBeatRequest:
		if !f.batchBeat {
			resp = wire.NewErrorResponse(wire.CodeNoHandler, "no handler for FerryBatchBeatRequest")
			break
		}
		if r.RegisterIfUnknown {
			f.regRPCs++
		} else {
			f.lightRPCs++
		}
		f.lastBeats = r.Items()
		out := &wire.FerryBatchBeatResponse{ResponseHeader: wire.Okay(), ClientBeatInterval: 5000}
		var all []wire.BeatResult
		for _, b := range f.lastBeats {
			svc := ServiceRef{Namespace: b.Namespace, Group: b.GroupName, Name: b.ServiceName}
			if f.redirectTo != nil {
				ip, port, _ := b.Addr()
				if to := f.redirectTo(svc, wire.BeatAddr(ip, port)); to != "" && to != f.addr {
					all = append(all, wire.BeatResult{Status: wire.BeatRedirect, Redirect: to})
					continue
				}
			}
			ip, port, cluster := b.Addr()
			k := ip + ":" + strconv.Itoa(port) + ":" + cluster
			_, known := f.kept[svc][k]
			if !known && (!r.RegisterIfUnknown || !b.Full()) {
				all = append(all, wire.BeatResult{Status: wire.BeatUnknown})
				continue
			}
			// A full item with registerIfUnknown upserts, as the registry does.
			if r.RegisterIfUnknown && b.Full() && (!known || !reflect.DeepEqual(f.kept[svc][k], b.Instance)) {
				if f.kept[svc] == nil {
					f.kept[svc] = map[string]wire.Instance{}
				}
				f.kept[svc][k] = b.Instance
				pushes = append(pushes, svc)
			}
			f.beatCount[svc.String()+"|"+k]++
			all = append(all, wire.BeatResult{Status: wire.BeatOK})
		}
		out.Answer(r, all)
		resp = out
	case *wire.FerryBatchDeregisterRequest:
		if !f.batchBeat || !f.batchDereg {
			resp = wire.NewErrorResponse(wire.CodeNoHandler, "no handler for FerryBatchDeregisterRequest")
			break
		}
		var all []wire.BeatResult
		for _, b := range r.Items() {
			svc := ServiceRef{Namespace: b.Namespace, Group: b.GroupName, Name: b.ServiceName}
			if f.redirectTo != nil {
				ip, port, _ := b.Addr()
				if to := f.redirectTo(svc, wire.BeatAddr(ip, port)); to != "" && to != f.addr {
					all = append(all, wire.BeatResult{Status: wire.BeatRedirect, Redirect: to})
					continue
				}
			}
			if b.Port == 0 || b.IP == "bad" {
				all = append(all, wire.BeatResult{Status: wire.BeatInvalid, Message: "bad address"})
				continue
			}
			k := b.IP + ":" + strconv.Itoa(b.Port) + ":" + b.Cluster
			if _, ok := f.kept[svc][k]; ok {
				delete(f.kept[svc], k)
				pushes = append(pushes, svc)
			}
			all = append(all, wire.BeatResult{Status: wire.BeatOK})
		}
		out := &wire.FerryBatchDeregisterResponse{ResponseHeader: wire.Okay()}
		out.Answer(all)
		resp = out
	default:
		resp = wire.NewErrorResponse(wire.CodeNoHandler, "no handler for "+m.TypeName())
	}
	f.mu.Unlock()
	done := map[ServiceRef]bool{}
	for _, s := range pushes {
		if !done[s] {
			done[s] = true
			f.push(s)
		}
	}
	return f.encode(resp), nil
}

// infoLocked builds svc's ServiceInfo; f.mu held.
func (f *fakeServer) infoLocked(svc ServiceRef) ServiceInfo {
	f.refTime++
	info := ServiceInfo{Name: svc.Name, GroupName: svc.Group, CacheMillis: 10000, LastRefTime: f.refTime, Valid: true, Hosts: []wire.Instance{}}
	for _, byS := range f.regs {
		info.Hosts = append(info.Hosts, byS[svc]...)
	}
	for _, i := range f.kept[svc] {
		info.Hosts = append(info.Hosts, i)
	}
	return info
}

// push sends svc's state to its subscribers.
func (f *fakeServer) push(svc ServiceRef) {
	f.mu.Lock()
	if len(f.subs[svc]) == 0 {
		f.mu.Unlock()
		return
	}
	info := f.infoLocked(svc)
	var cs []*fakeConn
	for id := range f.subs[svc] {
		if c, ok := f.conns[id]; ok {
			cs = append(cs, c)
		}
	}
	f.mu.Unlock()
	for _, c := range cs {
		req := &wire.NotifySubscriberRequest{NamingHeader: wire.NamingHeader{Namespace: svc.Namespace, ServiceName: svc.Name, GroupName: svc.Group}, ServiceInfo: info}
		req.RequestID = strconv.FormatInt(info.LastRefTime, 10)
		c.send(f.encode(req))
	}
}

func (c *fakeConn) send(p *wire.Payload) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	_ = c.stream.Send(p)
}

// RequestBiStream implements wire.BiRequestStreamServer.
func (f *fakeServer) RequestBiStream(st wire.BiRequestStream_RequestBiStreamServer) error {
	id := connID(st.Context())
	p, err := st.Recv()
	if err != nil {
		return err
	}
	if m, err := f.codec.Decode(p); err != nil || m.TypeName() != wire.TypeConnectionSetupRequest {
		return fmt.Errorf("expected setup")
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, rawBody{typ: wire.TypeConnectionSetupRequest, body: append([]byte(nil), p.GetBody().GetValue()...)})
	f.mu.Unlock()
	c := &fakeConn{id: id, stream: st}
	f.mu.Lock()
	f.conns[id] = c
	f.mu.Unlock()
	for {
		p, err := st.Recv()
		if err != nil {
			break
		}
		if m, err := f.codec.Decode(p); err == nil {
			if r, ok := m.(wire.Response); ok {
				f.mu.Lock()
				f.answers = append(f.answers, r)
				f.mu.Unlock()
			}
		}
	}
	f.mu.Lock()
	delete(f.conns, id)
	var changed []ServiceRef
	for s := range f.regs[id] {
		changed = append(changed, s)
	}
	delete(f.regs, id)
	for _, m := range f.subs {
		delete(m, id)
	}
	f.mu.Unlock()
	for _, s := range changed {
		f.push(s)
	}
	return nil
}

// sendAll sends a server request to every connection.
func (f *fakeServer) sendAll(req wire.Request) {
	f.mu.Lock()
	var cs []*fakeConn
	for _, c := range f.conns {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.send(f.encode(req))
	}
}

// answer returns the client's answer with requestId id, if any.
func (f *fakeServer) answer(id string) (wire.Response, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.answers {
		if r.Result().RequestID == id {
			return r, true
		}
	}
	return nil, false
}

// resetAll sends ConnectResetRequest (to "ip","port" when given) to every
// connection.
func (f *fakeServer) resetAll(ip, port string) {
	f.mu.Lock()
	var cs []*fakeConn
	for _, c := range f.conns {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.send(f.encode(&wire.ConnectResetRequest{ServerIP: ip, ServerPort: port}))
	}
}

func (f *fakeServer) httpDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	grp, name, _ := strings.Cut(q.Get("serviceName"), "@@")
	svc := ServiceRef{Namespace: q.Get("namespaceId"), Group: grp, Name: name}
	k := q.Get("ip") + ":" + q.Get("port") + ":" + q.Get("clusterName")
	f.mu.Lock()
	_, ok := f.kept[svc][k]
	delete(f.kept[svc], k)
	f.mu.Unlock()
	if ok {
		f.push(svc)
	}
	io.WriteString(w, "ok")
}

// hasReg reports whether some connection registered ip in svc.
func (f *fakeServer) hasReg(svc ServiceRef, ip string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, byS := range f.regs {
		for _, i := range byS[svc] {
			if i.IP == ip {
				return true
			}
		}
	}
	return false
}

func (f *fakeServer) subscribed(svc ServiceRef) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[svc]) > 0
}

func (f *fakeServer) keptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.kept {
		n += len(m)
	}
	return n
}

func (f *fakeServer) count(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[typ]
}

// ---- test helpers ----

func testLogger(t testing.TB) *slog.Logger {
	return testlog.New(t, slog.LevelDebug)
}

func testConfig(t testing.TB, servers ...string) Config {
	cfg := DefaultConfig()
	cfg.Servers = servers
	cfg.Logger = testLogger(t)
	cfg.DialTimeout = time.Second
	// Generous: one request may wait seconds on a loaded two-core machine
	// under -race (a 1,000-instance Keep and a 200-instance batch beat
	// took over 1 s there and the client reconnected mid-request). Tests
	// of a timeout set their own.
	cfg.RequestTimeout = 10 * time.Second
	cfg.ReconnectMin = 20 * time.Millisecond
	cfg.ReconnectMax = 200 * time.Millisecond
	// The beat loop is driven by hand (beatOnce) unless a test says otherwise.
	cfg.BeatInterval = time.Hour
	cfg.BeatPeriod = 5 * time.Hour
	return cfg
}

func startClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var _ = json.Marshal

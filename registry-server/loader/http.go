package loader

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/clusternet"
)

// Handler serves Nacos' loader routes under /nacos/v2/core/loader/ (mount
// it behind the operator guard):
//
//	GET current                                  this node's connections, by id
//	GET reloadCurrent?count=N[&redirectAddress=] move N of them (to that member, else spread over the others)
//	GET reloadClient?connectionId=ID[&redirectAddress=]  move one
//	GET cluster                                  every member's count, Nacos' shape
//	GET smartReloadCluster[?loaderFactor=F]       every member above average·(1+F) sheds its excess now
//
// Writes are GETs, as in Nacos. Bad parameters answer 400 naming the
// parameter; an unknown connection 404.
func (b *Balancer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nacos/v2/core/loader/current", b.httpCurrent)
	mux.HandleFunc("GET /nacos/v2/core/loader/reloadCurrent", b.httpReloadCurrent)
	mux.HandleFunc("GET /nacos/v2/core/loader/reloadClient", b.httpReloadClient)
	mux.HandleFunc("GET /nacos/v2/core/loader/cluster", b.httpCluster)
	mux.HandleFunc("GET /nacos/v2/core/loader/smartReloadCluster", b.httpSmartReload)
	return mux
}

// HandleCluster serves the member-to-member routes on the cluster port.
func (b *Balancer) HandleCluster(srv *clusternet.Server) {
	srv.Handle(CountPath, func(context.Context, string, []byte) (any, error) { return b.count(), nil })
	srv.Handle(ShedPath, func(ctx context.Context, from string, body []byte) (any, error) {
		var moves []Move
		if err := json.Unmarshal(body, &moves); err != nil {
			return nil, &clusternet.StatusError{Status: http.StatusBadRequest, Err: fmt.Errorf("loader: undecodable moves from %s: %v", from, err)}
		}
		b.log.Info("member asked this node to move connections", "from", from, "moves", moves)
		// Detached from the caller: the caller waits only for "accepted".
		go b.shed(context.WithoutCancel(ctx), moves, "manual")
		return struct{}{}, nil
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

func badParam(w http.ResponseWriter, name, why string) {
	http.Error(w, fmt.Sprintf("Parameter '%s' %s", name, why), http.StatusBadRequest)
}

// connJSON is a connection as Nacos' /loader/current lists it.
type connJSON struct {
	Traced   bool     `json:"traced"`
	MetaInfo metaInfo `json:"metaInfo"`
}

type metaInfo struct {
	ConnectType    string            `json:"connectType"`
	ClientIP       string            `json:"clientIp"`
	RemoteIP       string            `json:"remoteIp"`
	RemotePort     int               `json:"remotePort"`
	Version        string            `json:"version"`
	ConnectionID   string            `json:"connectionId"`
	CreateTime     int64             `json:"createTime"`
	LastActiveTime int64             `json:"lastActiveTime"`
	Labels         map[string]string `json:"labels"`
}

func (b *Balancer) httpCurrent(w http.ResponseWriter, _ *http.Request) {
	out := map[string]connJSON{}
	for _, c := range b.conns.Connections() {
		if !c.Registered {
			continue
		}
		host, port, _ := net.SplitHostPort(c.RemoteAddr)
		p, _ := strconv.Atoi(port)
		out[c.ID] = connJSON{MetaInfo: metaInfo{ConnectType: "GRPC", ClientIP: c.ClientIP, RemoteIP: host,
			RemotePort: p, Version: c.ClientVersion, ConnectionID: c.ID, CreateTime: c.CreatedAt.UnixMilli(),
			LastActiveTime: c.LastActive.UnixMilli(), Labels: c.Labels}}
	}
	writeJSON(w, out)
}

// redirect reads redirectAddress ("" when absent); ok is false after a 400.
func (b *Balancer) redirect(w http.ResponseWriter, r *http.Request) (string, bool) {
	to := strings.TrimSpace(r.URL.Query().Get("redirectAddress"))
	if to == "" {
		return "", true
	}
	if h, p := splitTarget(to); h == "" || p == 0 {
		badParam(w, "redirectAddress", fmt.Sprintf("%q: want host:port (a member's main port)", to))
		return "", false
	}
	return to, true
}

func (b *Balancer) httpReloadCurrent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("count")
	n, err := strconv.Atoi(q)
	if q == "" || err != nil || n < 0 {
		badParam(w, "count", fmt.Sprintf("%q: want a number of connections ≥ 0", q))
		return
	}
	to, ok := b.redirect(w, r)
	if !ok {
		return
	}
	var moves []Move
	if to != "" {
		moves = []Move{{Target: to, Count: n}}
	} else {
		loads, _ := b.loads(r.Context())
		delete(loads, b.self())
		if len(loads) == 0 {
			moves = []Move{{Count: n}} // one node: no target, the clients pick their next server
		} else {
			moves = Handoff(loads, n)
		}
	}
	b.log.Info("reloadCurrent: moving connections", "count", n, "moves", moves, "by", r.RemoteAddr)
	go b.shed(context.WithoutCancel(r.Context()), moves, "manual")
	_, _ = w.Write([]byte("success"))
}

func (b *Balancer) httpReloadClient(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("connectionId"))
	if id == "" {
		badParam(w, "connectionId", "is missing")
		return
	}
	to, ok := b.redirect(w, r)
	if !ok {
		return
	}
	if to == "" {
		loads, _ := b.loads(r.Context())
		delete(loads, b.self())
		if ms := Handoff(loads, 1); len(ms) == 1 {
			to = ms[0].Target
		}
	}
	host, port := splitTarget(to)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := b.conns.ResetConnection(ctx, id, host, port); err != nil {
		b.met.moved.WithLabelValues("manual", "error").Inc()
		http.Error(w, fmt.Sprintf("connection %s: %v", id, err), http.StatusNotFound)
		return
	}
	b.met.moved.WithLabelValues("manual", "ok").Inc()
	_, _ = w.Write([]byte("success"))
}

// memberLoad is one entry of Nacos' /loader/cluster detail.
type memberLoad struct {
	Address string            `json:"address"`
	Metric  map[string]string `json:"metric"`
}

// clusterLoads asks every member (this one locally) for its count: the
// counts of those that answered, and how many members there are.
func (b *Balancer) clusterLoads(ctx context.Context) (map[string]int, int) {
	if b.cluster == nil {
		return map[string]int{b.self(): b.count().SDK}, 1
	}
	self := b.cluster.Self()
	out := map[string]int{self: b.count().SDK}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range b.cluster.Members() {
		if m == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c Count
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := b.caller.Call(cctx, m, CountPath, struct{}{}, &c); err == nil {
				mu.Lock()
				out[m] = c.SDK
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, len(b.cluster.Members())
}

func (b *Balancer) httpCluster(w http.ResponseWriter, r *http.Request) {
	loads, members := b.clusterLoads(r.Context())
	addrs := make([]string, 0, len(loads))
	for a := range loads {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	detail := make([]memberLoad, 0, len(addrs))
	total, mx, mn := 0, 0, -1
	for _, a := range addrs {
		n := loads[a]
		total += n
		mx = max(mx, n)
		if mn < 0 || n < mn {
			mn = n
		}
		s := strconv.Itoa(n)
		detail = append(detail, memberLoad{Address: a, Metric: map[string]string{"sdkConCount": s, "conCount": s}})
	}
	avg := 0
	if len(addrs) > 0 {
		avg = total / len(addrs)
	}
	writeJSON(w, map[string]any{"detail": detail, "memberCount": members, "metricsCount": len(addrs),
		"completed": len(addrs) == members, "max": mx, "min": mn, "avg": avg, "threshold": float64(avg) * 1.1, "total": total})
}

func (b *Balancer) httpSmartReload(w http.ResponseWriter, r *http.Request) {
	factor := b.cfg.Factor
	if q := r.URL.Query().Get("loaderFactor"); q != "" {
		f, err := strconv.ParseFloat(q, 64)
		if err != nil || f < 0 || f > 10 {
			badParam(w, "loaderFactor", fmt.Sprintf("%q: want a fraction such as 0.1", q))
			return
		}
		factor = f
	}
	loads, members := b.clusterLoads(r.Context())
	if len(loads) < members {
		b.log.Warn("smartReloadCluster: not every member answered; balancing the ones that did", "answered", len(loads), "members", members)
	}
	failed := false
	for a := range loads {
		moves := Plan(loads, a, factor, 1<<30)
		if len(moves) == 0 {
			continue
		}
		b.log.Info("smartReloadCluster: member sheds connections", "member", a, "moves", moves, "by", r.RemoteAddr)
		if a == b.self() {
			go b.shed(context.WithoutCancel(r.Context()), moves, "manual")
			continue
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := b.caller.Call(ctx, a, ShedPath, moves, nil)
		cancel()
		if err != nil {
			failed = true
			b.log.Warn("smartReloadCluster: member did not take the order", "member", a, "err", err)
		}
	}
	if failed {
		_, _ = w.Write([]byte("Fail"))
		return
	}
	_, _ = w.Write([]byte("Ok"))
}

package grpcapi

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// authStore is a fixed auth.Store for the benchmark: admin nacos and a
// user "app" holding rw on the public namespace.
type authStore struct{ st *auth.State }

func (a authStore) AuthState() *auth.State                    { return a.st }
func (a authStore) ApplyUserOp(auth.UserOp) error             { return nil }
func (a authStore) ApplyRoleOp(auth.RoleOp) error             { return nil }
func (a authStore) ApplyPermissionOp(auth.PermissionOp) error { return nil }
func (a authStore) Ready() bool                               { return true }

func benchAuthority(b *testing.B) *auth.Authority {
	st := auth.EmptyState()
	must := func(s *auth.State, e error) *auth.State {
		if e != nil {
			b.Fatal(e)
		}
		return s
	}
	st = must(st.ApplyUser(auth.UserOp{Op: auth.OpBootstrap, Username: "nacos", PasswordHash: "x"}))
	st = must(st.ApplyUser(auth.UserOp{Op: auth.OpCreate, Username: "app", PasswordHash: "x"}))
	st = must(st.ApplyRole(auth.RoleOp{Op: auth.OpAdd, Role: "APP", Username: "app"}))
	st = must(st.ApplyPermission(auth.PermissionOp{Op: auth.OpAdd, Permission: auth.Permission{Role: "APP", Resource: ":*:*", Action: "rw"}}))
	cfg := auth.DefaultConfig()
	cfg.Enabled = true
	cfg.TokenKey = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
	a, err := auth.New(cfg, auth.Deps{Store: authStore{st}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkAuthServerCost measures the server's own work for one request
// — decode, check, handle, encode the answer (RequestReply), without the
// gRPC transport — with auth off, on for the admin (the usual sync worker
// account) and on for a user with a namespace permission, on the two hot
// paths: merged beats (1,000 known instances in 100 service groups) and
// service queries. The transport is left out so that auth's share is
// measured against the smallest base (an upper bound of its share of the
// server's CPU).
func BenchmarkAuthServerCost(b *testing.B) {
	for _, mode := range []string{"off", "admin", "user"} {
		for _, path := range []string{"beat", "query"} {
			b.Run(path+"/auth="+mode, func(b *testing.B) { benchAuthPath(b, path, mode) })
		}
	}
}

func benchAuthPath(b *testing.B, path, mode string) {
	reg := naming.NewRegistry(naming.DefaultConfig(), nil)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, reg, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	headers := map[string]string{}
	if mode != "off" {
		a := benchAuthority(b)
		s.SetAuthorizer(a)
		user := "nacos"
		if mode == "user" {
			user = "app"
		}
		headers["accessToken"] = a.Signer().Issue(user, time.Now(), 24*time.Hour)
	}
	c := &Conn{ID: "bench", RemoteAddr: "127.0.0.1:1", registered: true}
	ctx := context.WithValue(context.Background(), connKey{}, c)
	call := func(m wire.Request) {
		m.Header().Headers = headers
		p, err := wire.Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		if r := s.handleUnary(ctx, p); !r.Result().OK() {
			b.Fatalf("setup: %+v", r.Result())
		}
	}
	insts := benchInstances(1000, 0)
	items := make([]wire.BeatItem, len(insts))
	for i, in := range insts {
		items[i] = wire.BeatItem{ServiceName: "svc" + strconv.Itoa(i%100), Instance: in}
	}
	call(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: items})
	var req wire.Request
	switch path {
	case "beat":
		groups := map[string]*wire.BeatGroup{}
		var order []string
		for _, it := range items {
			g := groups[it.ServiceName]
			if g == nil {
				g = &wire.BeatGroup{ServiceName: it.ServiceName}
				groups[it.ServiceName] = g
				order = append(order, it.ServiceName)
			}
			g.Addrs = append(g.Addrs, it.Instance.IP+":"+strconv.Itoa(it.Instance.Port))
		}
		r := &wire.FerryBatchBeatRequest{}
		for _, n := range order {
			r.Groups = append(r.Groups, *groups[n])
		}
		req = r
	case "query":
		req = &wire.ServiceQueryRequest{NamingHeader: nh("svc7")}
	}
	req.Header().Headers = headers
	p, err := wire.Encode(req)
	if err != nil {
		b.Fatal(err)
	}
	resp := s.handleUnary(ctx, p)
	if !resp.Result().OK() {
		b.Fatalf("%s: %+v", mode, resp.Result())
	}
	if r, ok := resp.(*wire.FerryBatchBeatResponse); ok && len(r.Exceptions) > 0 {
		b.Fatalf("beat exceptions: %+v", r.Exceptions[0])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := (*requestService)(s).RequestReply(ctx, p)
		if err != nil || out == nil {
			b.Fatal(err)
		}
	}
}

package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// BenchmarkAuthorizeGRPC is the whole of what auth adds to a gRPC request
// on the server (the decoded request's token is checked against a cached
// verification and a cached decision): an admin's and a namespace user's
// service query, and a user's merged beat of 100 service groups.
func BenchmarkAuthorizeGRPC(b *testing.B) {
	must := func(s *State, err error) *State {
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	st := must(EmptyState().ApplyUser(UserOp{Op: OpBootstrap, Username: "nacos", PasswordHash: "x"}))
	st = must(st.ApplyUser(UserOp{Op: OpCreate, Username: "app", PasswordHash: "x"}))
	st = must(st.ApplyRole(RoleOp{Op: OpAdd, Role: "APP", Username: "app"}))
	st = must(st.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "APP", Resource: ":*:*", Action: "rw"}}))
	cfg := DefaultConfig()
	cfg.Enabled, cfg.TokenKey = true, "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
	a, err := New(cfg, Deps{Store: &fakeStore{st: st}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	query := &wire.ServiceQueryRequest{NamingHeader: wire.NamingHeader{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "providers:com.example.S1:1.0.0:"}}
	beat := &wire.FerryBatchBeatRequest{}
	for i := 0; i < 100; i++ {
		beat.Groups = append(beat.Groups, wire.BeatGroup{Namespace: "public", GroupName: "DEFAULT_GROUP", ServiceName: "providers:com.example.S" + strconv.Itoa(i) + ":1.0.0:"})
	}
	for _, c := range []struct {
		name string
		user string
		req  wire.Request
	}{{"query/admin", "nacos", query}, {"query/user", "app", query}, {"beat100/admin", "nacos", beat}, {"beat100/user", "app", beat}} {
		h := map[string]string{"accessToken": a.Signer().Issue(c.user, time.Now(), time.Hour)}
		b.Run(c.name, func(b *testing.B) {
			if code, msg := a.AuthorizeGRPC(c.req, h, "127.0.0.1"); code != 0 {
				b.Fatal(code, msg)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				a.AuthorizeGRPC(c.req, h, "127.0.0.1")
			}
		})
	}
}

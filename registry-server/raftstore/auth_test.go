package raftstore

import (
	"errors"
	"testing"

	"github.com/ferrysync/ferry/registry-server/auth"
)

// TestAuthEntriesSurviveRestart: users, roles and permissions go through
// the log, survive a restart with and without a snapshot, and domain
// errors come back as values.
func TestAuthEntriesSurviveRestart(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		dir := t.TempDir()
		cfg := testConfig(dir)
		s1 := openTest(t, cfg, nil)
		mustNil(t, s1.ApplyUserOp(auth.UserOp{Op: auth.OpBootstrap, Username: "nacos", PasswordHash: "h1"}))
		mustNil(t, s1.ApplyUserOp(auth.UserOp{Op: auth.OpCreate, Username: "ops", PasswordHash: "h2"}))
		mustNil(t, s1.ApplyRoleOp(auth.RoleOp{Op: auth.OpAdd, Role: "OPS", Username: "ops"}))
		mustNil(t, s1.ApplyPermissionOp(auth.PermissionOp{Op: auth.OpAdd, Permission: auth.Permission{Role: "OPS", Resource: ":*:*", Action: "rw"}}))
		if err := s1.ApplyUserOp(auth.UserOp{Op: auth.OpCreate, Username: "ops", PasswordHash: "h3"}); !errors.Is(err, auth.ErrExists) {
			t.Fatalf("duplicate user: %v", err)
		}
		if snapshot {
			mustNil(t, s1.Snapshot())
		}
		want := s1.AuthState().Snapshot()
		mustNil(t, s1.Stop())
		s2 := openTest(t, cfg, nil)
		got := s2.AuthState()
		if !got.IsGlobalAdmin("nacos") || !got.Allowed("ops", auth.Resource{Type: auth.TypeNaming, Group: "G", Name: "x"}, auth.Write) {
			t.Fatalf("snapshot=%v: state after restart %+v, want %+v", snapshot, got.Snapshot(), want)
		}
		if u, _ := got.User("ops"); u.PasswordHash != "h2" {
			t.Fatalf("snapshot=%v: password hash after restart %q", snapshot, u.PasswordHash)
		}
	}
}

// addAuthSeeds gives FuzzFSMApply one entry of each auth type.
func addAuthSeeds(f *testing.F) {
	for typ, body := range map[byte]any{
		cmdAuthUser:       auth.UserOp{Op: auth.OpBootstrap, Username: "nacos", PasswordHash: "h"},
		cmdAuthRole:       auth.RoleOp{Op: auth.OpAdd, Role: "R", Username: "nacos"},
		cmdAuthPermission: auth.PermissionOp{Op: auth.OpAdd, Permission: auth.Permission{Role: "R", Resource: ":*:*", Action: "rw"}},
	} {
		b, err := encode(typ, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

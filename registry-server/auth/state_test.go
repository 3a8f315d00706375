package auth

import (
	"errors"
	"testing"
)

func mustFn(t *testing.T) func(*State, error) *State {
	return func(s *State, err error) *State {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func rbacFixture(t *testing.T) *State {
	must := mustFn(t)
	s := EmptyState()
	s = must(s.ApplyUser(UserOp{Op: OpBootstrap, Username: "nacos", PasswordHash: "h"}))
	for _, u := range []string{"reader", "writer", "devops", "nobody"} {
		s = must(s.ApplyUser(UserOp{Op: OpCreate, Username: u, PasswordHash: "h"}))
	}
	s = must(s.ApplyRole(RoleOp{Op: OpAdd, Role: "r-public", Username: "reader"}))
	s = must(s.ApplyRole(RoleOp{Op: OpAdd, Role: "w-dev", Username: "writer"}))
	s = must(s.ApplyRole(RoleOp{Op: OpAdd, Role: "ops", Username: "devops"}))
	s = must(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "r-public", Resource: ":*:*", Action: "r"}}))
	s = must(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "w-dev", Resource: "dev:*:*", Action: "rw"}}))
	s = must(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "ops", Resource: ":DEFAULT_GROUP:naming/providers:*", Action: "w"}}))
	return s
}

func TestAllowedTable(t *testing.T) {
	s := rbacFixture(t)
	svc := func(ns, name string) Resource {
		return Resource{Type: TypeNaming, Namespace: ns, Group: "DEFAULT_GROUP", Name: name}
	}
	cfg := func(ns, id string) Resource {
		return Resource{Type: TypeConfig, Namespace: ns, Group: "DEFAULT_GROUP", Name: id}
	}
	console := Resource{Type: TypeConsole, Name: "users"}
	for _, c := range []struct {
		user string
		res  Resource
		act  Action
		want bool
	}{
		{"nacos", svc("dev", "x"), Write, true},
		{"nacos", console, Write, true},
		{"reader", svc("", "x"), Read, true},
		{"reader", svc("public", "x"), Read, true}, // public is written empty, as Nacos
		{"reader", cfg("", "x"), Read, true},
		{"reader", svc("", "x"), Write, false},
		{"reader", svc("dev", "x"), Read, false},
		{"reader", console, Read, false},
		{"writer", svc("dev", "x"), Write, true},
		{"writer", cfg("dev", "x"), Read, true},
		{"writer", svc("", "x"), Read, false},
		{"devops", svc("", "providers:a:1.0:"), Write, true},
		{"devops", svc("", "consumers:a"), Write, false},
		{"devops", svc("", "providers:a"), Read, false},
		{"nobody", svc("", "x"), Read, false},
		{"ghost", svc("", "x"), Read, false},
	} {
		if got := s.Allowed(c.user, c.res, c.act); got != c.want {
			t.Errorf("%s %s %s (%s): %v, want %v", c.user, c.act, c.res, c.res.String(), got, c.want)
		}
	}
}

func TestStateOps(t *testing.T) {
	s := rbacFixture(t)
	must := mustFn(t)
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"create existing", second(s.ApplyUser(UserOp{Op: OpCreate, Username: "reader", PasswordHash: "h"})), ErrExists},
		{"update missing", second(s.ApplyUser(UserOp{Op: OpUpdate, Username: "ghost", PasswordHash: "h"})), ErrNotFound},
		{"delete admin", second(s.ApplyUser(UserOp{Op: OpDelete, Username: "nacos"})), ErrInvalidParam},
		{"bind admin role", second(s.ApplyRole(RoleOp{Op: OpAdd, Role: GlobalAdminRole, Username: "reader"})), ErrInvalidParam},
		{"bind twice", second(s.ApplyRole(RoleOp{Op: OpAdd, Role: "r-public", Username: "reader"})), ErrExists},
		{"bind to ghost", second(s.ApplyRole(RoleOp{Op: OpAdd, Role: "x", Username: "ghost"})), ErrNotFound},
		{"permission of unknown role", second(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "none", Resource: "*", Action: "r"}})), ErrNotFound},
		{"bad action", second(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "ops", Resource: "*", Action: "x"}})), ErrInvalidParam},
		{"sql in name", second(s.ApplyUser(UserOp{Op: OpCreate, Username: "a'; DROP TABLE users;--", PasswordHash: "h"})), ErrInvalidParam},
		{"json in name", second(s.ApplyUser(UserOp{Op: OpCreate, Username: `a","globalAdmin":true`, PasswordHash: "h"})), ErrInvalidParam},
		{"newline in name", second(s.ApplyUser(UserOp{Op: OpCreate, Username: "a\nlevel=ERROR", PasswordHash: "h"})), ErrInvalidParam},
		{"space in resource", second(s.ApplyPermission(PermissionOp{Op: OpAdd, Permission: Permission{Role: "ops", Resource: "a b", Action: "r"}})), ErrInvalidParam},
		{"unknown op", second(s.ApplyUser(UserOp{Op: "grant", Username: "x"})), ErrInvalidParam},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	// A second bootstrap is a no-op: one admin.
	n := must(s.ApplyUser(UserOp{Op: OpBootstrap, Username: "nacos", PasswordHash: "other"}))
	if u, _ := n.User("nacos"); u.PasswordHash != "h" {
		t.Fatal("second bootstrap replaced the admin's password")
	}
	// Deleting a user drops its roles; deleting a role drops its permissions.
	n = must(s.ApplyUser(UserOp{Op: OpDelete, Username: "writer"}))
	if _, ok := n.User("writer"); ok || len(n.Roles()) != 3 {
		t.Fatalf("after delete: %v", n.Roles())
	}
	n = must(s.ApplyRole(RoleOp{Op: OpDelete, Role: "ops"}))
	if n.Allowed("devops", Resource{Type: TypeNaming, Group: "DEFAULT_GROUP", Name: "providers:a"}, Write) || len(n.Permissions()) != 2 {
		t.Fatalf("role delete left %v", n.Permissions())
	}
	// The original is untouched (copy on write), and a snapshot round-trips.
	if !s.Allowed("devops", Resource{Type: TypeNaming, Group: "DEFAULT_GROUP", Name: "providers:a"}, Write) {
		t.Fatal("apply mutated its receiver")
	}
	r := FromSnapshot(s.Snapshot())
	if len(r.Usernames()) != 5 || len(r.Roles()) != 4 || len(r.Permissions()) != 3 || !r.IsGlobalAdmin("nacos") {
		t.Fatalf("snapshot round trip: %+v", r.Snapshot())
	}
}

func second(_ *State, err error) error { return err }

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abc", true}, {"a*c", "abcd", false},
		{":*:*", ":G:naming/x", true}, {"dev:*:*", ":G:naming/x", false}, {"a.c", "abc", false},
		{"*x*", "axb", true}, {"*x*", "ab", false}, {"ab", "ab", true}, {"a**b", "ab", true},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// fakeStore is an in-memory Store for the guard's routing tests.
type fakeStore struct{ st *State }

func (f *fakeStore) AuthState() *State { return f.st }
func (f *fakeStore) ApplyUserOp(op UserOp) (err error) {
	f.st, err = f.st.ApplyUser(op)
	return err
}
func (f *fakeStore) ApplyRoleOp(op RoleOp) (err error) {
	f.st, err = f.st.ApplyRole(op)
	return err
}
func (f *fakeStore) ApplyPermissionOp(op PermissionOp) (err error) {
	f.st, err = f.st.ApplyPermission(op)
	return err
}
func (f *fakeStore) Ready() bool { return true }

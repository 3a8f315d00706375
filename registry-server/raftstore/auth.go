package raftstore

import (
	"sync/atomic"

	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// Auth log entries: the registry's users, role bindings and permissions
// (auth.UserOp, auth.RoleOp, auth.PermissionOp as JSON), applied by the
// auth package's pure State methods, so every replica computes the same
// State from the same log.
const (
	cmdAuthUser       byte = 10
	cmdAuthRole       byte = 11
	cmdAuthPermission byte = 12
)

// authState holds the current auth.State. It is replaced (never mutated)
// by the apply goroutine under fsm.mu; readers load it without a lock.
type authState struct {
	cur atomic.Pointer[auth.State]
}

func (a *authState) load() *auth.State {
	if s := a.cur.Load(); s != nil {
		return s
	}
	return auth.EmptyState()
}

func (f *fsm) authUser(op auth.UserOp) (map[naming.ServiceKey]change, error) {
	next, err := f.auth.load().ApplyUser(op)
	f.auth.cur.Store(next)
	return nil, err
}

func (f *fsm) authRole(op auth.RoleOp) (map[naming.ServiceKey]change, error) {
	next, err := f.auth.load().ApplyRole(op)
	f.auth.cur.Store(next)
	return nil, err
}

func (f *fsm) authPermission(op auth.PermissionOp) (map[naming.ServiceKey]change, error) {
	next, err := f.auth.load().ApplyPermission(op)
	f.auth.cur.Store(next)
	return nil, err
}

// snapshotLocked is the state's persisted form; nil when empty (older
// snapshots have none).
func (a *authState) snapshotLocked() *auth.Snapshot {
	sn := a.load().Snapshot()
	if len(sn.Users) == 0 && len(sn.Roles) == 0 && len(sn.Permissions) == 0 {
		return nil
	}
	return &sn
}

func (a *authState) restoreLocked(sn *auth.Snapshot) {
	if sn == nil {
		a.cur.Store(auth.EmptyState())
		return
	}
	a.cur.Store(auth.FromSnapshot(*sn))
}

// AuthState is the current auth data (immutable; an atomic load).
func (s *Store) AuthState() *auth.State { return s.fsm.auth.load() }

// ApplyUserOp commits a user op through the Raft log and returns its
// domain error (auth.ErrExists, auth.ErrNotFound, auth.ErrInvalidParam).
func (s *Store) ApplyUserOp(op auth.UserOp) error { return s.apply(cmdAuthUser, op) }

// ApplyRoleOp commits a role op.
func (s *Store) ApplyRoleOp(op auth.RoleOp) error { return s.apply(cmdAuthRole, op) }

// ApplyPermissionOp commits a permission op.
func (s *Store) ApplyPermissionOp(op auth.PermissionOp) error {
	return s.apply(cmdAuthPermission, op)
}

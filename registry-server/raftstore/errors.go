package raftstore

import (
	"errors"
	"fmt"

	"github.com/ferrysync/ferry/registry-server/configsvc"
)

// Errors returned by the store. Domain errors come back from the FSM as
// values (every replica computes the same one); the others are about the
// store itself.
var (
	// ErrConfig: a Config field is invalid.
	ErrConfig = errors.New("raftstore: invalid config")
	// ErrInvalidParam: the command is not acceptable (Nacos INVALID_PARAM,
	// HTTP 400). The message says why.
	ErrInvalidParam = errors.New("raftstore: invalid param")
	// ErrKindClash: an ephemeral/persistent mismatch between an instance and
	// its service. Wraps ErrInvalidParam, as Nacos answers INVALID_PARAM.
	ErrKindClash = fmt.Errorf("%w: ephemeral/persistent kind clash", ErrInvalidParam)
	// ErrServiceNotEmpty: removing a service that still has instances.
	ErrServiceNotEmpty = errors.New("raftstore: service is not empty")
	// ErrNotLeader: this node cannot accept writes now.
	ErrNotLeader = errors.New("raftstore: not leader")
	// ErrTimeout: the write was not committed within ApplyTimeout.
	ErrTimeout = errors.New("raftstore: apply timeout")
	// ErrStopped: the store is stopped.
	ErrStopped = errors.New("raftstore: stopped")
)

// errorCodes names the errors a write forwarded to the leader can come back
// with, so the follower's caller sees the same sentinel (errors.Is) as on
// the leader. Most specific first; append new domain errors here.
var errorCodes = []struct {
	code string
	err  error
}{
	{"kind_clash", ErrKindClash},
	{"invalid_param", ErrInvalidParam},
	{"service_not_empty", ErrServiceNotEmpty},
	{"cas_mismatch", configsvc.ErrCASMismatch},
	{"not_leader", ErrNotLeader},
	{"timeout", ErrTimeout},
	{"stopped", ErrStopped},
}

// ErrorCode is err's code for the wire ("" for nil, "error" when unnamed).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return "error"
}

// ErrorFrom rebuilds an error from its wire code and message: it wraps the
// sentinel of the code (nil for "").
func ErrorFrom(code, msg string) error {
	if code == "" {
		return nil
	}
	for _, e := range errorCodes {
		if e.code == code {
			if msg == e.err.Error() {
				return e.err
			}
			return fmt.Errorf("%w (at the leader: %s)", e.err, msg)
		}
	}
	return fmt.Errorf("raftstore: at the leader: %s", msg)
}

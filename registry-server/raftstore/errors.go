package raftstore

import (
	"errors"
	"fmt"
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

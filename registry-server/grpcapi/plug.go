package grpcapi

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// Hooks for other modules (the config service): server pushes of their own
// request types and the end of a connection.

// OnClose adds f, called with a connection's id once when it is
// unregistered (its bi-stream ended, it was ejected, or the server stops).
// f runs under the server's connection lock: it must not block nor call
// back into the Server. Call before Start.
func (s *Server) OnClose(f func(connID string)) {
	if s.started.Load() {
		panic("grpcapi: OnClose after Start")
	}
	s.onClose = append(s.onClose, f)
}

// Push sends a server→client request on connection connID's bi-stream and
// waits at most timeout for the answer (judged by resultCode). Errors wrap
// ErrNotConnected, ErrBusy, ErrTimeout or ErrStopped.
func (s *Server) Push(ctx context.Context, connID string, req wire.Request, timeout time.Duration) (wire.Response, error) {
	c := s.conn(connID)
	if c == nil || !c.Registered() {
		return nil, fmt.Errorf("%w: %s", ErrNotConnected, connID)
	}
	return s.call(ctx, c, req, timeout)
}

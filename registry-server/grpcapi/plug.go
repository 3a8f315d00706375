package grpcapi

import (
	"context"
	"fmt"
	"strconv"
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

// PushResult is one connection's outcome of PushAll.
type PushResult struct {
	// Err is nil for an answer with resultCode 200; else it wraps
	// ErrNotConnected, ErrBusy, ErrTimeout, ErrStopped or the context's
	// error, or describes the client's error answer.
	Err error
	// At is when the outcome became known (the answer's arrival).
	At time.Time
}

// PushAll sends req to every connection of connIDs on its bi-stream and
// waits at most timeout (or until ctx ends) for their answers. req is
// encoded once, with its requestId set to a mark, and only the requestId
// differs between the payloads queued to the connections; req is mutated
// (by encoding) and must not be used concurrently. Results are in connIDs
// order. One fan-out costs one goroutine (the caller's) and one timer,
// whatever the number of connections.
func (s *Server) PushAll(ctx context.Context, connIDs []string, req wire.Request, timeout time.Duration) []PushResult {
	out := make([]PushResult, len(connIDs))
	if len(connIDs) == 0 {
		return out
	}
	body, err := s.encodeTemplate(req)
	if err != nil {
		now := s.now()
		for i := range out {
			out[i] = PushResult{Err: err, At: now}
		}
		return out
	}
	// Request ids are a block of consecutive numbers: the i-th connection
	// gets base+i, so an answer's requestId gives its index.
	n := uint64(len(connIDs))
	base := s.nextID.Add(n) - n + 1
	conns := make([]*Conn, len(connIDs))
	s.mu.Lock()
	for i, id := range connIDs {
		conns[i] = s.conns[id]
	}
	s.mu.Unlock()
	// One channel collects every answer; it holds them all, so deliver
	// never drops one.
	ch := make(chan wire.Response, len(connIDs))
	keys := make([]string, len(connIDs))
	s.pendMu.Lock()
	for i, c := range conns {
		if c == nil {
			continue
		}
		keys[i] = c.ID + "/" + strconv.FormatUint(base+uint64(i), 10)
		s.pending[keys[i]] = ch
	}
	s.pendMu.Unlock()
	defer func() {
		s.pendMu.Lock()
		for _, k := range keys {
			if k != "" {
				delete(s.pending, k)
			}
		}
		s.pendMu.Unlock()
	}()
	left := 0
	for i, c := range conns {
		switch {
		case c == nil || !c.Registered():
			out[i].Err = fmt.Errorf("%w: %s", ErrNotConnected, connIDs[i])
		case !c.enqueue(body.payload(strconv.FormatUint(base+uint64(i), 10))):
			if c.closed.Load() {
				out[i].Err = fmt.Errorf("%w: %s", ErrNotConnected, connIDs[i])
			} else {
				out[i].Err = fmt.Errorf("%w: %s", ErrBusy, connIDs[i])
			}
		default:
			left++
			continue
		}
		out[i].At = s.now()
	}
	if left == 0 {
		return out
	}
	waiting := func(i int) bool { return out[i].At.IsZero() }
	t := time.NewTimer(timeout)
	defer t.Stop()
	var end error
	for left > 0 && end == nil {
		select {
		case resp := <-ch:
			id, err := strconv.ParseUint(resp.Result().RequestID, 10, 64)
			i := int(id - base)
			if err != nil || id < base || i >= len(out) || !waiting(i) {
				continue
			}
			if !resp.Result().OK() {
				out[i].Err = fmt.Errorf("grpcapi: client answered %s %d/%d: %s", resp.TypeName(),
					resp.Result().ResultCode, resp.Result().ErrorCode, resp.Result().Message)
			}
			out[i].At = s.now()
			left--
		case <-t.C:
			end = ErrTimeout
		case <-ctx.Done():
			end = ctx.Err()
		case <-s.stopped:
			end = ErrStopped
		}
	}
	if end != nil {
		now := s.now()
		for i := range out {
			if waiting(i) {
				out[i] = PushResult{Err: end, At: now}
			}
		}
	}
	return out
}

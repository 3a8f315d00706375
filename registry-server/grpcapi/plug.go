package grpcapi

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
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

// OnServicePush adds f, called each time a service's merged push task
// runs: PushDelay after the first change merged into it (since), whether
// or not the service has gRPC subscribers. Other push channels (UDP to
// Nacos 1.x clients) hang on it to share the change notification and the
// push delay. f runs on the push task's goroutine: it must not block. Call
// before Start.
func (s *Server) OnServicePush(f func(svc naming.ServiceKey, since time.Time)) {
	if s.started.Load() {
		panic("grpcapi: OnServicePush after Start")
	}
	s.onPush = append(s.onPush, f)
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
// order. The answers are recorded by the goroutines that read them: a
// fan-out costs the caller's goroutine and one timer, whatever the number
// of connections.
func (s *Server) PushAll(ctx context.Context, connIDs []string, req wire.Request, timeout time.Duration) []PushResult {
	b := &pushBatch{out: make([]PushResult, len(connIDs)), left: len(connIDs), done: make(chan struct{})}
	if len(connIDs) == 0 {
		return b.out
	}
	body, err := s.encodeTemplate(req)
	if err != nil {
		b.settleAll(err, s.now())
		return b.out
	}
	// Request ids are a block of consecutive numbers: the i-th connection
	// gets base+i.
	n := uint64(len(connIDs))
	base := s.nextID.Add(n) - n + 1
	ids := make([]string, len(connIDs))
	conns := make([]*Conn, len(connIDs))
	s.mu.Lock()
	for i, id := range connIDs {
		conns[i] = s.conns[id]
	}
	s.mu.Unlock()
	keys := make([]string, len(connIDs))
	s.pendMu.Lock()
	for i, c := range conns {
		if c == nil {
			continue
		}
		ids[i] = strconv.FormatUint(base+uint64(i), 10)
		keys[i] = c.ID + "/" + ids[i]
		s.pending[keys[i]] = pendingReply{batch: b, i: i}
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
	for i, c := range conns {
		switch {
		case c == nil || !c.Registered():
			b.settle(i, fmt.Errorf("%w: %s", ErrNotConnected, connIDs[i]), s.now())
		case !c.enqueue(body.payload(ids[i])):
			err := fmt.Errorf("%w: %s", ErrBusy, connIDs[i])
			if c.closed.Load() {
				err = fmt.Errorf("%w: %s", ErrNotConnected, connIDs[i])
			}
			b.settle(i, err, s.now())
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
		b.settleAll(ErrTimeout, s.now())
	case <-ctx.Done():
		b.settleAll(ctx.Err(), s.now())
	case <-s.stopped:
		b.settleAll(ErrStopped, s.now())
	}
	// Every entry is settled: late answers leave out alone.
	return b.out
}

// pushBatch collects the outcomes of one PushAll. mu guards out and left;
// an entry is settled once (At set), by the answer or by PushAll's end.
type pushBatch struct {
	mu   sync.Mutex
	out  []PushResult
	left int
	done chan struct{} // closed when left reaches 0
}

// settle records entry i's outcome (err, nil for success) unless it has
// one.
func (b *pushBatch) settle(i int, err error, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.out[i].At.IsZero() {
		return
	}
	b.out[i] = PushResult{Err: err, At: at}
	if b.left--; b.left == 0 {
		close(b.done)
	}
}

// settleAll gives err to every entry without an outcome.
func (b *pushBatch) settleAll(err error, at time.Time) {
	for i := range b.out {
		b.settle(i, err, at)
	}
}

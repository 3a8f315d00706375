package grpcapi

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// Conn is one client transport (one HTTP/2 connection). Its ID is the
// Nacos connection id "<ms>_<remoteIp>_<remotePort>", given when the
// listener accepts the connection (rawconn.go). It becomes registered when
// the client sends ConnectionSetupRequest on its bi-stream.
type Conn struct {
	ID         string
	RemoteAddr string

	s   *Server
	raw *rawConn // the transport's network connection: closing it ends the transport

	mu            sync.Mutex // guards the fields below
	registered    bool
	setupDone     bool // ConnectionSetupRequest arrived
	clientIP      string
	clientVersion string
	labels        map[string]string
	// The send queue of the bi-stream: stream is nil until
	// ConnectionSetupRequest and again once the stream ended. A writer
	// goroutine runs only while the queue is not empty (writing), so an
	// idle connection has none, and holds no queue.
	stream      wire.BiRequestStream_RequestBiStreamServer
	queue       []*wire.Payload
	queuedBytes int
	writing     bool
	writer      sync.WaitGroup // the running writer, waited for before the stream's handler returns

	closed     atomic.Bool
	lastActive atomic.Int64 // unix ns
	detecting  atomic.Bool
	createdAt  time.Time
}

// ConnInfo describes a connection (for operators and rebalancing).
type ConnInfo struct {
	ID            string
	RemoteAddr    string
	ClientIP      string
	ClientVersion string
	Labels        map[string]string
	Registered    bool
	CreatedAt     time.Time
	LastActive    time.Time
}

func (c *Conn) touch(now time.Time) { c.lastActive.Store(now.UnixNano()) }

// Registered reports whether ConnectionSetupRequest arrived and the
// connection is not closed.
func (c *Conn) Registered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registered && !c.closed.Load()
}

// setUp reports whether ConnectionSetupRequest arrived (accepted or not).
func (c *Conn) setUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setupDone
}

// Labels returns the labels the client sent at setup.
func (c *Conn) Labels() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.labels
}

func (c *Conn) info() ConnInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ConnInfo{ID: c.ID, RemoteAddr: c.RemoteAddr, ClientIP: c.clientIP, ClientVersion: c.clientVersion,
		Labels: c.labels, Registered: c.registered && !c.closed.Load(), CreatedAt: c.createdAt,
		LastActive: time.Unix(0, c.lastActive.Load())}
}

// enqueue queues p for the bi-stream without blocking; false when the
// connection has no stream, is closed, or its queue is full (SendQueue
// messages or SendQueueBytes bytes).
func (c *Conn) enqueue(p *wire.Payload) bool {
	n := len(p.GetBody().GetValue())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil || c.closed.Load() {
		return false
	}
	if len(c.queue) >= c.s.cfg.SendQueue || (len(c.queue) > 0 && c.queuedBytes+n > c.s.cfg.SendQueueBytes) {
		c.s.met.sendQueueFull.Inc()
		return false
	}
	c.queue = append(c.queue, p)
	c.queuedBytes += n
	c.s.met.sendQueueBytes.Add(float64(n))
	if !c.writing {
		c.writing = true
		c.writer.Add(1)
		go c.write(c.stream)
	}
	return true
}

// write sends the queued messages in order until the queue is empty. One
// runs at a time (writing); it ends the connection when a send fails.
func (c *Conn) write(stream wire.BiRequestStream_RequestBiStreamServer) {
	defer c.writer.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.queue = nil // an idle connection keeps no queue
			c.writing = false
			c.mu.Unlock()
			return
		}
		p := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		n := len(p.GetBody().GetValue())
		c.queuedBytes -= n
		c.mu.Unlock()
		c.s.met.sendQueueBytes.Sub(float64(n))
		if err := stream.Send(p); err != nil {
			c.mu.Lock()
			c.dropQueueLocked()
			c.writing = false
			c.mu.Unlock()
			c.s.closeConn(c)
			return
		}
	}
}

// endStream stops queueing for the bi-stream and waits for its writer:
// the stream's handler calls it before returning (gRPC forbids a send
// after that).
func (c *Conn) endStream() {
	c.mu.Lock()
	c.stream = nil
	c.dropQueueLocked()
	c.mu.Unlock()
	c.writer.Wait()
}

func (c *Conn) dropQueueLocked() {
	if c.queuedBytes != 0 {
		c.s.met.sendQueueBytes.Sub(float64(c.queuedBytes))
	}
	c.queue, c.queuedBytes = nil, 0
}

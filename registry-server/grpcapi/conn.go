package grpcapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/wire"
)

// Conn is one client transport (one HTTP/2 connection). Its ID is the
// Nacos connection id "<ms>_<remoteIp>_<remotePort>", given by the stats
// handler when the transport opens. It becomes registered when the client
// sends ConnectionSetupRequest on its bi-stream.
type Conn struct {
	ID         string
	RemoteAddr string

	mu            sync.Mutex // guards the fields below
	registered    bool
	clientIP      string
	clientVersion string
	labels        map[string]string
	out           chan *wire.Payload // nil until the bi-stream is set up
	stopStream    context.CancelFunc

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

// enqueue queues p for the bi-stream writer without blocking; false when
// the connection has no stream, is closed, or its queue is full.
func (c *Conn) enqueue(p *wire.Payload) bool {
	c.mu.Lock()
	out := c.out
	c.mu.Unlock()
	if out == nil || c.closed.Load() {
		return false
	}
	select {
	case out <- p:
		return true
	default:
		return false
	}
}

package grpcapi

import (
	"context"
	"net"
	"strconv"
	"sync"

	"google.golang.org/grpc/peer"
)

// rawListener gives each accepted network connection its Conn, before
// gRPC builds a transport on it, and ends that Conn when gRPC (or anyone)
// closes the connection. The Conn keeps the network connection so that
// closing a Conn closes its transport, as Nacos closes a connection's
// channel (gRPC-Go has no other way to end one transport). This is the
// server's connection lifecycle instead of a gRPC stats handler: with one,
// gRPC-Go does stats work on every request (a copy of the metadata, six or
// seven stats events), which costs queries and health checks.
//
// Handlers find their Conn from the peer address gRPC puts in each
// request's context: the same net.Addr value the connection returned at
// accept (looked up by its string when a wrapper returns another).
type rawListener struct {
	net.Listener
	s *Server

	mu     sync.Mutex // guards the maps
	byAddr map[net.Addr]*Conn
	byKey  map[string]*Conn
}

func newRawListener(l net.Listener, s *Server) *rawListener {
	return &rawListener{Listener: l, s: s, byAddr: map[net.Addr]*Conn{}, byKey: map[string]*Conn{}}
}

func (l *rawListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &rawConn{Conn: nc, l: l, addr: nc.RemoteAddr()}
	c := l.s.openConn(rc)
	rc.c = c
	l.mu.Lock()
	if rc.addr != nil {
		l.byAddr[rc.addr] = c
		l.byKey[rc.addr.String()] = c
	}
	l.mu.Unlock()
	return rc, nil
}

// conn returns the Conn of the connection a request came on (nil if none).
func (l *rawListener) conn(ctx context.Context) *Conn {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return nil
	}
	l.mu.Lock()
	c := l.byAddr[p.Addr]
	l.mu.Unlock()
	if c != nil {
		return c
	}
	k := p.Addr.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKey[k]
}

func (l *rawListener) forget(rc *rawConn) {
	if rc.addr == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[rc.addr] == rc.c {
		delete(l.byAddr, rc.addr)
	}
	if k := rc.addr.String(); l.byKey[k] == rc.c {
		delete(l.byKey, k)
	}
}

// rawConn is an accepted connection whose first Close ends its Conn.
type rawConn struct {
	net.Conn
	l    *rawListener
	addr net.Addr
	c    *Conn
	once sync.Once
}

func (rc *rawConn) Close() error {
	err := rc.Conn.Close()
	rc.once.Do(func() {
		rc.l.forget(rc)
		rc.l.s.connEnded(rc.c)
	})
	return err
}

// closeNet closes the network connection without ending the Conn here:
// gRPC's transport fails, closes it (Close), and that ends the Conn. It
// may be called with the server's lock held.
func (rc *rawConn) closeNet() { _ = rc.Conn.Close() }

// openConn makes the Conn of a new network connection: its Nacos
// connection id is "<ms>_<remoteIp>_<remotePort>".
func (s *Server) openConn(rc *rawConn) *Conn {
	now := s.now()
	host, port := "", ""
	if rc.addr != nil {
		host, port, _ = net.SplitHostPort(rc.addr.String())
	}
	id := strconv.FormatInt(now.UnixMilli(), 10) + "_" + host + "_" + port
	c := &Conn{ID: id, s: s, raw: rc, createdAt: now}
	if rc.addr != nil {
		c.RemoteAddr = rc.addr.String()
	}
	c.touch(now)
	s.mu.Lock()
	s.conns[id] = c
	s.mu.Unlock()
	s.met.connections.Inc()
	return c
}

// connEnded drops a connection whose network connection closed.
func (s *Server) connEnded(c *Conn) {
	s.mu.Lock()
	if s.conns[c.ID] == c {
		delete(s.conns, c.ID)
	}
	s.closeConnLocked(c)
	s.mu.Unlock()
	s.met.connections.Dec()
}

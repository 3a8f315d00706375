// Package clusternet is the registry cluster's own transport on each
// member's cluster port (main port + 1001, Nacos' cluster gRPC port): JSON
// over HTTP between members. Every request names its sender and the
// protocol version it speaks; a server answers only members of its list
// that speak its version, and says why otherwise (the sender's address, or
// both versions), so a stray process or a peer of another version gets a
// clear error and changes nothing.
//
// Routes belong to the packages that use them (membership's reports, the
// Raft store's forwarded writes); this package only carries them.
package clusternet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Version is the cluster protocol this build speaks. A peer speaking
// another one is refused (ErrVersion) rather than half-understood.
const Version = "ferry-cluster/1"

// Headers every cluster request carries.
const (
	HeaderFrom    = "Ferry-Cluster-From"    // the sender's main-port address
	HeaderVersion = "Ferry-Cluster-Version" // Version
	// HeaderRefused is set on a refusal: "not_member" or "version".
	HeaderRefused = "Ferry-Cluster-Refused"
)

// Errors of the transport (wrapped with the member and the detail).
var (
	ErrNotMember = errors.New("clusternet: not a member")
	ErrVersion   = errors.New("clusternet: protocol version mismatch")
	ErrRemote    = errors.New("clusternet: peer refused")
	ErrStopped   = errors.New("clusternet: stopped")
)

// MaxBodyBytes caps one message in either direction.
const MaxBodyBytes = 64 << 20

// ClusterPort is the cluster port of a member's main-port address
// ("host:8848" → "host:9849").
func ClusterPort(member string) (string, error) {
	host, port, err := net.SplitHostPort(member)
	if err != nil {
		return "", err
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return "", fmt.Errorf("port %q: %v", port, err)
	}
	return net.JoinHostPort(host, fmt.Sprint(p+1001)), nil
}

// Server serves the cluster routes on one listener. Handle routes before
// Start.
type Server struct {
	self string
	mux  *http.ServeMux
	srv  *http.Server
	addr string // listen address

	mu      sync.Mutex // guards lis and members
	lis     net.Listener
	members map[string]bool
	done    chan struct{}
}

// NewServer builds the server of member self (its main-port address) for
// the given member list, listening on addr when started.
func NewServer(self, addr string, members []string) *Server {
	s := &Server{self: self, mux: http.NewServeMux(), addr: addr, done: make(chan struct{})}
	s.SetMembers(members)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// SetMembers replaces the members whose requests are answered (a
// run-time membership change). Safe while serving.
func (s *Server) SetMembers(members []string) {
	ms := make(map[string]bool, len(members))
	for _, m := range members {
		ms[m] = true
	}
	s.mu.Lock()
	s.members = ms
	s.mu.Unlock()
}

func (s *Server) isMember(m string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members[m]
}

// HandlerFunc answers one cluster request from member from with a JSON
// body (decoded into in by the caller's own types); it returns the answer
// to encode as JSON, or an error (sent as 500 with its text, or with the
// status of a *StatusError).
type HandlerFunc func(ctx context.Context, from string, body []byte) (any, error)

// StatusError is an error with the HTTP status to answer.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Handle adds a route ("/ferry/cluster/v1/report"). Call before Start.
func (s *Server) Handle(path string, h HandlerFunc) {
	s.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := h(r.Context(), r.Header.Get(HeaderFrom), body)
		if err != nil {
			st := http.StatusInternalServerError
			var se *StatusError
			if errors.As(err, &se) {
				st = se.Status
			}
			http.Error(w, err.Error(), st)
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// serve checks the sender and the version, then routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	from, v := r.Header.Get(HeaderFrom), r.Header.Get(HeaderVersion)
	switch {
	case v != Version:
		w.Header().Set(HeaderRefused, "version")
		http.Error(w, fmt.Sprintf("%v: %s speaks %q, %s speaks %q", ErrVersion, from, v, s.self, Version), http.StatusBadRequest)
		return
	case !s.isMember(from):
		w.Header().Set(HeaderRefused, "not_member")
		http.Error(w, fmt.Sprintf("%v: %s is not in the member list of %s", ErrNotMember, from, s.self), http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("clusternet: listen on the cluster port %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.lis = lis
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(lis)
	}()
	return nil
}

// Addr is the listen address (after Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Stop closes the listener and waits, until ctx ends, for requests in
// flight. Idempotent.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.mu.Lock()
	started := s.lis != nil
	s.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// Client sends cluster requests as member self.
type Client struct {
	self string
	http *http.Client
	// Resolve maps a member to its cluster-port address (ClusterPort by
	// default; tests point members elsewhere).
	Resolve func(member string) (string, error)
}

// NewClient returns a client for member self; every call is bounded by
// timeout (and the caller's ctx).
func NewClient(self string, timeout time.Duration) *Client {
	return &Client{self: self, http: &http.Client{Timeout: timeout}, Resolve: ClusterPort}
}

// Call posts in (as JSON) to path on member to and decodes the answer into
// out (nil: ignored). A refusal comes back wrapping ErrNotMember,
// ErrVersion or ErrRemote with the peer's message.
func (c *Client) Call(ctx context.Context, to, path string, in, out any) error {
	addr, err := c.Resolve(to)
	if err != nil {
		return fmt.Errorf("clusternet: member %s: %w", to, err)
	}
	return c.call(ctx, to, addr, path, in, out)
}

// CallVia is Call to a cluster-port address directly (tests, tools).
func (c *Client) CallVia(ctx context.Context, addr, path string, in, out any) error {
	return c.call(ctx, addr, addr, path, in, out)
}

func (c *Client) call(ctx context.Context, to, addr, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set(HeaderFrom, c.self)
	req.Header.Set(HeaderVersion, Version)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("clusternet: member %s: %w", to, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("clusternet: member %s: %w", to, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		switch resp.Header.Get(HeaderRefused) {
		case "not_member":
			return fmt.Errorf("%w (member %s answered: %s)", ErrNotMember, to, msg)
		case "version":
			return fmt.Errorf("%w (member %s answered: %s)", ErrVersion, to, msg)
		}
		return &StatusError{Status: resp.StatusCode, Err: fmt.Errorf("%w: member %s answered %d: %s", ErrRemote, to, resp.StatusCode, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("clusternet: member %s: undecodable answer: %w", to, err)
	}
	return nil
}

// CloseIdle drops pooled connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
)

// ProbeResult is a "test connection": OK with what the server listed, or
// the error as the client saw it, verbatim.
type ProbeResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Children are the ZooKeeper root's children (at most 100).
	Children []string `json:"children,omitempty"`
	// Services are the registry group's services (first page), Count the
	// group's total.
	Services []string `json:"services,omitempty"`
	Count    int      `json:"count,omitempty"`
	TookMS   int64    `json:"tookMs"`
}

// ProbeZKCluster connects to a ZooKeeper cluster and lists its Dubbo root
// (admin: the connect string is the cluster's).
func (s *Service) ProbeZKCluster(ctx context.Context, u *store.User, id int64) (*ProbeResult, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	c, err := s.st.GetZKCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	start := time.Now()
	res := probeZK(ctx, strings.Split(c.ConnectString, ","), c.Root, s.cfg.ProbeTimeout)
	res.TookMS = time.Since(start).Milliseconds()
	return res, nil
}

func probeZK(ctx context.Context, servers []string, root string, timeout time.Duration) *ProbeResult {
	conn, events, err := zk.Connect(servers, max(timeout, 2*time.Second), zk.WithLogInfo(false),
		zk.WithLogger(zkSilent{}), zk.WithMaxConnBufferSize(1<<20))
	if err != nil {
		return &ProbeResult{Error: err.Error()}
	}
	defer conn.Close()
	for {
		select {
		case <-ctx.Done():
			return &ProbeResult{Error: fmt.Sprintf("no ZooKeeper session with %s within %s", strings.Join(servers, ","), timeout)}
		case ev := <-events:
			if ev.Err != nil {
				return &ProbeResult{Error: ev.Err.Error()}
			}
			if ev.State == zk.StateAuthFailed || ev.State == zk.StateExpired {
				return &ProbeResult{Error: "ZooKeeper session: " + ev.State.String()}
			}
			if ev.State != zk.StateHasSession {
				continue
			}
			children, _, err := conn.Children(path.Clean("/" + root))
			if err != nil {
				return &ProbeResult{Error: fmt.Sprintf("list %s: %v", path.Clean("/"+root), err)}
			}
			sort.Strings(children)
			if len(children) > 100 {
				children = children[:100]
			}
			return &ProbeResult{OK: true, Children: children}
		}
	}
}

type zkSilent struct{}

func (zkSilent) Printf(string, ...any) {}

// ProbeRegistryCluster connects to a registry cluster with the row's
// credentials (logging in when it has a user) and lists its services.
func (s *Service) ProbeRegistryCluster(ctx context.Context, u *store.User, id int64) (*ProbeResult, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	c, err := s.st.GetRegistryCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	start := time.Now()
	res := probeRegistry(ctx, c)
	res.TookMS = time.Since(start).Milliseconds()
	return res, nil
}

func probeRegistry(ctx context.Context, c *store.RegistryCluster) *ProbeResult {
	cl, err := newRegistryClient(c)
	if err != nil {
		return &ProbeResult{Error: err.Error()}
	}
	defer cl.Close()
	if err := cl.Start(); err != nil {
		return &ProbeResult{Error: err.Error()}
	}
	n, names, err := cl.ListServices(ctx, c.Namespace, c.GroupName, 1, 100)
	if err != nil {
		msg := err.Error()
		if last := cl.LastError(); last != nil && !strings.Contains(msg, last.Error()) {
			msg += " (last connection error: " + last.Error() + ")"
		}
		return &ProbeResult{Error: msg}
	}
	sort.Strings(names)
	return &ProbeResult{OK: true, Services: names, Count: n}
}

// newRegistryClient is a console client of cluster c (not started) with
// the row's credentials, its own metrics and no logs.
func newRegistryClient(c *store.RegistryCluster) (*registryclient.Client, error) {
	cfg := registryclient.DefaultConfig()
	cfg.Servers = c.ServerList
	if c.Namespace != "" {
		cfg.Namespace = c.Namespace
	}
	cfg.AppName = "ferry-console"
	cfg.Username, cfg.Password = c.Username, c.Password
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Registerer = prometheus.NewRegistry()
	return registryclient.New(cfg)
}

package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
)

// Offline and online by IP on a bundled registry (operator): the
// registry's PUT /nacos/v1/ns/ferry/offline, called with the cluster row's
// credentials (a global admin of the registry when its auth is on). The
// registry is the truth for what is registered, so the preview asks it:
// every service of the cluster's group, and the instances at the IP in
// each. The call itself covers every group of the namespace.

// IPInput names the machine (and optionally one port) to take offline or
// bring back.
type IPInput struct {
	IP   string `json:"ip"`
	Port int    `json:"port"`
}

func (in IPInput) validate() error {
	ip := strings.TrimSpace(in.IP)
	if ip == "" {
		return invalid("ip", "required")
	}
	if net.ParseIP(ip) == nil {
		return invalid("ip", "%q: want an IPv4 or IPv6 address", in.IP)
	}
	if in.Port < 0 || in.Port > 65535 {
		return invalid("port", "%d: want 1-65535, or 0 for every port", in.Port)
	}
	return nil
}

// OfflineService is one service with instances at the IP.
type OfflineService struct {
	Service string `json:"service"`
	// Instances are the ip:port (and cluster when not DEFAULT) disabled.
	Instances []string `json:"instances"`
	// Remaining is how many enabled instances the service keeps.
	Remaining int `json:"remaining"`
}

// OfflinePreview is what an offline would disable, by the registry's
// answer now.
type OfflinePreview struct {
	ClusterID int64  `json:"clusterId"`
	Cluster   string `json:"cluster"`
	IP        string `json:"ip"`
	Port      int    `json:"port,omitempty"`
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	// Scanned is how many services of the group were looked at.
	Scanned int `json:"scanned"`
	// Services are the services with instances at the IP, by name.
	Services []OfflineService `json:"services"`
	// Instances is how many instances would be disabled.
	Instances int `json:"instances"`
	// EmptyServices would be left with no enabled instance.
	EmptyServices []string `json:"emptyServices"`
}

// OfflineResult is an applied offline or online.
type OfflineResult struct {
	Enabled bool            `json:"enabled"`
	Preview *OfflinePreview `json:"preview,omitempty"`
}

// bundledCluster loads a registry cluster and refuses a real Nacos.
func (s *Service) bundledCluster(ctx context.Context, id int64) (*store.RegistryCluster, error) {
	c, err := s.st.GetRegistryCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Kind != store.RegistryBundled {
		return nil, invalid("cluster", "registry cluster %s is a %s: offline by IP needs a bundled registry", c.Name, c.Kind)
	}
	return c, nil
}

// registryError reports a registry that refused or did not answer (502,
// its message verbatim).
func registryError(err error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: CodeRegistry, Message: err.Error()}
}

// offlineTarget checks what every offline/online call checks (operator, the
// input, a bundled registry cluster) and opens a client to that cluster;
// the caller closes it.
func (s *Service) offlineTarget(ctx context.Context, u *store.User, id int64, in IPInput) (*store.RegistryCluster, *registryclient.Client, error) {
	if err := need(u, store.RoleOperator); err != nil {
		return nil, nil, err
	}
	if err := in.validate(); err != nil {
		return nil, nil, err
	}
	c, err := s.bundledCluster(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	cl, err := s.registryClient(c)
	if err != nil {
		return nil, nil, registryError(err)
	}
	return c, cl, nil
}

// PreviewOffline lists what taking in.IP offline on registry cluster id
// would disable (operator).
func (s *Service) PreviewOffline(ctx context.Context, u *store.User, id int64, in IPInput) (*OfflinePreview, error) {
	c, cl, err := s.offlineTarget(ctx, u, id, in)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return s.offlinePreview(ctx, cl, c, in)
}

// previewPageSize is the page of services listed per call; previewQueries
// bounds the queries in flight.
const (
	previewPageSize = 500
	previewQueries  = 8
)

func (s *Service) offlinePreview(ctx context.Context, cl *registryclient.Client, c *store.RegistryCluster, in IPInput) (*OfflinePreview, error) {
	ip := strings.TrimSpace(in.IP)
	p := &OfflinePreview{ClusterID: c.ID, Cluster: c.Name, IP: ip, Port: in.Port, Namespace: c.Namespace, Group: c.GroupName,
		Services: []OfflineService{}, EmptyServices: []string{}}
	if p.Namespace == "" {
		p.Namespace = "public"
	}
	if p.Group == "" {
		p.Group = registryclient.DefaultGroup
	}
	var names []string
	for page := 1; ; page++ {
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if page == 1 {
			// The first call waits for a connection: bounded as a "test
			// connection" is, so an unreachable registry answers promptly.
			lctx, cancel = context.WithTimeout(ctx, s.cfg.ProbeTimeout)
		}
		n, got, err := cl.ListServices(lctx, c.Namespace, p.Group, page, previewPageSize)
		cancel()
		if err != nil {
			if last := cl.LastError(); last != nil && !strings.Contains(err.Error(), last.Error()) {
				err = fmt.Errorf("%w (last connection error: %v)", err, last)
			}
			return nil, registryError(fmt.Errorf("list services: %w", err))
		}
		names = append(names, got...)
		if len(got) < previewPageSize || len(names) >= n {
			break
		}
	}
	p.Scanned = len(names)
	var (
		mu    sync.Mutex // guards p.Services, first
		first error
		wg    sync.WaitGroup
		next  = make(chan string)
	)
	for range min(previewQueries, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				info, err := cl.Query(ctx, registryclient.ServiceRef{Namespace: c.Namespace, Group: p.Group, Name: name}, "", false)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("query %s: %w", name, err)
					}
					mu.Unlock()
					continue
				}
				os := OfflineService{Service: name, Instances: []string{}}
				for _, h := range info.Hosts {
					if !h.Enabled {
						continue
					}
					if h.IP == ip && (in.Port == 0 || h.Port == in.Port) {
						a := net.JoinHostPort(h.IP, strconv.Itoa(h.Port))
						if h.ClusterName != "" && h.ClusterName != "DEFAULT" {
							a += " (" + h.ClusterName + ")"
						}
						os.Instances = append(os.Instances, a)
					} else {
						os.Remaining++
					}
				}
				if len(os.Instances) > 0 {
					sort.Strings(os.Instances)
					mu.Lock()
					p.Services = append(p.Services, os)
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, n := range names {
		select {
		case next <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, registryError(fmt.Errorf("preview of %s on %s: %w", ip, c.Name, err))
	}
	if first != nil {
		return nil, registryError(first)
	}
	sort.Slice(p.Services, func(i, j int) bool { return p.Services[i].Service < p.Services[j].Service })
	for _, os := range p.Services {
		p.Instances += len(os.Instances)
		if os.Remaining == 0 {
			p.EmptyServices = append(p.EmptyServices, os.Service)
		}
	}
	return p, nil
}

// SetEnabledByIP takes in.IP offline (enabled false) or brings it back on
// registry cluster id (operator), audited. Taking it offline answers the
// preview computed just before the call.
func (s *Service) SetEnabledByIP(ctx context.Context, u *store.User, id int64, in IPInput, enabled bool) (*OfflineResult, error) {
	c, cl, err := s.offlineTarget(ctx, u, id, in)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := &OfflineResult{Enabled: enabled}
	if !enabled {
		if res.Preview, err = s.offlinePreview(ctx, cl, c, in); err != nil {
			return nil, err
		}
	}
	ip := strings.TrimSpace(in.IP)
	if err := cl.SetEnabledByIP(ctx, ip, in.Port, enabled); err != nil {
		return nil, registryError(err)
	}
	target := fmt.Sprintf("registry cluster %d ip %s", c.ID, ip)
	if in.Port != 0 {
		target = fmt.Sprintf("registry cluster %d ip %s", c.ID, net.JoinHostPort(ip, strconv.Itoa(in.Port)))
	}
	e := &store.AuditEntry{Action: "ip.online", Target: target, After: store.AuditJSON(map[string]any{"enabled": true})}
	if !enabled {
		e.Action = "ip.offline"
		e.After = store.AuditJSON(map[string]any{"enabled": false, "instances": res.Preview.Instances,
			"services": len(res.Preview.Services), "emptyServices": res.Preview.EmptyServices})
	}
	// The registry has changed: the audit row follows it (a failure here
	// is reported, the change stays; the registry cannot join the store's
	// transaction).
	if err := s.audited(ctx, u, e, func(*store.Store) error { return nil }); err != nil {
		s.log.Error("offline by ip applied but not audited", "target", target, "enabled", enabled, "err", err)
		return nil, fmt.Errorf("web: %s applied on the registry, audit row not written: %w", e.Action, err)
	}
	s.log.Warn("instances by ip", "action", e.Action, "target", target, "user", u.Name)
	return res, nil
}

// registryClient is a short-lived client of cluster c with the row's
// credentials; the caller closes it.
func (s *Service) registryClient(c *store.RegistryCluster) (*registryclient.Client, error) {
	cl, err := newRegistryClient(c)
	if err != nil {
		return nil, err
	}
	if err := cl.Start(); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

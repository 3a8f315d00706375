package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferrysync/ferry/registryclient"
	"github.com/ferrysync/ferry/store"
)

// ZooKeeper and registry clusters: CRUD through the store, audited.

// ZKClusterView is a ZooKeeper cluster as the console shows it.
type ZKClusterView struct {
	ID               int64     `json:"id"`
	Name             string    `json:"name"`
	ConnectString    string    `json:"connectString"`
	Root             string    `json:"root"`
	SessionTimeoutMS int64     `json:"sessionTimeoutMs"`
	Version          int64     `json:"version"`
	UpdatedBy        string    `json:"updatedBy"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

func zkView(c store.ZKCluster) ZKClusterView {
	return ZKClusterView{ID: c.ID, Name: c.Name, ConnectString: c.ConnectString, Root: c.Root,
		SessionTimeoutMS: c.SessionTimeoutMS, Version: c.Version, UpdatedBy: c.UpdatedBy, UpdatedAt: c.UpdatedAt}
}

// ZKClusterInput creates or edits a ZooKeeper cluster. Version is the
// version edited (0: whatever it is now).
type ZKClusterInput struct {
	Name             string `json:"name"`
	ConnectString    string `json:"connectString"`
	Root             string `json:"root"`
	SessionTimeoutMS int64  `json:"sessionTimeoutMs"`
	Version          int64  `json:"version"`
}

func (in ZKClusterInput) validate() error {
	if err := checkText("name", in.Name, 128, true); err != nil {
		return err
	}
	if err := checkText("connectString", in.ConnectString, 1024, true); err != nil {
		return err
	}
	for _, hp := range strings.Split(in.ConnectString, ",") {
		if err := checkHostPort("connectString", hp); err != nil {
			return err
		}
	}
	if err := checkText("root", in.Root, 255, false); err != nil {
		return err
	}
	if in.Root != "" && !strings.HasPrefix(in.Root, "/") {
		return invalid("root", "%q: must start with /", in.Root)
	}
	if in.SessionTimeoutMS != 0 && (in.SessionTimeoutMS < 1000 || in.SessionTimeoutMS > 600000) {
		return invalid("sessionTimeoutMs", "%d: want 1000-600000 (or 0 for 30000)", in.SessionTimeoutMS)
	}
	if in.Version < 0 {
		return invalid("version", "%d: must be ≥ 0", in.Version)
	}
	return nil
}

// ListZKClusters lists every ZooKeeper cluster by name.
func (s *Service) ListZKClusters(ctx context.Context, u *store.User) ([]ZKClusterView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	cs, err := s.st.ListZKClusters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ZKClusterView, 0, len(cs))
	for _, c := range cs {
		out = append(out, zkView(c))
	}
	return out, nil
}

// GetZKCluster returns one ZooKeeper cluster.
func (s *Service) GetZKCluster(ctx context.Context, u *store.User, id int64) (*ZKClusterView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	c, err := s.st.GetZKCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	v := zkView(*c)
	return &v, nil
}

// SaveZKCluster creates (id 0) or edits a ZooKeeper cluster (admin).
func (s *Service) SaveZKCluster(ctx context.Context, u *store.User, id int64, in ZKClusterInput) (*ZKClusterView, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	c := &store.ZKCluster{ID: id, Name: strings.TrimSpace(in.Name), ConnectString: strings.ReplaceAll(in.ConnectString, " ", ""),
		Root: in.Root, SessionTimeoutMS: in.SessionTimeoutMS, Version: in.Version, UpdatedBy: u.Name}
	e := &store.AuditEntry{Action: "zk_cluster.create", After: store.AuditJSON(in)}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		if id == 0 {
			if err := tx.CreateZKCluster(ctx, c); err != nil {
				return err
			}
		} else {
			before, err := tx.GetZKCluster(ctx, id)
			if err != nil {
				return err
			}
			e.Action, e.Before = "zk_cluster.update", store.AuditJSON(zkView(*before))
			if err := tx.UpdateZKCluster(ctx, c); err != nil {
				return err
			}
		}
		e.Target = fmt.Sprintf("zk cluster %d", c.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetZKCluster(ctx, u, c.ID)
}

// DeleteZKCluster deletes a ZooKeeper cluster no task uses (admin).
func (s *Service) DeleteZKCluster(ctx context.Context, u *store.User, id int64) error {
	if err := need(u, store.RoleAdmin); err != nil {
		return err
	}
	e := &store.AuditEntry{Action: "zk_cluster.delete", Target: fmt.Sprintf("zk cluster %d", id)}
	return s.audited(ctx, u, e, func(tx *store.Store) error {
		before, err := tx.GetZKCluster(ctx, id)
		if err != nil {
			return err
		}
		e.Before = store.AuditJSON(zkView(*before))
		return tx.DeleteZKCluster(ctx, id)
	})
}

// ---- registry clusters ----

// RegistryClusterView is a registry cluster as the console shows it (the
// password never leaves the store: HasPassword says whether one is set).
type RegistryClusterView struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	ServerList  []string  `json:"serverList"`
	Namespace   string    `json:"namespace"`
	GroupName   string    `json:"groupName"`
	Username    string    `json:"username"`
	HasPassword bool      `json:"hasPassword"`
	Version     int64     `json:"version"`
	UpdatedBy   string    `json:"updatedBy"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func regView(c store.RegistryCluster) RegistryClusterView {
	return RegistryClusterView{ID: c.ID, Name: c.Name, Kind: string(c.Kind), ServerList: c.ServerList, Namespace: c.Namespace,
		GroupName: c.GroupName, Username: c.Username, HasPassword: c.Password != "", Version: c.Version,
		UpdatedBy: c.UpdatedBy, UpdatedAt: c.UpdatedAt}
}

// RegistryClusterInput creates or edits a registry cluster. Password nil
// keeps the stored one; "" clears it.
type RegistryClusterInput struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	ServerList []string `json:"serverList"`
	Namespace  string   `json:"namespace"`
	GroupName  string   `json:"groupName"`
	Username   string   `json:"username"`
	Password   *string  `json:"password,omitempty"`
	Version    int64    `json:"version"`
}

func (in RegistryClusterInput) validate() error {
	if err := checkText("name", in.Name, 128, true); err != nil {
		return err
	}
	if in.Kind != string(store.RegistryBundled) && in.Kind != string(store.RegistryNacos) {
		return invalid("kind", "%q: want bundled or nacos", in.Kind)
	}
	if len(in.ServerList) == 0 {
		return invalid("serverList", "needs at least one host:port")
	}
	if len(in.ServerList) > 64 {
		return invalid("serverList", "more than 64 servers")
	}
	for _, hp := range in.ServerList {
		if _, err := registryclient.ParseServer(hp); err != nil {
			return invalid("serverList", "%q: want host:port (HTTP port; gRPC is port+1000) or host:port/grpcPort", hp)
		}
	}
	for f, v := range map[string]string{"namespace": in.Namespace, "groupName": in.GroupName, "username": in.Username} {
		if err := checkText(f, v, 128, false); err != nil {
			return err
		}
	}
	if in.Password != nil && len(*in.Password) > 128 {
		return invalid("password", "longer than 128 bytes")
	}
	if in.Version < 0 {
		return invalid("version", "%d: must be ≥ 0", in.Version)
	}
	return nil
}

// ListRegistryClusters lists every registry cluster by name.
func (s *Service) ListRegistryClusters(ctx context.Context, u *store.User) ([]RegistryClusterView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	cs, err := s.st.ListRegistryClusters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RegistryClusterView, 0, len(cs))
	for _, c := range cs {
		out = append(out, regView(c))
	}
	return out, nil
}

// GetRegistryCluster returns one registry cluster.
func (s *Service) GetRegistryCluster(ctx context.Context, u *store.User, id int64) (*RegistryClusterView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	c, err := s.st.GetRegistryCluster(ctx, id)
	if err != nil {
		return nil, err
	}
	v := regView(*c)
	return &v, nil
}

// SaveRegistryCluster creates (id 0) or edits a registry cluster (admin).
func (s *Service) SaveRegistryCluster(ctx context.Context, u *store.User, id int64, in RegistryClusterInput) (*RegistryClusterView, error) {
	if err := need(u, store.RoleAdmin); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	servers := make([]string, 0, len(in.ServerList))
	for _, hp := range in.ServerList {
		servers = append(servers, strings.TrimSpace(hp))
	}
	c := &store.RegistryCluster{ID: id, Name: strings.TrimSpace(in.Name), Kind: store.RegistryKind(in.Kind), ServerList: servers,
		Namespace: in.Namespace, GroupName: in.GroupName, Username: in.Username, Version: in.Version, UpdatedBy: u.Name}
	if in.Password != nil {
		c.Password = *in.Password
	}
	logged := in
	logged.Password = nil // never in the audit log
	e := &store.AuditEntry{Action: "registry_cluster.create", After: store.AuditJSON(logged)}
	err := s.audited(ctx, u, e, func(tx *store.Store) error {
		if id == 0 {
			if err := tx.CreateRegistryCluster(ctx, c); err != nil {
				return err
			}
		} else {
			before, err := tx.GetRegistryCluster(ctx, id)
			if err != nil {
				return err
			}
			if in.Password == nil {
				c.Password = before.Password
			}
			e.Action, e.Before = "registry_cluster.update", store.AuditJSON(regView(*before))
			if err := tx.UpdateRegistryCluster(ctx, c); err != nil {
				return err
			}
		}
		e.Target = fmt.Sprintf("registry cluster %d", c.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetRegistryCluster(ctx, u, c.ID)
}

// DeleteRegistryCluster deletes a registry cluster no task uses (admin).
func (s *Service) DeleteRegistryCluster(ctx context.Context, u *store.User, id int64) error {
	if err := need(u, store.RoleAdmin); err != nil {
		return err
	}
	e := &store.AuditEntry{Action: "registry_cluster.delete", Target: fmt.Sprintf("registry cluster %d", id)}
	return s.audited(ctx, u, e, func(tx *store.Store) error {
		before, err := tx.GetRegistryCluster(ctx, id)
		if err != nil {
			return err
		}
		e.Before = store.AuditJSON(regView(*before))
		return tx.DeleteRegistryCluster(ctx, id)
	})
}

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Apps are every application seen in ZooKeeper (counted by the workers)
// plus every row of the apps table; an app without a row is in sync mode.

// AppView is one app: its mode and its providers' counts over all tasks.
type AppView struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// Version of the app's row (0: no row yet, the app is in the default
	// sync mode); send it back to make a change conditional.
	Version   int64      `json:"version"`
	ChangedBy string     `json:"changedBy,omitempty"`
	ChangedAt *time.Time `json:"changedAt,omitempty"`
	// ZK providers in ZooKeeper, Synced registered by Ferry, Native
	// registered by the app itself, Failing registry calls failing;
	// Skipped by reason.
	ZK      int            `json:"zk"`
	Synced  int            `json:"synced"`
	Native  int            `json:"native"`
	Failing int            `json:"failing"`
	Skipped map[string]int `json:"skipped"`
	// Seen: some worker counts providers of the app now.
	Seen bool `json:"seen"`
}

// AppQuery filters apps: Search is a case-insensitive substring of the
// name, Mode one mode.
type AppQuery struct {
	Search string
	Mode   string
}

func checkMode(field, m string) error {
	switch store.AppMode(m) {
	case store.AppSync, store.AppNative, store.AppExcluded:
		return nil
	}
	return invalid(field, "%q: want sync, native or excluded", m)
}

func checkAppName(name string) error {
	return checkText("name", name, 255, true)
}

// ListApps lists apps by name.
func (s *Service) ListApps(ctx context.Context, u *store.User, q AppQuery) ([]AppView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	if q.Mode != "" {
		if err := checkMode("mode", q.Mode); err != nil {
			return nil, err
		}
	}
	if err := checkText("search", q.Search, 255, false); err != nil {
		return nil, err
	}
	apps, err := s.apps(ctx, s.st)
	if err != nil {
		return nil, err
	}
	out := make([]AppView, 0, len(apps))
	search := strings.ToLower(q.Search)
	for _, a := range apps {
		if (q.Mode != "" && a.Mode != q.Mode) || (search != "" && !strings.Contains(strings.ToLower(a.Name), search)) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// GetApp returns one app (an app never seen and without a row is 404).
func (s *Service) GetApp(ctx context.Context, u *store.User, name string) (*AppView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	return s.app(ctx, s.st, name)
}

func (s *Service) app(ctx context.Context, st *store.Store, name string) (*AppView, error) {
	apps, err := s.apps(ctx, st)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(apps), func(i int) bool { return apps[i].Name >= name })
	if i == len(apps) || apps[i].Name != name {
		return nil, notFound("app %q: not seen in ZooKeeper and never configured", name)
	}
	return &apps[i], nil
}

// apps merges the counted apps with the apps table, by name.
func (s *Service) apps(ctx context.Context, st *store.Store) ([]AppView, error) {
	counts, err := st.ListAppCounts(ctx, 0, s.cfg.CountsFresh)
	if err != nil {
		return nil, err
	}
	rows, err := st.ListApps(ctx, "")
	if err != nil {
		return nil, err
	}
	by := map[string]*AppView{}
	get := func(name string) *AppView {
		a := by[name]
		if a == nil {
			a = &AppView{Name: name, Mode: string(store.AppSync), Skipped: map[string]int{}}
			by[name] = a
		}
		return a
	}
	for _, c := range counts {
		if c.App == "" {
			continue // providers without an application parameter
		}
		a := get(c.App)
		a.Seen = true
		a.ZK += c.ZK
		a.Synced += c.Synced
		a.Native += c.Native
		a.Failing += c.Failing
		for k, v := range c.Skipped {
			a.Skipped[k] += v
		}
	}
	for _, r := range rows {
		a := get(r.Name)
		at := r.ChangedAt
		a.Mode, a.Version, a.ChangedBy, a.ChangedAt = string(r.Mode), r.Version, r.ChangedBy, &at
	}
	out := make([]AppView, 0, len(by))
	for _, a := range by {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Preview is the dry run of switching an app's mode, from the workers'
// service counts: the synced instances that will vanish from the
// registry, the native instances already registered for those services,
// and the services that would be left with no instance at all.
type Preview struct {
	App  string `json:"app"`
	From string `json:"from"`
	To   string `json:"to"`
	// Services of the app counted now.
	Services int `json:"services"`
	// Vanish: synced instances deregistered by the change; Covered: native
	// instances of the same services (they stay).
	Vanish  int `json:"vanish"`
	Covered int `json:"covered"`
	// Restore: instances synced again (a switch to sync).
	Restore int `json:"restore"`
	// EmptyServices would have no instance in the registry after the
	// change; a change with any needs force.
	EmptyServices []string `json:"emptyServices"`
}

// PreviewApp computes the dry run of switching app name to mode.
func (s *Service) PreviewApp(ctx context.Context, u *store.User, name, mode string) (*Preview, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	if err := checkAppName(name); err != nil {
		return nil, err
	}
	if err := checkMode("mode", mode); err != nil {
		return nil, err
	}
	return s.preview(ctx, s.st, name, mode)
}

func (s *Service) preview(ctx context.Context, st *store.Store, name, mode string) (*Preview, error) {
	from := string(store.AppSync)
	if a, err := st.GetApp(ctx, name); err == nil {
		from = string(a.Mode)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	counts, err := st.ListServiceCounts(ctx, store.ServiceCountFilter{App: name, Limit: 100000}, s.cfg.CountsFresh)
	if err != nil {
		return nil, err
	}
	p := &Preview{App: name, From: from, To: mode, Services: len(counts), EmptyServices: []string{}}
	stopSync := from == string(store.AppSync) && mode != string(store.AppSync)
	startSync := from != string(store.AppSync) && mode == string(store.AppSync)
	for _, c := range counts {
		switch {
		case stopSync:
			p.Vanish += c.Synced
			p.Covered += c.Native
			if c.Synced > 0 && c.Registry-c.Synced <= 0 {
				p.EmptyServices = append(p.EmptyServices, c.Service)
			}
		case startSync:
			p.Restore += max(c.ZK-c.Synced, 0)
		}
	}
	return p, nil
}

// AppChange switches an app's mode. Version, when set, is the app's
// version the change was decided on (0: no row yet); Force accepts
// leaving services empty.
type AppChange struct {
	Mode    string `json:"mode"`
	Force   bool   `json:"force"`
	Version *int64 `json:"version,omitempty"`
}

// AppChangeResult is an applied change: the app as saved, the preview
// it was checked against, and the settings generation workers must reach.
type AppChangeResult struct {
	App     AppView  `json:"app"`
	Preview Preview  `json:"preview"`
	Applied *Applied `json:"applied"`
	BatchID string   `json:"batchId,omitempty"`
}

// SetAppMode switches one app (operator). The preview is computed again
// inside the transaction that commits the change: services that would be
// left empty refuse it (409 would_empty with the preview) unless Force.
func (s *Service) SetAppMode(ctx context.Context, u *store.User, name string, ch AppChange) (*AppChangeResult, error) {
	res, err := s.SetAppModes(ctx, u, []string{name}, ch)
	if err != nil {
		return nil, err
	}
	res[0].BatchID = ""
	return &res[0], nil
}

// SetAppModes switches several apps to one mode in one transaction, one
// audit row per app sharing a batch id (operator). Version applies only
// to a single app.
func (s *Service) SetAppModes(ctx context.Context, u *store.User, names []string, ch AppChange) ([]AppChangeResult, error) {
	if err := need(u, store.RoleOperator); err != nil {
		return nil, err
	}
	if len(names) == 0 || len(names) > 1000 {
		return nil, invalid("apps", "want 1-1000 app names")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := checkAppName(n); err != nil {
			if len(names) > 1 {
				err.(*Error).Field = "apps"
			}
			return nil, err
		}
		if seen[n] {
			return nil, invalid("apps", "%q listed twice", n)
		}
		seen[n] = true
	}
	if err := checkMode("mode", ch.Mode); err != nil {
		return nil, err
	}
	if ch.Version != nil && (*ch.Version < 0 || len(names) > 1) {
		return nil, invalid("version", "a version ≥ 0, for one app only")
	}
	batch := ""
	if len(names) > 1 {
		batch = newBatchID()
	}
	out := make([]AppChangeResult, 0, len(names))
	err := s.st.InTx(ctx, func(tx *store.Store) error {
		for _, name := range names {
			cur, err := tx.GetApp(ctx, name)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			before := ""
			if cur != nil {
				before = store.AuditJSON(map[string]any{"mode": cur.Mode, "version": cur.Version})
			}
			// A stale decision is refused before its preview is judged.
			if ch.Version != nil {
				if cur == nil && *ch.Version != 0 {
					return notFound("app %q has no version %d: it has no row yet (send version 0)", name, *ch.Version)
				}
				if cur != nil && cur.Version != *ch.Version {
					return &store.StaleError{What: "app " + name, Expected: *ch.Version, Current: cur.Version, By: cur.ChangedBy, At: cur.ChangedAt}
				}
			}
			p, err := s.preview(ctx, tx, name, ch.Mode)
			if err != nil {
				return err
			}
			if len(p.EmptyServices) > 0 && !ch.Force {
				return &Error{Status: http.StatusConflict, Code: CodeWouldEmpty, Field: "force", Preview: p,
					Message: fmt.Sprintf("switching %s to %s leaves %d service(s) with no instance in the registry: send force to confirm",
						name, ch.Mode, len(p.EmptyServices))}
			}
			expect := int64(-1)
			if ch.Version != nil {
				expect = *ch.Version
			}
			a, err := tx.SetAppModeIf(ctx, name, store.AppMode(ch.Mode), u.Name, expect)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, &store.AuditEntry{Actor: u.Name, Action: "app.mode", Target: "app " + name, Before: before,
				After: store.AuditJSON(map[string]any{"mode": a.Mode, "version": a.Version, "force": ch.Force, "vanish": p.Vanish,
					"emptyServices": len(p.EmptyServices)}), BatchID: batch}); err != nil {
				return err
			}
			v, err := s.app(ctx, tx, name)
			if err != nil {
				return err
			}
			out = append(out, AppChangeResult{App: *v, Preview: *p, BatchID: batch})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	applied, err := s.applied(ctx, 0)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Applied = applied
	}
	return out, nil
}

// ---- services ----

// ServiceView is one service's counts: ZooKeeper vs the registry.
type ServiceView struct {
	TaskID   int64     `json:"taskId"`
	Service  string    `json:"service"`
	App      string    `json:"app"`
	Kind     string    `json:"kind"`
	ZK       int       `json:"zk"`
	Registry int       `json:"registry"`
	Synced   int       `json:"synced"`
	Native   int       `json:"native"`
	Short    bool      `json:"short"`
	Worker   string    `json:"worker"`
	Updated  time.Time `json:"updatedAt"`
}

// ServiceQuery filters services; Short keeps those with fewer instances
// in the registry than in ZooKeeper.
type ServiceQuery struct {
	Task         int64
	App, Service string
	Short        bool
	Limit        int
}

// ListServices lists service counts by task then service.
func (s *Service) ListServices(ctx context.Context, u *store.User, q ServiceQuery) ([]ServiceView, error) {
	if err := need(u, store.RoleViewer); err != nil {
		return nil, err
	}
	switch {
	case q.Task < 0:
		return nil, invalid("task", "%d: want a task id", q.Task)
	case q.Limit < 0 || q.Limit > 100000:
		return nil, invalid("limit", "%d: want 1-100000", q.Limit)
	}
	for f, v := range map[string]string{"app": q.App, "service": q.Service} {
		if err := checkText(f, v, 512, false); err != nil {
			return nil, err
		}
	}
	cs, err := s.st.ListServiceCounts(ctx, store.ServiceCountFilter{TaskID: q.Task, App: q.App, Service: q.Service, Short: q.Short, Limit: q.Limit}, s.cfg.CountsFresh)
	if err != nil {
		return nil, err
	}
	out := make([]ServiceView, 0, len(cs))
	for _, c := range cs {
		out = append(out, ServiceView{TaskID: c.TaskID, Service: c.Service, App: c.App, Kind: string(c.Kind), ZK: c.ZK,
			Registry: c.Registry, Synced: c.Synced, Native: c.Native, Short: c.Registry < c.ZK, Worker: c.WorkerID, Updated: c.UpdatedAt})
	}
	return out, nil
}

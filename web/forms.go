package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/store"
)

// Create and edit forms for ZooKeeper clusters, registry clusters and
// tasks (admin), one template over a list of fields named as the API's
// JSON fields, so a refusal's Field lands next to its input. A stale save
// (409) keeps what the user typed and says who changed the row and when.

type formOption struct{ Value, Label string }

type formField struct {
	Label, Name, Value, Help string
	// Type is text, number, password, textarea (one item per line) or
	// select (Options).
	Type     string
	Options  []formOption
	Required bool
	Error    string
}

type formView struct {
	Heading string
	Action  string // POST target
	ID      int64
	Version int64
	Fields  []formField
	// Error is a refusal that names no field of the form; Stale says who
	// changed the row since the form was opened.
	Error, Stale string
	Back         string
}

// lines splits a textarea into its non-empty trimmed lines.
func lines(v string) []string {
	out := []string{}
	for _, l := range strings.Split(v, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// formInt parses an optional integer field of a form.
func formInt(f url.Values, field string) (int64, error) {
	v := strings.TrimSpace(f.Get(field))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, invalid(field, "%q: want a number", v)
	}
	return n, nil
}

// formKind describes one editable resource: how to load a row into
// fields, read the posted form and save it.
type formKind struct {
	path, title, list string
	// load fills the form of row id (0: a new row).
	load func(ctx context.Context, u *store.User, id int64) (*formView, error)
	// fields are the fields of a form, with the posted values.
	fields func(ctx context.Context, u *store.User, f url.Values) []formField
	// save saves the posted form; it returns the flash of the list page.
	save func(ctx context.Context, u *store.User, id, version int64, f url.Values) (string, error)
}

func (s *Server) formRoutes(mux *http.ServeMux) {
	for _, k := range s.formKinds() {
		mux.HandleFunc("GET "+k.path, s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
			d.Title = k.title
			if err := need(d.User, store.RoleAdmin); err != nil {
				return "", err
			}
			id, err := queryID(r.URL.Query(), "id")
			if err != nil {
				return "", err
			}
			fv, err := k.load(r.Context(), d.User, id)
			if err != nil {
				return "", err
			}
			fv.Action, fv.Back = k.path, k.list
			d.Form = fv
			return "form", nil
		}))
		mux.HandleFunc("POST "+k.path, s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
			d.Title = k.title
			if err := need(d.User, store.RoleAdmin); err != nil {
				return "", err
			}
			if err := r.ParseForm(); err != nil {
				return "", invalid("", "bad form: %v", err)
			}
			f := r.PostForm
			id, err := formInt(f, "id")
			if err != nil {
				return "", err
			}
			version, err := formInt(f, "version")
			if err != nil {
				return "", err
			}
			flash, err := k.save(r.Context(), d.User, id, version, f)
			if err == nil {
				http.Redirect(w, r, k.list+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
				return "", nil
			}
			e := s.svc.asError(r.Context(), err)
			if e.Status >= 500 {
				return "", err
			}
			fv := &formView{Heading: k.title, Action: k.path, Back: k.list, ID: id, Version: version, Fields: k.fields(r.Context(), d.User, f)}
			if id == 0 {
				fv.Heading = "New " + strings.ToLower(k.title)
			} else {
				fv.Heading = fmt.Sprintf("%s %d", k.title, id)
			}
			placed := false
			for i := range fv.Fields {
				if e.Field != "" && fv.Fields[i].Name == e.Field {
					fv.Fields[i].Error, placed = e.Message, true
				}
			}
			switch {
			case e.Code == CodeStale:
				who := e.ChangedBy
				if who == "" {
					who = "someone"
				}
				at := ""
				if e.ChangedAt != nil {
					at = " at " + when(*e.ChangedAt)
				}
				fv.Stale = fmt.Sprintf("%s changed this row%s, after you opened the form: nothing was saved. Reload the form to see the current values.", who, at)
			case !placed:
				fv.Error = e.Error()
			}
			d.Form, d.Status = fv, e.Status
			s.render(w, e.Status, "form", d)
			return "", nil
		}))
	}
}

func (s *Server) formKinds() []formKind {
	return []formKind{
		{path: "/zk-clusters/edit", title: "ZooKeeper cluster", list: "/tasks",
			load: func(ctx context.Context, u *store.User, id int64) (*formView, error) {
				fv := &formView{Heading: "New ZooKeeper cluster", ID: id}
				v := ZKClusterView{}
				if id != 0 {
					c, err := s.svc.GetZKCluster(ctx, u, id)
					if err != nil {
						return nil, err
					}
					v, fv.Heading, fv.Version = *c, fmt.Sprintf("ZooKeeper cluster %d", id), c.Version
				}
				timeout := ""
				if v.SessionTimeoutMS != 0 {
					timeout = strconv.FormatInt(v.SessionTimeoutMS, 10)
				}
				fv.Fields = zkFields(url.Values{"name": {v.Name}, "connectString": {v.ConnectString}, "root": {v.Root}, "sessionTimeoutMs": {timeout}})
				return fv, nil
			},
			fields: func(_ context.Context, _ *store.User, f url.Values) []formField { return zkFields(f) },
			save: func(ctx context.Context, u *store.User, id, version int64, f url.Values) (string, error) {
				timeout, err := formInt(f, "sessionTimeoutMs")
				if err != nil {
					return "", err
				}
				c, err := s.svc.SaveZKCluster(ctx, u, id, ZKClusterInput{Name: f.Get("name"), ConnectString: strings.TrimSpace(f.Get("connectString")),
					Root: strings.TrimSpace(f.Get("root")), SessionTimeoutMS: timeout, Version: version})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("saved ZooKeeper cluster %d %s (version %d)", c.ID, c.Name, c.Version), nil
			}},
		{path: "/registry-clusters/edit", title: "Registry cluster", list: "/tasks",
			load: func(ctx context.Context, u *store.User, id int64) (*formView, error) {
				fv := &formView{Heading: "New registry cluster", ID: id}
				v := RegistryClusterView{Kind: string(store.RegistryBundled)}
				if id != 0 {
					c, err := s.svc.GetRegistryCluster(ctx, u, id)
					if err != nil {
						return nil, err
					}
					v, fv.Heading, fv.Version = *c, fmt.Sprintf("Registry cluster %d", id), c.Version
				}
				fv.Fields = regFields(url.Values{"name": {v.Name}, "kind": {v.Kind}, "serverList": {strings.Join(v.ServerList, "\n")},
					"namespace": {v.Namespace}, "groupName": {v.GroupName}, "username": {v.Username}}, id != 0)
				return fv, nil
			},
			fields: func(_ context.Context, _ *store.User, f url.Values) []formField {
				return regFields(f, f.Get("id") != "" && f.Get("id") != "0")
			},
			save: func(ctx context.Context, u *store.User, id, version int64, f url.Values) (string, error) {
				in := RegistryClusterInput{Name: f.Get("name"), Kind: f.Get("kind"), ServerList: lines(strings.ReplaceAll(f.Get("serverList"), ",", "\n")),
					Namespace: strings.TrimSpace(f.Get("namespace")), GroupName: strings.TrimSpace(f.Get("groupName")),
					Username: strings.TrimSpace(f.Get("username")), Version: version}
				if pw := f.Get("password"); pw != "" || id == 0 || f.Get("clearPassword") != "" {
					in.Password = &pw // blank on an edit keeps the stored one, unless cleared
				}
				c, err := s.svc.SaveRegistryCluster(ctx, u, id, in)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("saved registry cluster %d %s (version %d)", c.ID, c.Name, c.Version), nil
			}},
		{path: "/tasks/edit", title: "Task", list: "/tasks",
			load: func(ctx context.Context, u *store.User, id int64) (*formView, error) {
				fv := &formView{Heading: "New task", ID: id}
				v := TaskView{Scope: string(store.ScopeFull)}
				if id != 0 {
					t, err := s.svc.GetTask(ctx, u, id)
					if err != nil {
						return nil, err
					}
					v, fv.Heading, fv.Version = *t, fmt.Sprintf("Task %d", id), t.Version
				}
				vals := url.Values{"scope": {v.Scope}, "service": {v.Service}, "include": {strings.Join(v.Include, "\n")}, "exclude": {strings.Join(v.Exclude, "\n")}}
				if v.SourceClusterID != 0 {
					vals.Set("sourceClusterId", strconv.FormatInt(v.SourceClusterID, 10))
					vals.Set("destClusterId", strconv.FormatInt(v.DestClusterID, 10))
				}
				fv.Fields = s.taskFields(ctx, u, vals)
				return fv, nil
			},
			fields: s.taskFields,
			save: func(ctx context.Context, u *store.User, id, version int64, f url.Values) (string, error) {
				src, err := formInt(f, "sourceClusterId")
				if err != nil {
					return "", err
				}
				dst, err := formInt(f, "destClusterId")
				if err != nil {
					return "", err
				}
				t, err := s.svc.SaveTask(ctx, u, id, TaskInput{SourceClusterID: src, DestClusterID: dst, Scope: f.Get("scope"),
					Service: strings.TrimSpace(f.Get("service")), Include: lines(f.Get("include")), Exclude: lines(f.Get("exclude")), Version: version})
				if err != nil {
					return "", err
				}
				flash := fmt.Sprintf("saved task %d (version %d); workers follow within seconds.", t.ID, t.Version)
				if len(t.Warnings) > 0 {
					flash += " Warning: " + strings.Join(t.Warnings, "; ") + "."
				}
				return flash, nil
			}},
	}
}

func zkFields(f url.Values) []formField {
	return []formField{
		{Label: "Name", Name: "name", Value: f.Get("name"), Type: "text", Required: true},
		{Label: "Connect string", Name: "connectString", Value: f.Get("connectString"), Type: "text", Required: true, Help: "host:port,host:port"},
		{Label: "Root", Name: "root", Value: f.Get("root"), Type: "text", Help: "blank: /dubbo"},
		{Label: "Session timeout (ms)", Name: "sessionTimeoutMs", Value: f.Get("sessionTimeoutMs"), Type: "number", Help: "1000-600000; blank: 30000"},
	}
}

func regFields(f url.Values, edit bool) []formField {
	pwHelp := ""
	if edit {
		pwHelp = "blank keeps the stored password"
	}
	fs := []formField{
		{Label: "Name", Name: "name", Value: f.Get("name"), Type: "text", Required: true},
		{Label: "Kind", Name: "kind", Value: f.Get("kind"), Type: "select", Options: []formOption{{"bundled", "bundled (Ferry's registry)"}, {"nacos", "nacos (a real Nacos 2.x)"}}},
		{Label: "Servers", Name: "serverList", Value: f.Get("serverList"), Type: "textarea", Required: true, Help: "one host:port (HTTP port; gRPC is port+1000) or host:port/grpcPort per line"},
		{Label: "Namespace", Name: "namespace", Value: f.Get("namespace"), Type: "text", Help: "blank: public"},
		{Label: "Group", Name: "groupName", Value: f.Get("groupName"), Type: "text", Help: "blank: DEFAULT_GROUP"},
		{Label: "User", Name: "username", Value: f.Get("username"), Type: "text", Help: "blank: the registry has auth off"},
		{Label: "Password", Name: "password", Type: "password", Help: pwHelp},
	}
	if edit {
		fs = append(fs, formField{Label: "Clear the stored password", Name: "clearPassword", Type: "checkbox"})
	}
	return fs
}

// taskFields offers the clusters by name (a failed listing leaves the
// select empty; the save names the field).
func (s *Server) taskFields(ctx context.Context, u *store.User, f url.Values) []formField {
	var zkOpts, regOpts []formOption
	if zs, err := s.svc.ListZKClusters(ctx, u); err == nil {
		for _, c := range zs {
			zkOpts = append(zkOpts, formOption{strconv.FormatInt(c.ID, 10), c.Name})
		}
	} else if !errors.Is(err, context.Canceled) {
		s.log.Warn("task form: list ZooKeeper clusters", "err", err)
	}
	if rs, err := s.svc.ListRegistryClusters(ctx, u); err == nil {
		for _, c := range rs {
			regOpts = append(regOpts, formOption{strconv.FormatInt(c.ID, 10), c.Name + " (" + c.Kind + ")"})
		}
	} else if !errors.Is(err, context.Canceled) {
		s.log.Warn("task form: list registry clusters", "err", err)
	}
	return []formField{
		{Label: "ZooKeeper cluster", Name: "sourceClusterId", Value: f.Get("sourceClusterId"), Type: "select", Options: zkOpts},
		{Label: "Registry cluster", Name: "destClusterId", Value: f.Get("destClusterId"), Type: "select", Options: regOpts},
		{Label: "Scope", Name: "scope", Value: f.Get("scope"), Type: "select", Options: []formOption{{"full", "full (every service)"}, {"service", "service (one service)"}}},
		{Label: "Service", Name: "service", Value: f.Get("service"), Type: "text", Help: "with scope service: the Dubbo interface"},
		{Label: "Include", Name: "include", Value: f.Get("include"), Type: "textarea", Help: "glob patterns of interfaces (app:NAME for Dubbo 3 apps), one per line; blank: all"},
		{Label: "Exclude", Name: "exclude", Value: f.Get("exclude"), Type: "textarea", Help: "glob patterns, one per line"},
	}
}

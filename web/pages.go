package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferrysync/ferry/store"
)

// The pages are server-rendered with html/template (which escapes every
// value for its context, so a name from ZooKeeper renders inert) over the
// same Service as the API; htmx swaps the partials (preview, result, the
// events tail) and every form also works without JavaScript. Assets are
// embedded; static/VENDOR lists the vendored libraries.

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageData is what every template gets.
type pageData struct {
	Title  string
	User   *store.User
	Banner string
	Status int
	Error  string
	Flash  string
	// login
	Name, Next string
	// overview
	Overview *Overview
	// apps
	Apps         []AppView
	Search, Mode string
	Modes        []string
	CanChange    bool
	CanAdmin     bool
	// preview
	P       *Preview
	Version int64
	// Generation a change must reach (the result polls it).
	Generation int64
	// bulk preview
	Previews   []*Preview
	EmptyTotal int
	// the read-only tables (tables.go)
	Table *tableView
	// tasks
	Tasks             []TaskView
	ZKClusters        []ZKClusterView
	RegClusters       []RegistryClusterView
	ZKNames, RegNames map[int64]string
	// offline by IP
	Offline   *OfflinePreview
	IP        IPInput
	ClusterID int64
	// one service's diff (servicediff.go)
	Diff *ServiceDiff
	// create and edit forms (forms.go)
	Form *formView
	// users
	Users []UserView
	Token string
}

var appModes = []string{string(store.AppSync), string(store.AppNative), string(store.AppExcluded)}

func parseTemplates() (*template.Template, error) {
	return template.New("pages").ParseFS(templateFS, "templates/*.html")
}

func (s *Server) pageRoutes(mux *http.ServeMux) error {
	tpl, err := parseTemplates()
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	s.tpl = tpl
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return err
	}
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, http.StatusOK, "login", &pageData{Title: "Log in", Next: safeNext(r.URL.Query().Get("next"))})
	})
	mux.HandleFunc("POST /login", s.pageLogin)
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(SessionCookie); err == nil {
			_ = s.svc.Logout(r.Context(), c.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Overview"
		o, err := s.svc.GetOverview(r.Context(), d.User)
		d.Overview = o
		return "overview", err
	}))
	mux.HandleFunc("GET /partials/events", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		p, err := s.svc.ListEvents(r.Context(), d.User, EventQuery{Limit: 20})
		if err != nil {
			return "", err
		}
		return "", s.renderPartial(w, "events", p.Events)
	}))
	mux.HandleFunc("GET /partials/applied", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		at, err := queryInt(r.URL.Query().Get("at"), "at")
		if err != nil {
			return "", err
		}
		a, err := s.svc.AppliedGeneration(r.Context(), d.User, at)
		if err != nil {
			return "", err
		}
		return "", s.renderPartial(w, "applied", a)
	}))
	mux.HandleFunc("GET /apps", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		q := r.URL.Query()
		d.Title, d.Search, d.Mode, d.Modes = "Apps", q.Get("search"), q.Get("mode"), appModes
		d.Flash = q.Get("flash")
		d.CanChange = d.User.Role.Rank() >= store.RoleOperator.Rank()
		apps, err := s.svc.ListApps(r.Context(), d.User, AppQuery{Search: d.Search, Mode: d.Mode})
		d.Apps = apps
		return "apps", err
	}))
	mux.HandleFunc("GET /apps/preview", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		q := r.URL.Query()
		d.Title = "Apps"
		p, err := s.svc.PreviewApp(r.Context(), d.User, q.Get("app"), q.Get("mode"))
		if err != nil {
			return "", err
		}
		d.P = p
		if a, err := s.svc.GetApp(r.Context(), d.User, p.App); err == nil {
			d.Version = a.Version
		}
		if r.Header.Get("HX-Request") == "true" {
			return "", s.renderPartial(w, "preview", d)
		}
		return "preview-page", nil
	}))
	mux.HandleFunc("POST /apps/mode", s.page(s.pageSetMode))
	mux.HandleFunc("POST /apps/bulk", s.page(s.pageBulk))
	s.tableRoutes(mux)
	s.formRoutes(mux)
	mux.HandleFunc("GET /services/diff", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Services"
		q := r.URL.Query()
		task, err := queryID(q, "task")
		if err != nil {
			return "", err
		}
		d.Diff, err = s.serviceDiff(r.Context(), d.User, task, q.Get("service"))
		return "servicediff", err
	}))
	mux.HandleFunc("GET /tasks", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title, d.Flash = "Tasks", r.URL.Query().Get("flash")
		d.CanChange = d.User.Role.Rank() >= store.RoleOperator.Rank()
		d.CanAdmin = d.User.Role == store.RoleAdmin
		var err error
		if d.Tasks, err = s.svc.ListTasks(r.Context(), d.User); err != nil {
			return "", err
		}
		if d.ZKClusters, err = s.svc.ListZKClusters(r.Context(), d.User); err != nil {
			return "", err
		}
		if d.RegClusters, err = s.svc.ListRegistryClusters(r.Context(), d.User); err != nil {
			return "", err
		}
		d.ZKNames, d.RegNames = map[int64]string{}, map[int64]string{}
		for _, c := range d.ZKClusters {
			d.ZKNames[c.ID] = c.Name
		}
		for _, c := range d.RegClusters {
			d.RegNames[c.ID] = c.Name
		}
		return "tasks", nil
	}))
	mux.HandleFunc("GET /offline", s.page(s.pageOffline))
	mux.HandleFunc("POST /offline", s.page(s.pageSetOffline))
	users := func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Users"
		us, err := s.svc.ListUsers(r.Context(), d.User)
		d.Users = us
		return "users", err
	}
	mux.HandleFunc("GET /users", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Flash = r.URL.Query().Get("flash")
		return users(w, r, d)
	}))
	mux.HandleFunc("POST /users/add", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		if err := r.ParseForm(); err != nil {
			return "", invalid("", "bad form: %v", err)
		}
		f := r.PostForm
		u, err := s.svc.CreateUser(r.Context(), d.User, UserInput{Name: f.Get("name"), Role: f.Get("role"), Password: f.Get("password")})
		if err != nil {
			return "", err
		}
		http.Redirect(w, r, "/users?flash="+url.QueryEscape("added "+u.Name+" ("+u.Role+")"), http.StatusSeeOther)
		return "", nil
	}))
	mux.HandleFunc("POST /users/delete", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		if err := r.ParseForm(); err != nil {
			return "", invalid("", "bad form: %v", err)
		}
		name := r.PostForm.Get("name")
		if err := s.svc.DeleteUser(r.Context(), d.User, name); err != nil {
			return "", err
		}
		http.Redirect(w, r, "/users?flash="+url.QueryEscape("deleted "+name), http.StatusSeeOther)
		return "", nil
	}))
	mux.HandleFunc("POST /users/token", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		if err := r.ParseForm(); err != nil {
			return "", invalid("", "bad form: %v", err)
		}
		tok, err := s.svc.CreateToken(r.Context(), d.User, r.PostForm.Get("name"), "console")
		if err != nil {
			return "", err
		}
		d.Token = tok // shown in this answer only (no redirect: it must not land in a URL)
		return users(w, r, d)
	}))
	mux.HandleFunc("POST /tasks/state", s.page(func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
		d.Title = "Tasks"
		if err := r.ParseForm(); err != nil {
			return "", invalid("", "bad form: %v", err)
		}
		id, err := queryInt(r.PostForm.Get("id"), "id")
		if err != nil {
			return "", err
		}
		version, err := queryInt(r.PostForm.Get("version"), "version")
		if err != nil {
			return "", err
		}
		state := store.TaskState(r.PostForm.Get("state"))
		if state != store.TaskPaused && state != store.TaskRunning {
			return "", invalid("state", "%q: want paused or running", state)
		}
		t, err := s.svc.SetTaskState(r.Context(), d.User, id, state, version)
		if err != nil {
			return "", err
		}
		http.Redirect(w, r, "/tasks?flash="+url.QueryEscape(fmt.Sprintf("task %d is %s (version %d); workers follow within seconds.", t.ID, t.State, t.Version)), http.StatusSeeOther)
		return "", nil
	}))
	return nil
}

// page wraps a page handler: the session user (or a redirect to the
// login), and errors rendered as a page with the store banner.
func (s *Server) page(fn func(w http.ResponseWriter, r *http.Request, d *pageData) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Service.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		d := &pageData{}
		session := ""
		if c, err := r.Cookie(SessionCookie); err == nil {
			session = c.Value
		}
		u, err := s.svc.Authenticate(r.Context(), "", session, r.Method == http.MethodGet)
		if u == nil && (err == nil || errors.Is(err, store.ErrBadLogin)) {
			to := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", to)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if err != nil {
			s.pageError(w, r, d, err)
			return
		}
		d.User = u
		name, err := fn(w, r, d)
		if err != nil {
			s.pageError(w, r, d, err)
			return
		}
		if name != "" {
			s.render(w, http.StatusOK, name, d)
		}
	}
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, d *pageData, err error) {
	e := s.svc.asError(r.Context(), err)
	if e.Status >= 500 {
		s.log.Error("console page failed", "path", r.URL.Path, "status", e.Status, "err", err)
	}
	if e.Code == CodeUnavailable {
		d.Banner = "The store does not answer: the console is read-only until it does. " + e.Message
	}
	d.Status, d.Error = e.Status, e.Error()
	if d.Title == "" {
		d.Title = http.StatusText(e.Status)
	}
	if r.Header.Get("HX-Request") == "true" {
		w.WriteHeader(http.StatusOK) // htmx swaps only 2xx answers: show the error in place
		_ = s.renderPartial(w, "result", d)
		return
	}
	s.render(w, e.Status, "error", d)
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "login", &pageData{Title: "Log in", Error: "bad form"})
		return
	}
	name, next := r.PostForm.Get("name"), safeNext(r.PostForm.Get("next"))
	tok, _, err := s.svc.Login(r.Context(), name, r.PostForm.Get("password"), clientAddr(r))
	if err != nil {
		e := s.svc.asError(r.Context(), err)
		d := &pageData{Title: "Log in", Error: e.Message, Name: name, Next: next}
		if e.Code == CodeUnavailable {
			d.Banner = "The store does not answer: logging in is not possible until it does."
		}
		s.render(w, e.Status, "login", d)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/", MaxAge: int(s.cfg.Service.SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// pageSetMode applies a previewed change. A change that leaves services
// empty needs the app's name typed into confirm.
func (s *Server) pageSetMode(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
	d.Title = "Apps"
	if err := r.ParseForm(); err != nil {
		return "", invalid("", "bad form: %v", err)
	}
	f := r.PostForm
	app := f.Get("app")
	ch := AppChange{Mode: f.Get("mode")}
	if v := f.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", invalid("version", "%q: want a number", v)
		}
		ch.Version = &n
	}
	if c, ok := f["confirm"]; ok {
		if c[0] != app {
			return "", invalid("confirm", "type the app name exactly to confirm leaving services empty")
		}
		ch.Force = true
	}
	res, err := s.svc.SetAppMode(r.Context(), d.User, app, ch)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeWouldEmpty {
		return "", &Error{Status: e.Status, Code: e.Code, Field: "confirm",
			Message: fmt.Sprintf("the change now leaves %d service(s) empty: preview it again", len(e.Preview.EmptyServices))}
	}
	if err != nil {
		return "", err
	}
	d.Flash = fmt.Sprintf("%s: %s → %s; applied on %d/%d live workers so far (settings generation %d).", res.App.Name,
		res.Preview.From, res.App.Mode, res.Applied.AppliedBy, res.Applied.LiveWorkers, res.Applied.Generation)
	d.Generation = res.Applied.Generation
	if r.Header.Get("HX-Request") == "true" {
		return "", s.renderPartial(w, "result", d)
	}
	http.Redirect(w, r, "/apps?flash="+url.QueryEscape(d.Flash), http.StatusSeeOther)
	return "", nil
}

// pageBulk previews a bulk switch (one table of every selected app), then
// applies it in one transaction once confirmed; leaving services empty
// needs "force" typed.
func (s *Server) pageBulk(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
	d.Title = "Apps"
	if err := r.ParseForm(); err != nil {
		return "", invalid("", "bad form: %v", err)
	}
	f := r.PostForm
	names, mode := f["apps"], f.Get("mode")
	if len(names) == 0 {
		return "", invalid("apps", "select at least one app")
	}
	if f.Get("confirmed") == "" {
		d.Mode = mode
		for _, n := range names {
			p, err := s.svc.PreviewApp(r.Context(), d.User, n, mode)
			if err != nil {
				return "", err
			}
			d.Previews = append(d.Previews, p)
			d.EmptyTotal += len(p.EmptyServices)
		}
		return "bulk-preview", nil
	}
	ch := AppChange{Mode: mode}
	if c, ok := f["confirm"]; ok {
		if c[0] != "force" {
			return "", invalid("confirm", "type force to confirm leaving services empty")
		}
		ch.Force = true
	}
	res, err := s.svc.SetAppModes(r.Context(), d.User, names, ch)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeWouldEmpty {
		return "", &Error{Status: e.Status, Code: e.Code, Field: "confirm",
			Message: fmt.Sprintf("%s would now leave %d service(s) empty: preview again", e.Preview.App, len(e.Preview.EmptyServices))}
	}
	if err != nil {
		return "", err
	}
	flash := fmt.Sprintf("%d app(s) switched to %s (batch %s); applied on %d/%d live workers so far.", len(res), mode,
		res[0].BatchID, res[0].Applied.AppliedBy, res[0].Applied.LiveWorkers)
	http.Redirect(w, r, "/apps?flash="+url.QueryEscape(flash), http.StatusSeeOther)
	return "", nil
}

// offlineForm reads cluster, ip and port of the offline form (query or
// body).
func offlineForm(f url.Values) (int64, IPInput, error) {
	in := IPInput{IP: strings.TrimSpace(f.Get("ip"))}
	id, err := queryInt(f.Get("cluster"), "cluster")
	if err != nil {
		return 0, in, err
	}
	if v := strings.TrimSpace(f.Get("port")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return id, in, invalid("port", "%q: want a number", v)
		}
		in.Port = n
	}
	return id, in, nil
}

// pageOffline is the offline-by-IP form, with the preview once an IP is
// given.
func (s *Server) pageOffline(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
	d.Title = "Offline"
	if err := need(d.User, store.RoleOperator); err != nil {
		return "", err
	}
	q := r.URL.Query()
	d.Flash = q.Get("flash")
	var err error
	if d.RegClusters, err = s.svc.ListRegistryClusters(r.Context(), d.User); err != nil {
		return "", err
	}
	if d.ClusterID, d.IP, err = offlineForm(q); err != nil {
		return "", err
	}
	if d.ClusterID == 0 {
		for _, c := range d.RegClusters {
			if c.Kind == string(store.RegistryBundled) {
				d.ClusterID = c.ID
				break
			}
		}
	}
	if d.IP.IP != "" && q.Get("flash") == "" {
		if d.Offline, err = s.svc.PreviewOffline(r.Context(), d.User, d.ClusterID, d.IP); err != nil {
			return "", err
		}
	}
	return "offline", nil
}

// pageSetOffline applies an offline or online; taking an address offline
// that leaves services empty needs the IP typed into confirm.
func (s *Server) pageSetOffline(w http.ResponseWriter, r *http.Request, d *pageData) (string, error) {
	d.Title = "Offline"
	if err := r.ParseForm(); err != nil {
		return "", invalid("", "bad form: %v", err)
	}
	f := r.PostForm
	id, in, err := offlineForm(f)
	if err != nil {
		return "", err
	}
	var enabled bool
	switch st := f.Get("state"); st {
	case "offline":
	case "online":
		enabled = true
	default:
		return "", invalid("state", "%q: want offline or online", st)
	}
	if !enabled {
		p, err := s.svc.PreviewOffline(r.Context(), d.User, id, in)
		if err != nil {
			return "", err
		}
		if len(p.EmptyServices) > 0 && strings.TrimSpace(f.Get("confirm")) != p.IP {
			return "", invalid("confirm", "%d service(s) would be left with no enabled instance: type the IP %s to confirm", len(p.EmptyServices), p.IP)
		}
	}
	res, err := s.svc.SetEnabledByIP(r.Context(), d.User, id, in, enabled)
	if err != nil {
		return "", err
	}
	addr := in.IP
	if in.Port != 0 {
		addr = net.JoinHostPort(in.IP, strconv.Itoa(in.Port))
	}
	flash := addr + " is back online: its instances are enabled again."
	if !enabled {
		flash = fmt.Sprintf("%s is offline: %d instance(s) in %d service(s) disabled.", addr, res.Preview.Instances, len(res.Preview.Services))
	}
	v := url.Values{"flash": {flash}, "cluster": {strconv.FormatInt(id, 10)}, "ip": {in.IP}}
	if in.Port != 0 {
		v.Set("port", strconv.Itoa(in.Port))
	}
	http.Redirect(w, r, "/offline?"+v.Encode(), http.StatusSeeOther)
	return "", nil
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d *pageData) {
	var buf bytes.Buffer
	if err := s.tpl.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.Error("console template", "template", name, "err", err)
		http.Error(w, "internal error (logged on the worker)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) renderPartial(w http.ResponseWriter, name string, data any) error {
	var buf bytes.Buffer
	if err := s.tpl.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(buf.Bytes())
	return err
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/store"
)

// SessionCookie is the console's session cookie.
const SessionCookie = "ferry_session"

// maxBody bounds a request body.
const maxBody = 1 << 20

type userKey struct{}

// userOf is the authenticated user of a request (nil: none).
func userOf(r *http.Request) *store.User {
	u, _ := r.Context().Value(userKey{}).(*store.User)
	return u
}

// apiFunc handles one API call: it returns the value to answer (with
// status), or an error asError maps.
type apiFunc func(r *http.Request) (status int, body any, err error)

func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	if err := s.pageRoutes(mux); err != nil {
		return nil, err
	}
	if s.cfg.Mount != nil {
		s.cfg.Mount(mux)
	}
	if s.worker != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.worker.Gatherer(), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
		mux.Handle("GET /api/status", s.authed(s.apiStatus))
		mux.Handle("POST /api/confirm-removals", s.authed(s.apiConfirmLocal))
	}
	v1 := func(pattern string, fn apiFunc) {
		method, p, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" /api/v1"+p, s.authed(fn))
	}
	mux.Handle("POST /api/v1/login", s.handle(s.apiLogin))
	v1("POST /logout", s.apiLogout)
	v1("GET /me", func(r *http.Request) (int, any, error) { return 200, map[string]any{"user": userView(*userOf(r))}, nil })

	v1("GET /zk-clusters", func(r *http.Request) (int, any, error) {
		cs, err := s.svc.ListZKClusters(r.Context(), userOf(r))
		return 200, map[string]any{"zkClusters": cs}, err
	})
	v1("POST /zk-clusters", func(r *http.Request) (int, any, error) {
		var in ZKClusterInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		c, err := s.svc.SaveZKCluster(r.Context(), userOf(r), 0, in)
		return 201, c, err
	})
	v1("GET /zk-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		c, err := s.svc.GetZKCluster(r.Context(), userOf(r), id)
		return 200, c, err
	})
	v1("PUT /zk-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		var in ZKClusterInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		c, err := s.svc.SaveZKCluster(r.Context(), userOf(r), id, in)
		return 200, c, err
	})
	v1("DELETE /zk-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		return 204, nil, s.svc.DeleteZKCluster(r.Context(), userOf(r), id)
	})
	v1("POST /zk-clusters/{id}/test", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		res, err := s.svc.ProbeZKCluster(r.Context(), userOf(r), id)
		return 200, res, err
	})

	v1("GET /registry-clusters", func(r *http.Request) (int, any, error) {
		cs, err := s.svc.ListRegistryClusters(r.Context(), userOf(r))
		return 200, map[string]any{"registryClusters": cs}, err
	})
	v1("POST /registry-clusters", func(r *http.Request) (int, any, error) {
		var in RegistryClusterInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		c, err := s.svc.SaveRegistryCluster(r.Context(), userOf(r), 0, in)
		return 201, c, err
	})
	v1("GET /registry-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		c, err := s.svc.GetRegistryCluster(r.Context(), userOf(r), id)
		return 200, c, err
	})
	v1("PUT /registry-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		var in RegistryClusterInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		c, err := s.svc.SaveRegistryCluster(r.Context(), userOf(r), id, in)
		return 200, c, err
	})
	v1("DELETE /registry-clusters/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		return 204, nil, s.svc.DeleteRegistryCluster(r.Context(), userOf(r), id)
	})
	v1("POST /registry-clusters/{id}/test", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		res, err := s.svc.ProbeRegistryCluster(r.Context(), userOf(r), id)
		return 200, res, err
	})

	v1("GET /registry-clusters/{id}/offline", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		in, err := ipQuery(r)
		if err != nil {
			return 0, nil, err
		}
		p, err := s.svc.PreviewOffline(r.Context(), userOf(r), id, in)
		return 200, p, err
	})
	ipSwitch := func(enabled bool) apiFunc {
		return func(r *http.Request) (int, any, error) {
			id, err := pathID(r)
			if err != nil {
				return 0, nil, err
			}
			var in IPInput
			if err := decode(r, &in); err != nil {
				return 0, nil, err
			}
			res, err := s.svc.SetEnabledByIP(r.Context(), userOf(r), id, in, enabled)
			return 200, res, err
		}
	}
	v1("POST /registry-clusters/{id}/offline", ipSwitch(false))
	v1("POST /registry-clusters/{id}/online", ipSwitch(true))

	v1("GET /tasks", func(r *http.Request) (int, any, error) {
		ts, err := s.svc.ListTasks(r.Context(), userOf(r))
		return 200, map[string]any{"tasks": ts}, err
	})
	v1("POST /tasks", func(r *http.Request) (int, any, error) {
		var in TaskInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		t, err := s.svc.SaveTask(r.Context(), userOf(r), 0, in)
		return 201, t, err
	})
	v1("GET /tasks/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		t, err := s.svc.GetTask(r.Context(), userOf(r), id)
		return 200, t, err
	})
	v1("PUT /tasks/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		var in TaskInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		t, err := s.svc.SaveTask(r.Context(), userOf(r), id, in)
		return 200, t, err
	})
	taskState := func(state store.TaskState, status int) apiFunc {
		return func(r *http.Request) (int, any, error) {
			id, err := pathID(r)
			if err != nil {
				return 0, nil, err
			}
			var in struct {
				Version int64 `json:"version"`
			}
			if err := decodeOptional(r, &in); err != nil {
				return 0, nil, err
			}
			t, err := s.svc.SetTaskState(r.Context(), userOf(r), id, state, in.Version)
			if status == 204 {
				return 204, nil, err
			}
			return status, t, err
		}
	}
	v1("POST /tasks/{id}/pause", taskState(store.TaskPaused, 200))
	v1("POST /tasks/{id}/resume", taskState(store.TaskRunning, 200))
	v1("DELETE /tasks/{id}", taskState(store.TaskDeleted, 204))

	v1("GET /apps", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		apps, err := s.svc.ListApps(r.Context(), userOf(r), AppQuery{Search: q.Get("search"), Mode: q.Get("mode")})
		return 200, map[string]any{"apps": apps}, err
	})
	v1("PUT /apps", func(r *http.Request) (int, any, error) {
		var in struct {
			Apps  []string `json:"apps"`
			Mode  string   `json:"mode"`
			Force bool     `json:"force"`
		}
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		res, err := s.svc.SetAppModes(r.Context(), userOf(r), in.Apps, AppChange{Mode: in.Mode, Force: in.Force})
		batch := ""
		if len(res) > 0 {
			batch = res[0].BatchID
		}
		return 200, map[string]any{"results": res, "batchId": batch}, err
	})
	v1("GET /apps/{name}", func(r *http.Request) (int, any, error) {
		a, err := s.svc.GetApp(r.Context(), userOf(r), r.PathValue("name"))
		return 200, a, err
	})
	v1("GET /apps/{name}/preview", func(r *http.Request) (int, any, error) {
		p, err := s.svc.PreviewApp(r.Context(), userOf(r), r.PathValue("name"), r.URL.Query().Get("mode"))
		return 200, p, err
	})
	v1("PUT /apps/{name}", func(r *http.Request) (int, any, error) {
		var in AppChange
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		res, err := s.svc.SetAppMode(r.Context(), userOf(r), r.PathValue("name"), in)
		return 200, res, err
	})

	v1("GET /services", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		task, err := queryInt(q.Get("task"), "task")
		if err != nil {
			return 0, nil, err
		}
		limit, err := queryInt(q.Get("limit"), "limit")
		if err != nil {
			return 0, nil, err
		}
		short, err := queryBool(q.Get("short"), "short")
		if err != nil {
			return 0, nil, err
		}
		svcs, err := s.svc.ListServices(r.Context(), userOf(r), ServiceQuery{Task: task, App: q.Get("app"), Service: q.Get("service"), Short: short, Limit: int(limit)})
		return 200, map[string]any{"services": svcs}, err
	})
	v1("GET /services/diff", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		task, err := queryInt(q.Get("task"), "task")
		if err != nil {
			return 0, nil, err
		}
		d, err := s.serviceDiff(r.Context(), userOf(r), task, q.Get("service"))
		return 200, d, err
	})
	v1("GET /metrics/history", func(r *http.Request) (int, any, error) {
		win := time.Hour
		switch v := r.URL.Query().Get("window"); v {
		case "", "1h":
		case "24h":
			win = 24 * time.Hour
		default:
			return 0, nil, invalid("window", "%q: want 1h or 24h", v)
		}
		pts, err := s.svc.MetricHistory(r.Context(), userOf(r), win)
		return 200, map[string]any{"points": pts}, err
	})
	v1("GET /workers", func(r *http.Request) (int, any, error) {
		w, err := s.svc.ListWorkers(r.Context(), userOf(r))
		return 200, w, err
	})
	v1("GET /generation", func(r *http.Request) (int, any, error) {
		at, err := queryInt(r.URL.Query().Get("at"), "at")
		if err != nil {
			return 0, nil, err
		}
		a, err := s.svc.AppliedGeneration(r.Context(), userOf(r), at)
		return 200, a, err
	})
	v1("GET /events", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		var eq EventQuery
		var err error
		if eq.Task, err = queryInt(q.Get("task"), "task"); err != nil {
			return 0, nil, err
		}
		if eq.Before, err = queryInt(q.Get("before"), "before"); err != nil {
			return 0, nil, err
		}
		limit, err := queryInt(q.Get("limit"), "limit")
		if err != nil {
			return 0, nil, err
		}
		eq.Limit, eq.Kind, eq.Service, eq.App, eq.Worker = int(limit), q.Get("kind"), q.Get("service"), q.Get("app"), q.Get("worker")
		p, err := s.svc.ListEvents(r.Context(), userOf(r), eq)
		return 200, p, err
	})
	v1("GET /audit", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		before, err := queryInt(q.Get("before"), "before")
		if err != nil {
			return 0, nil, err
		}
		limit, err := queryInt(q.Get("limit"), "limit")
		if err != nil {
			return 0, nil, err
		}
		p, err := s.svc.ListAudit(r.Context(), userOf(r), AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"),
			Target: q.Get("target"), Batch: q.Get("batch"), Before: before, Limit: int(limit)})
		return 200, p, err
	})
	v1("POST /removals/confirm", func(r *http.Request) (int, any, error) {
		var in struct {
			TaskID int64 `json:"taskId"`
		}
		if err := decodeOptional(r, &in); err != nil {
			return 0, nil, err
		}
		c, err := s.svc.ConfirmRemovals(r.Context(), userOf(r), in.TaskID)
		return 202, c, err
	})
	v1("GET /commands/{id}", func(r *http.Request) (int, any, error) {
		id, err := pathID(r)
		if err != nil {
			return 0, nil, err
		}
		c, err := s.svc.GetCommand(r.Context(), userOf(r), id)
		return 200, c, err
	})

	v1("GET /users", func(r *http.Request) (int, any, error) {
		us, err := s.svc.ListUsers(r.Context(), userOf(r))
		return 200, map[string]any{"users": us}, err
	})
	v1("POST /users", func(r *http.Request) (int, any, error) {
		var in UserInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		u, err := s.svc.CreateUser(r.Context(), userOf(r), in)
		return 201, u, err
	})
	v1("PUT /users/{name}", func(r *http.Request) (int, any, error) {
		var in UserInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		u, err := s.svc.UpdateUser(r.Context(), userOf(r), r.PathValue("name"), in)
		return 200, u, err
	})
	v1("DELETE /users/{name}", func(r *http.Request) (int, any, error) {
		return 204, nil, s.svc.DeleteUser(r.Context(), userOf(r), r.PathValue("name"))
	})
	v1("POST /users/{name}/tokens", func(r *http.Request) (int, any, error) {
		var in struct {
			Label string `json:"label"`
		}
		if err := decodeOptional(r, &in); err != nil {
			return 0, nil, err
		}
		tok, err := s.svc.CreateToken(r.Context(), userOf(r), r.PathValue("name"), in.Label)
		return 201, map[string]string{"token": tok}, err
	})
	noRoute := func(r *http.Request) (int, any, error) {
		return 0, nil, notFound("no route %s %s", r.Method, r.URL.Path)
	}
	mux.Handle("/api/v1/", s.authed(noRoute)) // anonymous: 401 like every /api/v1 route
	mux.Handle("/api/", s.handle(noRoute))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin write refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		writeJSON(w, http.StatusForbidden, &Error{Code: CodeCrossOrigin, Message: "cross-origin request refused"})
	}))
	return securityHeaders(cop.Handler(mux)), nil
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// handle answers fn's result as JSON, mapping errors.
func (s *Server) handle(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Service.RequestTimeout)
		defer cancel()
		r = r.WithContext(context.WithValue(ctx, writerKey{}, w))
		status, body, err := fn(r)
		if err != nil {
			e := s.svc.asError(r.Context(), err)
			switch {
			case e.Status >= 500:
				s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
			case e.Status == http.StatusConflict:
				s.log.Info("console request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "msg", e.Message)
			}
			writeJSON(w, e.Status, e)
			return
		}
		writeJSON(w, status, body)
	})
}

// authed resolves the caller (bearer token first, else the session
// cookie) and refuses an anonymous call with 401.
func (s *Server) authed(fn apiFunc) http.Handler {
	return s.handle(func(r *http.Request) (int, any, error) {
		bearer := ""
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
				return 0, nil, unauthorized("Authorization: want Bearer TOKEN")
			}
			bearer = strings.TrimSpace(tok)
		}
		session := ""
		if c, err := r.Cookie(SessionCookie); err == nil {
			session = c.Value
		}
		if bearer == "" && session == "" {
			return 0, nil, unauthorized("log in or send Authorization: Bearer TOKEN")
		}
		readOnly := r.Method == http.MethodGet || r.Method == http.MethodHead
		u, err := s.svc.Authenticate(r.Context(), bearer, session, readOnly)
		if errors.Is(err, store.ErrBadLogin) {
			if bearer != "" {
				return 0, nil, unauthorized("unknown or revoked API token")
			}
			return 0, nil, unauthorized("session expired: log in again")
		}
		if err != nil {
			return 0, nil, err
		}
		ctx := context.WithValue(r.Context(), userKey{}, u)
		return fn(r.WithContext(ctx))
	})
}

func (s *Server) apiLogin(r *http.Request) (int, any, error) {
	var in struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	tok, u, err := s.svc.Login(r.Context(), in.Name, in.Password, clientAddr(r))
	if err != nil {
		return 0, nil, err
	}
	setSession(r, tok, int(s.cfg.Service.SessionTTL.Seconds()))
	return 200, map[string]any{"user": userView(*u)}, nil
}

func (s *Server) apiLogout(r *http.Request) (int, any, error) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.svc.Logout(r.Context(), c.Value); err != nil {
			return 0, nil, err
		}
	}
	setSession(r, "", -1)
	return 204, nil, nil
}

// setSession sets the session cookie on the response (handle puts the
// writer in the request's context).
func setSession(r *http.Request, value string, maxAge int) {
	if w, ok := r.Context().Value(writerKey{}).(http.ResponseWriter); ok {
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
}

type writerKey struct{}

func (s *Server) apiStatus(r *http.Request) (int, any, error) {
	if err := need(userOf(r), store.RoleViewer); err != nil {
		return 0, nil, err
	}
	return 200, s.worker.Status(), nil
}

// apiConfirmLocal releases the holds of this worker only (?task=ID or
// every task); POST /api/v1/removals/confirm does it on every worker.
func (s *Server) apiConfirmLocal(r *http.Request) (int, any, error) {
	u := userOf(r)
	if err := need(u, store.RoleOperator); err != nil {
		return 0, nil, err
	}
	var id int64
	if q := r.URL.Query().Get("task"); q != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(q, "task-"), 10, 64)
		if err != nil || n <= 0 {
			return 0, nil, invalid("task", "%q: want a task id", q)
		}
		id = n
	}
	if n := s.worker.Confirm(id); n == 0 && id != 0 {
		return 0, nil, notFound("task %d is not running on this worker", id)
	}
	s.log.Warn("held mass removal confirmed over HTTP", "task", id, "user", u.Name)
	return 200, s.worker.Status(), nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, invalid("id", "%q: want a positive integer", v)
	}
	return n, nil
}

func queryInt(v, field string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid(field, "%q: want a non-negative integer", v)
	}
	return n, nil
}

func queryBool(v, field string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid(field, "%q: want true or false", v)
	}
	return b, nil
}

// ipQuery reads ?ip=&port= (port optional).
func ipQuery(r *http.Request) (IPInput, error) {
	q := r.URL.Query()
	in := IPInput{IP: q.Get("ip")}
	if v := q.Get("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return in, invalid("port", "%q: want a number", v)
		}
		in.Port = n
	}
	return in, nil
}

// decode reads a JSON body into v strictly: application/json, one value,
// no unknown field (400 naming it), at most maxBody.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupported, Message: "Content-Type: want application/json"}
		}
	} else {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupported, Message: "Content-Type: want application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "body: want one JSON object")
	}
	return nil
}

// decodeOptional is decode for a body that may be empty.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return nil
	}
	return decode(r, v)
}

func bodyError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var me *http.MaxBytesError
	switch {
	case errors.As(err, &me):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: fmt.Sprintf("body larger than %d bytes", me.Limit)}
	case errors.As(err, &te):
		return invalid(te.Field, "want a JSON %s, got %s", te.Type, te.Value)
	case errors.As(err, &se):
		return invalid("", "body is not JSON: %v", err)
	case errors.Is(err, io.EOF):
		return invalid("", "body: empty, want a JSON object")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid(strings.Trim(f, `"`), "unknown field")
	}
	return invalid("", "body: %v", err)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if status == http.StatusNoContent || body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(body)
}

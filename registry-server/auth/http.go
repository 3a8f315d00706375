package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the auth API of Nacos' default auth plugin (UserController,
// RoleController, PermissionController, Nacos 2.5.1) under /nacos/v1/auth/:
//
//	POST   /nacos/v1/auth/login, /nacos/v1/auth/users/login   username, password → {"accessToken","tokenTtl","globalAdmin","username"}
//	POST   /nacos/v1/auth/users        username, password        create a user
//	PUT    /nacos/v1/auth/users        username, newPassword     change a password (admin, or the user itself)
//	DELETE /nacos/v1/auth/users        username                  delete a user (not an admin)
//	GET    /nacos/v1/auth/users        search=accurate|blur, pageNo, pageSize, username
//	POST   /nacos/v1/auth/roles        role, username            bind a role
//	DELETE /nacos/v1/auth/roles        role[, username]          unbind (without username: delete the role)
//	GET    /nacos/v1/auth/roles        search, pageNo, pageSize, username, role
//	POST   /nacos/v1/auth/permissions  role, resource, action    grant (action r, w or rw)
//	DELETE /nacos/v1/auth/permissions  role, resource, action    revoke
//	GET    /nacos/v1/auth/permissions  search, pageNo, pageSize, role
//
// Everything but login needs a global admin with auth on, and a loopback
// caller with auth off. User lists carry no password field (Nacos returns
// the hash; Ferry never does).
func (a *Authority) Handler(maxBody int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nacos/v1/auth/login", a.form(maxBody, a.httpLogin))
	mux.HandleFunc("POST /nacos/v1/auth/users/login", a.form(maxBody, a.httpLogin))
	mux.HandleFunc("POST /nacos/v1/auth/users", a.admin(maxBody, a.httpCreateUser))
	mux.HandleFunc("PUT /nacos/v1/auth/users", a.form(maxBody, a.httpUpdateUser))
	mux.HandleFunc("DELETE /nacos/v1/auth/users", a.admin(maxBody, a.httpDeleteUser))
	mux.HandleFunc("GET /nacos/v1/auth/users", a.admin(maxBody, a.httpListUsers))
	mux.HandleFunc("POST /nacos/v1/auth/roles", a.admin(maxBody, a.roleOp(OpAdd)))
	mux.HandleFunc("DELETE /nacos/v1/auth/roles", a.admin(maxBody, a.roleOp(OpDelete)))
	mux.HandleFunc("GET /nacos/v1/auth/roles", a.admin(maxBody, a.httpListRoles))
	mux.HandleFunc("POST /nacos/v1/auth/permissions", a.admin(maxBody, a.permOp(OpAdd)))
	mux.HandleFunc("DELETE /nacos/v1/auth/permissions", a.admin(maxBody, a.permOp(OpDelete)))
	mux.HandleFunc("GET /nacos/v1/auth/permissions", a.admin(maxBody, a.httpListPermissions))
	return mux
}

type httpFunc func(w http.ResponseWriter, r *http.Request)

// form parses the parameters (bounded) before h.
func (a *Authority) form(maxBody int64, h httpFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			writeText(w, http.StatusBadRequest, "malformed parameters")
			return
		}
		h(w, r)
	}
}

// admin is form plus the console check: a global admin (auth on) or a
// loopback caller (auth off).
func (a *Authority) admin(maxBody int64, h httpFunc) http.HandlerFunc {
	return a.form(maxBody, func(w http.ResponseWriter, r *http.Request) {
		if err := a.consoleAccess(r); err != nil {
			a.met.denied.WithLabelValues(TypeConsole).Inc()
			writeDenied(w, err)
			return
		}
		h(w, r)
	})
}

func (a *Authority) consoleAccess(r *http.Request) error {
	if !a.cfg.Enabled {
		if !IsLoopback(r.RemoteAddr) {
			return ErrLoopbackOnly
		}
		return nil
	}
	return a.check(httpIdentity(r), Resource{Type: TypeConsole, Name: "users"}, Write)
}

func (a *Authority) httpLogin(w http.ResponseWriter, r *http.Request) {
	token, ttl, admin, err := a.Login(r.Form.Get("username"), r.Form.Get("password"), remoteIP(r.RemoteAddr))
	if err != nil {
		writeDenied(w, err)
		return
	}
	w.Header().Set("Authorization", "Bearer "+token)
	writeJSON(w, http.StatusOK, map[string]any{
		"accessToken": token, "tokenTtl": ttl, "globalAdmin": admin, "username": r.Form.Get("username"),
	})
}

func (a *Authority) httpCreateUser(w http.ResponseWriter, r *http.Request) {
	name, pw := r.Form.Get("username"), r.Form.Get("password")
	if name == DefaultAdmin {
		writeResult(w, http.StatusConflict, "User `nacos` is default admin user.")
		return
	}
	hash, err := a.HashPassword(pw)
	if err == nil {
		err = a.deps.Store.ApplyUserOp(UserOp{Op: OpCreate, Username: name, PasswordHash: hash})
	}
	a.answer(w, err, "create user ok!")
}

func (a *Authority) httpUpdateUser(w http.ResponseWriter, r *http.Request) {
	name := r.Form.Get("username")
	if a.cfg.Enabled {
		id := httpIdentity(r)
		caller, err := a.identify(id)
		if err != nil {
			writeDenied(w, err)
			return
		}
		if caller != name && !a.deps.Store.AuthState().IsGlobalAdmin(caller) {
			writeDenied(w, ErrForbidden)
			return
		}
	} else if !IsLoopback(r.RemoteAddr) {
		writeDenied(w, ErrLoopbackOnly)
		return
	}
	hash, err := a.HashPassword(r.Form.Get("newPassword"))
	if err == nil {
		err = a.deps.Store.ApplyUserOp(UserOp{Op: OpUpdate, Username: name, PasswordHash: hash})
	}
	a.answer(w, err, "update user ok!")
}

func (a *Authority) httpDeleteUser(w http.ResponseWriter, r *http.Request) {
	a.answer(w, a.deps.Store.ApplyUserOp(UserOp{Op: OpDelete, Username: r.Form.Get("username")}), "delete user ok!")
}

func (a *Authority) roleOp(op string) httpFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := RoleOp{Op: op, Role: r.Form.Get("role"), Username: r.Form.Get("username")}
		msg := "add role ok!"
		if op == OpDelete {
			msg = "delete role of user " + o.Username + " ok!"
		}
		a.answer(w, a.deps.Store.ApplyRoleOp(o), msg)
	}
}

func (a *Authority) permOp(op string) httpFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := PermissionOp{Op: op, Permission: Permission{Role: r.Form.Get("role"), Resource: r.Form.Get("resource"), Action: r.Form.Get("action")}}
		msg := "add permission ok!"
		if op == OpDelete {
			msg = "delete permission ok!"
		}
		a.answer(w, a.deps.Store.ApplyPermissionOp(o), msg)
	}
}

// answer writes Nacos' RestResult for a write: 200 {"code":200,"data":ok};
// a domain error is 400 with its message (Nacos answers
// IllegalArgumentException so); anything else 500.
func (a *Authority) answer(w http.ResponseWriter, err error, ok string) {
	switch {
	case err == nil:
		writeResult(w, http.StatusOK, ok)
	case errors.Is(err, ErrInvalidParam), errors.Is(err, ErrExists), errors.Is(err, ErrNotFound):
		writeText(w, http.StatusBadRequest, NacosMessage(err))
	default:
		a.log.Warn("auth write failed", "err", err)
		writeText(w, http.StatusInternalServerError, "caused: "+err.Error()+";")
	}
}

// page is Nacos' Page.
type page[T any] struct {
	TotalCount     int `json:"totalCount"`
	PageNumber     int `json:"pageNumber"`
	PagesAvailable int `json:"pagesAvailable"`
	PageItems      []T `json:"pageItems"`
}

func paginate[T any](r *http.Request, all []T) page[T] {
	no, _ := strconv.Atoi(r.Form.Get("pageNo"))
	size, _ := strconv.Atoi(r.Form.Get("pageSize"))
	no, size = max(no, 1), max(min(size, 1000), 1)
	if r.Form.Get("pageSize") == "" {
		size = 100
	}
	p := page[T]{TotalCount: len(all), PageNumber: no, PagesAvailable: (len(all) + size - 1) / size, PageItems: []T{}}
	if from := (no - 1) * size; from < len(all) {
		p.PageItems = all[from:min(from+size, len(all))]
	}
	return p
}

// match is the accurate (equal) or blur (contains) search of a list.
func match(r *http.Request, param, v string) bool {
	want := r.Form.Get(param)
	if want == "" {
		return true
	}
	if r.Form.Get("search") == "blur" {
		return strings.Contains(v, want)
	}
	return v == want
}

type userInfo struct {
	Username string `json:"username"`
}

func (a *Authority) httpListUsers(w http.ResponseWriter, r *http.Request) {
	var out []userInfo
	for _, u := range a.deps.Store.AuthState().Usernames() {
		if match(r, "username", u) {
			out = append(out, userInfo{Username: u})
		}
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (a *Authority) httpListRoles(w http.ResponseWriter, r *http.Request) {
	var out []RoleBinding
	for _, b := range a.deps.Store.AuthState().Roles() {
		if match(r, "username", b.Username) && match(r, "role", b.Role) {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

func (a *Authority) httpListPermissions(w http.ResponseWriter, r *http.Request) {
	var out []Permission
	for _, p := range a.deps.Store.AuthState().Permissions() {
		if match(r, "role", p.Role) {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, paginate(r, out))
}

// writeResult writes Nacos' RestResult {"code","message","data"}.
func writeResult(w http.ResponseWriter, code int, data string) {
	writeJSON(w, code, map[string]any{"code": code, "message": nil, "data": data})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

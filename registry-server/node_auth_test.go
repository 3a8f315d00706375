package registryserver

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/auth"
	"github.com/ferrysync/ferry/registry-server/naming"
)

const testAdminPassword = "admin-secret"

// openAuthNode starts a whole node with auth on, admin password
// testAdminPassword and a cheap bcrypt cost (tests only), and waits for the
// admin user.
func openAuthNode(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	cfg.Auth.Enabled = true
	cfg.Auth.BcryptCost = 4
	cfg.Auth.LoginRate = 1000
	cfg.Auth.LoginBurst = 1000
	cfg.AdminPassword = testAdminPassword
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	poll.Until(t, 30*time.Second, "admin user", func() bool { return s.Raft().AuthState().HasGlobalAdmin() })
	return s
}

// do sends form params (in the body for POST/PUT, the query otherwise)
// with optional extra headers.
func do(t *testing.T, s *Server, method, path string, q url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	u := "http://" + s.HTTPAddr().String() + path
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader(q.Encode())
	} else {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type loginAnswer struct {
	AccessToken string `json:"accessToken"`
	TokenTTL    int64  `json:"tokenTtl"`
	GlobalAdmin bool   `json:"globalAdmin"`
	Username    string `json:"username"`
}

func login(t *testing.T, s *Server, user, pw string) loginAnswer {
	t.Helper()
	st, body := do(t, s, "POST", "/nacos/v1/auth/users/login", url.Values{"username": {user}, "password": {pw}}, nil)
	if st != 200 {
		t.Fatalf("login %s: %d %s", user, st, body)
	}
	var a loginAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.AccessToken == "" {
		t.Fatalf("login answer %q: %v", body, err)
	}
	return a
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// TestAuthHTTPPermissions is the permission table of the HTTP API: each
// route as an anonymous caller, a reader, a writer and the admin would see
// it, plus the bad tokens.
func TestAuthHTTPPermissions(t *testing.T) {
	s := openAuthNode(t, nil)
	admin := login(t, s, "nacos", testAdminPassword)
	if !admin.GlobalAdmin || admin.TokenTTL != 18000 || admin.Username != "nacos" {
		t.Fatalf("admin login: %+v", admin)
	}
	at := func(v url.Values) url.Values { return with(v, "accessToken", admin.AccessToken) }
	for _, step := range []struct {
		path string
		v    url.Values
	}{
		{"/nacos/v1/auth/users", form("username", "reader", "password", "r-pw")},
		{"/nacos/v1/auth/users", form("username", "writer", "password", "w-pw")},
		{"/nacos/v1/auth/roles", form("role", "READ", "username", "reader")},
		{"/nacos/v1/auth/roles", form("role", "WRITE", "username", "writer")},
		{"/nacos/v1/auth/permissions", form("role", "READ", "resource", ":*:*", "action", "r")},
		{"/nacos/v1/auth/permissions", form("role", "WRITE", "resource", ":*:*", "action", "rw")},
	} {
		if st, body := do(t, s, "POST", step.path, at(step.v), nil); st != 200 || !strings.Contains(body, `"code":200`) {
			t.Fatalf("setup %s %v: %d %s", step.path, step.v, st, body)
		}
	}
	reader := login(t, s, "reader", "r-pw").AccessToken
	writer := login(t, s, "writer", "w-pw").AccessToken
	foreign, _ := auth.NewSigner(bytes.Repeat([]byte("z"), 32))

	inst := form("serviceName", "svc", "ip", "10.0.0.1", "port", "8080", "ephemeral", "true")
	cfg := form("dataId", "d", "group", "g", "content", "x")
	tok := func(tk string) map[string]string { return map[string]string{"accessToken": tk} }
	bearer := func(tk string) map[string]string { return map[string]string{"Authorization": "Bearer " + tk} }
	for _, c := range []struct {
		name         string
		method, path string
		v            url.Values
		hdr          map[string]string
		status       int
		body         string
	}{
		{"anonymous list", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), nil, 403, "user not found!"},
		{"anonymous register", "POST", "/nacos/v1/ns/instance", inst, nil, 403, "user not found!"},
		{"reader register", "POST", "/nacos/v1/ns/instance", with(inst, "accessToken", reader), nil, 403, "authorization failed!"},
		{"writer register", "POST", "/nacos/v1/ns/instance", with(inst, "accessToken", writer), nil, 200, "ok"},
		{"reader list (param)", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc", "accessToken", reader), nil, 200, "10.0.0.1"},
		{"reader list (header)", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), tok(reader), 200, "10.0.0.1"},
		{"reader list (bearer)", "GET", "/nacos/v2/ns/instance/list", form("serviceName", "svc"), bearer(reader), 200, "10.0.0.1"},
		{"reader list (password)", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc", "username", "reader", "password", "r-pw"), nil, 200, "10.0.0.1"},
		{"reader list (wrong password)", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc", "username", "reader", "password", "nope"), nil, 403, "user not found!"},
		{"reader other namespace", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc", "namespaceId", "dev"), tok(reader), 403, "authorization failed!"},
		{"reader deregister", "DELETE", "/nacos/v1/ns/instance", with(inst, "accessToken", reader), nil, 403, "authorization failed!"},
		{"reader beat", "PUT", "/nacos/v1/ns/instance/beat", with(inst, "accessToken", reader), nil, 403, "authorization failed!"},
		{"reader service list", "GET", "/nacos/v1/ns/service/list", form("pageNo", "1", "pageSize", "10"), tok(reader), 200, "svc"},
		{"reader service create", "POST", "/nacos/v1/ns/service", form("serviceName", "s2", "accessToken", reader), nil, 403, "authorization failed!"},
		{"writer offline", "PUT", "/nacos/v1/ns/ferry/offline", form("ip", "10.9.9.9", "accessToken", writer), nil, 403, "authorization failed!"},
		{"admin offline", "PUT", "/nacos/v1/ns/ferry/offline", form("ip", "10.9.9.9", "accessToken", admin.AccessToken), nil, 200, ""},
		{"reader publish config", "POST", "/nacos/v1/cs/configs", with(cfg, "accessToken", reader), nil, 403, "authorization failed!"},
		{"writer publish config", "POST", "/nacos/v1/cs/configs", with(cfg, "accessToken", writer), nil, 200, "true"},
		{"reader get config", "GET", "/nacos/v1/cs/configs", form("dataId", "d", "group", "g", "accessToken", reader), nil, 200, "x"},
		{"anonymous get config v2", "GET", "/nacos/v2/cs/config", form("dataId", "d", "group", "g"), nil, 403, "user not found!"},
		{"reader delete config", "DELETE", "/nacos/v1/cs/configs", form("dataId", "d", "group", "g", "accessToken", reader), nil, 403, "authorization failed!"},
		{"reader lists users", "GET", "/nacos/v1/auth/users", form("search", "accurate", "pageNo", "1", "pageSize", "10", "accessToken", reader), nil, 403, "authorization failed!"},
		{"reader adds a role", "POST", "/nacos/v1/auth/roles", form("role", "WRITE", "username", "reader", "accessToken", reader), nil, 403, "authorization failed!"},
		{"admin lists users", "GET", "/nacos/v1/auth/users", form("search", "accurate", "pageNo", "1", "pageSize", "10", "accessToken", admin.AccessToken), nil, 200, `"totalCount":3`},
		{"admin lists roles", "GET", "/nacos/v1/auth/roles", form("search", "accurate", "pageNo", "1", "pageSize", "10", "username", "reader", "accessToken", admin.AccessToken), nil, 200, `{"role":"READ","username":"reader"}`},
		{"admin lists permissions", "GET", "/nacos/v1/auth/permissions", form("search", "accurate", "pageNo", "1", "pageSize", "10", "role", "WRITE", "accessToken", admin.AccessToken), nil, 200, `"action":"rw"`},
		{"reader changes writer's password", "PUT", "/nacos/v1/auth/users", form("username", "writer", "newPassword", "x", "accessToken", reader), nil, 403, "authorization failed!"},
		{"reader changes own password", "PUT", "/nacos/v1/auth/users", form("username", "reader", "newPassword", "r-pw2", "accessToken", reader), nil, 200, "update user ok!"},
		{"admin deletes admin", "DELETE", "/nacos/v1/auth/users", form("username", "nacos", "accessToken", admin.AccessToken), nil, 400, "cannot delete admin"},
		{"injection in user name", "POST", "/nacos/v1/auth/users", form("username", `x'); DROP TABLE users;--","globalAdmin":true`, "password", "p", "accessToken", admin.AccessToken), nil, 400, "may hold only"},
		{"malformed token", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), tok("not-a-token"), 403, "token invalid!"},
		{"foreign key token", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), tok(foreign.Issue("nacos", time.Now(), time.Hour)), 403, "Invalid signature"},
		{"expired token", "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), tok(s.Auth().Signer().Issue("nacos", time.Now().Add(-2*time.Hour), time.Hour)), 403, "token expired!"},
		{"wrong password login", "POST", "/nacos/v1/auth/login", form("username", "nacos", "password", "guess"), nil, 403, "user not found!"},
		{"unknown user login", "POST", "/nacos/v1/auth/login", form("username", "ghost", "password", "guess"), nil, 403, "user not found!"},
		{"ready is open", "GET", "/nacos/ready", nil, nil, 200, "ready"},
	} {
		st, body := do(t, s, c.method, c.path, c.v, c.hdr)
		if st != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, st, body, c.status, c.body)
		}
		if strings.Contains(body, "$2a$") || strings.Contains(body, "password\"") {
			t.Errorf("%s: answer shows a password: %s", c.name, body)
		}
	}
	// Refused writes stored nothing: only the writer's instance exists.
	si, _ := s.Naming().Select(naming.ServiceKey{Name: "svc"}, nil, false)
	if len(si.Hosts) != 1 {
		t.Fatalf("hosts after the table: %+v", si.Hosts)
	}
	// The old password no longer logs in; a deleted user's token dies.
	if st, _ := do(t, s, "POST", "/nacos/v1/auth/login", form("username", "reader", "password", "r-pw"), nil); st != 403 {
		t.Fatalf("old password: %d", st)
	}
	if st, body := do(t, s, "DELETE", "/nacos/v1/auth/users", form("username", "reader", "accessToken", admin.AccessToken), nil); st != 200 {
		t.Fatalf("delete reader: %d %s", st, body)
	}
	if st, body := do(t, s, "GET", "/nacos/v1/ns/instance/list", form("serviceName", "svc"), tok(reader)); st != 403 || body != "user not found!" {
		t.Fatalf("deleted user's token: %d %s", st, body)
	}
}

// TestAuthLoginFloodThrottled: logins beyond the per-IP burst answer 503
// (Nacos' too-many-requests status) without checking the password.
func TestAuthLoginFloodThrottled(t *testing.T) {
	s := openAuthNode(t, func(c *Config) { c.Auth.LoginRate, c.Auth.LoginBurst = 0.01, 5 })
	codes := map[int]int{}
	for i := 0; i < 20; i++ {
		st, _ := do(t, s, "POST", "/nacos/v1/auth/login", form("username", "nacos", "password", "guess"), nil)
		codes[st]++
	}
	if codes[403] != 5 || codes[503] != 15 {
		t.Fatalf("answers of a 20-login flood with burst 5: %v", codes)
	}
	if st, _ := do(t, s, "POST", "/nacos/v1/auth/login", form("username", "nacos", "password", testAdminPassword), nil); st != 503 {
		t.Fatalf("right password during the flood: %d, want 503", st)
	}
}

// TestAuthOffOperatorLoopback: with auth off every route answers without a
// token; the operator routes answer loopback callers (this test is one).
func TestAuthOffOperatorLoopback(t *testing.T) {
	s := openNode(t, t.TempDir())
	defer s.Stop()
	if st, body := do(t, s, "POST", "/nacos/v1/ns/instance", form("serviceName", "svc", "ip", "10.0.0.1", "port", "1"), nil); st != 200 {
		t.Fatalf("register with auth off: %d %s", st, body)
	}
	if st, body := do(t, s, "PUT", "/nacos/v1/ns/ferry/offline", form("ip", "10.0.0.1"), nil); st != 200 {
		t.Fatalf("offline from loopback: %d %s", st, body)
	}
	if st, body := do(t, s, "POST", "/nacos/v1/auth/users", form("username", "ops", "password", "pw"), nil); st != 200 {
		t.Fatalf("create user from loopback: %d %s", st, body)
	}
}

// TestAdminGeneratedPasswordPrintedOnce: without
// FERRY_REGISTRY_ADMIN_PASSWORD the first start generates the admin's
// password and prints it once to Notice (not the log); it logs in; a
// restart on the same data prints nothing and keeps it.
func TestAdminGeneratedPasswordPrintedOnce(t *testing.T) {
	dir := t.TempDir()
	var notice syncBuffer
	start := func() *Server {
		return openAuthNode(t, func(c *Config) {
			c.DataDir, c.AdminPassword, c.Notice = dir, "", &notice
		})
	}
	s := start()
	poll.Until(t, 30*time.Second, "the admin notice", func() bool { return notice.String() != "" })
	line := notice.String()
	i := strings.Index(line, "generated password ")
	if i < 0 {
		t.Fatalf("notice %q", line)
	}
	pw := strings.Fields(line[i+len("generated password "):])[0]
	login(t, s, "nacos", pw)
	s.Stop()
	notice.Reset()
	s = start()
	if notice.String() != "" {
		t.Fatalf("second start printed %q", notice.String())
	}
	login(t, s, "nacos", pw)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

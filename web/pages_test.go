package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/store"
)

// browser is a cookie-keeping client of the pages.
type browser struct {
	t    *testing.T
	h    *harness
	c    *http.Client
	last *http.Response
}

func newBrowser(t *testing.T, h *harness) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, h: h, c: &http.Client{Jar: jar}}
}

func (b *browser) get(path string, headers ...string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.h.base+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, headers ...string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.h.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last = resp
	return resp.StatusCode, string(body)
}

func (b *browser) login(name, pw string) {
	b.t.Helper()
	code, body := b.post("/login", url.Values{"name": {name}, "password": {pw}, "next": {"/apps"}})
	if code != 200 || !strings.Contains(body, "<h1>Apps</h1>") {
		b.t.Fatalf("login as %s: %d %s", name, code, body)
	}
}

// The pages: a login form, the Apps page with a preview and a confirm
// that needs the app name typed when services would be left empty, the
// Overview; hostile names render inert; viewers cannot switch.
func TestPagesAppsFlow(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1", "w2")
	evil := `<script>alert("x")</script>`
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0},
		svcCount{"providers:com.a.B::", "app-1", 1, 2, 1, 1},
		svcCount{"providers:com.e.E::", evil, 1, 1, 1, 0})
	b := newBrowser(t, h)

	// Not logged in: to the login form, keeping where to go.
	code, body := b.get("/apps")
	if code != 200 || !strings.Contains(body, `id="login-form"`) || b.last.Request.URL.Query().Get("next") != "/apps" {
		t.Fatalf("anonymous /apps: %d at %s", code, b.last.Request.URL)
	}
	if code, body := b.post("/login", url.Values{"name": {"operator-user"}, "password": {"nope"}}); code != 401 || !strings.Contains(body, "wrong user name or password") {
		t.Fatalf("bad login: %d %s", code, body)
	}
	if safeNext("//evil.example/") != "/" || safeNext("https://evil.example") != "/" || safeNext("/apps?x=1") != "/apps?x=1" {
		t.Fatal("safeNext lets an off-site redirect through")
	}
	b.login("operator-user", "password-operator")

	code, body = b.get("/apps")
	if code != 200 || strings.Contains(body, evil) || !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Fatalf("apps page does not escape the name: %s", body)
	}
	if !strings.Contains(body, `hx-get="/apps/preview"`) || !strings.Contains(body, `<script src="/static/htmx.min.js"`) {
		t.Fatalf("apps page lacks the preview form or htmx: %s", body)
	}
	// Preview as htmx asks for it: a fragment with the exact numbers.
	code, body = b.get("/apps/preview?app=app-1&mode=native", "HX-Request", "true")
	if code != 200 || strings.Contains(body, "<html") ||
		!strings.Contains(body, `<span class="vanish">3</span>`) || !strings.Contains(body, `<span class="covered">1</span>`) ||
		!strings.Contains(body, `<span class="empty-count">1</span>`) || !strings.Contains(body, "<li>providers:com.a.A::</li>") ||
		!strings.Contains(body, `name="confirm"`) {
		t.Fatalf("preview fragment: %d %s", code, body)
	}
	// Without the typed name the change is refused; with it, applied.
	code, body = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"native"}, "version": {"0"}, "confirm": {"app-2"}}, "HX-Request", "true")
	if code != 200 || !strings.Contains(body, "type the app name exactly") {
		t.Fatalf("wrong confirmation: %d %s", code, body)
	}
	code, body = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"native"}, "version": {"0"}}, "HX-Request", "true")
	if code != 200 || !strings.Contains(body, "preview it again") {
		t.Fatalf("no confirmation: %d %s", code, body)
	}
	if _, err := h.st.GetApp(context.Background(), "app-1"); err == nil {
		t.Fatal("a refused page change wrote the app")
	}
	code, body = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"native"}, "version": {"0"}, "confirm": {"app-1"}}, "HX-Request", "true")
	if code != 200 || !strings.Contains(body, "app-1: sync → native; applied on 0/2 live workers so far") || !strings.Contains(body, `hx-get="/partials/applied?at=`) {
		t.Fatalf("confirmed change: %d %s", code, body)
	}
	gen, _ := h.st.SettingsGeneration(context.Background())
	if err := h.st.HeartbeatWorkerGeneration(context.Background(), "w1", gen); err != nil {
		t.Fatal(err)
	}
	if code, body := b.get(fmt.Sprintf("/partials/applied?at=%d", gen), "HX-Request", "true"); code != 200 || body != "Now applied on 1/2 live workers (waiting for w2)." {
		t.Fatalf("applied partial: %d %q", code, body)
	}
	// Without htmx the same form redirects back with the result.
	code, body = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"sync"}, "version": {"1"}})
	if code != 200 || !strings.Contains(body, `id="flash"`) || !strings.Contains(body, "app-1: native → sync") {
		t.Fatalf("plain form change: %d %s", code, body)
	}
	// A stale version (another operator changed it since) is refused.
	code, body = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"excluded"}, "version": {"1"}, "confirm": {"app-1"}})
	if code != 409 || !strings.Contains(body, "was changed by operator-user") {
		t.Fatalf("stale page change: %d %s", code, body)
	}
	// A form posted from another site is refused.
	code, _ = b.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"excluded"}}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	if code != 403 {
		t.Fatalf("cross-site form post: %d", code)
	}
	// Overview.
	code, body = b.get("/")
	if code != 200 || !strings.Contains(body, `<b id="ov-zk">4</b>`) || !strings.Contains(body, `data-chart="lag"`) || strings.Contains(body, evil) {
		t.Fatalf("overview: %d %s", code, body)
	}
	if code, body := b.get("/partials/events", "HX-Request", "true"); code != 200 || !strings.Contains(body, `<table class="events">`) {
		t.Fatalf("events partial: %d %s", code, body)
	}
	if code, body := b.get("/static/htmx.min.js"); code != 200 || len(body) < 10000 {
		t.Fatalf("htmx asset: %d (%d bytes)", code, len(body))
	}
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/metrics/history?window=24h", nil), 200, ""); !strings.Contains(string(r.Body), `"points":[]`) {
		t.Fatalf("history: %s", r.Body)
	}

	// A viewer sees no switch and cannot post one.
	v := newBrowser(t, h)
	v.login("viewer-user", "password-viewer")
	if _, body := v.get("/apps"); strings.Contains(body, "preview-btn") {
		t.Fatal("viewer offered a switch")
	}
	if code, _ := v.post("/apps/mode", url.Values{"app": {"app-1"}, "mode": {"native"}}); code != 403 {
		t.Fatalf("viewer's change: %d", code)
	}
	// Logging out ends the session.
	v.post("/logout", nil)
	if _, body := v.get("/"); !strings.Contains(body, `id="login-form"`) {
		t.Fatal("still logged in after logout")
	}
	// Store down: a banner, no stack trace.
	h.st.Close()
	code, body = b.get("/apps")
	if code != 503 || !strings.Contains(body, `class="banner"`) || !strings.Contains(body, "read-only") {
		t.Fatalf("store down: %d %s", code, body)
	}
}

// The read-only pages: Services (short ones red), Workers, Events (paged),
// Audit; names escaped.
func TestTablePages(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 3, 1, 1, 0},
		svcCount{`providers:com.x.<b>X</b>::`, "app-2", 1, 1, 1, 0})
	var evs []store.Event
	for i := 0; i < 105; i++ {
		evs = append(evs, store.Event{Kind: store.EventRegistered, Service: "providers:com.a.A::", Worker: "w1", Detail: fmt.Sprintf("n=%d", i)})
	}
	if err := h.st.AppendEvents(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps/app-2", map[string]any{"mode": "native", "force": true}), 200, "")
	b := newBrowser(t, h)
	b.login("viewer-user", "password-viewer")
	code, body := b.get("/services?short=true")
	if code != 200 || !strings.Contains(body, `<tr class="short"><td>1</td><td><a href="/services/diff?service=providers%3Acom.a.A%3A%3A&amp;task=1">providers:com.a.A::</a></td>`) || strings.Contains(body, "com.x.") {
		t.Fatalf("short services: %d %s", code, body)
	}
	if _, body := b.get("/services"); strings.Contains(body, "<b>X</b>") || !strings.Contains(body, "&lt;b&gt;X&lt;/b&gt;") {
		t.Fatalf("service name not escaped: %s", body)
	}
	if code, body := b.get("/workers"); code != 200 || !strings.Contains(body, "<td>w1</td>") {
		t.Fatalf("workers: %d %s", code, body)
	}
	code, body = b.get("/events")
	if code != 200 || strings.Count(body, "<td>registered</td>") != 100 || !strings.Contains(body, "Older</a>") {
		t.Fatalf("events page 1: %d (%d rows)", code, strings.Count(body, "<td>registered</td>"))
	}
	next := body[strings.Index(body, `<a href="/events?`)+len(`<a href="`):]
	next = strings.ReplaceAll(next[:strings.Index(next, `"`)], "&amp;", "&")
	if code, body := b.get(next); code != 200 || strings.Count(body, "<td>registered</td>") != 5 {
		t.Fatalf("events page 2 (%s): %d (%d rows)", next, code, strings.Count(body, "<td>registered</td>"))
	}
	if code, body := b.get("/audit"); code != 200 || !strings.Contains(body, "<td>app.mode</td>") || !strings.Contains(body, "<td>operator-user</td>") {
		t.Fatalf("audit: %d %s", code, body)
	}
	if code, _ := b.get("/events?task=x"); code != 400 {
		t.Fatalf("bad filter: %d", code)
	}
}

// The Tasks page lists tasks and clusters; an operator pauses and resumes
// through it, a stale button is refused naming who changed the task.
func TestTasksPage(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	b := newBrowser(t, h)
	b.login("operator-user", "password-operator")
	code, body := b.get("/tasks")
	if code != 200 || !strings.Contains(body, "<td>zk-main</td>") || !strings.Contains(body, `class="pause-btn"`) {
		t.Fatalf("tasks: %d %s", code, body)
	}
	id := fmt.Sprint(task)
	code, body = b.post("/tasks/state", url.Values{"id": {id}, "version": {"1"}, "state": {"paused"}})
	if code != 200 || !strings.Contains(body, "is paused (version 2)") || !strings.Contains(body, `class="resume-btn"`) {
		t.Fatalf("pause: %d %s", code, body)
	}
	if code, body := b.post("/tasks/state", url.Values{"id": {id}, "version": {"1"}, "state": {"running"}}); code != 409 || !strings.Contains(body, "operator-user") {
		t.Fatalf("stale resume: %d %s", code, body)
	}
	if got, _ := h.st.GetTask(context.Background(), task); got.State != store.TaskPaused {
		t.Fatalf("task %s", got.State)
	}
	v := newBrowser(t, h)
	v.login("viewer-user", "password-viewer")
	if _, body := v.get("/tasks"); strings.Contains(body, "resume-btn") {
		t.Fatal("viewer offered resume")
	}
	if code, _ := v.post("/tasks/state", url.Values{"id": {id}, "version": {"2"}, "state": {"running"}}); code != 403 {
		t.Fatalf("viewer resume: %d", code)
	}
}

// The Users page (admin): add a user, mint a token shown once, delete;
// others get 403.
func TestUsersPage(t *testing.T) {
	h := newHarness(t, nil)
	b := newBrowser(t, h)
	b.login("admin-user", "password-admin")
	code, body := b.post("/users/add", url.Values{"name": {"dave"}, "role": {"operator"}, "password": {"password-dave"}})
	if code != 200 || !strings.Contains(body, "added dave (operator)") || !strings.Contains(body, `data-user="dave"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body := b.post("/users/add", url.Values{"name": {"eve"}, "role": {"operator"}, "password": {"short"}}); code != 400 || !strings.Contains(body, "password") {
		t.Fatalf("short password: %d %s", code, body)
	}
	code, body = b.post("/users/token", url.Values{"name": {"dave"}})
	if code != 200 || !strings.Contains(body, `id="new-token"`) || !strings.Contains(body, store.TokenPrefix) {
		t.Fatalf("token: %d %s", code, body)
	}
	tok := body[strings.Index(body, store.TokenPrefix):]
	tok = tok[:strings.Index(tok, "<")]
	if r := h.req("GET", "/api/v1/me", tok, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"dave"`) {
		t.Fatalf("minted token: %d %s", r.Status, r.Body)
	}
	if code, body := b.post("/users/delete", url.Values{"name": {"dave"}}); code != 200 || strings.Contains(body, `data-user="dave"`) {
		t.Fatalf("delete: %d %s", code, body)
	}
	h.want(h.req("GET", "/api/v1/me", tok, nil), 401, CodeUnauth)
	o := newBrowser(t, h)
	o.login("operator-user", "password-operator")
	if code, _ := o.get("/users"); code != 403 {
		t.Fatalf("operator on /users: %d", code)
	}
}

// Bulk from the Apps page: preview every selected app, confirm (typing
// force when services would be left empty); one batch in the audit log.
func TestAppsBulkPage(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0},
		svcCount{"providers:com.b.B::", "app-2", 1, 2, 1, 1})
	b := newBrowser(t, h)
	b.login("operator-user", "password-operator")
	if _, body := b.get("/apps"); !strings.Contains(body, `form="bulk"`) {
		t.Fatal("no bulk selection")
	}
	code, body := b.post("/apps/bulk", url.Values{"apps": {"app-1", "app-2"}, "mode": {"native"}})
	if code != 200 || !strings.Contains(body, "Switch 2 app(s) to native") || !strings.Contains(body, `<td class="vanish">2</td>`) ||
		!strings.Contains(body, "1 service(s) would be left empty") {
		t.Fatalf("bulk preview: %d %s", code, body)
	}
	form := url.Values{"apps": {"app-1", "app-2"}, "mode": {"native"}, "confirmed": {"1"}}
	if code, _ := b.post("/apps/bulk", form); code != 409 {
		t.Fatalf("bulk without force: %d", code)
	}
	form.Set("confirm", "force")
	code, body = b.post("/apps/bulk", form)
	if code != 200 || !strings.Contains(body, "2 app(s) switched to native (batch ") {
		t.Fatalf("bulk: %d %s", code, body)
	}
	rows, err := h.st.ListAudit(context.Background(), store.AuditFilter{Action: "app.mode"})
	if err != nil || len(rows) != 2 || rows[0].BatchID == "" || rows[0].BatchID != rows[1].BatchID {
		t.Fatalf("audit %+v %v", rows, err)
	}
	if code, _ := b.post("/apps/bulk", url.Values{"mode": {"sync"}}); code != 400 {
		t.Fatalf("empty selection: %d", code)
	}
}

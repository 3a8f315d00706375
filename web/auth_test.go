package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/mysqlserver"
	"github.com/ferrysync/ferry/store"
)

// Logging in sets an HttpOnly, SameSite=Lax session cookie that
// authenticates later calls until logout; failed logins are throttled
// through the store (so every replica counts them).
func TestLoginSessionAndThrottle(t *testing.T) {
	h := newHarness(t, nil)
	r := h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "operator-user", "password": "password-operator"}), 200, "")
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || cookie.Value == "" || cookie.Path != "/" {
		t.Fatalf("session cookie %+v", cookie)
	}
	withCookie := func(method, path string, body any, headers ...string) response {
		return h.req(method, path, "", body, append([]string{"Cookie", SessionCookie + "=" + cookie.Value}, headers...)...)
	}
	if r := h.want(withCookie("GET", "/api/v1/me", nil), 200, ""); !strings.Contains(string(r.Body), `"operator-user"`) || !strings.Contains(string(r.Body), `"operator"`) {
		t.Fatalf("me: %s", r.Body)
	}
	h.want(withCookie("POST", "/api/v1/tasks/1/pause", nil), 404, CodeNotFound) // an operator's write, through the cookie
	// A write from another origin is refused even with a valid session.
	h.want(withCookie("PUT", "/api/v1/apps/x", map[string]any{"mode": "native"}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"), 403, CodeCrossOrigin)
	h.want(withCookie("PUT", "/api/v1/apps/x", map[string]any{"mode": "native"}, "Origin", "http://evil.example"), 403, CodeCrossOrigin)
	h.want(withCookie("PUT", "/api/v1/apps/x", map[string]any{"mode": "native"}, "Sec-Fetch-Site", "same-origin"), 200, "")
	if a, _ := h.st.GetApp(context.Background(), "x"); a == nil || a.ChangedBy != "operator-user" {
		t.Fatalf("same-origin write not applied: %+v", a)
	}
	// A form post (what a cross-site page can send without a preflight) is
	// refused for its content type.
	h.want(withCookie("PUT", "/api/v1/apps/x", "mode=excluded", "Content-Type", "text/plain"), 415, CodeUnsupported)
	h.want(withCookie("POST", "/api/v1/logout", nil), 204, "")
	h.want(withCookie("GET", "/api/v1/me", nil), 401, CodeUnauth)

	// Throttling: the limit of failures locks the name out, even for the
	// right password, and the answer says for how long.
	for i := 0; i < store.DefaultThrottle().Failures; i++ {
		h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "viewer-user", "password": fmt.Sprintf("wrong-%d", i)}), 401, CodeUnauth)
	}
	r = h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "viewer-user", "password": "password-viewer"}), 429, CodeThrottled)
	if !strings.Contains(r.field("message"), "try again in") {
		t.Fatalf("throttled: %s", r.Body)
	}
	if left, err := h.st.LoginLocked(context.Background(), "user:viewer-user"); err != nil || left <= 0 {
		t.Fatalf("lock not in the store: %v %v", left, err)
	}
	// The address (shared behind a load balancer) is not locked yet:
	// another user logs in from it.
	h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "admin-user", "password": "password-admin"}), 200, "")
	h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "", "password": "x"}), 400, CodeInvalid)
}

// Names from ZooKeeper are data: an app called <script> is JSON-escaped,
// quotes and non-ASCII survive intact, and every answer is nosniff JSON.
func TestHostileNamesRenderInert(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	evil := `<script>alert("x")</script>'é中`
	h.putCounts("w1", task, svcCount{"providers:com.x.\"<img src=x>\"::", evil, 1, 1, 1, 0})
	r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps", nil), 200, "")
	if strings.Contains(string(r.Body), "<script>") || strings.Contains(string(r.Body), "<img") {
		t.Fatalf("raw markup in JSON: %s", r.Body)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", r.Header)
	}
	var list struct {
		Apps []AppView `json:"apps"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Apps) != 1 || list.Apps[0].Name != evil {
		t.Fatalf("apps %+v (%v): name not round-tripped", list.Apps, err)
	}
	// The name works as a path parameter too.
	h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps/"+pathEscape(evil), map[string]any{"mode": "excluded", "force": true}), 200, "")
	if a, err := h.st.GetApp(context.Background(), evil); err != nil || a.Mode != store.AppExcluded {
		t.Fatalf("app %q: %+v %v", evil, a, err)
	}
}

func pathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// A database outage answers 503 JSON naming the store, never a stack
// trace; /metrics stays up.
func TestStoreOutageIs503(t *testing.T) {
	h := newHarness(t, nil)
	h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps", nil), 200, "")
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/apps", "/api/v1/workers", "/api/v1/events"} {
		r := h.want(h.as(store.RoleViewer, "GET", path, nil), 503, CodeUnavailable)
		if !strings.Contains(r.field("message"), "store does not answer") || strings.Contains(string(r.Body), "goroutine") {
			t.Fatalf("%s: %s", path, r.Body)
		}
	}
	h.want(h.req("POST", "/api/v1/login", "", map[string]any{"name": "admin-user", "password": "password-admin"}), 503, CodeUnavailable)
}

// Clusters and tasks: create, edit with the version read, a stale edit
// refused naming who changed the row, pause/resume/delete through the
// store, every change in the audit log.
func TestClustersAndTasks(t *testing.T) { clustersAndTasks(t, newHarness(t, nil)) }

func clustersAndTasks(t *testing.T, h *harness) {
	r := h.want(h.as(store.RoleAdmin, "POST", "/api/v1/zk-clusters", map[string]any{"name": "zk-a", "connectString": "127.0.0.1:2181, 127.0.0.1:2182"}), 201, "")
	var zk ZKClusterView
	_ = json.Unmarshal(r.Body, &zk)
	if zk.ID == 0 || zk.Version != 1 || zk.Root != "/dubbo" || zk.ConnectString != "127.0.0.1:2181,127.0.0.1:2182" || zk.UpdatedBy != "admin-user" {
		t.Fatalf("zk cluster %+v", zk)
	}
	h.want(h.as(store.RoleAdmin, "POST", "/api/v1/zk-clusters", map[string]any{"name": "zk-a", "connectString": "h:1"}), 409, CodeConflict)
	pw := "s3cret-pw"
	r = h.want(h.as(store.RoleAdmin, "POST", "/api/v1/registry-clusters", map[string]any{"name": "reg-a", "kind": "nacos",
		"serverList": []string{"127.0.0.1:8848/9848"}, "username": "nacos", "password": pw}), 201, "")
	if strings.Contains(string(r.Body), pw) {
		t.Fatalf("password answered: %s", r.Body)
	}
	var reg RegistryClusterView
	_ = json.Unmarshal(r.Body, &reg)
	if !reg.HasPassword || reg.Version != 1 {
		t.Fatalf("registry cluster %s", r.Body)
	}
	// An edit without a password keeps the stored one.
	h.want(h.as(store.RoleAdmin, "PUT", fmt.Sprintf("/api/v1/registry-clusters/%d", reg.ID), map[string]any{"name": "reg-a", "kind": "nacos",
		"serverList": []string{"127.0.0.1:8848/9848"}, "username": "nacos", "namespace": "dev", "version": 1}), 200, "")
	if got, _ := h.st.GetRegistryCluster(context.Background(), reg.ID); got.Password != pw || got.Namespace != "dev" || got.UpdatedBy != "admin-user" {
		t.Fatalf("after edit: %+v", got)
	}
	if rows, _ := h.st.ListAudit(context.Background(), store.AuditFilter{Target: fmt.Sprintf("registry cluster %d", reg.ID)}); len(rows) != 2 ||
		strings.Contains(rows[0].After+rows[0].Before+rows[1].After, pw) {
		t.Fatalf("audit of the registry cluster: %+v", rows)
	}

	r = h.want(h.as(store.RoleAdmin, "POST", "/api/v1/tasks", map[string]any{"sourceClusterId": zk.ID, "destClusterId": reg.ID, "scope": "full"}), 201, "")
	var task TaskView
	_ = json.Unmarshal(r.Body, &task)
	if task.State != "running" || task.Version != 1 || task.CreatedBy != "admin-user" {
		t.Fatalf("task %+v", task)
	}
	// Two admins edit version 1: the second is refused naming the first.
	edit := map[string]any{"sourceClusterId": zk.ID, "destClusterId": reg.ID, "scope": "full", "exclude": []string{"com.x.*"}, "version": 1}
	h.want(h.as(store.RoleAdmin, "PUT", fmt.Sprintf("/api/v1/tasks/%d", task.ID), edit), 200, "")
	r = h.want(h.as(store.RoleAdmin, "PUT", fmt.Sprintf("/api/v1/tasks/%d", task.ID), edit), 409, CodeStale)
	if r.field("changedBy") != "admin-user" {
		t.Fatalf("stale task edit: %s", r.Body)
	}
	r = h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/tasks/%d/pause", task.ID), map[string]any{"version": 2}), 200, "")
	if !strings.Contains(string(r.Body), `"state":"paused"`) || !strings.Contains(string(r.Body), `"version":3`) {
		t.Fatalf("pause: %s", r.Body)
	}
	h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/tasks/%d/resume", task.ID), map[string]any{"version": 2}), 409, CodeStale)
	h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/tasks/%d/resume", task.ID), nil), 200, "")
	h.want(h.as(store.RoleAdmin, "DELETE", fmt.Sprintf("/api/v1/zk-clusters/%d", zk.ID), nil), 409, CodeConflict) // in use
	h.want(h.as(store.RoleAdmin, "DELETE", fmt.Sprintf("/api/v1/tasks/%d", task.ID), nil), 204, "")
	if got, _ := h.st.GetTask(context.Background(), task.ID); got.State != store.TaskDeleted {
		t.Fatalf("deleted task is %s", got.State)
	}
	h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/tasks/%d/resume", task.ID), nil), 409, CodeConflict)
	h.want(h.as(store.RoleAdmin, "DELETE", fmt.Sprintf("/api/v1/zk-clusters/%d", zk.ID), nil), 204, "")
	h.want(h.as(store.RoleViewer, "GET", fmt.Sprintf("/api/v1/zk-clusters/%d", zk.ID), nil), 404, CodeNotFound)

	page, err := h.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i := len(page) - 1; i >= 0; i-- {
		actions = append(actions, page[i].Action)
	}
	want := "zk_cluster.create registry_cluster.create registry_cluster.update task.create task.update task.pause task.resume task.delete zk_cluster.delete"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("audit actions\n got %s\nwant %s", got, want)
	}
	r = h.want(h.as(store.RoleViewer, "GET", "/api/v1/audit?limit=2", nil), 200, "")
	var ap AuditPage
	_ = json.Unmarshal(r.Body, &ap)
	if len(ap.Entries) != 2 || ap.Next == 0 {
		t.Fatalf("audit page %+v", ap)
	}
	r = h.want(h.as(store.RoleViewer, "GET", fmt.Sprintf("/api/v1/audit?limit=100&before=%d", ap.Next), nil), 200, "")
	_ = json.Unmarshal(r.Body, &ap)
	if len(ap.Entries) != len(page)-2 || ap.Next != 0 {
		t.Fatalf("second audit page %+v", ap)
	}
}

// Confirming held removals is one command for the whole cluster; the
// answer tracks which live workers applied it.
func TestConfirmRemovalsCommand(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1", "w2")
	r := h.want(h.as(store.RoleOperator, "POST", "/api/v1/removals/confirm", map[string]any{"taskId": task}), 202, "")
	var c CommandView
	_ = json.Unmarshal(r.Body, &c)
	if c.Kind != string(store.CommandConfirmRemovals) || c.TaskID != task || c.LiveWorkers != 2 || len(c.Pending) != 2 || c.CreatedBy != "operator-user" {
		t.Fatalf("command %s", r.Body)
	}
	pending, err := h.st.PendingCommands(context.Background(), "w1", 0)
	if err != nil || len(pending) != 1 || pending[0].ID != c.ID {
		t.Fatalf("w1 pending %+v %v", pending, err)
	}
	if err := h.st.AckCommand(context.Background(), c.ID, "w1", "released 1 hold", ""); err != nil {
		t.Fatal(err)
	}
	r = h.want(h.as(store.RoleViewer, "GET", fmt.Sprintf("/api/v1/commands/%d", c.ID), nil), 200, "")
	_ = json.Unmarshal(r.Body, &c)
	if len(c.Acks) != 1 || c.Acks[0].Worker != "w1" || c.Acks[0].Result != "released 1 hold" || len(c.Pending) != 1 || c.Pending[0] != "w2" {
		t.Fatalf("after w1's ack: %s", r.Body)
	}
	h.want(h.as(store.RoleOperator, "POST", "/api/v1/removals/confirm", nil), 202, "") // every task
	h.want(h.as(store.RoleViewer, "GET", "/api/v1/commands/999", nil), 404, CodeNotFound)

	// Workers: shards and generation as the store holds them.
	if err := h.st.EnsureShards(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AcquireLeases(context.Background(), "w1", map[int]uint64{0: 0, 1: 0}, time.Minute); err != nil {
		t.Fatal(err)
	}
	r = h.want(h.as(store.RoleViewer, "GET", "/api/v1/workers", nil), 200, "")
	var wv WorkersView
	_ = json.Unmarshal(r.Body, &wv)
	if len(wv.Workers) != 2 || len(wv.Workers[0].Shards) != 2 || wv.Workers[0].MaxEpoch == 0 || wv.Workers[0].LeaseExpiresAt == nil ||
		!wv.Workers[1].Live || wv.FreeShards != 2 || wv.Generation < 1 {
		t.Fatalf("workers %s", r.Body)
	}
}

// Events: filters and pages.
func TestEventsFiltersAndPages(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	h.putCounts("w1", task, svcCount{"svc-a", "app-1", 1, 1, 1, 0})
	ctx := context.Background()
	var evs []store.Event
	for i := 0; i < 5; i++ {
		evs = append(evs, store.Event{Kind: store.EventRegistered, Service: "svc-a", Worker: "w1", Detail: fmt.Sprintf("task=task-%d n=%d", task, i)})
	}
	evs = append(evs, store.Event{Kind: store.EventError, Service: "svc-b", Worker: "w2", Detail: "task=task-99 boom"})
	if err := h.st.AppendEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	count := func(q string) (int, int64) {
		t.Helper()
		r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/events"+q, nil), 200, "")
		var p EventPage
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return len(p.Events), p.Next
	}
	for q, want := range map[string]int{"": 6, "?kind=error": 1, "?worker=w1": 5, "?service=svc-b": 1, "?app=app-1": 5,
		fmt.Sprintf("?task=%d", task): 5, "?task=99": 1, "?app=unknown": 0} {
		if n, _ := count(q); n != want {
			t.Errorf("events%s: %d, want %d", q, n, want)
		}
	}
	n, next := count("?limit=4")
	if n != 4 || next == 0 {
		t.Fatalf("first page %d next %d", n, next)
	}
	if n, next := count(fmt.Sprintf("?limit=4&before=%d", next)); n != 2 || next != 0 {
		t.Fatalf("second page %d next %d", n, next)
	}
}

// The same contracts on a real MariaDB.
func TestOnMariaDB(t *testing.T) {
	db := mysqlserver.ForTest(t)
	for name, fn := range map[string]func(*testing.T, *harness){"apps": appsContract, "clusters-and-tasks": clustersAndTasks} {
		t.Run(name, func(t *testing.T) {
			dsn, err := db.CreateDatabase(context.Background(), strings.ReplaceAll(name, "-", "_"))
			if err != nil {
				t.Fatal(err)
			}
			fn(t, newHarnessDSN(t, nil, dsn))
		})
	}
}

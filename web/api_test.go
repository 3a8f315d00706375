package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/store"
)

// route is one API route and the weakest role allowed to call it.
type route struct {
	method, path string
	body         any
	role         store.Role
}

func routesOf(task int64) []route {
	tp := func(f string) string { return fmt.Sprintf(f, task) }
	zk := map[string]any{"name": "zk-2", "connectString": "127.0.0.1:2182"}
	reg := map[string]any{"name": "reg-2", "kind": "bundled", "serverList": []string{"127.0.0.1:8849"}}
	tk := map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "full"}
	return []route{
		{"GET", "/api/v1/me", nil, store.RoleViewer},
		{"GET", "/api/v1/zk-clusters", nil, store.RoleViewer},
		{"GET", "/api/v1/zk-clusters/1", nil, store.RoleViewer},
		{"POST", "/api/v1/zk-clusters", zk, store.RoleAdmin},
		{"PUT", "/api/v1/zk-clusters/1", map[string]any{"name": "zk-main", "connectString": "127.0.0.1:2181"}, store.RoleAdmin},
		{"POST", "/api/v1/zk-clusters/1/test", nil, store.RoleAdmin},
		{"GET", "/api/v1/registry-clusters", nil, store.RoleViewer},
		{"GET", "/api/v1/registry-clusters/1", nil, store.RoleViewer},
		{"POST", "/api/v1/registry-clusters", reg, store.RoleAdmin},
		{"PUT", "/api/v1/registry-clusters/1", map[string]any{"name": "reg-main", "kind": "bundled", "serverList": []string{"127.0.0.1:8848"}}, store.RoleAdmin},
		{"POST", "/api/v1/registry-clusters/1/test", nil, store.RoleAdmin},
		{"GET", "/api/v1/tasks", nil, store.RoleViewer},
		{"GET", tp("/api/v1/tasks/%d"), nil, store.RoleViewer},
		{"POST", "/api/v1/tasks", tk, store.RoleAdmin},
		{"PUT", tp("/api/v1/tasks/%d"), tk, store.RoleAdmin},
		{"POST", tp("/api/v1/tasks/%d/pause"), nil, store.RoleOperator},
		{"POST", tp("/api/v1/tasks/%d/resume"), nil, store.RoleOperator},
		{"GET", "/api/v1/apps", nil, store.RoleViewer},
		{"GET", "/api/v1/apps/app-1", nil, store.RoleViewer},
		{"GET", "/api/v1/apps/app-1/preview?mode=native", nil, store.RoleViewer},
		{"PUT", "/api/v1/apps/app-2", map[string]any{"mode": "excluded"}, store.RoleOperator},
		{"PUT", "/api/v1/apps", map[string]any{"apps": []string{"app-3", "app-4"}, "mode": "native"}, store.RoleOperator},
		{"GET", "/api/v1/services", nil, store.RoleViewer},
		{"GET", "/api/v1/workers", nil, store.RoleViewer},
		{"GET", "/api/v1/generation", nil, store.RoleViewer},
		{"GET", "/api/v1/events", nil, store.RoleViewer},
		{"GET", "/api/v1/audit", nil, store.RoleViewer},
		{"POST", "/api/v1/removals/confirm", map[string]any{"taskId": task}, store.RoleOperator},
		{"GET", "/api/v1/users", nil, store.RoleAdmin},
		{"POST", "/api/v1/users", map[string]any{"name": "new-user", "role": "viewer", "password": "password-new"}, store.RoleAdmin},
		{"PUT", "/api/v1/users/victim", map[string]any{"role": "operator"}, store.RoleAdmin},
		{"POST", "/api/v1/users/victim/tokens", nil, store.RoleAdmin},
		{"DELETE", "/api/v1/users/victim", nil, store.RoleAdmin},
		{"DELETE", tp("/api/v1/tasks/%d"), nil, store.RoleAdmin},
		{"DELETE", "/api/v1/zk-clusters/2", nil, store.RoleAdmin},
		{"DELETE", "/api/v1/registry-clusters/2", nil, store.RoleAdmin},
		{"POST", "/api/v1/logout", nil, store.RoleViewer},
	}
}

// Every route answers 401 without credentials or with a wrong token, 403
// below its role, and serves its role and those above.
func TestRoutesAndRoles(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	h.putCounts("w1", task, svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0})
	if _, err := h.st.CreateUser(context.Background(), "victim", store.RoleViewer, "password-victim", "test"); err != nil {
		t.Fatal(err)
	}
	routes := routesOf(task)
	for _, rt := range routes {
		if r := h.req(rt.method, rt.path, "", rt.body); r.Status != http.StatusUnauthorized || r.field("code") != CodeUnauth {
			t.Errorf("%s %s without credentials: %d %s, want 401", rt.method, rt.path, r.Status, r.Body)
		}
		if r := h.req(rt.method, rt.path, store.TokenPrefix+"forged", rt.body); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s with a forged token: %d, want 401", rt.method, rt.path, r.Status)
		}
		if r := h.req(rt.method, rt.path, "", rt.body, "Authorization", "Basic YTpi"); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s with Basic auth: %d, want 401", rt.method, rt.path, r.Status)
		}
		for _, role := range []store.Role{store.RoleViewer, store.RoleOperator} {
			if role.Rank() >= rt.role.Rank() {
				continue
			}
			if r := h.as(role, rt.method, rt.path, rt.body); r.Status != http.StatusForbidden || r.field("code") != CodeForbidden {
				t.Errorf("%s %s as %s: %d %s, want 403", rt.method, rt.path, role, r.Status, r.Body)
			}
		}
	}
	for _, rt := range routes {
		for _, role := range []store.Role{store.RoleViewer, store.RoleOperator, store.RoleAdmin} {
			if role.Rank() < rt.role.Rank() || (rt.method != "GET" && role != rt.role) {
				continue // writes: once, by the weakest allowed role
			}
			r := h.as(role, rt.method, rt.path, rt.body)
			if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status >= 500 {
				t.Errorf("%s %s as %s: %d %s", rt.method, rt.path, role, r.Status, r.Body)
			}
			if r.Status != http.StatusNoContent && r.JSON == nil && !strings.HasPrefix(string(r.Body), "[") {
				t.Errorf("%s %s as %s: not JSON: %q", rt.method, rt.path, role, r.Body)
			}
		}
	}
	h.want(h.as(store.RoleViewer, "GET", "/api/v1/nope", nil), 404, CodeNotFound)
	h.want(h.req("GET", "/api/v1/nope", "", nil), 401, CodeUnauth) // every /api/v1 path, known or not
	h.want(h.req("GET", "/api/nope", "", nil), 404, CodeNotFound)
}

// The scriptable contract: GET /api/v1/apps lists every app seen with its
// counts; PUT /api/v1/apps/{name} applies a mode, refusing with 409 and
// the preview a change that leaves a service empty unless forced; every
// change is audited; a stale version is 409 naming who changed the app.
func TestAppsContract(t *testing.T) { appsContract(t, newHarness(t, nil)) }

func appsContract(t *testing.T, h *harness) {
	task := h.seed("w1", "w2")
	// app-1: service A only synced (would be left empty), service B also
	// registered natively (covered). app-2: synced. app-3: configured only.
	h.putCounts("w1", task,
		svcCount{"providers:com.a.A::", "app-1", 2, 2, 2, 0},
		svcCount{"providers:com.a.B::", "app-1", 1, 2, 1, 1},
		svcCount{"providers:com.b.C::", "app-2", 3, 3, 3, 0})
	if _, err := h.st.SetAppMode(context.Background(), "app-3", store.AppExcluded, "seed"); err != nil {
		t.Fatal(err)
	}

	var list struct {
		Apps []AppView `json:"apps"`
	}
	r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps", nil), 200, "")
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Apps) != 3 {
		t.Fatalf("apps = %+v, want app-1, app-2, app-3", list.Apps)
	}
	a1 := list.Apps[0]
	if a1.Name != "app-1" || a1.Mode != "sync" || a1.ZK != 3 || a1.Synced != 3 || a1.Native != 1 || !a1.Seen || a1.Version != 0 {
		t.Fatalf("app-1 = %+v", a1)
	}
	if a3 := list.Apps[2]; a3.Name != "app-3" || a3.Mode != "excluded" || a3.Seen || a3.Version != 1 {
		t.Fatalf("app-3 = %+v", a3)
	}
	for _, raw := range []string{`"name"`, `"mode"`, `"zk"`, `"synced"`, `"native"`, `"failing"`} {
		if !strings.Contains(string(r.Body), raw) {
			t.Errorf("GET /api/v1/apps lacks %s: %s", raw, r.Body)
		}
	}
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps?mode=excluded", nil), 200, ""); !strings.Contains(string(r.Body), "app-3") || strings.Contains(string(r.Body), "app-1") {
		t.Fatalf("mode filter: %s", r.Body)
	}
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps?search=APP-2", nil), 200, ""); !strings.Contains(string(r.Body), "app-2") || strings.Contains(string(r.Body), "app-1") {
		t.Fatalf("search: %s", r.Body)
	}

	// Dry run, then a refused change with the exact preview.
	var p Preview
	r = h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps/app-1/preview?mode=native", nil), 200, "")
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Vanish != 3 || p.Covered != 1 || len(p.EmptyServices) != 1 || p.EmptyServices[0] != "providers:com.a.A::" || p.From != "sync" || p.Services != 2 {
		t.Fatalf("preview = %+v", p)
	}
	gen0, _ := h.st.SettingsGeneration(context.Background())
	r = h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps/app-1", map[string]any{"mode": "native"}), 409, CodeWouldEmpty)
	var refused struct {
		Field   string  `json:"field"`
		Preview Preview `json:"preview"`
	}
	if err := json.Unmarshal(r.Body, &refused); err != nil || refused.Field != "force" || refused.Preview.Vanish != 3 || len(refused.Preview.EmptyServices) != 1 {
		t.Fatalf("409 body %s (%v)", r.Body, err)
	}
	if a, err := h.st.GetApp(context.Background(), "app-1"); err == nil {
		t.Fatalf("refused change wrote app-1: %+v", a)
	}
	if g, _ := h.st.SettingsGeneration(context.Background()); g != gen0 {
		t.Fatalf("refused change bumped the generation %d -> %d", gen0, g)
	}

	// Forced: applied, audited, generation bumped, workers pending.
	r = h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps/app-1", map[string]any{"mode": "native", "force": true}), 200, "")
	var res AppChangeResult
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	if res.App.Mode != "native" || res.App.Version != 1 || res.App.ChangedBy != "operator-user" || res.Applied == nil ||
		res.Applied.Generation != gen0+1 || res.Applied.LiveWorkers != 2 || res.Applied.AppliedBy != 0 {
		t.Fatalf("forced change = %s", r.Body)
	}
	if err := h.st.HeartbeatWorkerGeneration(context.Background(), "w1", res.Applied.Generation); err != nil {
		t.Fatal(err)
	}
	r = h.want(h.as(store.RoleViewer, "GET", fmt.Sprintf("/api/v1/generation?at=%d", res.Applied.Generation), nil), 200, "")
	if !strings.Contains(string(r.Body), `"appliedBy":1`) || !strings.Contains(string(r.Body), `"pending":["w2"]`) {
		t.Fatalf("applied on 1/2: %s", r.Body)
	}
	audit, err := h.st.ListAudit(context.Background(), store.AuditFilter{Target: "app app-1"})
	if err != nil || len(audit) != 1 || audit[0].Actor != "operator-user" || audit[0].Action != "app.mode" || audit[0].Before != "" ||
		!strings.Contains(audit[0].After, `"native"`) {
		t.Fatalf("audit = %+v, %v", audit, err)
	}

	// A stale write names who made the version it missed.
	h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps/app-1", map[string]any{"mode": "sync", "version": 1}), 200, "")
	r = h.want(h.as(store.RoleAdmin, "PUT", "/api/v1/apps/app-1", map[string]any{"mode": "excluded", "version": 1}), 409, CodeStale)
	if r.field("changedBy") != "operator-user" || r.JSON["changedAt"] == nil || !strings.Contains(r.field("message"), "operator-user") {
		t.Fatalf("stale answer %s", r.Body)
	}
	// Back to sync: the preview counts what returns, nothing vanishes.
	r = h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps/app-3/preview?mode=sync", nil), 200, "")
	if !strings.Contains(string(r.Body), `"vanish":0`) {
		t.Fatalf("preview to sync: %s", r.Body)
	}

	// Bulk: one transaction, one batch id on every audit row.
	r = h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps", map[string]any{"apps": []string{"app-2", "app-3"}, "mode": "native", "force": true}), 200, "")
	batch := r.field("batchId")
	if batch == "" {
		t.Fatalf("bulk: %s", r.Body)
	}
	if rows, _ := h.st.ListAudit(context.Background(), store.AuditFilter{BatchID: batch}); len(rows) != 2 {
		t.Fatalf("bulk audit rows %+v", rows)
	}
	// A bulk change refused for one app changes none.
	h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps", map[string]any{"apps": []string{"app-1", "app-2"}, "mode": "sync"}), 200, "")
	h.want(h.as(store.RoleOperator, "PUT", "/api/v1/apps", map[string]any{"apps": []string{"app-3", "app-1"}, "mode": "excluded"}), 409, CodeWouldEmpty)
	if a, _ := h.st.GetApp(context.Background(), "app-3"); a.Mode != store.AppNative {
		t.Fatalf("half-applied bulk change: app-3 is %s", a.Mode)
	}
	h.want(h.as(store.RoleViewer, "GET", "/api/v1/apps/never-seen", nil), 404, CodeNotFound)
}

// Bad input is 400 naming the field.
func TestValidationNamesTheField(t *testing.T) {
	h := newHarness(t, nil)
	task := h.seed("w1")
	cases := []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "", "connectString": "h:1"}, "name"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z", "connectString": "no-port"}, "connectString"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z", "connectString": "h:99999"}, "connectString"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z", "connectString": "h:1", "root": "dubbo"}, "root"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z", "connectString": "h:1", "sessionTimeoutMs": 5}, "sessionTimeoutMs"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z\x00", "connectString": "h:1"}, "name"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": "z", "connectString": "h:1", "colour": "red"}, "colour"},
		{"POST", "/api/v1/zk-clusters", map[string]any{"name": 7, "connectString": "h:1"}, "name"},
		{"PUT", "/api/v1/zk-clusters/abc", map[string]any{"name": "z", "connectString": "h:1"}, "id"},
		{"POST", "/api/v1/registry-clusters", map[string]any{"name": "r", "kind": "consul", "serverList": []string{"h:1"}}, "kind"},
		{"POST", "/api/v1/registry-clusters", map[string]any{"name": "r", "kind": "nacos", "serverList": []string{}}, "serverList"},
		{"POST", "/api/v1/registry-clusters", map[string]any{"name": "r", "kind": "nacos", "serverList": []string{"h"}}, "serverList"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 0, "destClusterId": 1, "scope": "full"}, "sourceClusterId"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 99, "destClusterId": 1, "scope": "full"}, "sourceClusterId"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 98, "scope": "full"}, "destClusterId"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "some"}, "scope"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "service"}, "service"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "full", "include": []string{"[a"}}, "include"},
		{"POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "full", "exclude": []string{""}}, "exclude"},
		{"PUT", "/api/v1/apps/app-1", map[string]any{"mode": "nacos"}, "mode"},
		{"PUT", "/api/v1/apps/app-1", map[string]any{"mode": "sync", "version": -1}, "version"},
		{"PUT", "/api/v1/apps", map[string]any{"apps": []string{}, "mode": "sync"}, "apps"},
		{"PUT", "/api/v1/apps", map[string]any{"apps": []string{"a", "a"}, "mode": "sync"}, "apps"},
		{"GET", "/api/v1/apps?mode=weird", nil, "mode"},
		{"GET", "/api/v1/apps/app-1/preview?mode=", nil, "mode"},
		{"GET", "/api/v1/services?task=x", nil, "task"},
		{"GET", "/api/v1/services?short=maybe", nil, "short"},
		{"GET", "/api/v1/events?limit=5000", nil, "limit"},
		{"GET", "/api/v1/events?before=-1", nil, "before"},
		{"GET", "/api/v1/audit?limit=x", nil, "limit"},
		{"POST", "/api/v1/removals/confirm", map[string]any{"taskId": 999}, "taskId"},
		{"POST", "/api/v1/users", map[string]any{"name": "<b>", "role": "viewer", "password": "long-enough"}, "name"},
		{"POST", "/api/v1/users", map[string]any{"name": "u", "role": "root", "password": "long-enough"}, "role"},
		{"POST", "/api/v1/users", map[string]any{"name": "u", "role": "viewer", "password": "short"}, "password"},
		{"POST", fmt.Sprintf("/api/v1/tasks/%d/pause", task), map[string]any{"version": "x"}, "version"},
	}
	for _, c := range cases {
		r := h.as(store.RoleAdmin, c.method, c.path, c.body)
		if r.Status != 400 || r.field("code") != CodeInvalid || r.field("field") != c.field || r.field("message") == "" {
			t.Errorf("%s %s %v: %d %s; want 400 naming %s", c.method, c.path, c.body, r.Status, r.Body, c.field)
		}
	}
	// Not JSON at all.
	r := h.req("POST", "/api/v1/zk-clusters", h.tokens[store.RoleAdmin], "name=x", "Content-Type", "application/x-www-form-urlencoded")
	h.want(r, 415, CodeUnsupported)
	h.want(h.as(store.RoleAdmin, "POST", "/api/v1/zk-clusters", "{"), 400, CodeInvalid)
	h.want(h.as(store.RoleAdmin, "POST", "/api/v1/zk-clusters", `{"name":"a","connectString":"h:1"}{}`), 400, CodeInvalid)
	h.want(h.as(store.RoleAdmin, "POST", "/api/v1/zk-clusters", `{"name":"`+strings.Repeat("x", 2<<20)+`"}`), 413, CodeBodyTooLarge)
	// A glob that matches nothing is warned about (and saved).
	h.putCounts("w1", task, svcCount{"providers:com.a.A::", "app-1", 1, 1, 1, 0})
	r = h.want(h.as(store.RoleAdmin, "POST", "/api/v1/tasks", map[string]any{"sourceClusterId": 1, "destClusterId": 1, "scope": "full",
		"include": []string{"com.a.*", "org.typo.*"}}), 201, "")
	if !strings.Contains(string(r.Body), `include pattern \"org.typo.*\" matches no service seen`) || strings.Contains(string(r.Body), `\"com.a.*\" matches`) {
		t.Fatalf("warnings: %s", r.Body)
	}
}

package web

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// The create and edit forms: a refusal is shown next to the field it
// names with what was typed kept, a stale save (409) says who changed the
// row, a save lands on the list page; only admins get the forms.
func TestEditForms(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	b := newBrowser(t, h)
	b.login("admin-user", "password-admin")

	// ZooKeeper cluster: a field-named refusal, then a create.
	code, body := b.get("/zk-clusters/edit")
	if code != 200 || !strings.Contains(body, `id="edit-form"`) || !strings.Contains(body, `name="connectString"`) {
		t.Fatalf("new zk form: %d %s", code, body)
	}
	zk := url.Values{"id": {"0"}, "version": {"0"}, "name": {"zk-<b>"}, "connectString": {"127.0.0.1"}, "root": {"/dubbo"}}
	code, body = b.post("/zk-clusters/edit", zk)
	if code != 400 || !strings.Contains(body, `<span class="error field-error" id="error-connectString">`) ||
		!strings.Contains(body, `value="zk-&lt;b&gt;"`) {
		t.Fatalf("bad connect string: %d %s", code, body)
	}
	zk.Set("connectString", "127.0.0.1:2181")
	code, body = b.post("/zk-clusters/edit", zk)
	if code != 200 || !strings.Contains(body, "saved ZooKeeper cluster 1 zk-&lt;b&gt; (version 1)") {
		t.Fatalf("create zk: %d %s", code, body)
	}
	if !strings.Contains(body, `href="/zk-clusters/edit?id=1"`) || !strings.Contains(body, `id="new-task"`) {
		t.Fatalf("tasks page lacks the edit links: %s", body)
	}

	// Edit: the form carries the row and its version; a second form opened
	// before the first save is stale.
	code, body = b.get("/zk-clusters/edit?id=1")
	if code != 200 || !strings.Contains(body, `value="127.0.0.1:2181"`) || !strings.Contains(body, `name="version" value="1"`) {
		t.Fatalf("edit zk form: %d %s", code, body)
	}
	zk.Set("id", "1")
	zk.Set("version", "1")
	zk.Set("name", "zk-main")
	if code, body := b.post("/zk-clusters/edit", zk); code != 200 || !strings.Contains(body, "(version 2)") {
		t.Fatalf("edit zk: %d %s", code, body)
	}
	zk.Set("name", "zk-late")
	code, body = b.post("/zk-clusters/edit", zk)
	if code != 409 || !strings.Contains(body, `id="form-stale"`) || !strings.Contains(body, "admin-user changed this row at ") ||
		!strings.Contains(body, `value="zk-late"`) {
		t.Fatalf("stale zk edit: %d %s", code, body)
	}
	if c, err := h.st.GetZKCluster(ctx, 1); err != nil || c.Name != "zk-main" {
		t.Fatalf("stale edit wrote: %+v %v", c, err)
	}

	// Registry cluster: a bad kind names the field; a blank password on an
	// edit keeps the stored one.
	reg := url.Values{"id": {"0"}, "version": {"0"}, "name": {"reg"}, "kind": {"consul"}, "serverList": {"127.0.0.1:8848\n127.0.0.2:8848"}, "password": {"pw"}}
	if code, body := b.post("/registry-clusters/edit", reg); code != 400 || !strings.Contains(body, `id="error-kind"`) {
		t.Fatalf("bad kind: %d %s", code, body)
	}
	reg.Set("kind", "bundled")
	if code, body := b.post("/registry-clusters/edit", reg); code != 200 || !strings.Contains(body, "saved registry cluster 1 reg (version 1)") {
		t.Fatalf("create registry: %d %s", code, body)
	}
	reg.Set("id", "1")
	reg.Set("version", "1")
	reg.Set("password", "")
	reg.Set("groupName", "G")
	if code, body := b.post("/registry-clusters/edit", reg); code != 200 || !strings.Contains(body, "(version 2)") {
		t.Fatalf("edit registry: %d %s", code, body)
	}
	rc, err := h.st.GetRegistryCluster(ctx, 1)
	if err != nil || rc.Password != "pw" || rc.GroupName != "G" || strings.Join(rc.ServerList, ",") != "127.0.0.1:8848,127.0.0.2:8848" {
		t.Fatalf("registry after edit: %+v %v", rc, err)
	}
	if code, body := b.get("/registry-clusters/edit?id=1"); code != 200 || strings.Contains(body, `value="pw"`) {
		t.Fatalf("the password is shown: %s", body)
	}

	// Task: an unknown cluster names the field; create; stale edit.
	task := url.Values{"id": {"0"}, "version": {"0"}, "sourceClusterId": {"9"}, "destClusterId": {"1"}, "scope": {"full"}, "include": {"com.a.*\n\ncom.b.*"}}
	if code, body := b.post("/tasks/edit", task); code != 400 || !strings.Contains(body, `id="error-sourceClusterId"`) {
		t.Fatalf("unknown source: %d %s", code, body)
	}
	task.Set("sourceClusterId", "1")
	if code, body := b.post("/tasks/edit", task); code != 200 || !strings.Contains(body, "saved task 1 (version 1)") {
		t.Fatalf("create task: %d %s", code, body)
	}
	tk, err := h.st.GetTask(ctx, 1)
	if err != nil || strings.Join(tk.Include, ",") != "com.a.*,com.b.*" {
		t.Fatalf("task: %+v %v", tk, err)
	}
	if code, body := b.get("/tasks/edit?id=1"); code != 200 || !strings.Contains(body, "com.a.*\ncom.b.*</textarea>") ||
		!strings.Contains(body, `<option value="1" selected>zk-main</option>`) {
		t.Fatalf("edit task form: %d %s", code, body)
	}
	task.Set("id", "1")
	task.Set("version", "1")
	task.Set("scope", "service")
	if code, body := b.post("/tasks/edit", task); code != 400 || !strings.Contains(body, `id="error-service"`) {
		t.Fatalf("service scope without a service: %d %s", code, body)
	}
	task.Set("scope", "full")
	task.Set("exclude", "com.a.Old")
	if code, body := b.post("/tasks/edit", task); code != 200 || !strings.Contains(body, "saved task 1 (version 2)") {
		t.Fatalf("edit task: %d %s", code, body)
	}
	if code, body := b.post("/tasks/edit", task); code != 409 || !strings.Contains(body, `id="form-stale"`) {
		t.Fatalf("stale task edit: %d %s", code, body)
	}

	// Below admin: no forms, no links.
	op := newBrowser(t, h)
	op.login("operator-user", "password-operator")
	for _, p := range []string{"/tasks/edit", "/zk-clusters/edit?id=1", "/registry-clusters/edit"} {
		if code, _ := op.get(p); code != 403 {
			t.Fatalf("operator GET %s: %d", p, code)
		}
	}
	if code, _ := op.post("/tasks/edit", task); code != 403 {
		t.Fatalf("operator POST task: %d", code)
	}
	if code, body := op.get("/tasks"); code != 200 || strings.Contains(body, "edit-link") || strings.Contains(body, "new-task") {
		t.Fatalf("operator sees edit links: %d", code)
	}
}

package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/store"
)

// diffWorker stands in for the worker's ServiceDiff (the real one is
// tested in syncer/worker and through real processes in cmd/ferry): a
// fixed diff for task 1, ErrTaskNotHere for any other.
type diffWorker struct{ *statusWorker }

func (diffWorker) ServiceDiff(_ context.Context, task int64, service string) (*ServiceDiff, error) {
	if task != 1 {
		return nil, fmt.Errorf("%w: task %d", ErrTaskNotHere, task)
	}
	z := &DiffInstance{Weight: 1, Enabled: true, Healthy: true, Metadata: map[string]string{"side": "zk", "evil": `<script>x</script>`}}
	r := &DiffInstance{Weight: 1, Enabled: true, Healthy: true, Metadata: map[string]string{"side": "registry"}}
	return &ServiceDiff{TaskID: task, ZKService: "com.a.A", Names: []NameDiff{{Service: "providers:com.a.A::",
		Missing: []DiffEntry{{Addr: "10.0.0.1:20880", ZK: z}},
		Extra:   []DiffEntry{{Addr: "10.0.0.2:20880", Registry: r, Ours: true}},
		Differs: []DiffEntry{{Addr: "10.0.0.3:20880", ZK: z, Registry: r, Keys: []string{"evil", "side"}, Ours: true}},
		Native:  []DiffEntry{{Addr: "10.0.0.4:20880", ZK: z, Registry: r, Skip: "with_nacos"}},
		Same:    5}}}, nil
}

// The diff of one service, as JSON and as a page linked from the services
// page: viewers may read it, a task not running here is 404, names from
// ZooKeeper render inert.
func TestServiceDiffRoutes(t *testing.T) {
	h := newHarness(t, diffWorker{newStatusWorker()})
	task := h.seed("w1")
	h.putCounts("w1", task, svcCount{"providers:com.a.A::", "app-1", 3, 1, 1, 0})

	path := "/api/v1/services/diff?" + url.Values{"task": {"1"}, "service": {"com.a.A"}}.Encode()
	h.want(h.req("GET", path, "", nil), 401, CodeUnauth)
	r := h.want(h.as(store.RoleViewer, "GET", path, nil), 200, "")
	if !strings.Contains(string(r.Body), `"missing":[{"addr":"10.0.0.1:20880"`) || !strings.Contains(string(r.Body), `"same":5`) {
		t.Fatalf("diff: %s", r.Body)
	}
	h.want(h.as(store.RoleViewer, "GET", "/api/v1/services/diff?task=2&service=com.a.A", nil), 404, CodeNotFound)
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/services/diff?service=com.a.A", nil), 400, CodeInvalid); r.field("field") != "task" {
		t.Fatalf("no task: %s", r.Body)
	}
	if r := h.want(h.as(store.RoleViewer, "GET", "/api/v1/services/diff?task=1", nil), 400, CodeInvalid); r.field("field") != "service" {
		t.Fatalf("no service: %s", r.Body)
	}

	b := newBrowser(t, h)
	b.login("viewer-user", "password-viewer")
	code, body := b.get("/services")
	link := `<a href="/services/diff?service=providers%3Acom.a.A%3A%3A&amp;task=1">providers:com.a.A::</a>`
	if code != 200 || !strings.Contains(body, link) {
		t.Fatalf("services page lacks the diff link: %d %s", code, body)
	}
	code, body = b.get("/services/diff?service=providers%3Acom.a.A%3A%3A&task=1")
	for _, want := range []string{`<span class="missing-count">1</span>`, `<span class="extra-count">1</span>`, `<span class="differs-count">1</span>`,
		`<span class="native-count">1</span>`, `<span class="same-count">5</span>`, `data-addr="10.0.0.3:20880" data-kind="differs"`,
		"differs: <b>evil</b>, <b>side</b>", "native (with_nacos)", "&lt;script&gt;x&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Fatalf("diff page lacks %q: %d %s", want, code, body)
		}
	}
	if strings.Contains(body, "<script>x") {
		t.Fatal("diff page renders metadata unescaped")
	}
	if code, _ := b.get("/services/diff?service=x&task=2"); code != 404 {
		t.Fatalf("diff page of a task not here: %d", code)
	}
}

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/store"
)

// startRegistry runs a real single-node bundled registry (auth off: its
// operator routes answer loopback callers) and returns it with its server
// list entry.
func startRegistry(t *testing.T) (*registryserver.Server, string) {
	t.Helper()
	rcfg := registryserver.DefaultConfig()
	rcfg.Port = 0
	rcfg.DataDir = t.TempDir()
	reg, err := registryserver.Open(rcfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	return reg, fmt.Sprintf("%s/%d", reg.HTTPAddr().String(), reg.GRPCAddr().(*net.TCPAddr).Port)
}

// regHTTP calls the registry's open API and fails unless it answers 200.
func regHTTP(t *testing.T, reg *registryserver.Server, method, path string, q url.Values) []byte {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+reg.HTTPAddr().String()+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s %v", method, path, resp.StatusCode, b, err)
	}
	return b
}

// hostsAt lists a service's enabled instances as ip:port, sorted.
func hostsAt(t *testing.T, reg *registryserver.Server, svc string) string {
	t.Helper()
	var ans struct {
		Hosts []struct {
			IP      string `json:"ip"`
			Port    int    `json:"port"`
			Enabled bool   `json:"enabled"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(regHTTP(t, reg, "GET", "/nacos/v1/ns/instance/list", url.Values{"serviceName": {svc}}), &ans); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range ans.Hosts {
		if h.Enabled {
			out = append(out, fmt.Sprintf("%s:%d", h.IP, h.Port))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Offline by IP on a real bundled registry: the preview lists exactly the
// instances at the address and the services left empty; the operator's
// offline disables them (other machines stay), audited; online brings
// them back. Viewers cannot, a Nacos cluster is refused, a bad IP names
// the field.
func TestOfflineByIP(t *testing.T) {
	h := newHarness(t, nil)
	reg, server := startRegistry(t)
	ctx := context.Background()
	bundled := &store.RegistryCluster{Name: "bundled", Kind: store.RegistryBundled, ServerList: []string{server}}
	nacos := &store.RegistryCluster{Name: "nacos", Kind: store.RegistryNacos, ServerList: []string{server}}
	for _, c := range []*store.RegistryCluster{bundled, nacos} {
		if err := h.st.CreateRegistryCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Persistent instances: nothing expires while the test runs.
	for _, in := range []struct {
		svc, ip string
		port    int
	}{{"svc-a", "10.0.0.1", 8080}, {"svc-a", "10.0.0.2", 8080}, {"svc-b", "10.0.0.1", 8080}, {"svc-b", "10.0.0.1", 9090},
		{"svc-b", "10.0.0.3", 8080}, {"svc-c", "10.0.0.1", 8080}, {"svc-d", "10.0.0.2", 8080}} {
		regHTTP(t, reg, "POST", "/nacos/v1/ns/instance", url.Values{"serviceName": {in.svc}, "ip": {in.ip},
			"port": {fmt.Sprint(in.port)}, "ephemeral": {"false"}})
	}
	base := fmt.Sprintf("/api/v1/registry-clusters/%d", bundled.ID)
	var p OfflinePreview
	poll.Until(t, time.Minute, "the preview sees the seven instances", func() bool {
		r := h.want(h.as(store.RoleOperator, "GET", base+"/offline?ip=10.0.0.1", nil), 200, "")
		p = OfflinePreview{}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return p.Scanned == 4 && p.Instances == 4
	})
	if len(p.Services) != 3 || p.Services[0].Service != "svc-a" || p.Services[0].Remaining != 1 ||
		strings.Join(p.Services[1].Instances, ",") != "10.0.0.1:8080,10.0.0.1:9090" || p.Services[1].Remaining != 1 ||
		p.Services[2].Service != "svc-c" || p.Services[2].Remaining != 0 || strings.Join(p.EmptyServices, ",") != "svc-c" {
		t.Fatalf("preview: %+v", p)
	}
	// One port only.
	r := h.want(h.as(store.RoleOperator, "GET", base+"/offline?ip=10.0.0.1&port=9090", nil), 200, "")
	if !strings.Contains(string(r.Body), `"instances":1,`) {
		t.Fatalf("port preview: %s", r.Body)
	}

	// Refusals.
	h.want(h.as(store.RoleViewer, "GET", base+"/offline?ip=10.0.0.1", nil), 403, CodeForbidden)
	h.want(h.as(store.RoleViewer, "POST", base+"/offline", map[string]any{"ip": "10.0.0.1"}), 403, CodeForbidden)
	h.want(h.req("POST", base+"/offline", "", map[string]any{"ip": "10.0.0.1"}), 401, CodeUnauth)
	if r := h.want(h.as(store.RoleOperator, "POST", base+"/offline", map[string]any{"ip": "10.0.0.x"}), 400, CodeInvalid); r.field("field") != "ip" {
		t.Fatalf("bad ip: %s", r.Body)
	}
	if r := h.want(h.as(store.RoleOperator, "POST", base+"/offline", map[string]any{"ip": "10.0.0.1", "port": 70000}), 400, CodeInvalid); r.field("field") != "port" {
		t.Fatalf("bad port: %s", r.Body)
	}
	if r := h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/registry-clusters/%d/offline", nacos.ID), map[string]any{"ip": "10.0.0.1"}), 400, CodeInvalid); r.field("field") != "cluster" {
		t.Fatalf("nacos cluster: %s", r.Body)
	}
	// A registry that does not answer: 502 with the client's error.
	down := &store.RegistryCluster{Name: "down", Kind: store.RegistryBundled, ServerList: []string{closedPort(t) + "/" + strings.Split(closedPort(t), ":")[1]}}
	if err := h.st.CreateRegistryCluster(ctx, down); err != nil {
		t.Fatal(err)
	}
	if r := h.want(h.as(store.RoleOperator, "POST", fmt.Sprintf("/api/v1/registry-clusters/%d/offline", down.ID), map[string]any{"ip": "10.0.0.1"}), 502, CodeRegistry); r.field("message") == "" {
		t.Fatalf("unreachable registry: %s", r.Body)
	} else {
		t.Logf("unreachable registry: %s", r.field("message"))
	}
	if hostsAt(t, reg, "svc-c") != "10.0.0.1:8080" {
		t.Fatal("a refused offline changed the registry")
	}

	// Offline: the machine's instances go, the others stay.
	r = h.want(h.as(store.RoleOperator, "POST", base+"/offline", map[string]any{"ip": "10.0.0.1"}), 200, "")
	var res OfflineResult
	if err := json.Unmarshal(r.Body, &res); err != nil || res.Enabled || res.Preview == nil || res.Preview.Instances != 4 {
		t.Fatalf("offline answer: %s", r.Body)
	}
	want := map[string]string{"svc-a": "10.0.0.2:8080", "svc-b": "10.0.0.3:8080", "svc-c": "", "svc-d": "10.0.0.2:8080"}
	poll.Until(t, time.Minute, "10.0.0.1 disabled on the registry", func() bool {
		for svc, w := range want {
			if hostsAt(t, reg, svc) != w {
				return false
			}
		}
		return true
	})
	audit, err := h.st.ListAudit(ctx, store.AuditFilter{Action: "ip.offline"})
	if err != nil || len(audit) != 1 || audit[0].Actor != "operator-user" || audit[0].Target != fmt.Sprintf("registry cluster %d ip 10.0.0.1", bundled.ID) {
		t.Fatalf("audit: %+v %v", audit, err)
	}

	// Online: back.
	h.want(h.as(store.RoleOperator, "POST", base+"/online", map[string]any{"ip": "10.0.0.1"}), 200, "")
	want = map[string]string{"svc-a": "10.0.0.1:8080,10.0.0.2:8080", "svc-b": "10.0.0.1:8080,10.0.0.1:9090,10.0.0.3:8080", "svc-c": "10.0.0.1:8080"}
	poll.Until(t, time.Minute, "10.0.0.1 enabled again", func() bool {
		for svc, w := range want {
			if hostsAt(t, reg, svc) != w {
				return false
			}
		}
		return true
	})
	if audit, err := h.st.ListAudit(ctx, store.AuditFilter{Action: "ip.online"}); err != nil || len(audit) != 1 {
		t.Fatalf("online audit: %+v %v", audit, err)
	}
}

// The Offline page: preview, refusal without the typed IP when services
// would be left empty, offline, online.
func TestOfflinePage(t *testing.T) {
	h := newHarness(t, nil)
	reg, server := startRegistry(t)
	c := &store.RegistryCluster{Name: "bundled", Kind: store.RegistryBundled, ServerList: []string{server}}
	if err := h.st.CreateRegistryCluster(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	regHTTP(t, reg, "POST", "/nacos/v1/ns/instance", url.Values{"serviceName": {"only-here"}, "ip": {"10.0.0.9"}, "port": {"20880"}, "ephemeral": {"false"}})
	b := newBrowser(t, h)
	b.login("operator-user", "password-operator")
	id := fmt.Sprint(c.ID)
	var body string
	poll.Until(t, time.Minute, "the page previews the instance", func() bool {
		var code int
		code, body = b.get("/offline?cluster=" + id + "&ip=10.0.0.9")
		return code == 200 && strings.Contains(body, `<span class="instances">1</span>`)
	})
	if !strings.Contains(body, `<span class="empty-count">1</span>`) || !strings.Contains(body, `data-service="only-here"`) || !strings.Contains(body, `name="confirm"`) {
		t.Fatalf("offline page: %s", body)
	}
	form := url.Values{"cluster": {id}, "ip": {"10.0.0.9"}, "state": {"offline"}}
	if code, body := b.post("/offline", form); code != 400 || !strings.Contains(body, "type the IP 10.0.0.9 to confirm") {
		t.Fatalf("unconfirmed offline: %d %s", code, body)
	}
	if hostsAt(t, reg, "only-here") != "10.0.0.9:20880" {
		t.Fatal("an unconfirmed offline changed the registry")
	}
	form.Set("confirm", "10.0.0.9")
	if code, body := b.post("/offline", form); code != 200 || !strings.Contains(body, "10.0.0.9 is offline: 1 instance(s) in 1 service(s) disabled.") {
		t.Fatalf("offline: %d %s", code, body)
	}
	poll.Until(t, time.Minute, "disabled", func() bool { return hostsAt(t, reg, "only-here") == "" })
	form = url.Values{"cluster": {id}, "ip": {"10.0.0.9"}, "state": {"online"}}
	if code, body := b.post("/offline", form); code != 200 || !strings.Contains(body, "10.0.0.9 is back online") {
		t.Fatalf("online: %d %s", code, body)
	}
	poll.Until(t, time.Minute, "enabled", func() bool { return hostsAt(t, reg, "only-here") == "10.0.0.9:20880" })

	viewer := newBrowser(t, h)
	code, _ := viewer.post("/login", url.Values{"name": {"viewer-user"}, "password": {"password-viewer"}, "next": {"/offline"}})
	if code != 403 {
		t.Fatalf("viewer offline page: %d", code)
	}
}

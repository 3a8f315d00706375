package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

type env struct {
	t      testing.TB
	srv    *httptest.Server
	naming *fakeNaming
	store  *raftstore.Store
	clock  *fakeClock
	api    *API
}

func storeConfig(dir string) raftstore.Config {
	c := raftstore.DefaultConfig()
	c.Dir = dir
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	return c
}

// newEnv starts a Raft store on dir feeding a fake naming core, and the API
// on an httptest server.
func newEnv(t testing.TB, dir string) *env {
	t.Helper()
	return newEnvWith(t, dir, nil)
}

// newEnvWith is newEnv with the API's Deps adjusted by mod.
func newEnvWith(t testing.TB, dir string, mod func(*Deps)) *env {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	fn := newFakeNaming(clock.Now)
	log := testlog.New(t, slog.LevelDebug)
	st, err := raftstore.Open(storeConfig(dir), log, fn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WaitReady(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	deps := Deps{Naming: fn, Beater: fn, Store: st, Gatherer: reg, Now: clock.Now}
	if mod != nil {
		mod(&deps)
	}
	api, err := New(deps, DefaultConfig(), log, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	e := &env{t: t, srv: srv, naming: fn, store: st, clock: clock, api: api}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	http.DefaultClient.CloseIdleConnections()
	e.srv.Close()
	_ = e.store.Stop()
}

// call sends params in the query (GET, DELETE) or the form body (others).
func (e *env) call(method, path string, v url.Values) (int, string) {
	e.t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet || method == http.MethodDelete {
		req, err = http.NewRequest(method, e.srv.URL+path+"?"+v.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, e.srv.URL+path, strings.NewReader(v.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) mustOK(method, path string, v url.Values) string {
	e.t.Helper()
	code, body := e.call(method, path, v)
	if code != 200 {
		e.t.Fatalf("%s %s %v: %d %s", method, path, v, code, body)
	}
	return body
}

func (e *env) list(v url.Values) serviceInfoJSON {
	e.t.Helper()
	var si serviceInfoJSON
	if err := json.Unmarshal([]byte(e.mustOK("GET", "/nacos/v1/ns/instance/list", v)), &si); err != nil {
		e.t.Fatal(err)
	}
	return si
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func hostsOf(si serviceInfoJSON) []string {
	var out []string
	for _, h := range si.Hosts {
		out = append(out, fmt.Sprintf("%s:%d w=%g h=%t", h.IP, h.Port, h.Weight, h.Healthy))
	}
	return out
}

func TestRegisterListDeregisterV1(t *testing.T) {
	e := newEnv(t, t.TempDir())
	if b := e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "metadata", `{"k":"v","n":1}`)); b != "ok" {
		t.Fatalf("register body %q", b)
	}
	// As nacos-sdk-go v2 sends a persistent instance: grouped name, "enable",
	// empty clusterName, metadata "null".
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("namespaceId", "", "serviceName", "DEFAULT_GROUP@@sdk", "groupName", "DEFAULT_GROUP",
		"app", "", "clusterName", "", "ip", "10.0.0.3", "port", "80", "weight", "1", "enable", "true", "healthy", "true", "metadata", "null", "ephemeral", "false"))
	if si := e.list(vals("serviceName", "sdk")); len(si.Hosts) != 1 || si.Hosts[0].Ephemeral || si.Hosts[0].ClusterName != "DEFAULT" {
		t.Fatalf("sdk-style registration: %+v", si)
	}
	e.mustOK("DELETE", "/nacos/v1/ns/instance", vals("namespaceId", "", "serviceName", "DEFAULT_GROUP@@sdk", "clusterName", "", "ip", "10.0.0.3", "port", "80", "ephemeral", "false"))
	if si := e.list(vals("serviceName", "sdk")); len(si.Hosts) != 0 {
		t.Fatalf("sdk-style deregistration: %+v", si)
	}
	// Persistent, grouped name, k=v metadata, cluster, weight.
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "g1@@pers", "ip", "10.0.0.2", "port", "80", "ephemeral", "false",
		"metadata", "a=1,b=2", "clusterName", "c-1", "weight", "2.5"))

	si := e.list(vals("serviceName", "demo"))
	if si.Name != "DEFAULT_GROUP@@demo" || si.GroupName != "DEFAULT_GROUP" || si.CacheMillis != 10000 || !si.Valid || si.LastRefTime == 0 {
		t.Fatalf("service info = %+v", si)
	}
	if len(si.Hosts) != 1 {
		t.Fatalf("hosts = %+v", si.Hosts)
	}
	h := si.Hosts[0]
	if h.IP != "10.0.0.1" || h.Port != 8080 || h.Weight != 1 || !h.Healthy || !h.Enabled || !h.Ephemeral ||
		h.ClusterName != "DEFAULT" || h.ServiceName != "DEFAULT_GROUP@@demo" || h.Metadata["k"] != "v" || h.Metadata["n"] != "1" ||
		h.InstanceID != "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@demo" || h.InstanceHeartBeatInterval != 5000 ||
		h.InstanceHeartBeatTimeOut != 15000 || h.IPDeleteTimeout != 30000 {
		t.Fatalf("host = %+v", h)
	}
	// The raw JSON has Nacos' field names.
	raw := e.mustOK("GET", "/nacos/v1/ns/instance/list", vals("serviceName", "DEFAULT_GROUP@@demo"))
	for _, f := range []string{`"name":"DEFAULT_GROUP@@demo"`, `"hosts":[`, `"lastRefTime":`, `"checksum":`, `"clusters":""`, `"instanceId":`, `"clusterName":"DEFAULT"`} {
		if !strings.Contains(raw, f) {
			t.Errorf("list JSON lacks %s: %s", f, raw)
		}
	}

	ps := e.list(vals("serviceName", "pers", "groupName", "g1"))
	if len(ps.Hosts) != 1 || ps.Hosts[0].Ephemeral || ps.Hosts[0].Weight != 2.5 || ps.Hosts[0].ClusterName != "c-1" || ps.Hosts[0].Metadata["b"] != "2" {
		t.Fatalf("persistent = %+v", ps)
	}
	if got := e.store.Instances(naming.ServiceKey{Namespace: "public", Group: "g1", Name: "pers"}); len(got) != 1 {
		t.Fatalf("store has %+v", got)
	}
	// clusters filter.
	if si := e.list(vals("serviceName", "g1@@pers", "clusters", "DEFAULT")); len(si.Hosts) != 0 || si.Clusters != "DEFAULT" {
		t.Fatalf("cluster filter: %+v", si)
	}
	// detail
	var d instanceDetail
	if err := json.Unmarshal([]byte(e.mustOK("GET", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))), &d); err != nil {
		t.Fatal(err)
	}
	if d.Service != "DEFAULT_GROUP@@demo" || d.IP != "10.0.0.1" || d.ClusterName != "DEFAULT" || d.Metadata["k"] != "v" || d.InstanceID == "" {
		t.Fatalf("detail = %+v", d)
	}
	if code, _ := e.call("GET", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.9", "port", "8080")); code != 404 {
		t.Fatalf("detail of unknown ip: %d", code)
	}

	// service list
	var sl serviceListV1
	if err := json.Unmarshal([]byte(e.mustOK("GET", "/nacos/v1/ns/service/list", vals("pageNo", "1", "pageSize", "10"))), &sl); err != nil {
		t.Fatal(err)
	}
	if sl.Count != 1 || len(sl.Doms) != 1 || sl.Doms[0] != "demo" {
		t.Fatalf("service list = %+v", sl)
	}

	// deregister both
	e.mustOK("DELETE", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	e.mustOK("DELETE", "/nacos/v1/ns/instance", vals("serviceName", "g1@@pers", "ip", "10.0.0.2", "port", "80", "ephemeral", "false", "clusterName", "c-1"))
	if si := e.list(vals("serviceName", "demo")); len(si.Hosts) != 0 {
		t.Fatalf("after deregister: %+v", si.Hosts)
	}
	if got := e.store.Instances(naming.ServiceKey{Namespace: "public", Group: "g1", Name: "pers"}); len(got) != 0 {
		t.Fatalf("store still has %+v", got)
	}
}

func TestV2Envelope(t *testing.T) {
	e := newEnv(t, t.TempDir())
	type env2 struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	dec := func(s string) env2 {
		var r env2
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		return r
	}
	r := dec(e.mustOK("POST", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")))
	if r.Code != 0 || r.Message != "success" || string(r.Data) != `"ok"` {
		t.Fatalf("register v2 = %+v", r)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/instance/list", vals("serviceName", "demo")))
	var si serviceInfoJSON
	if err := json.Unmarshal(r.Data, &si); err != nil || len(si.Hosts) != 1 {
		t.Fatalf("list v2 = %s (%v)", r.Data, err)
	}
	// v2 beat answers the bare ObjectNode, as InstanceControllerV2.
	if b := e.mustOK("PUT", "/nacos/v2/ns/instance/beat", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")); b != `{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}` {
		t.Fatalf("beat v2 = %s", b)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/instance/list", vals("serviceName", "demo", "clusterName", "other")))
	if !strings.Contains(string(r.Data), `"hosts":[]`) {
		t.Fatalf("list v2 clusterName filter = %s", r.Data)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/service/list", nil)) // pages optional in v2
	if string(r.Data) != `{"count":1,"services":["demo"]}` {
		t.Fatalf("service list v2 = %s", r.Data)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/service", vals("serviceName", "demo")))
	if string(r.Data) != `{"namespaceId":"public","serviceName":"demo","groupName":"DEFAULT_GROUP","clusterMap":{},"metadata":{},"protectThreshold":0,"selector":{"type":"none","contextType":"NONE"},"ephemeral":true}` {
		t.Fatalf("service detail v2 = %s", r.Data)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/operator/metrics", nil))
	if string(r.Data) != `{"status":"UP"}` {
		t.Fatalf("metrics v2 = %s", r.Data)
	}
	r = dec(e.mustOK("PUT", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "weight", "3")))
	if r.Code != 0 {
		t.Fatalf("update v2 = %+v", r)
	}
	r = dec(e.mustOK("GET", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")))
	if !strings.Contains(string(r.Data), `"weight":3`) || !strings.Contains(string(r.Data), `"serviceName":"DEFAULT_GROUP@@demo"`) {
		t.Fatalf("detail v2 = %s", r.Data)
	}
	r = dec(e.mustOK("DELETE", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")))
	if r.Code != 0 {
		t.Fatalf("deregister v2 = %+v", r)
	}
	// Errors: the HTTP status and the envelope with Nacos' detail code.
	code, body := e.call("POST", "/nacos/v2/ns/instance", vals("serviceName", "demo", "port", "8080"))
	r = dec(body)
	if code != 400 || r.Code != 10000 || r.Message != "parameter missing" || !strings.Contains(string(r.Data), "'ip'") {
		t.Fatalf("v2 missing ip: %d %s", code, body)
	}
	code, body = e.call("POST", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "1.1.1.1", "port", "1", "weight", "-1"))
	if r = dec(body); code != 400 || r.Code != 21001 {
		t.Fatalf("v2 bad weight: %d %s", code, body)
	}
}

func TestBeat(t *testing.T) {
	e := newEnv(t, t.TempDir())
	// Light beat of an unknown instance: 20404, exactly as Nacos 2.x.
	if b := e.mustOK("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")); b != `{"clientBeatInterval":5000,"code":20404,"lightBeatEnabled":true}` {
		t.Fatalf("light beat unknown = %s", b)
	}
	// Full beat registers it.
	beat := `{"ip":"10.0.0.1","port":8080,"weight":2,"cluster":"","metadata":{"preserved.heart.beat.interval":"3000"},"scheduled":true,"period":5000,"stopped":false}`
	if b := e.mustOK("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "DEFAULT_GROUP@@demo", "beat", beat)); b != `{"clientBeatInterval":3000,"code":10200,"lightBeatEnabled":true}` {
		t.Fatalf("full beat = %s", b)
	}
	si := e.list(vals("serviceName", "demo"))
	if len(si.Hosts) != 1 || si.Hosts[0].Weight != 2 || si.Hosts[0].InstanceHeartBeatInterval != 3000 {
		t.Fatalf("after full beat: %+v", si.Hosts)
	}
	// Now a light beat is known. Params in the query also work for PUT.
	req, _ := http.NewRequest("PUT", e.srv.URL+"/nacos/v1/ns/instance/beat?"+vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080").Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}` {
		t.Fatalf("light beat known = %s", b)
	}
}

func TestBeatExpiry(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.2", "port", "8080",
		"metadata", "preserved.heart.beat.timeout=60000,preserved.ip.delete.timeout=90000"))
	e.clock.Advance(14 * time.Second)
	if got := hostsOf(e.list(vals("serviceName", "demo"))); len(got) != 2 || !strings.HasSuffix(got[0], "h=true") {
		t.Fatalf("at 14s: %v", got)
	}
	e.clock.Advance(2 * time.Second) // 16 s without a beat: unhealthy
	got := hostsOf(e.list(vals("serviceName", "demo")))
	if len(got) != 2 || got[0] != "10.0.0.1:8080 w=1 h=false" || got[1] != "10.0.0.2:8080 w=1 h=true" {
		t.Fatalf("at 16s: %v", got)
	}
	if si := e.list(vals("serviceName", "demo", "healthyOnly", "true")); len(si.Hosts) != 1 {
		t.Fatalf("healthyOnly at 16s: %v", hostsOf(si))
	}
	// A beat revives the first one.
	e.mustOK("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	if got := hostsOf(e.list(vals("serviceName", "demo"))); got[0] != "10.0.0.1:8080 w=1 h=true" {
		t.Fatalf("after beat: %v", got)
	}
	e.clock.Advance(31 * time.Second) // removed after 30 s; the other one's timeouts are longer
	if got := hostsOf(e.list(vals("serviceName", "demo"))); len(got) != 1 || got[0] != "10.0.0.2:8080 w=1 h=true" {
		t.Fatalf("at +31s: %v", got)
	}
	if b := e.mustOK("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080")); !strings.Contains(b, "20404") {
		t.Fatalf("beat after removal = %s", b)
	}
}

func TestUpdateIsOverrideAndSurvivesReregistration(t *testing.T) {
	e := newEnv(t, t.TempDir())
	// Update of a service that does not exist: 400 as Nacos.
	if code, body := e.call("PUT", "/nacos/v1/ns/instance", vals("serviceName", "nope", "ip", "10.0.0.1", "port", "1")); code != 400 || !strings.Contains(body, "service not found") {
		t.Fatalf("update unknown service: %d %s", code, body)
	}
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.2", "port", "8080"))
	e.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "enabled", "false"))
	e.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.2", "port", "8080", "weight", "7", "metadata", "x=y"))
	si := e.list(vals("serviceName", "demo"))
	if len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.2" || si.Hosts[0].Weight != 7 || si.Hosts[0].Metadata["x"] != "y" {
		t.Fatalf("after update: %+v", si.Hosts)
	}
	// Re-registration does not undo the operator's change.
	e.mustOK("DELETE", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080"))
	if si := e.list(vals("serviceName", "demo")); len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.2" {
		t.Fatalf("after re-registration: %v", hostsOf(si))
	}
	e.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "enabled", "true"))
	if si := e.list(vals("serviceName", "demo")); len(si.Hosts) != 2 {
		t.Fatalf("after enabling: %v", hostsOf(si))
	}
}

func TestPatch(t *testing.T) {
	e := newEnv(t, t.TempDir())
	if code, _ := e.call("PATCH", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "weight", "2")); code != 400 {
		t.Fatalf("patch of unknown instance: %d", code)
	}
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "metadata", "a=1"))
	e.mustOK("PATCH", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "weight", "2"))
	if b := e.mustOK("PATCH", "/nacos/v2/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "metadata", "b=2")); b != "ok" {
		t.Fatalf("v2 patch answer %q", b)
	}
	si := e.list(vals("serviceName", "demo"))
	if len(si.Hosts) != 1 || si.Hosts[0].Weight != 2 || si.Hosts[0].Metadata["a"] != "1" || si.Hosts[0].Metadata["b"] != "2" {
		t.Fatalf("after patches: %+v", si.Hosts)
	}
	o := e.store.Overrides(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "demo"})
	if len(o) != 1 || o[0].Enabled != nil || *o[0].Weight != 2 {
		t.Fatalf("override = %+v", o)
	}
	e.mustOK("PATCH", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "enabled", "false"))
	if si := e.list(vals("serviceName", "demo")); len(si.Hosts) != 0 {
		t.Fatalf("after disabling patch: %v", hostsOf(si))
	}
	// Patching the disabled instance (known only through its override) works.
	e.mustOK("PATCH", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", "10.0.0.1", "port", "8080", "enabled", "true"))
	if si := e.list(vals("serviceName", "demo")); len(si.Hosts) != 1 || si.Hosts[0].Weight != 2 {
		t.Fatalf("after enabling patch: %v", hostsOf(si))
	}
}

func TestKindClash(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "eph", "ip", "10.0.0.1", "port", "1"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "pers", "ip", "10.0.0.1", "port", "1", "ephemeral", "false"))
	for _, tc := range []struct{ name, svc, eph string }{
		{"persistent into ephemeral", "eph", "false"},
		{"ephemeral into persistent", "pers", "true"},
	} {
		code, body := e.call("POST", "/nacos/v1/ns/instance", vals("serviceName", tc.svc, "ip", "10.0.0.2", "port", "1", "ephemeral", tc.eph))
		if code != 400 || !strings.HasPrefix(body, "caused: Current service") {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
	// A service created through the API is persistent by default (Nacos).
	e.mustOK("POST", "/nacos/v1/ns/service", vals("serviceName", "created", "protectThreshold", "0.5", "metadata", "owner=ops"))
	if code, body := e.call("POST", "/nacos/v1/ns/instance", vals("serviceName", "created", "ip", "10.0.0.2", "port", "1")); code != 400 {
		t.Fatalf("ephemeral into created service: %d %s", code, body)
	}
	// A full beat into a persistent service is refused too.
	if code, _ := e.call("PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "pers", "beat", `{"ip":"10.0.0.3","port":1}`)); code != 400 {
		t.Fatalf("beat into persistent: %d", code)
	}
}

func TestServiceCRUD(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.mustOK("POST", "/nacos/v1/ns/service", vals("serviceName", "s", "groupName", "g", "protectThreshold", "0.5", "metadata", `{"owner":"ops"}`, "ephemeral", "true"))
	if code, body := e.call("POST", "/nacos/v1/ns/service", vals("serviceName", "g@@s")); code != 400 || !strings.Contains(body, "already exists") {
		t.Fatalf("create twice: %d %s", code, body)
	}
	var d serviceDetail
	if err := json.Unmarshal([]byte(e.mustOK("GET", "/nacos/v1/ns/service", vals("serviceName", "s", "groupName", "g"))), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "s" || d.GroupName != "g" || d.NamespaceID != "public" || d.ProtectThreshold != 0.5 || d.Metadata["owner"] != "ops" || !d.Ephemeral {
		t.Fatalf("get = %+v", d)
	}
	e.mustOK("PUT", "/nacos/v1/ns/service", vals("serviceName", "g@@s", "protectThreshold", "0.2"))
	m, ok := e.store.ServiceMeta(naming.ServiceKey{Namespace: "public", Group: "g", Name: "s"})
	if !ok || m.ProtectThreshold != 0.2 || m.Metadata["owner"] != "ops" || !m.Ephemeral {
		t.Fatalf("after update: %+v", m)
	}
	if code, _ := e.call("PUT", "/nacos/v1/ns/service", vals("serviceName", "g@@s", "protectThreshold", "2")); code != 400 {
		t.Fatalf("bad threshold: %d", code)
	}
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "g@@s", "ip", "10.0.0.1", "port", "1"))
	if code, body := e.call("DELETE", "/nacos/v1/ns/service", vals("serviceName", "g@@s")); code != 400 || !strings.Contains(body, "not empty") {
		t.Fatalf("delete non-empty: %d %s", code, body)
	}
	e.mustOK("DELETE", "/nacos/v1/ns/instance", vals("serviceName", "g@@s", "ip", "10.0.0.1", "port", "1"))
	e.mustOK("DELETE", "/nacos/v1/ns/service", vals("serviceName", "g@@s"))
	if code, _ := e.call("GET", "/nacos/v1/ns/service", vals("serviceName", "g@@s")); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
}

func TestOfflineByIP(t *testing.T) {
	e := newEnv(t, t.TempDir())
	for _, svc := range []string{"a", "b", "c"} {
		e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", svc, "ip", "10.0.0.1", "port", "8080"))
		e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", svc, "ip", "10.0.0.2", "port", "8080"))
	}
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "a", "ip", "10.0.0.1", "port", "9090"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.1", "port", "7000", "ephemeral", "false"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "a", "ip", "10.0.0.1", "port", "8080", "namespaceId", "dev"))

	count := func(svc, ns string) int {
		return len(e.list(vals("serviceName", svc, "namespaceId", ns)).Hosts)
	}
	// Only port 9090 first.
	e.mustOK("PUT", "/nacos/v1/ns/ferry/offline", vals("ip", "10.0.0.1", "port", "9090"))
	if n := count("a", "public"); n != 2 {
		t.Fatalf("a after port offline: %d", n)
	}
	// The whole machine.
	e.mustOK("PUT", "/nacos/v1/ns/ferry/offline", vals("ip", "10.0.0.1", "enabled", "false"))
	for _, svc := range []string{"a", "b", "c"} {
		si := e.list(vals("serviceName", svc))
		if len(si.Hosts) != 1 || si.Hosts[0].IP != "10.0.0.2" {
			t.Fatalf("%s after offline: %v", svc, hostsOf(si))
		}
	}
	if n := count("p", "public"); n != 0 {
		t.Fatalf("persistent after offline: %d", n)
	}
	if n := count("a", "dev"); n != 1 {
		t.Fatalf("other namespace touched: %d", n)
	}
	// Re-registration keeps it offline.
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "b", "ip", "10.0.0.1", "port", "8080"))
	if n := count("b", "public"); n != 1 {
		t.Fatalf("b after re-registration: %d", n)
	}
	// And back.
	e.mustOK("PUT", "/nacos/v2/ns/ferry/offline", vals("ip", "10.0.0.1", "enabled", "true"))
	for svc, want := range map[string]int{"a": 3, "b": 2, "c": 2, "p": 1} {
		if n := count(svc, "public"); n != want {
			t.Fatalf("%s after online: %d, want %d", svc, n, want)
		}
	}
	for _, v := range []url.Values{vals("port", "1"), vals("ip", "1.1.1.1", "port", "70000"), vals("ip", "a b")} {
		if code, _ := e.call("PUT", "/nacos/v1/ns/ferry/offline", v); code != 400 {
			t.Errorf("offline %v: %d", v, code)
		}
	}
}

func TestRestartKeepsPersistentAndOverrides(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.1", "port", "80", "ephemeral", "false", "metadata", "k=v"))
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.2", "port", "80", "ephemeral", "false"))
	e.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.2", "port", "80", "weight", "9"))
	e.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.1", "port", "80", "enabled", "false"))
	e.mustOK("POST", "/nacos/v1/ns/service", vals("serviceName", "meta", "protectThreshold", "0.3"))
	before := hostsOf(e.list(vals("serviceName", "p")))
	e.close()

	e2 := newEnv(t, dir)
	after := hostsOf(e2.list(vals("serviceName", "p")))
	if fmt.Sprint(before) != fmt.Sprint(after) || len(after) != 1 || after[0] != "10.0.0.2:80 w=9 h=true" {
		t.Fatalf("before %v, after %v", before, after)
	}
	var d serviceDetail
	if err := json.Unmarshal([]byte(e2.mustOK("GET", "/nacos/v1/ns/service", vals("serviceName", "meta"))), &d); err != nil || d.ProtectThreshold != 0.3 {
		t.Fatalf("service meta after restart: %+v %v", d, err)
	}
	// The override still applies after re-enable through the restarted store.
	e2.mustOK("PUT", "/nacos/v1/ns/instance", vals("serviceName", "p", "ip", "10.0.0.1", "port", "80", "enabled", "true"))
	if got := hostsOf(e2.list(vals("serviceName", "p"))); len(got) != 2 {
		t.Fatalf("after re-enable: %v", got)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, t.TempDir())
	big := strings.Repeat("x", 1100)
	tests := []struct {
		name   string
		method string
		path   string
		v      url.Values
		status int
		body   string
	}{
		{"missing serviceName", "POST", "/nacos/v1/ns/instance", vals("ip", "1.1.1.1", "port", "1"), 400, "caused: Param 'serviceName' is required.;"},
		{"missing ip", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "port", "1"), 400, "caused: Param 'ip' is required.;"},
		{"missing port", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1"), 400, "caused: Param 'port' is required.;"},
		{"port not a number", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "x"), 400, "Param 'port' is illegal"},
		{"port 0", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "0"), 400, "Param 'port' is illegal"},
		{"port 65536", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "65536"), 400, "Param 'port' is illegal"},
		{"weight > 10000", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "weight", "10001"), 400, "weights range"},
		{"weight NaN", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "weight", "NaN"), 400, "weights range"},
		{"weight text", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "weight", "heavy"), 400, "weights range"},
		{"ip with space", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1 2", "port", "1"), 400, "Param 'ip' is illegal"},
		{"ip too long", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", strings.Repeat("1", 129), "port", "1"), 400, "should not exceed 128"},
		{"cluster bad chars", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "clusterName", "a_b"), 400, "clusterName' should be characters"},
		{"service name @ prefix", "POST", "/nacos/v1/ns/instance", vals("serviceName", "@s", "ip", "1.1.1.1", "port", "1"), 400, "Param 'serviceName' is illegal"},
		{"service name whitespace", "POST", "/nacos/v1/ns/instance", vals("serviceName", "a b", "ip", "1.1.1.1", "port", "1"), 400, "Param 'serviceName' is illegal"},
		{"service name empty group", "POST", "/nacos/v1/ns/instance", vals("serviceName", "@@s", "ip", "1.1.1.1", "port", "1"), 400, "groupName can't be empty"},
		{"service name empty name", "POST", "/nacos/v1/ns/instance", vals("serviceName", "g@@", "ip", "1.1.1.1", "port", "1"), 400, "Param 'serviceName' is illegal"},
		{"service name too long", "POST", "/nacos/v1/ns/instance", vals("serviceName", strings.Repeat("s", 513), "ip", "1.1.1.1", "port", "1"), 400, "should not exceed 512"},
		{"group bad", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "groupName", "g/h", "ip", "1.1.1.1", "port", "1"), 400, "Param 'group' is illegal"},
		{"namespace bad", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "namespaceId", "a/b", "ip", "1.1.1.1", "port", "1"), 400, "namespaceId/tenant"},
		{"metadata malformed JSON", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "metadata", `{"a":`), 400, "metadata format incorrect"},
		{"metadata nested JSON", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "metadata", `{"a":{"b":1}}`), 400, "metadata format incorrect"},
		{"metadata k=v broken", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "metadata", "a=1,b"), 400, "metadata format incorrect"},
		{"metadata oversized", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "metadata", "k="+big), 400, "Param 'Metadata' is illegal, the param length should not exceed 1024."},
		{"beat times", "POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1", "metadata", "preserved.heart.beat.interval=20000"), 400, "heart beat interval"},
		{"beat malformed JSON", "PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "s", "beat", `{"ip":`), 400, "beat is not valid JSON"},
		{"beat without ip", "PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "s", "beat", `{"port":1}`), 400, "Param 'ip' is required"},
		{"beat bad port", "PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "s", "beat", `{"ip":"1.1.1.1","port":0}`), 400, "Param 'port' is illegal"},
		{"beat oversized metadata", "PUT", "/nacos/v1/ns/instance/beat", vals("serviceName", "s", "beat", `{"ip":"1.1.1.1","port":1,"metadata":{"k":"`+big+`"}}`), 400, "should not exceed 1024"},
		{"list missing service", "GET", "/nacos/v1/ns/instance/list", nil, 400, "caused: Param 'serviceName' is required.;"},
		{"list bad cluster", "GET", "/nacos/v1/ns/instance/list", vals("serviceName", "s", "clusters", "a,b c"), 400, "clusterName"},
		{"service list no page", "GET", "/nacos/v1/ns/service/list", vals("pageSize", "1"), 400, "Param 'pageNo' is required"},
		{"service list bad page", "GET", "/nacos/v1/ns/service/list", vals("pageNo", "0", "pageSize", "1"), 400, "pageNo"},
		{"detail unknown service", "GET", "/nacos/v1/ns/instance", vals("serviceName", "zz", "ip", "1.1.1.1", "port", "1"), 404, "no ips found"},
		{"unknown route", "GET", "/nacos/v1/ns/nothing", nil, 404, ""},
		{"wrong method", "PATCH", "/nacos/v1/ns/instance/list", nil, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.call(tt.method, tt.path, tt.v)
			if code != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("%d %q, want %d containing %q", code, body, tt.status, tt.body)
			}
		})
	}
	// Oversized body: 413, and the server keeps serving.
	req, _ := http.NewRequest("POST", e.srv.URL+"/nacos/v1/ns/instance", strings.NewReader("metadata="+strings.Repeat("a", 2<<20)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	// Nothing above registered anything.
	if sl := e.mustOK("GET", "/nacos/v1/ns/service/list", vals("pageNo", "1", "pageSize", "10")); sl != `{"count":0,"doms":[]}` {
		t.Fatalf("service list after bad input: %s", sl)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, t.TempDir())
	if b := e.mustOK("GET", "/nacos/live", nil); b != "ok" {
		t.Fatalf("live = %q", b)
	}
	if b := e.mustOK("GET", "/nacos/ready", nil); b != "ready" {
		t.Fatalf("ready = %q", b)
	}
	if b := e.mustOK("GET", "/nacos/v1/ns/operator/metrics", nil); b != `{"status":"UP"}` {
		t.Fatalf("operator metrics = %s", b)
	}
	e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "s", "ip", "1.1.1.1", "port", "1"))
	if b := e.mustOK("GET", "/nacos/v1/ns/operator/metrics", vals("onlyStatus", "false")); b != `{"status":"UP","serviceCount":1,"instanceCount":1}` {
		t.Fatalf("operator metrics full = %s", b)
	}
	m := e.mustOK("GET", "/metrics", nil)
	if !strings.Contains(m, `ferry_registry_http_requests_total{code="200",route="POST /nacos/v1/ns/instance"} 1`) ||
		!strings.Contains(m, `ferry_registry_http_request_seconds_count{route="GET /nacos/v1/ns/operator/metrics"}`) {
		t.Fatalf("metrics lack routes:\n%s", m)
	}
	_ = e.store.Stop()
	if code, _ := e.call("GET", "/nacos/ready", nil); code != 503 {
		t.Fatalf("ready after stop: %d", code)
	}
	if b := e.mustOK("GET", "/nacos/v1/ns/operator/metrics", nil); b != `{"status":"DOWN"}` {
		t.Fatalf("operator metrics after stop = %s", b)
	}
	if code, body := e.call("POST", "/nacos/v1/ns/instance", vals("serviceName", "s2", "ip", "1.1.1.1", "port", "1", "ephemeral", "false")); code != 503 {
		t.Fatalf("persistent write after stop: %d %s", code, body)
	}
}

func TestNewValidates(t *testing.T) {
	fn := newFakeNaming(time.Now)
	if _, err := New(Deps{Naming: fn, Beater: fn}, DefaultConfig(), nil, nil); err == nil {
		t.Fatal("New without Store succeeded")
	}
	c := DefaultConfig()
	c.MaxMetadataLength = 0
	if _, err := New(Deps{}, c, nil, nil); err == nil || !strings.Contains(err.Error(), "MaxMetadataLength") {
		t.Fatalf("bad config: %v", err)
	}
}

// The Raft store is what the server wiring passes as Store.
var _ Store = (*raftstore.Store)(nil)

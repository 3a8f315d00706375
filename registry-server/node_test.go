package registryserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
)

// openNode starts a whole node (Open) on free ports over dir.
func openNode(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = dir
	s, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Raft().WaitReady(10 * time.Second); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	return s
}

func call(t *testing.T, s *Server, method, path string, q url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr().String()+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type listAnswer struct {
	Hosts []struct {
		IP      string  `json:"ip"`
		Port    int     `json:"port"`
		Enabled bool    `json:"enabled"`
		Weight  float64 `json:"weight"`
	} `json:"hosts"`
}

func list(t *testing.T, s *Server, svc string) listAnswer {
	t.Helper()
	code, body := call(t, s, http.MethodGet, "/nacos/v1/ns/instance/list", url.Values{"serviceName": {svc}})
	if code != http.StatusOK {
		t.Fatalf("list %s: %d %s", svc, code, body)
	}
	var a listAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("list %s: %v in %s", svc, err, body)
	}
	return a
}

// TestOpenPersistsAcrossRestart drives the assembled node over HTTP: a
// persistent instance and an operator's override survive a restart on the
// same data directory; an ephemeral (beat-kept) instance is served too.
func TestOpenPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := openNode(t, dir)
	reg := url.Values{"serviceName": {"orders"}, "ip": {"10.0.0.7"}, "port": {"8080"}, "ephemeral": {"false"}}
	if code, body := call(t, s, http.MethodPost, "/nacos/v1/ns/instance", reg); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("register persistent: %d %q", code, body)
	}
	off := url.Values{"serviceName": {"orders"}, "ip": {"10.0.0.7"}, "port": {"8080"}, "ephemeral": {"false"}, "enabled": {"false"}}
	if code, body := call(t, s, http.MethodPut, "/nacos/v1/ns/instance", off); code != 200 {
		t.Fatalf("update: %d %q", code, body)
	}
	eph := url.Values{"serviceName": {"carts"}, "ip": {"10.0.0.8"}, "port": {"9090"}}
	if code, body := call(t, s, http.MethodPost, "/nacos/v1/ns/instance", eph); code != 200 {
		t.Fatalf("register ephemeral: %d %q", code, body)
	}
	if got := list(t, s, "carts"); len(got.Hosts) != 1 || got.Hosts[0].IP != "10.0.0.8" {
		t.Fatalf("carts = %+v, want the beat-kept instance", got)
	}
	// A v1 re-register replaces the instance (new weight), as Nacos does.
	eph.Set("weight", "3")
	if code, body := call(t, s, http.MethodPost, "/nacos/v1/ns/instance", eph); code != 200 {
		t.Fatalf("re-register ephemeral: %d %q", code, body)
	}
	if got := list(t, s, "carts"); len(got.Hosts) != 1 || got.Hosts[0].Weight != 3 {
		t.Fatalf("carts after re-register = %+v, want weight 3", got)
	}
	// Disabled instances are never returned.
	if got := list(t, s, "orders"); len(got.Hosts) != 0 {
		t.Fatalf("orders while disabled = %+v, want none", got)
	}
	s.Stop()

	s = openNode(t, dir)
	defer s.Stop()
	if got := list(t, s, "orders"); len(got.Hosts) != 0 {
		t.Fatalf("orders after restart = %+v, want still disabled (override kept)", got)
	}
	on := url.Values{"serviceName": {"orders"}, "ip": {"10.0.0.7"}, "port": {"8080"}, "ephemeral": {"false"}, "enabled": {"true"}}
	if code, body := call(t, s, http.MethodPut, "/nacos/v1/ns/instance", on); code != 200 {
		t.Fatalf("re-enable: %d %q", code, body)
	}
	if got := list(t, s, "orders"); len(got.Hosts) != 1 || got.Hosts[0].Port != 8080 {
		t.Fatalf("orders after restart and re-enable = %+v, want the persistent instance", got)
	}
	if code, _ := call(t, s, http.MethodGet, "/nacos/ready", nil); code != 200 {
		t.Fatalf("ready = %d", code)
	}
	if code, body := call(t, s, http.MethodGet, "/metrics", nil); code != 200 || !strings.Contains(body, "go_goroutines") && !strings.Contains(body, "ferry_") {
		t.Fatalf("metrics = %d", code)
	}
}

// A node without a member list answers Nacos' cluster routes as a
// one-member cluster: itself, UP (not 404).
func TestStandaloneClusterNodes(t *testing.T) {
	s := openNode(t, t.TempDir())
	defer s.Stop()
	code, body := call(t, s, "GET", "/nacos/v1/core/cluster/nodes", nil)
	if code != http.StatusOK {
		t.Fatalf("nodes: %d %s", code, body)
	}
	var ans struct {
		Code int `json:"code"`
		Data []struct {
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Code != 200 || len(ans.Data) != 1 || ans.Data[0].State != "UP" {
		t.Fatalf("nodes: %s", body)
	}
	if code, body := call(t, s, "GET", "/nacos/v1/core/cluster/health", nil); code != http.StatusOK || !strings.Contains(body, "UP") {
		t.Fatalf("health: %d %s", code, body)
	}
}

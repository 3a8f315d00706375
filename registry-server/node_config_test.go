package registryserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/registry-server/configsvc"
)

func publishConfig(t *testing.T, s *Server, dataID, content string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr().String()+"/nacos/v1/cs/configs",
		strings.NewReader(url.Values{"dataId": {dataID}, "group": {"DEFAULT_GROUP"}, "content": {content}, "type": {"yaml"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish %s: %d", dataID, resp.StatusCode)
	}
}

// TestOpenKeepsConfigsAcrossRestart: configs (with their history) written
// before a Raft snapshot and after it both survive a restart on the same
// data directory; the naming API on "/" still answers beside the config
// routes.
func TestOpenKeepsConfigsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := openNode(t, dir)
	publishConfig(t, s, "before.yaml", "a: 1")
	publishConfig(t, s, "before.yaml", "a: 2")
	if err := s.Raft().Snapshot(); err != nil {
		t.Fatal(err)
	}
	publishConfig(t, s, "after.yaml", "b: 1")
	s.Stop()

	s = openNode(t, dir)
	defer s.Stop()
	q := url.Values{"dataId": {"before.yaml"}, "group": {"DEFAULT_GROUP"}}
	if code, body := call(t, s, http.MethodGet, "/nacos/v1/cs/configs", q); code != 200 || body != "a: 2" {
		t.Fatalf("before.yaml after restart: %d %q", code, body)
	}
	q.Set("dataId", "after.yaml")
	if code, body := call(t, s, http.MethodGet, "/nacos/v1/cs/configs", q); code != 200 || body != "b: 1" {
		t.Fatalf("after.yaml after restart: %d %q", code, body)
	}
	it, err := s.ConfigService().Get(configsvc.Key{Group: "DEFAULT_GROUP", DataID: "before.yaml"})
	if err != nil || it.Type != "yaml" || len(it.History) != 1 || it.History[0].Content != "a: 1" {
		t.Fatalf("before.yaml item = %+v, %v", it, err)
	}
	if code, _ := call(t, s, http.MethodGet, "/nacos/v1/ns/instance/list", url.Values{"serviceName": {"none"}}); code != 200 {
		t.Fatalf("naming API beside the config routes: %d", code)
	}
	if code, body := call(t, s, http.MethodGet, "/metrics", nil); code != 200 || !strings.Contains(body, "ferry_config_configs 2") {
		t.Fatalf("metrics lack ferry_config_configs 2: %d", code)
	}
}

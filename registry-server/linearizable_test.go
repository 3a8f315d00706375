package registryserver

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func httpDo(t *testing.T, method, rawURL string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
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

// TestLinearizableReadThroughHTTP: a persistent instance registered on the
// leader is in a follower's answer to a read with consistency=linearizable
// right after the write returns, every time; a bad consistency value is a
// 400 naming the parameter.
func TestLinearizableReadThroughHTTP(t *testing.T) {
	nodes := openCluster(t, 3)
	var leader, follower *Server
	for _, s := range nodes {
		if s.Raft().Leading() {
			leader = s
		} else {
			follower = s
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	for i := range 20 {
		q := url.Values{"serviceName": {"lin"}, "ip": {"10.9.0.1"}, "port": {fmt.Sprint(1000 + i)}, "ephemeral": {"false"}}
		if code, body := httpDo(t, "POST", "http://"+leader.Config().Self()+"/nacos/v1/ns/instance?"+q.Encode()); code != 200 {
			t.Fatalf("register: %d %s", code, body)
		}
		code, body := httpDo(t, "GET", "http://"+follower.Config().Self()+"/nacos/v1/ns/instance/list?serviceName=lin&consistency=linearizable")
		if code != 200 || !strings.Contains(body, fmt.Sprintf(`"port":%d`, 1000+i)) {
			t.Fatalf("write %d: the follower's linearizable read: %d %s", i+1, code, body)
		}
	}
	if code, body := httpDo(t, "GET", "http://"+follower.Config().Self()+"/nacos/v1/ns/instance/list?serviceName=lin&consistency=strong"); code != 400 || !strings.Contains(body, "consistency") {
		t.Fatalf("a bad consistency: %d %s", code, body)
	}
}

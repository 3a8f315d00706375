package registryserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// TestRestartedMemberLoadsBeforeServing: a member restarted while the
// others hold 300 ephemeral instances (beat-kept clients over HTTP 1.x,
// spread over the members by responsibility) has every one of them the
// moment it reports ready — it loads a peer's snapshot, in chunks, before
// it serves, instead of filling in from the peers' verifies afterwards.
func TestRestartedMemberLoadsBeforeServing(t *testing.T) {
	nodes := openCluster(t, 3)
	const n = 300
	for i := range n {
		q := url.Values{"serviceName": {fmt.Sprintf("snap-%d", i%30)}, "ip": {"10.8.0.1"}, "port": {fmt.Sprint(2000 + i)}}
		if code, body := httpDo(t, "POST", "http://"+nodes[i%3].Config().Self()+"/nacos/v1/ns/instance?"+q.Encode()); code != 200 {
			t.Fatalf("register %d: %d %s", i, code, body)
		}
	}
	count := func(s *Server) int {
		total := 0
		for i := range 30 {
			total += len(s.Naming().Instances(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("snap-%d", i)}))
		}
		return total
	}
	for _, s := range nodes {
		poll.Until(t, 20*time.Second, s.Config().Self()+" holds every instance", func() bool { return count(s) == n })
	}
	cfg := nodes[2].Config()
	nodes[2].Stop()
	s, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	ready := func() bool {
		resp, err := http.Get("http://" + cfg.Self() + "/nacos/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	poll.Until(t, 30*time.Second, "the restarted member ready", ready)
	if got := count(s); got != n {
		t.Fatalf("the restarted member reports ready holding %d of %d instances", got, n)
	}
}

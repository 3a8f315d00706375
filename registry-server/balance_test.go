package registryserver

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registryclient"
)

// connCounts is every node's registered SDK connections.
func connCounts(nodes []*Server) []int {
	out := make([]int, len(nodes))
	for i, s := range nodes {
		for _, c := range s.GRPC().Connections() {
			if c.Registered {
				out[i]++
			}
		}
	}
	return out
}

func within(counts []int, frac float64) bool {
	lo, hi := counts[0], counts[0]
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	return float64(hi-lo) <= frac*float64(hi)
}

// TestClusterRebalancesAfterRollingRestart: three members, 300 clients (100 under -race)
// that each know every member. A rolling restart (each member stopped —
// it hands its clients to the others — and started again) leaves the
// last member restarted nearly empty; with no manual call the members'
// balancers bring the counts within 20 % of each other, every client
// connected throughout the end state. The loader routes answer in Nacos'
// shape.
func TestClusterRebalancesAfterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts three members")
	}
	tune := func(c *Config) {
		c.Balance.Interval = 200 * time.Millisecond
		c.Balance.StableFor = time.Second
		c.Balance.MinAge = 500 * time.Millisecond
		c.Balance.Handoff = 3 * time.Second
	}
	nodes := openClusterWith(t, 3, tune)
	var servers []string
	for _, s := range nodes {
		servers = append(servers, s.Config().Self())
	}
	clients := 300
	if raceEnabled {
		clients = 100 // 300 race-detected clients take a minute on 2 cores; the mechanism is the same
	}
	for i := range clients {
		cfg := registryclient.DefaultConfig()
		cfg.Servers = servers
		cfg.Logger = slog.New(slog.DiscardHandler)
		c, err := registryclient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = i
	}
	total := func() int {
		n := 0
		for _, c := range connCounts(nodes) {
			n += c
		}
		return n
	}
	poll.Until(t, 30*time.Second, "every client connected", func() bool { return total() == clients })

	for i := range nodes {
		cfg := nodes[i].Config()
		nodes[i].Stop()
		s, err := Open(cfg, testlog.New(t, slog.LevelWarn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		nodes[i] = s
		if err := s.Raft().WaitReady(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, fmt.Sprintf("every client connected after restarting member %d", i), func() bool {
			return total() == clients
		})
		t.Logf("after restarting member %d: %v", i, connCounts(nodes))
	}
	start := time.Now()
	poll.Until(t, 60*time.Second, "connection counts within 20% of each other", func() bool {
		c := connCounts(nodes)
		return total() == clients && within(c, 0.2)
	})
	t.Logf("balanced %v after the last restart: %v", time.Since(start).Round(time.Millisecond), connCounts(nodes))

	// The loader routes (loopback with auth off).
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + nodes[0].Config().Self() + "/nacos/v2/core/loader/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("cluster"); code != 200 || !strings.Contains(body, `"sdkConCount"`) || !strings.Contains(body, `"completed":true`) {
		t.Fatalf("cluster: %d %s", code, body)
	}
	if code, body := get("current"); code != 200 || !strings.Contains(body, `"connectionId"`) {
		t.Fatalf("current: %d %s", code, body)
	}
	if code, body := get("reloadCurrent?count=x"); code != 400 || !strings.Contains(body, "count") {
		t.Fatalf("reloadCurrent with a bad count: %d %s", code, body)
	}
	if code, body := get("reloadClient?connectionId=nope"); code != 404 {
		t.Fatalf("reloadClient of an unknown connection: %d %s", code, body)
	}
	if code, body := get("smartReloadCluster?loaderFactor=0.1"); code != 200 || body != "Ok" {
		t.Fatalf("smartReloadCluster: %d %s", code, body)
	}
}

package registryserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/naming"
)

// openCluster starts n whole nodes (Open) in this process as one cluster.
func openCluster(tb testing.TB, n int) []*Server { tb.Helper(); return openClusterWith(tb, n, nil) }

// openClusterWith is openCluster with each node's config adjusted by tune
// (nil: defaults).
func openClusterWith(tb testing.TB, n int, tune func(*Config)) []*Server {
	tb.Helper()
	ports, err := membership.FreePorts("127.0.0.1", n, 0)
	if err != nil {
		tb.Fatal(err)
	}
	var members []string
	for _, p := range ports {
		members = append(members, "127.0.0.1:"+strconv.Itoa(p))
	}
	var nodes []*Server
	for i, p := range ports {
		cfg := DefaultConfig()
		cfg.Port = p
		cfg.DataDir = filepath.Join(tb.TempDir(), fmt.Sprint(i))
		cfg.Members, cfg.Advertise = members, members[i]
		if tune != nil {
			tune(&cfg)
		}
		s, err := Open(cfg, testlog.New(tb, slog.LevelWarn), nil)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(s.Stop)
		nodes = append(nodes, s)
	}
	for _, s := range nodes {
		if err := s.Raft().WaitReady(30 * time.Second); err != nil {
			tb.Fatal(err)
		}
	}
	return nodes
}

// BenchmarkClusterReplicationLag: a beat-kept instance registered over
// HTTP on one member of three (forwarded to the responsible one when
// needed) until every member's naming view holds it (polled every 1 ms):
// Distro's end-to-end replication lag. Reports p50 and p99.
//
//	go test -run '^$' -bench ClusterReplicationLag -benchtime 200x ./registry-server/
func BenchmarkClusterReplicationLag(b *testing.B) {
	nodes := openCluster(b, 3)
	key := naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "lag"}
	client := &http.Client{Timeout: 10 * time.Second}
	lags := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ip := fmt.Sprintf("10.8.%d.%d", i>>8&255, i&255)
		q := url.Values{"serviceName": {"lag"}, "ip": {ip}, "port": {"80"}}
		start := time.Now()
		resp, err := client.Post("http://"+nodes[i%3].HTTPAddr().String()+"/nacos/v1/ns/instance?"+q.Encode(), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		for _, s := range nodes {
			for {
				found := false
				for _, in := range s.Naming().Instances(key) {
					found = found || in.IP == ip
				}
				if found {
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("%s never reached %s", ip, s.Config().Self())
				}
				time.Sleep(time.Millisecond) // polling interval of the measurement
			}
		}
		lags = append(lags, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}

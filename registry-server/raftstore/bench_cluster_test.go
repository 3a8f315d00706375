package raftstore

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

func quietLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

// BenchmarkClusterWrites measures persistent-instance writes per second
// through Raft over loopback TCP: one voter against three, written on the
// leader and on a follower (forwarded), 16 writers in parallel (the HTTP
// API's concurrency), plus one writer (the commit latency) and 64 (a
// busier estate). ns/op is wall time per committed write.
//
//	go test -run '^$' -bench 'BenchmarkClusterWrites/.*w(16|64)' -benchtime 2000x ./registry-server/raftstore/
func BenchmarkClusterWrites(b *testing.B) {
	for _, tc := range []struct {
		name    string
		nodes   int
		via     string
		writers int
	}{
		{"1node-w16", 1, "leader", 16}, {"3nodes-leader-w16", 3, "leader", 16}, {"3nodes-follower-w16", 3, "follower", 16},
		{"1node-w64", 1, "leader", 64}, {"3nodes-leader-w64", 3, "leader", 64},
		{"1node-w1", 1, "leader", 1}, {"3nodes-leader-w1", 3, "leader", 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			stores, _ := openPeersWith(b, tc.nodes, func(c *Config) {
				// The production timers: the tests' fast ones lose
				// leadership on this loaded machine.
				d := DefaultConfig()
				c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
			})
			leaderID, _ := stores[0].Leader()
			target := stores[0]
			for _, s := range stores {
				if (tc.via == "leader") == (s.cfg.ServerID == leaderID) {
					target = s
				}
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range tc.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							return
						}
						ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
						if err := target.PutInstance(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i%100)}, pinst(ip, 80)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

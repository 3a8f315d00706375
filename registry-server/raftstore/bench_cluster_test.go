package raftstore

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/naming"
)

func quietLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

// BenchmarkClusterWrites measures persistent-instance writes per second
// through Raft over loopback TCP: one voter against three, written on the
// leader and on a follower (forwarded), 16 writers in parallel (the HTTP
// API's concurrency). ns/op is wall time per committed write.
//
//	go test -run '^$' -bench BenchmarkClusterWrites -benchtime 2000x ./registry-server/raftstore/
func BenchmarkClusterWrites(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes int
		via   string
	}{{"nodes=1", 1, "leader"}, {"nodes=3/leader", 3, "leader"}, {"nodes=3/follower", 3, "follower"}} {
		b.Run(tc.name, func(b *testing.B) {
			stores, _ := openPeers(b, tc.nodes)
			leaderID, _ := stores[0].Leader()
			target := stores[0]
			for _, s := range stores {
				if (tc.via == "leader") == (s.cfg.ServerID == leaderID) {
					target = s
				}
			}
			var n atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS (2 here) = 16 writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
					if err := target.PutInstance(naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: fmt.Sprintf("svc-%d", i%100)}, pinst(ip, 80)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

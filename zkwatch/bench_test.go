package zkwatch_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/internal/zkwatchbench"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkCatalog seeds ZKWATCH_BENCH_SERVICES × ZKWATCH_BENCH_INSTANCES
// (default 3000 × 10) into a private ZooKeeper, then measures cold start to
// Synced, heap per provider, and write→notification latency under churn of
// 100 writes/s (50 replacements/s, each a create and a delete).
func BenchmarkCatalog(b *testing.B) {
	srv := zkserver.ForTest(b)
	for i := 0; i < b.N; i++ {
		res, err := zkwatchbench.Run(context.Background(), zkwatchbench.Options{
			Servers:   []string{srv.Addr()},
			Root:      "bench" + strconv.Itoa(i),
			Services:  envInt("ZKWATCH_BENCH_SERVICES", 3000),
			Instances: envInt("ZKWATCH_BENCH_INSTANCES", 10),
			ChurnFor:  time.Duration(envInt("ZKWATCH_BENCH_CHURN_SECONDS", 10)) * time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Log(res)
		b.ReportMetric(res.ColdStart.Seconds(), "coldstart-s")
		b.ReportMetric(res.HeapPerProvider, "heap-B/provider")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(res.Missed), "missed")
	}
}

package zkwatch_test

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/zkserver"
	"github.com/ferrysync/ferry/internal/zkwatchbench"
	"github.com/ferrysync/ferry/zkwatch"
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

// BenchmarkParseProviderNode: decode + parse one encoded Java Dubbo 3.2 node name.
func BenchmarkParseProviderNode(b *testing.B) {
	raw := url.QueryEscape("dubbo://192.168.1.5:20882/org.hzz.GreetingService?anyhost=true&application=first-dubbo-provider&background=false&deprecated=false&dubbo=2.0.2&dynamic=true&environment=product&executor-management-mode=isolation&file-cache=true&generic=false&interface=org.hzz.GreetingService&methods=sayHi&pid=21056&prefer.serialization=fastjson2,hessian2&release=3.2.0&service-name-mapping=true&side=provider&timestamp=1683559572642")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := zkwatch.ParseProviderNode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

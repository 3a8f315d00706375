package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkHTTP measures loopback HTTP v1 calls against the fake naming
// core (the handler, parsing and JSON cost; the real Registry's own cost is
// measured by its package): beats (light), and instance lists of a
// 20-instance service.
func BenchmarkHTTP(b *testing.B) {
	e := newEnv(b, b.TempDir())
	for i := 0; i < 20; i++ {
		e.mustOK("POST", "/nacos/v1/ns/instance", vals("serviceName", "demo", "ip", fmt.Sprintf("10.0.0.%d", i), "port", "8080", "metadata", "side=provider,version=1.0.0"))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, method, url string) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(method, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("beat", func(b *testing.B) {
		run(b, "PUT", e.srv.URL+"/nacos/v1/ns/instance/beat?serviceName=demo&ip=10.0.0.1&port=8080")
	})
	b.Run("list20", func(b *testing.B) {
		run(b, "GET", e.srv.URL+"/nacos/v1/ns/instance/list?serviceName=demo")
	})
}

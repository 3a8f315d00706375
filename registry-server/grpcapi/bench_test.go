package grpcapi

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ferrysync/ferry/wire"
)

func benchInstances(n, base int) []wire.Instance {
	out := make([]wire.Instance, n)
	for i := range out {
		idx := base + i
		out[i] = winst("10."+strconv.Itoa(idx>>16&255)+"."+strconv.Itoa(idx>>8&255)+"."+strconv.Itoa(idx&255), 20880)
		out[i].Metadata = map[string]string{"side": "provider", "dubbo": "2.0.2", "interface": "com.example.S" + strconv.Itoa(idx%1000)}
	}
	return out
}

// BenchmarkBatchRegisterGRPC: BatchInstanceRequests of 100 over loopback,
// several client connections in parallel.
func BenchmarkBatchRegisterGRPC(b *testing.B) {
	s, _ := startServer(b, nil)
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := dialRaw(b, s.Addr().String(), true)
		batch := benchInstances(100, 0)
		for pb.Next() {
			i := next.Add(1)
			r, err := c.call(&wire.BatchInstanceRequest{NamingHeader: nh("svc" + strconv.FormatInt(i%1000, 10)), Type: wire.BatchRegisterInstance, Instances: batch})
			if err != nil || !r.Result().OK() {
				b.Fatal(err, r)
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "instances/s")
}

func BenchmarkQueryGRPC(b *testing.B) {
	s, _ := startServer(b, nil)
	c := dialRaw(b, s.Addr().String(), true)
	for i := 0; i < 100; i++ {
		c.mustCall(&wire.BatchInstanceRequest{NamingHeader: nh("q" + strconv.Itoa(i)), Type: wire.BatchRegisterInstance, Instances: benchInstances(10, i*10)})
	}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := dialRaw(b, s.Addr().String(), true)
		for pb.Next() {
			i := next.Add(1)
			c.lightCall(b, &wire.ServiceQueryRequest{NamingHeader: nh("q" + strconv.FormatInt(i%100, 10))}, wire.TypeQueryServiceResponse)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

func BenchmarkBatchBeatGRPC(b *testing.B) {
	s, _ := startServer(b, nil)
	items := make([]wire.BeatItem, 1000)
	for i, in := range benchInstances(1000, 0) {
		items[i] = wire.BeatItem{ServiceName: "svc" + strconv.Itoa(i%100), Instance: in}
	}
	c := dialRaw(b, s.Addr().String(), true)
	c.mustCall(&wire.FerryBatchBeatRequest{RegisterIfUnknown: true, Beats: items})
	for i, it := range items { // known now: light items
		items[i] = wire.BeatItem{ServiceName: it.ServiceName, IP: it.Instance.IP, Port: it.Instance.Port}
	}
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := dialRaw(b, s.Addr().String(), true)
		for pb.Next() {
			c.lightCall(b, &wire.FerryBatchBeatRequest{Beats: items}, wire.TypeFerryBatchBeatResponse)
		}
	})
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "beats/s")
}

// lightCall checks only the response type and its leading resultCode, so
// that the loopback client's JSON decoding does not eat the CPU the server
// is measured on.
func (c *rawClient) lightCall(b *testing.B, m wire.Message, wantType string) {
	p, err := wire.Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	out, err := c.req.Request(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	if out.GetMetadata().GetType() != wantType || !bytes.HasPrefix(out.GetBody().GetValue(), []byte(`{"resultCode":200,`)) {
		b.Fatalf("%s %.200s", out.GetMetadata().GetType(), out.GetBody().GetValue())
	}
}

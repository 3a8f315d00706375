package conformance

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	registryserver "github.com/ferrysync/ferry/registry-server"
	"github.com/ferrysync/ferry/registry-server/naming"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startRegistry runs the in-repo server on free loopback ports.
func startRegistry(t *testing.T) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	s, err := registryserver.New(cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func port(a net.Addr) uint64 { return uint64(a.(*net.TCPAddr).Port) }

// newClient builds a real SDK naming client against s; its logs and cache
// go to a temporary directory.
func newClient(t *testing.T, s *registryserver.Server) naming_client.INamingClient {
	t.Helper()
	dir := t.TempDir()
	cc := constant.NewClientConfig(
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithLogDir(dir+"/log"),
		constant.WithCacheDir(dir+"/cache"),
		constant.WithLogLevel("warn"),
	)
	sc := []constant.ServerConfig{{IpAddr: "127.0.0.1", Port: port(s.HTTPAddr()), GrpcPort: port(s.GRPCAddr()), ContextPath: "/nacos", Scheme: "http"}}
	c, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: cc, ServerConfigs: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func ports(insts []model.Instance) string {
	ps := make([]string, 0, len(insts))
	for _, in := range insts {
		ps = append(ps, fmt.Sprintf("%s:%d", in.Ip, in.Port))
	}
	sort.Strings(ps)
	return strings.Join(ps, ",")
}

func reg(ip string, p uint64, svc string) vo.RegisterInstanceParam {
	return vo.RegisterInstanceParam{Ip: ip, Port: p, Weight: 1, Enable: true, Healthy: true, Ephemeral: true, ServiceName: svc,
		Metadata: map[string]string{"side": "provider"}}
}

// serverHosts reads the server's own view.
func serverHosts(s *registryserver.Server, svc string, healthyOnly bool) string {
	si, err := s.Naming().Select(naming.ServiceKey{Name: svc}, nil, healthyOnly)
	if err != nil {
		return err.Error()
	}
	ps := make([]string, 0, len(si.Hosts))
	for _, h := range si.Hosts {
		ps = append(ps, fmt.Sprintf("%s:%d", h.IP, h.Port))
	}
	sort.Strings(ps)
	return strings.Join(ps, ",")
}

func TestRegisterSelectAndFields(t *testing.T) {
	s := startRegistry(t)
	pub, sub := newClient(t, s), newClient(t, s)
	p := reg("10.0.0.1", 20880, "demo.svc")
	p.Weight = 2.5
	if ok, err := pub.RegisterInstance(p); !ok || err != nil {
		t.Fatalf("register: %v %v", ok, err)
	}
	var got []model.Instance
	eventually(t, "instance visible to another client", func() (bool, string) {
		var err error
		got, err = sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "demo.svc"})
		return err == nil && len(got) == 1, fmt.Sprint(got, err)
	})
	in := got[0]
	if in.Ip != "10.0.0.1" || in.Port != 20880 || in.Weight != 2.5 || !in.Enable || !in.Healthy || !in.Ephemeral ||
		in.ClusterName != "DEFAULT" || in.ServiceName != "DEFAULT_GROUP@@demo.svc" || in.Metadata["side"] != "provider" ||
		in.InstanceId != "10.0.0.1#20880##DEFAULT_GROUP@@demo.svc" {
		t.Fatalf("instance fields: %+v", in)
	}
	svc, err := sub.GetService(vo.GetServiceParam{ServiceName: "demo.svc"})
	if err != nil || svc.Name != "demo.svc" || svc.GroupName != "DEFAULT_GROUP" || len(svc.Hosts) != 1 || svc.LastRefTime == 0 {
		t.Fatalf("GetService: %+v %v", svc, err)
	}
}

func TestReRegisterReplacesAndDeregister(t *testing.T) {
	s := startRegistry(t)
	pub, sub := newClient(t, s), newClient(t, s)
	check(t)(pub.RegisterInstance(reg("10.0.0.1", 1, "rr")))
	check(t)(pub.RegisterInstance(reg("10.0.0.1", 2, "rr")))
	eventually(t, "second registration replaced the first", func() (bool, string) {
		h := serverHosts(s, "rr", false)
		return h == "10.0.0.1:2", h
	})
	eventually(t, "subscriber sees the replacement", func() (bool, string) {
		got, err := sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "rr"})
		return err == nil && ports(got) == "10.0.0.1:2", fmt.Sprint(ports(got), err)
	})
	check(t)(pub.DeregisterInstance(vo.DeregisterInstanceParam{Ip: "10.0.0.1", Port: 2, ServiceName: "rr", Ephemeral: true}))
	eventually(t, "deregistered on the server", func() (bool, string) {
		h := serverHosts(s, "rr", false)
		return h == "", h
	})
	eventually(t, "subscriber told the service is empty", func() (bool, string) {
		got, _ := sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "rr"})
		return len(got) == 0, ports(got)
	})
}

func TestBatchRegister(t *testing.T) {
	s := startRegistry(t)
	pub, sub := newClient(t, s), newClient(t, s)
	check(t)(pub.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: "batch", Instances: []vo.RegisterInstanceParam{
		reg("10.0.0.1", 1, "batch"), reg("10.0.0.2", 1, "batch"), reg("10.0.0.3", 1, "batch")}}))
	eventually(t, "batch visible", func() (bool, string) {
		got, err := sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "batch"})
		return err == nil && ports(got) == "10.0.0.1:1,10.0.0.2:1,10.0.0.3:1", fmt.Sprint(ports(got), err)
	})
	check(t)(pub.BatchRegisterInstance(vo.BatchRegisterInstanceParam{ServiceName: "batch", Instances: []vo.RegisterInstanceParam{
		reg("10.0.0.2", 1, "batch"), reg("10.0.0.4", 1, "batch")}}))
	eventually(t, "second batch replaces the first", func() (bool, string) {
		got, err := sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "batch"})
		return err == nil && ports(got) == "10.0.0.2:1,10.0.0.4:1", fmt.Sprint(ports(got), err)
	})
}

func TestSubscribeReceivesPushes(t *testing.T) {
	s := startRegistry(t)
	pub, sub := newClient(t, s), newClient(t, s)
	var mu sync.Mutex
	var seen []string
	cb := func(insts []model.Instance, err error) {
		mu.Lock()
		seen = append(seen, ports(insts))
		mu.Unlock()
	}
	if err := sub.Subscribe(&vo.SubscribeParam{ServiceName: "pushed", SubscribeCallback: cb}); err != nil {
		t.Fatal(err)
	}
	last := func() (bool, string, []string) {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return false, "", nil
		}
		return true, seen[len(seen)-1], append([]string(nil), seen...)
	}
	check(t)(pub.RegisterInstance(reg("10.0.0.7", 7, "pushed")))
	eventually(t, "push with the new instance", func() (bool, string) {
		ok, l, all := last()
		return ok && l == "10.0.0.7:7", fmt.Sprint(all)
	})
	pub2 := newClient(t, s)
	check(t)(pub2.RegisterInstance(reg("10.0.0.8", 8, "pushed")))
	eventually(t, "push with both instances", func() (bool, string) {
		ok, l, all := last()
		return ok && l == "10.0.0.7:7,10.0.0.8:8", fmt.Sprint(all)
	})
	// A closed client's instances vanish, and subscribers are told.
	pub2.CloseClient()
	eventually(t, "closed client's instance gone (server)", func() (bool, string) {
		h := serverHosts(s, "pushed", false)
		return h == "10.0.0.7:7", h
	})
	eventually(t, "push without the closed client's instance", func() (bool, string) {
		ok, l, all := last()
		return ok && l == "10.0.0.7:7", fmt.Sprint(all)
	})
	if err := sub.Unsubscribe(&vo.SubscribeParam{ServiceName: "pushed", SubscribeCallback: cb}); err != nil {
		t.Fatal(err)
	}
}

func TestServiceList(t *testing.T) {
	s := startRegistry(t)
	c := newClient(t, s)
	for _, n := range []string{"b.svc", "a.svc", "c.svc"} {
		check(t)(c.RegisterInstance(reg("10.0.0.1", 1, n)))
	}
	g := reg("10.0.0.1", 1, "other")
	g.GroupName = "G1"
	check(t)(c.RegisterInstance(g))
	list, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{PageNo: 1, PageSize: 2})
	if err != nil || list.Count != 3 || strings.Join(list.Doms, ",") != "a.svc,b.svc" {
		t.Fatalf("page 1: %+v %v", list, err)
	}
	list, err = c.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: "G1", PageNo: 1, PageSize: 10})
	if err != nil || list.Count != 1 || strings.Join(list.Doms, ",") != "other" {
		t.Fatalf("group G1: %+v %v", list, err)
	}
}

func TestHealthyOnlyAndEnabledFiltering(t *testing.T) {
	s := startRegistry(t)
	a, b, c, sub := newClient(t, s), newClient(t, s), newClient(t, s), newClient(t, s)
	check(t)(a.RegisterInstance(reg("10.0.0.1", 1, "filt")))
	sick := reg("10.0.0.2", 1, "filt")
	sick.Healthy = false
	check(t)(b.RegisterInstance(sick))
	off := reg("10.0.0.3", 1, "filt")
	off.Enable = false
	check(t)(c.RegisterInstance(off))
	eventually(t, "server holds three", func() (bool, string) {
		st := s.Naming().Instances(naming.ServiceKey{Name: "filt"})
		return len(st) == 3, fmt.Sprint(len(st))
	})
	if h := serverHosts(s, "filt", true); h != "10.0.0.1:1" {
		t.Fatalf("server healthyOnly: %s", h)
	}
	eventually(t, "disabled instance never returned", func() (bool, string) {
		got, err := sub.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: "filt"})
		return err == nil && ports(got) == "10.0.0.1:1,10.0.0.2:1", fmt.Sprint(ports(got), err)
	})
	healthy, err := sub.SelectInstances(vo.SelectInstancesParam{ServiceName: "filt", HealthyOnly: true})
	if err != nil || ports(healthy) != "10.0.0.1:1" {
		t.Fatalf("SelectInstances healthy: %s %v", ports(healthy), err)
	}
	one, err := sub.SelectOneHealthyInstance(vo.SelectOneHealthInstanceParam{ServiceName: "filt"})
	if err != nil || one.Ip != "10.0.0.1" {
		t.Fatalf("SelectOneHealthyInstance: %+v %v", one, err)
	}
}

func TestInvalidRequestsDoNotBreakTheClient(t *testing.T) {
	s := startRegistry(t)
	c := newClient(t, s)
	check(t)(c.RegisterInstance(reg("10.0.0.1", 1, "keep")))
	bad := reg("10.0.0.1", 1, "bad")
	bad.ClusterName = "no_underscores"
	// The SDK reports a typed failure (resultCode 500) as ok=false.
	if ok, err := c.RegisterInstance(bad); ok {
		t.Fatalf("invalid cluster accepted: %v %v", ok, err)
	}
	if h := serverHosts(s, "bad", false); h != "" {
		t.Fatalf("invalid instance stored: %s", h)
	}
	// The connection survives a business error: the next call works and
	// nothing registered is lost.
	check(t)(c.RegisterInstance(reg("10.0.0.2", 2, "keep2")))
	if h := serverHosts(s, "keep", false); h != "10.0.0.1:1" {
		t.Fatalf("lost: %s", h)
	}
	if !c.ServerHealthy() {
		t.Fatal("client thinks the server is unhealthy")
	}
}

// check fails the test unless an SDK call returned (true, nil).
func check(t *testing.T) func(ok bool, err error) {
	return func(ok bool, err error) {
		t.Helper()
		if !ok || err != nil {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
	}
}

// counter sums a counter family's samples with the given label value.
func counter(t *testing.T, s *registryserver.Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func startRegistryWith(t *testing.T, mod func(*registryserver.Config)) *registryserver.Server {
	t.Helper()
	cfg := registryserver.DefaultConfig()
	cfg.Port = 0
	cfg.DataDir = t.TempDir()
	mod(&cfg)
	s, err := registryserver.New(cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestIdleDetectionKeepsLiveSDKClient: the SDK answers ClientDetectionRequest
// (success:false, resultCode 200) and keeps its connection and instances.
func TestIdleDetectionKeepsLiveSDKClient(t *testing.T) {
	s := startRegistryWith(t, func(c *registryserver.Config) {
		c.GRPC.IdleTimeout = 500 * time.Millisecond
		c.GRPC.DetectTimeout = 2 * time.Second
		c.GRPC.EjectInterval = 100 * time.Millisecond
	})
	c := newClient(t, s)
	check(t)(c.RegisterInstance(reg("10.0.0.1", 1, "idle")))
	conns := s.GRPC().Connections()
	if len(conns) != 1 {
		t.Fatalf("connections: %+v", conns)
	}
	eventually(t, "two detections answered", func() (bool, string) {
		n := counter(t, s, "ferry_registry_grpc_client_detections_total", "result", "ok")
		return n >= 2, fmt.Sprint(n)
	})
	if n := counter(t, s, "ferry_registry_grpc_client_detections_total", "result", "dropped"); n != 0 {
		t.Fatalf("a live SDK client was dropped %v times", n)
	}
	if now := s.GRPC().Connections(); len(now) != 1 || now[0].ID != conns[0].ID {
		t.Fatalf("connection changed: %+v → %+v", conns, now)
	}
	if h := serverHosts(s, "idle", false); h != "10.0.0.1:1" {
		t.Fatalf("instance lost: %q", h)
	}
}
